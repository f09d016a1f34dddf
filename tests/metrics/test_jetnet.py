"""Cross-check of W1, FPD and KPD against JetNet's own implementation (jetnet.evaluation) on the same inputs.

jetnet 0.2.5 is in the ``test`` extra (the ``gen_metrics`` fixture of tests/metrics/conftest.py loads it). The
tests are written against its ``gen_metrics`` module (fpd/kpd with ``np.random.default_rng``, a module-level
``rng`` for w1p).
"""

import numpy as np
import pytest
from scipy.stats import iqr

from hepgen.metrics import fpd, kpd, mmd2_polynomial, wasserstein_per_feature


@pytest.fixture
def features():
    rng = np.random.default_rng(17)
    real = rng.normal(size=(3000, 4)) * np.array([1.0, 5.0, 0.2, 2.0]) + np.array([0.0, 3.0, 1.0, -1.0])
    gen = rng.normal(size=(2500, 4)) * np.array([1.1, 5.0, 0.25, 2.0]) + np.array([0.1, 3.0, 1.0, -1.2])
    return real, gen


def test_fpd_equals_jetnet_with_the_same_seed(gen_metrics, features):
    real, gen = features
    kw = dict(min_samples=500, max_samples=1500, num_batches=5, num_points=4, seed=7)
    ours = fpd(real, gen, **kw)
    theirs = gen_metrics.fpd(real, gen, normalise=True, **kw)
    assert ours[0] == pytest.approx(float(theirs[0]), rel=1e-6, abs=1e-10)
    assert ours[1] == pytest.approx(float(theirs[1]), rel=1e-6, abs=1e-10)


def test_kpd_batches_equal_jetnet_on_jetnets_batches(gen_metrics, features):
    """JetNet draws each batch with replacement from default_rng(seed + 1000 i); hepgen draws without
    replacement (unbiased batches). On JetNet's own batches hepgen's MMD² and summary agree."""
    real, gen = features
    seed, num_batches, batch_size = 3, 6, 400
    theirs = gen_metrics.kpd(real, gen, num_batches=num_batches, batch_size=batch_size, seed=seed)
    scale = np.abs(real).max(axis=0)
    x, y = real / scale, gen / scale
    vals = []
    for i in range(num_batches):
        r = np.random.default_rng(seed + i * 1000)
        a, b = r.choice(len(x), size=batch_size), r.choice(len(y), size=batch_size)
        vals.append(mmd2_polynomial(x[a], y[b], degree=4))
    assert np.median(vals) == pytest.approx(float(theirs[0]), rel=1e-6, abs=1e-12)
    assert iqr(vals, rng=(16.275, 83.725)) / 2 == pytest.approx(float(theirs[1]), rel=1e-6, abs=1e-12)
    # and hepgen's own KPD (other batches) is statistically compatible with JetNet's
    value, error = kpd(real, gen, num_batches=num_batches, batch_size=batch_size, seed=seed)
    assert abs(value - float(theirs[0])) < 5 * (error + float(theirs[1])) + 1e-6


def test_w1_of_particle_features_equals_jetnet_w1p(gen_metrics, monkeypatch):
    assert hasattr(gen_metrics, "rng"), "jetnet 0.2.5 draws w1p's batches from a module-level rng"
    rng = np.random.default_rng(2)
    jets1, jets2 = rng.normal(size=(300, 10, 3)), rng.normal(0.1, 1.1, size=(250, 10, 3))
    mask1, mask2 = rng.random((300, 10)) < 0.8, rng.random((250, 10)) < 0.7
    jets1[~mask1], jets2[~mask2] = 0.0, 0.0
    monkeypatch.setattr(gen_metrics, "rng", np.random.default_rng(9))
    theirs, _ = gen_metrics.w1p(jets1, jets2, mask1=mask1, mask2=mask2, num_eval_samples=1000, num_batches=1)
    r = np.random.default_rng(9)
    a, b = r.choice(300, size=1000), r.choice(250, size=1000)
    ours = wasserstein_per_feature(jets1[a][mask1[a]], jets2[b][mask2[b]])
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-12)
