"""Weighted histograms, chi², KL and JS against numpy, direct sums and closed forms."""

import numpy as np
import pytest
from scipy.stats import norm

from hepgen.errors import DataError
from hepgen.metrics import (
    chi2_from_histograms,
    chi2_histograms,
    js_divergence,
    kl_divergence,
    kl_js_from_samples,
    kl_js_on_grid,
    weighted_histogram,
)


@pytest.fixture
def rng():
    return np.random.default_rng(99)


def test_weighted_histogram_matches_numpy_with_negative_weights(rng):
    x = rng.normal(size=1000)
    w = rng.uniform(-0.5, 1.5, size=1000)
    h, sumw2, edges = weighted_histogram(x, bins=20, range=(-3, 3), weights=w)
    ref, ref_edges = np.histogram(x, bins=20, range=(-3, 3), weights=w)
    ref_w2, _ = np.histogram(x, bins=20, range=(-3, 3), weights=w**2)
    np.testing.assert_allclose(h, ref, atol=1e-12)
    np.testing.assert_allclose(sumw2, ref_w2, atol=1e-12)
    np.testing.assert_allclose(edges[0], ref_edges)
    assert (h < 0).any() or True  # negative bins are allowed, not clipped
    assert np.allclose(h.sum(), w[np.abs(x) <= 3].sum())


def test_chi2_from_histograms_direct_formula():
    h1, h2 = np.array([10.0, 5.0, 0.0, 3.0]), np.array([8.0, 7.0, 0.0, 1.0])
    s1, s2 = np.array([10.0, 5.0, 0.0, 3.0]), np.array([8.0, 7.0, 0.0, 1.0])
    chi2, ndf = chi2_from_histograms(h1, s1, h2, s2)
    assert chi2 == pytest.approx(4 / 18 + 4 / 12 + 4 / 4)
    assert ndf == 3  # the empty bin has no error and is skipped


def test_chi2_histograms_weighted_matches_manual_computation(rng):
    x, y = rng.normal(size=800), rng.normal(size=1200)
    wx, wy = rng.uniform(0.5, 1.5, 800), rng.uniform(-0.2, 2.0, 1200)
    edges = np.linspace(-2.5, 2.5, 11)
    chi2, ndf = chi2_histograms(x, y, bins=edges, x_weights=wx, y_weights=wy, normalize=False)
    h1, _ = np.histogram(x, edges, weights=wx)
    v1, _ = np.histogram(x, edges, weights=wx**2)
    h2, _ = np.histogram(y, edges, weights=wy)
    v2, _ = np.histogram(y, edges, weights=wy**2)
    assert chi2 == pytest.approx(np.sum((h1 - h2) ** 2 / (v1 + v2)), rel=1e-12)
    assert ndf == 10
    chi2_n, ndf_n = chi2_histograms(x, y, bins=edges, x_weights=wx, y_weights=wy)
    t1, t2 = h1.sum(), h2.sum()
    expect = np.sum((h1 / t1 - h2 / t2) ** 2 / (v1 / t1**2 + v2 / t2**2))
    assert chi2_n == pytest.approx(expect, rel=1e-12)
    assert ndf_n == 9


def test_chi2_per_ndf_is_about_one_for_one_distribution(rng):
    ratios = []
    for _ in range(40):
        x, y = rng.normal(size=5000), rng.normal(size=8000)
        chi2, ndf = chi2_histograms(x, y, bins=30, range=(-3, 3))
        ratios.append(chi2 / ndf)
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.1)
    chi2, ndf = chi2_histograms(rng.normal(size=5000), rng.normal(0.2, 1, size=5000), bins=30, range=(-3, 3))
    assert chi2 / ndf > 3


def test_kl_of_gaussians_on_fine_grid_matches_closed_form():
    m1, s1, m2, s2 = 0.0, 1.0, 0.7, 1.4
    t = np.linspace(-12, 12, 4001)
    p, q = norm.pdf(t, m1, s1), norm.pdf(t, m2, s2)
    exact = np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    kl, js = kl_js_on_grid(p, q, eps=1e-300)
    assert kl == pytest.approx(exact, rel=1e-6)
    assert 0 < js < np.log(2)


def test_kl_of_gaussians_histogrammed_from_samples_loose(rng):
    # finite samples and 60 bins: binning bias + noise, so a loose 5 % (of the value) tolerance
    m2, s2 = 0.7, 1.4
    exact = np.log(s2) + (1 + m2**2) / (2 * s2**2) - 0.5  # ≈ 0.2414
    x, y = rng.normal(size=400_000), rng.normal(m2, s2, size=400_000)
    kl, _ = kl_js_from_samples(x, y, bins=60, range=(-5, 5))
    assert kl == pytest.approx(exact, rel=0.05)


def test_js_symmetric_bounded_and_ln2_for_disjoint(rng):
    p, q = rng.uniform(size=(8, 9)), rng.uniform(size=(8, 9))
    assert js_divergence(p, q) == pytest.approx(js_divergence(q, p), abs=1e-15)
    assert 0 <= js_divergence(p, q) <= np.log(2)
    assert kl_divergence(p, q) != pytest.approx(kl_divergence(q, p))
    disjoint_p = np.r_[np.ones(5), np.zeros(5)]
    assert js_divergence(disjoint_p, disjoint_p[::-1], eps=1e-15) == pytest.approx(np.log(2), rel=1e-6)
    assert js_divergence(p, p) == pytest.approx(0.0, abs=1e-15)


def test_kl_js_2d_samples_equal_grid_of_histograms(rng):
    x, y = rng.normal(size=(3000, 2)), rng.normal(0.3, 1, size=(3000, 2))
    edges = [np.linspace(-3, 3, 13), np.linspace(-3, 3, 9)]
    got = kl_js_from_samples(x, y, bins=edges)
    hp, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=edges)
    hq, _, _ = np.histogram2d(y[:, 0], y[:, 1], bins=edges)
    p, q = (hp + 1e-10) / (hp + 1e-10).sum(), (hq + 1e-10) / (hq + 1e-10).sum()
    assert got[0] == pytest.approx(np.sum(p * np.log(p / q)), rel=1e-10)
    m = (p + q) / 2
    assert got[1] == pytest.approx(0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m)), rel=1e-10)


def test_grid_errors_are_data_errors():
    with pytest.raises(DataError, match="different shapes"):
        kl_js_on_grid(np.ones((3, 3)), np.ones((3, 4)))
    with pytest.raises(DataError, match="non-negative"):
        kl_divergence(np.array([1.0, -1.0]), np.array([1.0, 1.0]))


def test_one_feature_fast_path_bins_like_histogramdd_including_edges(rng):
    edges = np.linspace(-2.0, 2.0, 9)
    x = np.r_[rng.normal(size=500), edges, edges[-1], -2.0000001, 2.0000001]  # values on every edge, outside
    w = rng.uniform(-0.5, 2.0, len(x))
    h, sumw2, got_edges = weighted_histogram(x, [edges], weights=w)
    ref_h, _ = np.histogramdd(x[:, None], bins=[edges], weights=w)
    ref_w2, _ = np.histogramdd(x[:, None], bins=[edges], weights=w**2)
    np.testing.assert_allclose(h, ref_h, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(sumw2, ref_w2, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(got_edges[0], edges)
    h2, _, _ = weighted_histogram(x, edges, weights=w)  # a bare edge array takes the same path
    np.testing.assert_array_equal(h2, h)


def test_density_histogram_against_direct_sums(rng):
    """Unit-area density and sumw2 variance on uneven edges, with and without under/overflow in the outer bins."""
    from hepgen.metrics.histograms import density_histogram

    x, w = rng.normal(size=500), rng.uniform(-0.2, 1.0, size=500)
    edges = np.array([-1.0, -0.2, 0.3, 1.5])
    for overflow in (False, True):
        xc = np.clip(x, edges[0], edges[-1]) if overflow else x
        idx = np.searchsorted(edges, xc, side="right") - 1
        idx[xc == edges[-1]] = len(edges) - 2
        inside = (idx >= 0) & (idx < len(edges) - 1)
        h = np.array([w[inside & (idx == b)].sum() for b in range(3)])
        s = np.array([(w[inside & (idx == b)] ** 2).sum() for b in range(3)])
        d, v = density_histogram(x, edges, w, overflow=overflow)
        np.testing.assert_allclose(d, h / (h.sum() * np.diff(edges)), rtol=1e-12)
        np.testing.assert_allclose(v, s / (h.sum() * np.diff(edges)) ** 2, rtol=1e-12)
        assert (d * np.diff(edges)).sum() == pytest.approx(1.0)
    d, v = density_histogram(x, edges, np.zeros(500))  # an empty replica: no shape, no error
    assert not d.any() and not v.any()
