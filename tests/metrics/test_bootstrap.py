"""The generic bootstrap against the analytic standard error of a mean."""

import numpy as np
import pytest

from hepgen.errors import DataError
from hepgen.metrics import bootstrap, wasserstein_per_feature


def test_bootstrap_std_of_mean_matches_sigma_over_sqrt_n():
    x = np.random.default_rng(0).normal(0, 2.0, size=2000)
    value, std = bootstrap(np.mean, x, n=400, seed=1)
    assert value == np.mean(x)  # the value is the metric on the original data
    assert std == pytest.approx(2.0 / np.sqrt(2000), rel=0.1)


def test_bootstrap_groups_keep_samples_and_weights_paired():
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=500), rng.uniform(0.5, 1.5, size=500)

    def weighted_mean(a, wa):
        return np.average(a, weights=wa)

    value, std = bootstrap(weighted_mean, x, w, n=300, seed=0, groups=(0, 0))
    assert value == pytest.approx(weighted_mean(x, w))
    # delta-method standard error of a ratio estimator
    se = np.sqrt(np.sum(w**2 * (x - value) ** 2)) / w.sum()
    assert std == pytest.approx(se, rel=0.15)


def test_bootstrap_array_metric_and_none_passthrough():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(300, 2)), rng.normal(size=(300, 2))
    value, std = bootstrap(wasserstein_per_feature, x, y, None, None, n=30, seed=0)
    assert value.shape == std.shape == (2,)
    np.testing.assert_allclose(value, wasserstein_per_feature(x, y))
    assert (std > 0).all()


def test_bootstrap_rejects_mismatched_group_lengths():
    with pytest.raises(DataError, match="different lengths"):
        bootstrap(lambda a, b: 0.0, np.ones(3), np.ones(4), groups=(0, 0))


def test_poisson_weights_are_poisson_one_and_seeded():
    """Poisson(1) replica factors: mean 1, variance 1, P(0) = 1/e; the same seed the same factors; a Generator's
    stream continues; the weighted bootstrap of a mean gives sigma / sqrt(n)."""
    from hepgen.metrics.bootstrap import poisson_weights

    f = poisson_weights(1000, 200, seed=4)
    assert f.shape == (200, 1000)
    assert f.mean() == pytest.approx(1.0, abs=0.01) and f.var() == pytest.approx(1.0, abs=0.02)
    assert (f == 0).mean() == pytest.approx(np.exp(-1), abs=0.005)
    np.testing.assert_array_equal(f, poisson_weights(1000, 200, seed=4))
    rng = np.random.default_rng(4)
    a, b = poisson_weights(1000, 100, rng), poisson_weights(1000, 100, rng)
    np.testing.assert_array_equal(np.concatenate([a, b]), f)
    x = np.random.default_rng(0).normal(0, 2.0, size=1000)
    means = (f * x).sum(axis=1) / f.sum(axis=1)
    assert means.std(ddof=1) == pytest.approx(2.0 / np.sqrt(1000), rel=0.15)
    assert poisson_weights(5, 0).shape == (0, 5)
