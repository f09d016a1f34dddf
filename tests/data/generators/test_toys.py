"""Toy densities: shapes against closed forms, scikit-learn and scipy; the generator interface."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg, stats

from hepgen.data.generators import get_generator, toys
from hepgen.errors import ConfigError


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_moons_lie_on_the_two_half_circles_without_noise():
    x = toys.moons(2000, rng(), noise=0.0)
    outer = np.isclose(np.hypot(x[:, 0], x[:, 1]), 1.0) & (x[:, 1] >= -1e-12)
    inner = np.isclose(np.hypot(x[:, 0] - 1.0, x[:, 1] - 0.5), 1.0) & (x[:, 1] <= 0.5 + 1e-12)
    assert np.all(outer | inner)
    assert abs(outer.mean() - 0.5) < 4 * 0.5 / np.sqrt(2000)


def test_moons_match_scikit_learn_make_moons_in_distribution():
    from sklearn.datasets import make_moons

    ours = toys.moons(4000, rng(1), noise=0.05)
    theirs, _ = make_moons(4000, noise=0.05, random_state=1)
    for axis in (0, 1):
        assert stats.ks_2samp(ours[:, axis], theirs[:, axis]).pvalue > 1e-3
    # A projection mixing both coordinates, to catch a wrong joint shape.
    assert stats.ks_2samp(ours @ [0.6, 0.8], theirs @ [0.6, 0.8]).pvalue > 1e-3


def test_eight_gaussians_modes_are_balanced_and_of_the_stated_width():
    centres = toys.eight_gaussian_centres(radius=2.0)
    assert centres.shape == (8, 2)
    np.testing.assert_allclose(np.hypot(*centres.T), 2.0)
    np.testing.assert_allclose(centres[2], [0.0, 2.0], atol=1e-12)
    n = 16000
    x = toys.eight_gaussians(n, rng(), radius=2.0, std=0.02)
    mode = np.argmin(((x[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    counts = np.bincount(mode, minlength=8)
    assert stats.chisquare(counts).pvalue > 1e-3
    residual = x - centres[mode]
    # std of N(0, 0.02^2) from 2n values: relative error ~ 1/sqrt(4n) ~ 0.4 %.
    assert residual.std() == pytest.approx(0.02, rel=0.02)


def test_checkerboard_is_uniform_on_the_black_squares():
    x = toys.checkerboard(16000, rng())
    assert x.min() >= -4.0 and x.max() <= 4.0
    cell = np.floor((x + 4.0) / 2.0).astype(int)
    assert np.all(cell.sum(1) % 2 == 0)
    counts = np.bincount(cell[:, 0] * 4 + cell[:, 1], minlength=16)
    assert np.all(counts[[0, 2, 5, 7, 8, 10, 13, 15]] > 0)
    assert stats.chisquare(counts[counts > 0]).pvalue > 1e-3
    # Uniform inside a square: the position within the square is U[0, 2).
    assert stats.kstest(((x + 4.0) % 2.0).ravel() / 2.0, "uniform").pvalue > 1e-3


def test_rings_radii_and_noise():
    x = toys.rings(8000, rng(), count=4, noise=0.08)
    r = np.hypot(x[:, 0], x[:, 1])
    ring = np.rint(r).astype(int)
    assert set(np.unique(ring)) == {1, 2, 3, 4}
    assert stats.chisquare(np.bincount(ring)[1:]).pvalue > 1e-3
    assert (r - ring).std() == pytest.approx(0.08, rel=0.05)
    assert stats.kstest(np.arctan2(x[:, 1], x[:, 0]), "uniform", args=(-np.pi, 2 * np.pi)).pvalue > 1e-3


def test_spirals_follow_the_stated_curve_without_noise():
    x = toys.spirals(4000, rng(), noise=0.0)
    t = 3.0 * np.hypot(x[:, 0], x[:, 1])
    arm = (t / 3.0)[:, None] * np.stack([-np.cos(t), np.sin(t)], axis=1)
    on_plus = np.all(np.isclose(x, arm, atol=1e-9), axis=1)
    on_minus = np.all(np.isclose(x, -arm, atol=1e-9), axis=1)
    assert np.all(on_plus | on_minus)
    # t = 3 pi sqrt(u)  =>  (t / 3 pi)^2 ~ U[0, 1].
    assert stats.kstest((t / (3 * np.pi)) ** 2, "uniform").pvalue > 1e-3


@pytest.mark.parametrize("dim, rho", [(1, 0.5), (3, 0.8), (10, -0.6)])
def test_correlated_gaussian_covariance_and_entropy(dim, rho):
    cov = toys.correlated_gaussian_covariance(dim, rho)
    np.testing.assert_allclose(cov, linalg.toeplitz(rho ** np.arange(dim)))
    assert np.linalg.det(cov) == pytest.approx((1 - rho**2) ** (dim - 1), rel=1e-10)
    expected_entropy = stats.multivariate_normal(np.zeros(dim), cov).entropy()
    assert toys.gaussian_entropy(cov) == pytest.approx(expected_entropy, rel=1e-12)

    n = 40000
    x = toys.correlated_gaussian(n, rng(dim), dim, rho)
    sample_cov = np.atleast_2d(np.cov(x, rowvar=False))
    # Var of a sample covariance entry: (Sigma_ii Sigma_jj + Sigma_ij^2) / n  ->  5 sigma band.
    sigma = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert np.all(np.abs(sample_cov - cov) < 5 * sigma)
    assert np.all(np.abs(x.mean(0)) < 5 / np.sqrt(n))


def test_gaussian_mixture_log_prob_matches_scipy_and_moments():
    means = toys.gaussian_mixture_means(dim=3, components=5, spread=4.0, layout_seed=7)
    assert means.shape == (5, 3) and np.abs(means).max() <= 4.0
    x = toys.gaussian_mixture(30000, rng(), means, std=0.5)
    pdf = np.mean([stats.multivariate_normal(m, 0.25 * np.eye(3)).pdf(x[:50]) for m in means], axis=0)
    np.testing.assert_allclose(toys.gaussian_mixture_log_prob(x[:50], means, 0.5), np.log(pdf), rtol=1e-10)

    # Mixture moments: mean = average of means; cov = std^2 I + (biased) covariance of the means.
    expected_cov = 0.25 * np.eye(3) + np.cov(means, rowvar=False, bias=True)
    np.testing.assert_allclose(x.mean(0), means.mean(0), atol=5 * np.sqrt(np.diag(expected_cov).max() / 30000))
    np.testing.assert_allclose(np.cov(x, rowvar=False), expected_cov, atol=0.15)


def test_gaussian_mixture_density_integrates_to_one_in_1d():
    means = toys.gaussian_mixture_means(dim=1, components=3, spread=2.0)
    grid = np.linspace(-8, 8, 20001)[:, None]
    integral = np.trapezoid(np.exp(toys.gaussian_mixture_log_prob(grid, means, 0.3)), grid[:, 0])
    assert integral == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("name", toys.NAMES)
def test_generate_is_deterministic_by_seed_and_has_the_stated_shape(name):
    options = {"name": name, "dim": 4} if name in ("correlated-gaussian", "gaussian-mixture") else {"name": name}
    first = toys.generate(500, seed=3, **options)
    again = toys.generate(500, seed=3, **options)
    other = toys.generate(500, seed=4, **options)
    dim = options.get("dim", 2)
    assert first["x"].shape == (500, dim) and first["x"].dtype == np.float64
    assert np.all(np.isfinite(first["x"]))
    np.testing.assert_array_equal(first["x"], again["x"])
    assert not np.array_equal(first["x"], other["x"])
    assert toys.columns(**options) == {"x": [f"x{i}" for i in range(dim)]}


def test_generate_returns_the_covariance_and_the_mixture_means():
    out = toys.generate(10, name="correlated-gaussian", dim=3, correlation=0.5)
    np.testing.assert_allclose(out["cov"], linalg.toeplitz([1.0, 0.5, 0.25]))
    a = toys.generate(10, seed=1, name="gaussian-mixture", dim=2)
    b = toys.generate(10, seed=2, name="gaussian-mixture", dim=2)
    np.testing.assert_array_equal(a["means"], b["means"])  # one density whatever the seed
    assert a["means"].shape == (8, 2)


def test_generate_converts_cli_strings():
    out = toys.generate(20, seed=0, name="correlated-gaussian", dim="5", correlation="0.3")
    assert out["x"].shape == (20, 5)
    np.testing.assert_allclose(out["cov"][0, 1], 0.3)


@pytest.mark.parametrize(
    "options, words",
    [
        ({"nmae": "moons"}, ["'nmae'", "name", "dim"]),
        ({"name": "banana"}, ["'name'", "moons", "eight-gaussians"]),
        ({"name": "moons", "dim": 3}, ["'dim'", "noise"]),
        ({"name": "correlated-gaussian", "dim": "three"}, ["'dim'", "int"]),
        ({"name": "correlated-gaussian", "correlation": 1.0}, ["'correlation'"]),
        ({"name": "gaussian-mixture", "components": 0}, ["'components'"]),
    ],
)
def test_invalid_options_raise_config_error_naming_the_option(options, words):
    with pytest.raises(ConfigError) as error:
        toys.generate(10, **options)
    for word in words:
        assert word in str(error.value)


def test_registry_finds_the_module_and_options_table_is_well_formed():
    assert get_generator("toys") is toys
    for key, option in toys.OPTIONS.items():
        assert isinstance(option.type, type) and option.help
        assert option.default is None or isinstance(option.default, option.type)
    for name in toys.NAMES:
        assert name in toys.__doc__
