"""OmniFold: the classifier's likelihood ratio against a closed form, closure and non-closure on small N."""

import numpy as np
import pytest

from hepgen.data.generators import smear
from hepgen.unfolding.inputs import check_inputs
from hepgen.unfolding.omnifold import likelihood_ratio


def test_likelihood_ratio_of_two_gaussians():
    """N(0.5, 1) / N(0, 1) = exp(0.5 x - 1/8): the cross-fitted ratio within 15 % in the bulk."""
    rng = np.random.default_rng(0)
    x1 = rng.normal(0.5, 1.0, (6000, 1))
    x0 = rng.normal(0.0, 1.0, (6000, 1))
    (r,) = likelihood_ratio(x1, np.ones(6000), x0, np.ones(6000), [x0], folds=2, seed=1)
    bulk = np.abs(x0[:, 0]) < 1.0
    exact = np.exp(0.5 * x0[:, 0] - 0.125)
    assert np.median(np.abs(r[bulk] / exact[bulk] - 1)) < 0.15
    # reweighting x0 by r reproduces the mean of x1
    assert np.average(x0[:, 0], weights=r) == pytest.approx(0.5, abs=0.06)


def _run(data_index, fake_rate, n=5000, iterations=3, bootstrap=2):
    from hepgen.unfolding.api import compute_metrics, run_method

    sim = smear.generate(n, seed=21, pt_min=30.0, fake_rate=fake_rate)
    dat = smear.generate(n, seed=22, pt_min=30.0, fake_rate=fake_rate, index=data_index)
    inp = check_inputs(sim["truth"], sim["reco"], dat["reco"][dat["pass_reco"]], pass_truth=sim["pass_truth"],
                       pass_reco=sim["pass_reco"], data_truth=dat["truth"][dat["pass_truth"]], names=smear.COLUMNS)
    result = run_method("omnifold", inp, bins=10, bootstrap=bootstrap, iterations=iterations)
    return result, compute_metrics(result)["observables"]


def test_closure_with_fakes():
    """Simulation unfolded with an independent sample of itself: weights near one, chi2/ndf of order one."""
    result, m = _run(4.5, 0.05, n=4000, iterations=2, bootstrap=0)
    nu = result.extra["nu"]
    assert nu[~result.inputs.pass_truth].tolist() == [1.0] * int((~result.inputs.pass_truth).sum())
    assert 0.9 < np.mean(nu[result.inputs.pass_truth]) < 1.1
    for name, v in m.items():
        assert v["chi2_ndf"] < 4.0, (name, v)


@pytest.mark.slow
def test_non_closure_pt_spectrum():
    """Data with a steeper spectrum (index 5.0): the unfolded pt much closer to the data's truth than the prior."""
    _, m = _run(5.0, 0.0)
    assert m["pt"]["w1"] < 0.5 * m["pt"]["w1_prior"]
    assert m["pt"]["chi2_ndf"] < m["pt"]["chi2_ndf_prior"]
