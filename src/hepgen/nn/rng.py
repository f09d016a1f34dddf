"""Seeded draws that leave the caller's torch RNG as it was.

Library calls never reseed the global RNG behind the user's back: a call that promises reproducible draws
(``seed=``) runs them inside :func:`seeded`, which forks torch's RNG (the CPU's, and the GPU's the draws
happen on), seeds the fork and restores the caller's state afterwards. Nor do they move Python's ``random``
state as a side effect: a third-party module that draws from it when first imported (``rich.style`` takes
``random.getrandbits(24)``, pulled in by ``sklearn.feature_selection``) is imported inside
:func:`python_random_kept`.
"""

from __future__ import annotations

from collections.abc import Iterator
import random
from contextlib import contextmanager

import torch


@contextmanager
def seeded(seed: int, device: torch.device | str | None = None) -> Iterator[None]:
    """Run the block on torch's RNG seeded with ``seed``, then restore the RNG state the caller had:
    ``with seeded(3, model.device): x = model.sample(n)``. Forked and seeded: the CPU's generator and
    ``device``'s when it is a GPU; ``device=None``: every visible GPU's as well."""
    if device is None:
        indices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    else:
        device = torch.device(device)
        indices = ([device.index if device.index is not None else torch.cuda.current_device()]
                   if device.type == "cuda" else [])
    with torch.random.fork_rng(devices=indices):
        torch.random.default_generator.manual_seed(int(seed))
        for index in indices:
            torch.cuda.default_generators[index].manual_seed(int(seed))
        yield


@contextmanager
def python_random_kept() -> Iterator[None]:
    """Restore Python's ``random`` state after the block (for lazy imports of modules that draw at import)."""
    state = random.getstate()
    try:
        yield
    finally:
        random.setstate(state)


__all__ = ["python_random_kept", "seeded"]
