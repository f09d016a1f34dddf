"""Autoencoder tests run single-threaded (restored afterwards): fixed-seed training is then cheap on 2 cores."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
