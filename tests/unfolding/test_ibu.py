"""IBU against a hand computation on a 2x2 response, against pyunfold 0.5.0, and a closure test with
efficiency, acceptance and fakes."""

import numpy as np
import pytest

from hepgen.data.generators import smear
from hepgen.errors import ConfigError
from hepgen.unfolding.ibu import ibu, response
from hepgen.unfolding.inputs import check_inputs, reco_edges, truth_edges


def test_one_iteration_on_a_2x2_response_by_hand():
    R = np.array([[0.8, 0.1], [0.1, 0.6]])  # P(reco i | truth j): efficiencies 0.9 and 0.7
    data = np.array([100.0, 50.0])
    u = ibu(data, R, R.sum(0), np.array([0.5, 0.5]), iterations=1)
    # P(j | i) = R_ij p_j / sum_k R_ik p_k with p = (1/2, 1/2): row 0 (8/9, 1/9), row 1 (1/7, 6/7)
    expected = [(100 * 8 / 9 + 50 * 1 / 7) / 0.9, (100 * 1 / 9 + 50 * 6 / 7) / 0.7]
    np.testing.assert_allclose(u, expected, rtol=1e-12)
    # a second iteration starts from the normalised first result
    p1 = np.array(expected) / sum(expected)
    f = R @ p1
    second = [(data[0] * R[0, j] * p1[j] / f[0] + data[1] * R[1, j] * p1[j] / f[1]) / R[:, j].sum() for j in (0, 1)]
    np.testing.assert_allclose(ibu(data, R, R.sum(0), [0.5, 0.5], iterations=2), second, rtol=1e-12)


def test_perfect_detector_returns_the_data():
    u = ibu(np.array([3.0, 7.0, 5.0]), np.eye(3), np.ones(3), np.ones(3) / 3, iterations=3)
    np.testing.assert_allclose(u, [3, 7, 5])


def test_matches_pyunfold():
    import pyunfold  # the test extra installs it
    rng = np.random.default_rng(0)
    R = rng.random((6, 5))
    R = R / R.sum(0) * np.array([0.9, 0.8, 0.7, 0.6, 0.95])
    d = rng.integers(50, 200, 6).astype(float)
    p = rng.random(5)
    p /= p.sum()
    for it in (1, 3, 6):
        ref = pyunfold.iterative_unfold(data=d, data_err=np.sqrt(d), response=R, response_err=0.01 * R,
                                        efficiencies=R.sum(0), efficiencies_err=0.01 * R.sum(0), prior=p,
                                        ts_stopping=1e-300, max_iter=it)
        assert ref["num_iterations"] == it
        np.testing.assert_allclose(ibu(d, R, R.sum(0), p, it), ref["unfolded"], rtol=1e-10)


def test_bad_iterations():
    with pytest.raises(ConfigError, match="iterations"):
        ibu(np.ones(2), np.eye(2), np.ones(2), np.ones(2), iterations=0)


def _inputs(n, seed, data_seed, **opt):
    sim = smear.generate(n, seed=seed, pt_min=30.0, **opt)
    dat = smear.generate(n, seed=data_seed, pt_min=30.0, **opt)
    sel = dat["pass_reco"]
    return check_inputs(sim["truth"], sim["reco"], dat["reco"][sel], pass_truth=sim["pass_truth"],
                        pass_reco=sim["pass_reco"], data_truth=dat["truth"][dat["pass_truth"]], names=smear.COLUMNS)


def test_response_counts_efficiency_and_fakes():
    inp = _inputs(3000, 1, 2, fake_rate=0.1)
    te, re = truth_edges(inp, 6), reco_edges(inp, 6)
    r = response(inp, 0, te[0], re[0])
    real = inp.pass_truth
    assert r.generated.sum() == pytest.approx(real.sum())
    # efficiency: the reconstructed share of real events, per truth bin (brute force)
    t = np.clip(np.searchsorted(te[0], inp.truth[:, 0], side="right") - 1, 0, len(te[0]) - 2)
    for j in range(len(te[0]) - 1):
        in_bin = real & (t == j)
        assert r.efficiency[j] == pytest.approx((in_bin & inp.pass_reco).sum() / in_bin.sum())
    # the fake fraction over all reco bins is the simulated fakes' share among reconstructed rows
    fake_total = (inp.pass_reco & ~real).sum() / inp.pass_reco.sum()
    assert 0.05 < fake_total < 0.2 and r.fake_fraction.max() > 0


@pytest.mark.parametrize("fake_rate", [0.0, 0.1])
def test_closure(fake_rate):
    """Unfolding simulation with an independent sample of itself returns its truth: chi2/ndf of order one
    per observable (bootstrap band + truth statistics) and the unfolded totals within 5 %."""
    from hepgen.unfolding.api import compute_metrics, run_method

    inp = _inputs(8000, 3, 4, fake_rate=fake_rate)
    result = run_method("ibu", inp, bins=10, bootstrap=10, iterations=4)
    m = compute_metrics(result)
    for name, v in m["observables"].items():
        assert v["chi2_ndf"] < 3.0, (name, v)
    # the unfolded number of real jets: the data's real truth jets (8000 minus its fakes)
    total = result.extra["counts_mass"].sum()
    assert total == pytest.approx(len(inp.data_truth), rel=0.05)


def test_non_closure_moves_towards_the_data_truth():
    from hepgen.unfolding.api import compute_metrics, run_method

    sim = smear.generate(8000, seed=5, pt_min=30.0)
    dat = smear.generate(8000, seed=6, pt_min=30.0, index=5.0)
    inp = check_inputs(sim["truth"], sim["reco"], dat["reco"][dat["pass_reco"]], pass_reco=sim["pass_reco"],
                       data_truth=dat["truth"], names=smear.COLUMNS)
    m = compute_metrics(run_method("ibu", inp, bins=10, bootstrap=10))["observables"]
    assert m["pt"]["chi2_ndf"] < 3.0 < m["pt"]["chi2_ndf_prior"]
    assert m["pt"]["w1"] < 0.5 * m["pt"]["w1_prior"]


def test_migration_across_an_acceptance_edge():
    """1-D toy: truth x ~ U(0, 10), reco y = x + N(0, 0.5^2), accepted if y < 5 (events migrate in and out
    across the edge). Truth bins inside and at the edge (eps down to 0.32) are unfolded to the truth within 5 %
    (1/eps-corrected, the migrations in the response), and
    bins with eps < min_efficiency (x > ~5.5) carry the prior's shape scaled to the measured total."""
    from hepgen.unfolding.ibu import observed_counts

    rng = np.random.default_rng(5)

    def sample(n):
        x = rng.uniform(0, 10, n)
        y = x + 0.5 * rng.standard_normal(n)
        return x[:, None], y[:, None], y < 5

    xs, ys, ps = sample(200_000)
    xd, yd, pd = sample(100_000)
    inp = check_inputs(xs, ys, yd[pd], pass_reco=ps, data_truth=xd)
    te = [np.linspace(0, 10, 21)]
    re = [np.linspace(-1, 5, 25)]
    r = response(inp, 0, te[0], re[0])
    # the efficiency of the edge bins by brute force: accepted share of the truth bin
    t = np.clip(np.searchsorted(te[0], xs[:, 0], side="right") - 1, 0, 19)
    for j in (8, 9, 10, 11):
        assert r.efficiency[j] == pytest.approx(ps[t == j].mean(), abs=1e-12)
    assert r.efficiency[9] > 0.6 > r.efficiency[10] > 0.3
    u = ibu(observed_counts(inp, 0, re[0]), r.response, r.efficiency, r.prior, iterations=6, min_efficiency=0.05)
    truth = np.histogram(xd[:, 0], te[0])[0]
    inside = slice(2, 11)  # x in [1, 5.5]: measured (eps >= 0.32)
    # ~5000 events per bin: 5 % is ~3.5 sigma of the Poisson error (IBU's bin-to-bin anti-correlation included)
    np.testing.assert_allclose(u[inside], truth[inside], rtol=0.05)
    outside = r.efficiency < 0.05
    assert outside[12:].all() and not outside[:11].any()
    np.testing.assert_allclose(u[outside] / u[~outside].sum(), r.prior[outside] / r.prior[~outside].sum(), rtol=1e-12)
