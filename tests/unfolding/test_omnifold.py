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
    # no bootstrap: the chi2 holds only the truths' statistics, not the method's own noise (step 1b's
    # classifier on 4000 events adds some: width 4.0 with it, 3.3 without), hence "of order one" up to 5
    for name, v in m.items():
        assert v["chi2_ndf"] < 5.0, (name, v)


@pytest.mark.slow
def test_non_closure_pt_spectrum():
    """Data with a steeper spectrum (index 5.0): the unfolded pt much closer to the data's truth than the prior."""
    _, m = _run(5.0, 0.0)
    assert m["pt"]["w1"] < 0.5 * m["pt"]["w1_prior"]
    assert m["pt"]["chi2_ndf"] < m["pt"]["chi2_ndf_prior"]


def _acceptance_case(n: int, seed: int, shift: float):
    """Truth (a, b) independent, a ~ N(shift, 1), b ~ U(-3, 3); reco = truth + N(0, 0.2); events with
    |b| > 2 are never reconstructed (the acceptance), and 10 % of the rest are lost at random."""
    rng = np.random.default_rng(seed)
    truth = np.stack([rng.normal(shift, 1.0, n), rng.uniform(-3, 3, n)], 1)
    reco = truth + rng.normal(0, 0.2, truth.shape)
    passed = (np.abs(truth[:, 1]) < 2) & (rng.random(n) < 0.9)
    return truth, reco, passed


@pytest.mark.parametrize("extrapolate", [True, False])
def test_step_1b_carries_the_pull_beyond_the_acceptance(extrapolate):
    """The data's a is shifted by +0.4. Inside the acceptance both settings follow the data; beyond it
    (|b| > 2, a third of the truth) step 1b gives the events the pull of their neighbours in truth space
    (mean of a near 0.4), while without it they keep the prior's a (mean near 0)."""
    from hepgen.unfolding.omnifold import omnifold

    t_sim, r_sim, p_sim = _acceptance_case(20000, 1, 0.0)
    t_dat, r_dat, p_dat = _acceptance_case(20000, 2, 0.4)
    inp = check_inputs(t_sim, r_sim, r_dat[p_dat], pass_reco=p_sim, names=["a", "b"])
    nu = omnifold(inp, iterations=3, seed=0, extrapolate=extrapolate)
    out = np.abs(t_sim[:, 1]) > 2.05
    inside = np.abs(t_sim[:, 1]) < 1.9
    assert np.average(t_sim[inside, 0], weights=nu[inside]) == pytest.approx(0.4, abs=0.06)
    mean_out = np.average(t_sim[out, 0], weights=nu[out])
    if extrapolate:
        assert mean_out == pytest.approx(0.4, abs=0.08)
        # the outside share of the total stays the simulated third (b is independent of a)
        assert nu[out].sum() / nu.sum() == pytest.approx(out.mean(), abs=0.02)
    else:
        assert mean_out == pytest.approx(0.0, abs=0.05)


def test_bootstrap_replicas_resample_the_simulation_too():
    """Each replica carries Poisson(1) factors on the simulated events (about e^-1 of them drop out), as
    IBU's do, so the band holds the simulation's statistics; the nominal result has none."""
    result, _ = _run(4.5, 0.0, n=3000, iterations=1, bootstrap=2)
    assert np.all(result.weights > 0)
    for _, w in result.replicas:
        assert np.mean(w == 0) == pytest.approx(np.exp(-1), abs=0.03)
