"""Marginal-likelihood unfolding (slow): it trains through the engine from the prior and moves the pt
spectrum towards a steeper data truth."""

import numpy as np
import pytest

from hepgen.data.generators import smear
from hepgen.unfolding.inputs import check_inputs


@pytest.mark.slow
def test_marginal_runs_and_writes(tmp_path):
    from hepgen.data import io
    from hepgen.unfolding.api import compute_metrics, run_method

    sim = smear.generate(5000, seed=1, pt_min=30.0)
    dat = smear.generate(5000, seed=2, pt_min=30.0, index=5.0)
    inp = check_inputs(sim["truth"], sim["reco"], dat["reco"][dat["pass_reco"]], pass_reco=sim["pass_reco"],
                       data_truth=dat["truth"], names=smear.COLUMNS)
    r = run_method("marginal", inp, bins=10, epochs=10, unfold_epochs=10, proposals=8, bootstrap=0, samples=3000)
    assert r.events.shape == (3000, 5) and np.isfinite(r.events).all()
    assert np.all(r.events[:, 4] == np.floor(r.events[:, 4]))
    assert np.isfinite(r.extra["log_py"]).all()
    m = compute_metrics(r)["observables"]
    assert m["pt"]["w1"] < m["pt"]["w1_prior"]
    r.write(tmp_path / "m.h5")
    assert io.read_column(f"{tmp_path}/m.h5:events/pt").shape == (3000,)
