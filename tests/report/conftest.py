"""The test machine's cores are shared: run BLAS/OpenMP (scikit-learn's boosting) single-threaded."""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def _single_thread():
    with threadpool_limits(1):
        yield
