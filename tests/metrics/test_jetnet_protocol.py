"""``protocol="jetnet"`` reproduces jetnet 0.2.5's fpd and kpd number for number, and the default
(hepgen) protocol stays statistically compatible with it.

jetnet is in the ``test`` extra; the ``gen_metrics`` fixture (tests/metrics/conftest.py) loads its
``gen_metrics`` module even where parts of jetnet that fpd/kpd do not use cannot be imported.
"""

import numpy as np
import pytest

from hepgen.metrics import fpd, kpd


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(11)
    real = rng.normal(size=(3000, 3)) * np.array([1.0, 4.0, 0.3]) + np.array([0.0, 2.0, 1.0])
    gen = rng.normal(size=(2000, 3)) * np.array([1.1, 4.0, 0.3]) + np.array([0.15, 2.0, 1.0])
    return real, gen


def test_fpd_jetnet_protocol_equals_jetnet_even_with_batches_larger_than_the_samples(gen_metrics, features):
    real, gen = features
    kw = dict(min_samples=1500, max_samples=4000, num_batches=4, num_points=3, seed=5)  # 4000 > both samples
    theirs = gen_metrics.fpd(real, gen, **kw)
    ours = fpd(real, gen, protocol="jetnet", **kw)
    assert ours[0] == pytest.approx(float(theirs[0]), rel=1e-6, abs=1e-12)  # scipy sqrtm vs eigh: ~1e-10
    assert ours[1] == pytest.approx(float(theirs[1]), rel=1e-6, abs=1e-12)
    hepgen = fpd(real, gen, **kw)  # clipped batch sizes: another estimate of the same N → ∞ value
    assert hepgen[0] != ours[0]
    assert abs(hepgen[0] - ours[0]) < 5 * (hepgen[1] + ours[1]) + 2e-3


def test_kpd_jetnet_protocol_equals_jetnet(gen_metrics, features):
    real, gen = features
    for seed in (0, 42):
        theirs = gen_metrics.kpd(real, gen, num_batches=6, batch_size=700, seed=seed)
        ours = kpd(real, gen, num_batches=6, batch_size=700, seed=seed, protocol="jetnet")
        assert ours[0] == pytest.approx(float(theirs[0]), rel=1e-7, abs=1e-12)
        assert ours[1] == pytest.approx(float(theirs[1]), rel=1e-7, abs=1e-12)
    default = kpd(real, gen, num_batches=6, batch_size=700, seed=0)
    assert abs(default[0] - float(theirs[0])) < 5 * (default[1] + float(theirs[1])) + 1e-6


def test_jetnet_defaults_are_jetnets():
    """The jetnet protocol's defaults are jetnet's own signature defaults (checked without jetnet)."""
    import inspect

    for fn, expected in ((fpd, dict(min_samples=20_000, max_samples=50_000, num_batches=20, num_points=10, seed=42)),
                         (kpd, dict(num_batches=10, batch_size=5_000, seed=42))):
        params = inspect.signature(fn).parameters
        assert {k: params[k].default for k in expected} == expected
        assert params["protocol"].default == "hepgen"
