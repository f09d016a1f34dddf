"""The flow posterior: dequantisation round trip, and (slow) a run with the coverage of its intervals."""

import numpy as np
import pytest

from hepgen.data.generators import smear
from hepgen.unfolding.inputs import check_inputs
from hepgen.unfolding.posterior import Coder, preprocessing


def test_coder_dequantises_integers_and_floors_back():
    g = smear.generate(500, seed=0, pt_min=30.0)
    coder = Coder(g["truth"], g["reco"])
    assert coder.integer.tolist() == [False, False, False, False, True]
    enc = coder.encode(g["truth"], np.random.default_rng(0))
    assert not np.array_equal(enc[:, 4], g["truth"][:, 4])
    np.testing.assert_array_equal(coder.decode(enc), g["truth"])
    assert preprocessing(enc) == ["log", "standard", "log", "log", "log"]


@pytest.mark.slow
def test_posterior_run_and_coverage():
    """Closure at small N: the posterior's 68 % / 95 % intervals cover held-out truth within ±8 % (N ~ 200
    held-out events: binomial error ~3 %), and the unfolded mass is as close to the truth as the prior."""
    from hepgen.unfolding.api import compute_metrics, run_method

    sim = smear.generate(8000, seed=1, pt_min=30.0)
    dat = smear.generate(8000, seed=2, pt_min=30.0)
    inp = check_inputs(sim["truth"], sim["reco"], dat["reco"][dat["pass_reco"]], pass_reco=sim["pass_reco"],
                       data_truth=dat["truth"], names=smear.COLUMNS)
    r = run_method("posterior", inp, bins=10, epochs=15, bootstrap=2)
    for level in (68, 95):
        cov = r.extra[f"coverage_{level}"]
        assert np.all(np.abs(cov - level / 100) < 0.08), (level, cov)
    m = compute_metrics(r)["observables"]
    assert m["mass"]["chi2_ndf"] < 3.0
