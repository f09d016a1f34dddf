"""``protocol="jetnet"`` reproduces jetnet 0.2.5's fpd and kpd number for number, and the default
(hepgen) protocol stays statistically compatible with it.

jetnet is an optional ``bench`` dependency. Its package ``__init__`` imports coffea and requests (for
its datasets), which fpd/kpd do not use: when ``import jetnet`` fails for that reason alone, the
``gen_metrics`` module is loaded from the installed jetnet with those two sub-packages stubbed.
The tests are skipped where jetnet (or numba/energyflow, which gen_metrics imports) is missing.
"""

import importlib.util
import sys
import types

import numpy as np
import pytest

from hepgen.metrics import fpd, kpd


def _jetnet_gen_metrics():
    try:
        from jetnet.evaluation import gen_metrics

        return gen_metrics
    except ImportError:
        pass
    spec = importlib.util.find_spec("jetnet")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("jetnet is not installed")
    root = list(spec.submodule_search_locations)[0]
    saved = {k: v for k, v in sys.modules.items() if k == "jetnet" or k.startswith("jetnet.")}
    package = types.ModuleType("jetnet")
    package.__path__ = [root]
    datasets = types.ModuleType("jetnet.datasets")
    datasets.JetNet = object
    utils = types.ModuleType("jetnet.utils")
    package.datasets, package.utils = datasets, utils
    stubs = {"jetnet": package, "jetnet.datasets": datasets, "jetnet.utils": utils}
    sys.modules.update(stubs)
    try:
        loader = importlib.util.spec_from_file_location("jetnet.evaluation.gen_metrics",
                                                        f"{root}/evaluation/gen_metrics.py")
        module = importlib.util.module_from_spec(loader)
        sys.modules[loader.name] = module
        loader.loader.exec_module(module)
    except ImportError as exc:
        pytest.skip(f"jetnet's gen_metrics cannot be imported here: {exc}")
    finally:
        for k in [*stubs, "jetnet.evaluation.gen_metrics"]:
            sys.modules.pop(k, None)
        sys.modules.update(saved)
    return module


@pytest.fixture(scope="module")
def gen_metrics():
    return _jetnet_gen_metrics()


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
