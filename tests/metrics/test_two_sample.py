"""Two-sample distances checked against scipy, direct linear algebra, brute force and closed forms."""

import numpy as np
import pytest
import scipy.linalg
from scipy.stats import wasserstein_distance

from hepgen.errors import ConfigError, DataError
from hepgen.metrics import (
    fpd,
    frechet_distance,
    kpd,
    mmd2_polynomial,
    wasserstein_1d,
    wasserstein_per_feature,
)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_w1_per_feature_matches_scipy_weighted_and_unweighted(rng):
    x, y = rng.normal(size=(500, 3)), rng.normal(0.3, 1.2, size=(700, 3))
    wx, wy = rng.uniform(0.1, 2.0, 500), rng.uniform(0.0, 3.0, 700)
    got = wasserstein_per_feature(x, y)
    got_w = wasserstein_per_feature(x, y, wx, wy)
    for k in range(3):
        assert got[k] == pytest.approx(wasserstein_distance(x[:, k], y[:, k]), abs=1e-12)
        assert got_w[k] == pytest.approx(wasserstein_distance(x[:, k], y[:, k], wx, wy), abs=1e-12)
    assert wasserstein_1d(x[:, 0], y[:, 0], wx, wy) == pytest.approx(got_w[0], abs=1e-12)
    # W1 of a shift is the shift: the weighted path must not simply ignore weights
    assert not np.allclose(got, got_w)


def test_w1_closed_form_for_shifted_sample(rng):
    x = rng.normal(size=2000)
    assert wasserstein_1d(x, x + 0.7) == pytest.approx(0.7, abs=1e-12)


def _brute_force_w1(x, y, wx, wy, n_grid=400_001):
    """∫ |F_x − F_y| dt on a fine grid, each ECDF summed from its definition Σ_{x_i ≤ t} w_i / Σ w."""
    t = np.linspace(min(x.min(), y.min()), max(x.max(), y.max()), n_grid)
    total = 0.0
    for lo in range(0, n_grid, 50_000):
        g = t[lo:lo + 50_000]
        fx = (x[None, :] <= g[:, None]) @ wx / wx.sum()
        fy = (y[None, :] <= g[:, None]) @ wy / wy.sum()
        total += np.abs(fx - fy).sum()
    return total * (t[1] - t[0])


def test_w1_of_signed_weights_is_the_integral_of_the_signed_ecdfs(rng):
    x, y = rng.normal(size=60), rng.normal(0.4, 1.3, size=45)
    wx, wy = rng.uniform(-0.4, 1.5, 60), rng.uniform(-0.3, 1.2, 45)
    assert (wx < 0).any() and (wy < 0).any()
    got = wasserstein_1d(x, y, wx, wy)
    assert got == pytest.approx(_brute_force_w1(x, y, wx, wy), rel=2e-4)
    # an event and its negative-weight copy cancel exactly
    x2, wx2 = np.append(x, [0.3, 0.3]), np.append(wx, [0.7, -0.7])
    assert wasserstein_1d(x2, y, wx2, wy) == pytest.approx(got, rel=1e-12)
    # positive weights: scipy's definition
    assert wasserstein_1d(x, y, np.abs(wx), np.abs(wy)) == pytest.approx(
        wasserstein_distance(x, y, np.abs(wx), np.abs(wy)), rel=1e-12)


def test_w1_weights_summing_to_zero_raise_data_error(rng):
    x, y = rng.normal(size=4), rng.normal(size=10)
    with pytest.raises(DataError, match="sum to"):
        wasserstein_1d(x, y, np.array([1.0, -1.0, 0.5, -0.5]), None)


def test_w1_rejects_nan_with_first_bad_row(rng):
    x = rng.normal(size=(10, 2))
    x[6, 1] = np.nan
    with pytest.raises(DataError, match=r"first bad row is 6 \(column \d\)"):
        wasserstein_per_feature(x, x)


def _fd_direct(m1, s1, m2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def test_frechet_distance_matches_scipy_sqrtm(rng):
    d = 6
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(_fd_direct(m1, s1, m2, s2), rel=1e-6)
    assert frechet_distance(m1, s1, m1, s1) == pytest.approx(0.0, abs=1e-9)


def test_fpd_extrapolates_to_closed_form_gaussian_distance(rng):
    d = 3
    x = rng.normal(size=(40_000, d))
    y = rng.normal(size=(40_000, d)) * np.array([1.0, 1.5, 1.0]) + np.array([0.5, 0.0, 0.0])
    value, err = fpd(x, y, min_samples=5_000, max_samples=20_000, num_batches=5, num_points=5, normalise=False)
    exact = _fd_direct(np.zeros(d), np.eye(d), np.array([0.5, 0, 0]), np.diag([1.0, 2.25, 1.0]))  # 0.25+0.25
    assert exact == pytest.approx(0.5)
    assert value == pytest.approx(exact, abs=0.02)
    assert 0 <= err < 0.02


def test_fpd_identical_distributions_is_near_zero(rng):
    x, y = rng.normal(size=(20_000, 4)), rng.normal(size=(20_000, 4))
    value, err = fpd(x, y, min_samples=2_000, max_samples=10_000, num_batches=5, num_points=5)
    assert 0.0 <= value < 1e-3


def test_fpd_weighted_batches_reweight_to_target(rng):
    # y ~ N(0.5, 1) reweighted by N(0,1)/N(0.5,1) looks like x ~ N(0, 1): weighted FPD ≪ unweighted
    x, y = rng.normal(size=(20_000, 1)), rng.normal(0.5, 1.0, size=(20_000, 1))
    w = np.exp(-0.5 * y[:, 0] ** 2 + 0.5 * (y[:, 0] - 0.5) ** 2)
    kw = dict(min_samples=2_000, max_samples=10_000, num_batches=5, num_points=4, normalise=False)
    unweighted, _ = fpd(x, y, **kw)
    weighted, _ = fpd(x, y, generated_weights=w, **kw)
    assert unweighted == pytest.approx(0.25, abs=0.02)
    assert weighted < 0.01


def _mmd2_brute(x, y, degree, wx=None, wy=None):
    d = x.shape[1]
    wx = np.ones(len(x)) if wx is None else wx
    wy = np.ones(len(y)) if wy is None else wy

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1.0) ** degree

    def within(a, w):
        num = den = 0.0
        for i in range(len(a)):
            for j in range(len(a)):
                if i != j:
                    num += w[i] * w[j] * k(a[i], a[j])
                    den += w[i] * w[j]
        return num / den

    cross = sum(wx[i] * wy[j] * k(x[i], y[j]) for i in range(len(x)) for j in range(len(y)))
    return within(x, wx) + within(y, wy) - 2 * cross / (wx.sum() * wy.sum())


@pytest.mark.parametrize("degree", [3, 4])
def test_mmd2_polynomial_matches_brute_force(rng, degree):
    x, y = rng.normal(size=(37, 3)), rng.normal(0.2, 1.0, size=(29, 3))
    wx, wy = rng.uniform(0.2, 2.0, 37), rng.uniform(0.2, 2.0, 29)
    # chunk smaller than n exercises the blocked upper-triangle sum
    assert mmd2_polynomial(x, y, degree=degree, chunk=8) == pytest.approx(_mmd2_brute(x, y, degree), rel=1e-10)
    got = mmd2_polynomial(x, y, x_weights=wx, y_weights=wy, degree=degree, chunk=5)
    assert got == pytest.approx(_mmd2_brute(x, y, degree, wx, wy), rel=1e-10)


def test_kpd_single_full_batch_equals_brute_force_on_normalised_features(rng):
    x, y = rng.normal(size=(40, 2)) * 3.0, rng.normal(size=(40, 2)) + 1.0
    scale = np.abs(x).max(axis=0)
    value, err = kpd(x, y, num_batches=1, batch_size=1000)  # one batch = a permutation of everything
    assert value == pytest.approx(_mmd2_brute(x / scale, y / scale, 4), rel=1e-10)
    assert err == 0.0
    value3, _ = kpd(x, y, num_batches=1, batch_size=1000, degree=3, normalise=False)
    assert value3 == pytest.approx(_mmd2_brute(x, y, 3), rel=1e-10)


def test_kpd_identical_is_compatible_with_zero_and_shift_is_not(rng):
    x, y = rng.normal(size=(6000, 3)), rng.normal(size=(6000, 3))
    same, same_err = kpd(x, y, num_batches=10, batch_size=1500)
    shifted, shifted_err = kpd(x, y + 0.3, num_batches=10, batch_size=1500)
    assert abs(same) < 3 * same_err + 1e-6
    assert shifted > 10 * shifted_err > 0


def test_fpd_and_kpd_of_negative_weights_are_those_of_abs_weights(rng):
    x, y = rng.normal(size=(800, 2)), rng.normal(0.2, 1.0, size=(700, 2))
    w = rng.uniform(-0.3, 1.0, 700)
    assert (w < 0).any()
    kw = dict(min_samples=200, max_samples=600, num_batches=3, num_points=3, seed=1)
    value, err = fpd(x, y, generated_weights=w, **kw)
    assert np.isfinite(value) and (value, err) == fpd(x, y, generated_weights=np.abs(w), **kw)
    k = kpd(x, y, generated_weights=w, num_batches=3, batch_size=300, seed=2)
    assert np.isfinite(k[0]) and k == kpd(x, y, generated_weights=np.abs(w), num_batches=3, batch_size=300, seed=2)


def test_unknown_protocol_is_a_config_error(rng):
    from hepgen.errors import ConfigError

    x = rng.normal(size=(50, 2))
    with pytest.raises(ConfigError, match="protocol"):
        kpd(x, x, protocol="cms")


def test_the_classifier_test_moved_to_the_evaluation_layer_and_its_old_spellings_say_where():
    """metrics are pure functions of arrays: the C2ST (it trains a classifier) is hepgen.evaluate's now."""
    import hepgen.metrics
    import hepgen.metrics.shower_observables
    import hepgen.metrics.two_sample
    from hepgen import evaluate
    from hepgen.evaluate import calochallenge

    for module, name, home in ((hepgen.metrics, "c2st_auc", evaluate), (hepgen.metrics, "c2st_scores", evaluate),
                               (hepgen.metrics.two_sample, "c2st_auc", evaluate),
                               (hepgen.metrics.shower_observables, "classifier_auc", calochallenge)):
        assert name not in getattr(module, "__all__", ()) and callable(getattr(home, name))
        with pytest.raises(AttributeError, match=f"{module.__name__}.{name} moved to {home.__name__}.{name}"):
            getattr(module, name)
    with pytest.raises(ImportError, match="c2st_auc"):
        from hepgen.metrics import c2st_auc  # noqa: F401
    with pytest.raises(AttributeError, match="no attribute 'c2st_oops'"):
        hepgen.metrics.c2st_oops  # noqa: B018
