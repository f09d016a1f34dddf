"""The flow posterior: the residual coder (round trip, Jacobian), the efficiency/acceptance correction and
the fake classifier against closed forms, a small-N closure run, and (slow) the coverage at 20k events."""

import numpy as np
import pytest
from scipy.stats import expon

from hepgen.data.generators import smear
from hepgen.unfolding.inputs import check_inputs
from hepgen.unfolding.posterior import (
    Coder,
    efficiency_corrected,
    fake_model,
    preprocessing,
)


def test_coder_round_trip_and_jacobian():
    g = smear.generate(500, seed=0, pt_min=30.0)
    coder = Coder(g["truth"], g["reco"])
    assert coder.integer.tolist() == [False, False, False, False, True]
    assert coder.log.tolist() == [True, False, True, True, True]
    rng = np.random.default_rng(0)
    u = coder.encode(g["truth"], g["reco"], rng)
    # the residual of a log column is log(truth / reco); eta is the plain difference
    deq = coder.decode_continuous(u, g["reco"])
    lo = coder.lo[0]
    assert 29.9 < lo < 30.0 and coder.lo[2:].tolist() == [0, 0, 0]  # the generator's pt cut is a hard edge
    ok = g["reco"][:, 0] - lo > coder.floor[0]
    np.testing.assert_allclose(u[ok, 0], np.log((g["truth"][ok, 0] - lo) / (g["reco"][ok, 0] - lo)), rtol=1e-9)
    np.testing.assert_allclose(u[:, 1], g["truth"][:, 1] - g["reco"][:, 1], atol=1e-12)
    assert np.all((deq[:, 4] - g["truth"][:, 4] >= 0) & (deq[:, 4] - g["truth"][:, 4] < 1))
    back = coder.decode(u, g["reco"])
    np.testing.assert_allclose(back, g["truth"], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(back[:, 4], g["truth"][:, 4])
    # log |du/dx| against finite differences, column by column
    h = 1e-6
    num = sum(np.log((coder.encode(deq + h * np.eye(5)[j], g["reco"], None)[:, j]
                      - coder.encode(deq - h * np.eye(5)[j], g["reco"], None)[:, j]) / (2 * h)) for j in range(5))
    np.testing.assert_allclose(coder.log_det(deq), num, rtol=1e-5)
    assert preprocessing(deq) == ["log", "standard", "log", "log", "log"]


def test_efficiency_correction_recovers_the_full_population():
    """Exp(1) truth, eps(x) = 0.9 (1 - exp(-3 x)) on x < 2 and 0 beyond (an acceptance cut): dividing the
    reconstructed events by eps and filling x >= 2 with the prior reproduces the full Exp(1) density."""
    rng = np.random.default_rng(1)
    eps = lambda x: np.where(x[:, 0] < 2.0, 0.9 * (1 - np.exp(-3 * x[:, 0])), 0.0)
    x = rng.exponential(1.0, (400_000, 1))
    passed = rng.random(len(x)) < eps(x)
    prior = rng.exponential(1.0, (100_000, 1))
    out, w = efficiency_corrected(x[passed], np.ones(int(passed.sum())), eps, prior, np.ones(len(prior)),
                                  eps(prior), 0.05)
    # the total: as many events as the full sample (the prior's outside share extrapolated)
    assert w.sum() == pytest.approx(len(x), rel=0.01)
    edges = np.array([0.05, 0.2, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0])
    h = np.histogram(out[:, 0], edges, weights=w)[0] / w.sum()
    np.testing.assert_allclose(h, np.diff(expon.cdf(edges)), rtol=0.03)
    # beyond the cut every event is the prior's (reconstructed events there would be dropped, not weighted up)
    assert (out[:, 0] >= 2).sum() == (prior[:, 0] >= 2).sum()


def test_fake_probability_matches_the_simulated_fake_fraction():
    g = smear.generate(12_000, seed=3, pt_min=30.0, fake_rate=0.1)
    inp = check_inputs(g["truth"], g["reco"], g["reco"][:10], pass_truth=g["pass_truth"], pass_reco=g["pass_reco"])
    p = fake_model(inp, seed=0)(g["reco"])
    rec = g["pass_reco"]
    bins = np.digitize(g["reco"][rec, 0], [35, 45, 70])
    for b in range(4):
        sel = bins == b
        frac = (~g["pass_truth"][rec][sel]).mean()
        assert p[rec][sel].mean() == pytest.approx(frac, abs=0.02 + 0.15 * frac), b
    # no simulated fakes: P(fake) is zero
    inp0 = check_inputs(g["truth"][g["pass_truth"]], g["reco"][g["pass_truth"]], g["reco"][:10])
    assert fake_model(inp0)(g["reco"][:5]).tolist() == [0.0] * 5


def _inputs(n, fake_rate=0.0, data_index=4.5):
    sim = smear.generate(n, seed=1, pt_min=30.0, fake_rate=fake_rate)
    dat = smear.generate(n, seed=2, pt_min=30.0, fake_rate=fake_rate, index=data_index)
    return check_inputs(sim["truth"], sim["reco"], dat["reco"][dat["pass_reco"]], pass_truth=sim["pass_truth"],
                        pass_reco=sim["pass_reco"], data_truth=dat["truth"][dat["pass_truth"]], names=smear.COLUMNS)


def test_small_closure_with_fakes_and_acceptance():
    """3000 events, 3 epochs, 5 % fakes, |eta| < 2.5 of a uniform |eta| < 3: the unfolded total is the data's
    real-jet count within 10 % (an undertrained flow puts some samples where eps is small; the 1/eps and fake weights, and the prior's |eta| > 2.5 share), eta within
    chi2/ndf < 3 (outside the acceptance: the prior), and a shared cache trains the flow once."""
    from hepgen.unfolding.api import compute_metrics, run_method

    inp = _inputs(3000, fake_rate=0.05)
    cache: dict = {}
    r = run_method("posterior", inp, bins=10, epochs=3, bootstrap=2, samples=2, coverage_samples=50, cache=cache,
                   batch_size=256)
    assert r.weights.sum() == pytest.approx(len(inp.data_truth), rel=0.10)
    assert np.all(r.events[:, 4] == np.floor(r.events[:, 4]))
    m = compute_metrics(r)["observables"]
    assert m["eta"]["chi2_ndf"] < 3.0, m["eta"]
    assert len(cache) == 1
    r2 = run_method("posterior", inp, bins=10, epochs=3, bootstrap=0, samples=2, coverage_samples=50, cache=cache,
                    batch_size=256)
    assert len(cache) == 1 and r2.weights.sum() == pytest.approx(r.weights.sum(), rel=0.02)


@pytest.mark.slow
def test_posterior_coverage_at_20k():
    """20k simulated pairs, 10 epochs: the 68 % / 95 % intervals cover held-out truth within ±3 % of nominal
    (about 1 800 held-out events: binomial error 1.1 % / 0.5 %), and the unfolded eta and mass are as close
    to the truth as statistics allow (chi2/ndf < 2)."""
    from hepgen.unfolding.api import compute_metrics, run_method

    inp = _inputs(20_000)
    r = run_method("posterior", inp, bins=20, epochs=10, bootstrap=4, batch_size=256)
    for level in (68, 95):
        cov = r.extra[f"coverage_{level}"]
        assert np.all(np.abs(cov - level / 100) < 0.03), (level, cov)
    m = compute_metrics(r)["observables"]
    assert m["eta"]["chi2_ndf"] < 2.0 and m["mass"]["chi2_ndf"] < 2.0, m


@pytest.mark.parametrize("extrapolate", [True, False])
def test_fill_beyond_the_acceptance_follows_the_unfolded_shape(extrapolate):
    """Truth (a, b), eps = 0.9 for |b| < 2 and 0 beyond. The unfolded events inside have a ~ N(0.5, 1), the
    prior a ~ N(0, 1): with ``extrapolate`` the prior's events filling |b| > 2 are reweighted to a mean near
    0.5 (the ratio learned inside, continued across the edge); without it they keep the prior's mean 0."""
    rng = np.random.default_rng(3)
    eps = lambda x: np.where(np.abs(x[:, 1]) < 2.0, 0.9, 0.0)
    unf = np.stack([rng.normal(0.5, 1.0, 60000), rng.uniform(-2, 2, 60000)], 1)
    prior = np.stack([rng.normal(0.0, 1.0, 60000), rng.uniform(-3, 3, 60000)], 1)
    out, w = efficiency_corrected(unf, np.ones(len(unf)), eps, prior, np.ones(len(prior)), eps(prior), 0.05,
                                  extrapolate=extrapolate, seed=0)
    beyond = np.abs(out[:, 1]) >= 2
    assert beyond.sum() == (np.abs(prior[:, 1]) >= 2).sum()
    # the filled share: the prior's outside fraction (a third), whatever the reweighting
    assert w[beyond].sum() / w.sum() == pytest.approx(1 / 3, abs=0.02)
    expected = 0.5 if extrapolate else 0.0
    assert np.average(out[beyond, 0], weights=w[beyond]) == pytest.approx(expected, abs=0.05)


def test_iterations_stop_by_the_rule_and_coverage_is_the_final_flows():
    """Closure on 3000 events: with a tolerance far above the reweighting's change the iteration stops before
    any fine-tuning (one flow, the first coverage); with tolerance 0 every iteration runs, its change is
    recorded, and the reported coverage is the last iteration's (weighted by the simulation's reweighting)."""
    from hepgen.unfolding.api import run_method

    inp = _inputs(3000)
    cache: dict = {}
    common = dict(bins=10, epochs=3, bootstrap=0, samples=1, coverage_samples=40, cache=cache, batch_size=256)
    stop = run_method("posterior", inp, iterations=3, tolerance=10.0, **common)
    assert int(stop.extra["iterations_run"]) == 1 and len(stop.extra["reweight_change"]) == 1
    assert "coverage_68_iteration_2" not in stop.extra
    full = run_method("posterior", inp, iterations=3, tolerance=0.0, **common)
    assert int(full.extra["iterations_run"]) == 3 and len(full.extra["reweight_change"]) == 2
    np.testing.assert_array_equal(full.extra["coverage_68"], full.extra["coverage_68_iteration_3"])
    np.testing.assert_array_equal(stop.extra["coverage_68"], full.extra["coverage_68_iteration_1"])
    assert np.all((full.extra["coverage_95"] >= 0) & (full.extra["coverage_95"] <= 1))


def test_weighted_coverage_is_the_coverage_of_the_weighted_population():
    """Weights 0/1 give the coverage of the weight-1 events alone; unit weights the unweighted coverage."""
    from hepgen.unfolding.posterior import coverage, sample_posterior, train_posterior

    inp = _inputs(2000)
    both = inp.pass_truth & inp.pass_reco
    x, y = inp.truth[both], inp.reco[both]
    coder = Coder(x, y)
    flow = train_posterior(x[:900], y[:900], np.ones(900), coder, seed=0, epochs=1, transforms=1, hidden=(16,),
                           batch_size=256, lr=2e-3, device="cpu", quiet=True)
    xt, yt = x[900:1100], y[900:1100]
    mask = np.arange(len(xt)) % 2 == 0
    full = coverage(flow, coder, xt, yt, samples=30, seed=4)
    ones = coverage(flow, coder, xt, yt, samples=30, seed=4, weights=np.ones(len(xt)))
    assert full == ones
    weighted = coverage(flow, coder, xt, yt, samples=30, seed=4, weights=mask.astype(float))
    # the same draws (the seed) restricted to the even rows: recompute by hand from the unweighted indicator
    draws = sample_posterior(flow, coder, yt, 30, 4)
    below, ties = (draws < xt[None]).mean(0), (draws == xt[None]).mean(0)
    u = below + ties * np.random.default_rng(5).random(below.shape)
    inside = (u >= 0.16) & (u <= 0.84)
    np.testing.assert_allclose(weighted["68"], inside[mask].mean(0))
