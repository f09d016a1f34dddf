"""The test machine's cores are shared: run BLAS/OpenMP (scikit-learn's boosting) single-threaded. And
jetnet's reference metrics for the cross-checks (the ``test`` extra installs jetnet 0.2.5)."""

import importlib.util
import sys
import types

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def _single_thread():
    with threadpool_limits(1):
        yield


def _jetnet_gen_metrics() -> types.ModuleType:
    """jetnet 0.2.5's ``jetnet.evaluation.gen_metrics``, the reference for fpd, kpd and w1p.

    Its plain import can fail for reasons those three do not touch: the package ``__init__`` imports coffea
    and requests (for its datasets), and gen_metrics imports ``energyflow.emd``, whose ``wasserstein``
    extension (1.0.1, the last release that allows NumPy 2) is compiled against NumPy 1 and fails under
    NumPy 2. Then the installed gen_metrics.py is loaded with ``jetnet.datasets``, ``jetnet.utils`` and
    ``energyflow.emd`` stubbed; the code under comparison is jetnet's own. A missing jetnet is an error
    (install the ``test`` extra), not a skip.
    """
    try:
        from jetnet.evaluation import gen_metrics

        return gen_metrics
    except (ImportError, AttributeError):  # AttributeError: "_ARRAY_API not found" (NumPy 1 extension)
        pass
    spec = importlib.util.find_spec("jetnet")
    assert spec is not None and spec.submodule_search_locations, "jetnet is not installed: pip install -e '.[test]'"
    root = list(spec.submodule_search_locations)[0]
    names = ("jetnet", "jetnet.datasets", "jetnet.utils", "energyflow", "energyflow.emd")
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in ("jetnet", "energyflow")}
    stubs = {name: types.ModuleType(name) for name in names}
    stubs["jetnet"].__path__ = [root]
    stubs["jetnet.datasets"].JetNet = object
    stubs["energyflow"].__path__ = []

    def emds(*args, **kwargs):
        raise NotImplementedError("energyflow.emd is stubbed in the tests (its wasserstein extension needs NumPy 1)")

    stubs["energyflow.emd"].emds = emds
    for name in saved:
        sys.modules.pop(name, None)
    sys.modules.update(stubs)
    try:
        loader = importlib.util.spec_from_file_location("jetnet.evaluation.gen_metrics",
                                                        f"{root}/evaluation/gen_metrics.py")
        module = importlib.util.module_from_spec(loader)
        sys.modules[loader.name] = module
        loader.loader.exec_module(module)
    finally:
        for name in [*stubs, "jetnet.evaluation.gen_metrics"]:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
    return module


@pytest.fixture(scope="session")
def gen_metrics() -> types.ModuleType:
    return _jetnet_gen_metrics()
