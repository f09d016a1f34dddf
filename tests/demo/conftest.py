"""Demo and figure tests run single-threaded (restored afterwards): fixed-seed training is then
reproducible and cheap on a shared machine."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
