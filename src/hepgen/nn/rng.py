"""Seeded draws that leave the caller's torch RNG as it was.

Library calls never reseed the global RNG behind the user's back: a call that promises reproducible draws
(``seed=``) runs them inside :func:`seeded`, which forks torch's RNG (the CPU's, and the GPU's the draws
happen on), seeds the fork and restores the caller's state afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def seeded(seed: int, device: torch.device | str | None = "cpu") -> Iterator[None]:
    """Run the block on torch's RNG seeded with ``seed`` (the CPU's, and ``device``'s when it is a GPU), then
    restore the RNG state the caller had: ``with seeded(3, model.device): x = model.sample(n)``."""
    device = torch.device(device if device is not None else "cpu")
    cuda = device.type == "cuda"
    index = (device.index if device.index is not None else torch.cuda.current_device()) if cuda else None
    with torch.random.fork_rng(devices=[index] if cuda else []):
        torch.random.default_generator.manual_seed(int(seed))
        if cuda:
            torch.cuda.default_generators[index].manual_seed(int(seed))
        yield


__all__ = ["seeded"]
