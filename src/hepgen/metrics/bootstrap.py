"""Bootstrap uncertainty of any metric computed from one or more per-event arrays, and the Poisson(1)
replica weights of a weighted sample (:func:`poisson_weights`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from hepgen.errors import ConfigError, DataError

#: fewer events than this in a resampled sample and the bootstrap says nothing about the spread of a metric
#: (every resample of one event is that event): :func:`bootstrap` then gives an undefined (NaN) error
MIN_EVENTS = 10


def bootstrap(
    metric: Callable[..., float | np.ndarray],
    *arrays: np.ndarray | None,
    n: int = 100,
    seed: int = 0,
    groups: Sequence[int] | None = None,
    min_events: int = MIN_EVENTS,
) -> tuple[float | np.ndarray, float | np.ndarray]:
    """``(metric(*arrays), std over n resamples)``: each resample draws events with replacement.

    ``arrays`` are indexed along axis 0; ``None`` entries are passed through unchanged. Arrays in the
    same group are resampled with the same indices (so a sample and its weights stay paired); by default
    each array is its own group, e.g. ``bootstrap(w1, x, y)``. For weights use
    ``bootstrap(f, x, y, wx, wy, groups=(0, 1, 0, 1))``. Scalar or array-valued metrics are supported;
    the std (ddof=1) has the metric's shape. When a group holds fewer than ``min_events`` events
    (:data:`MIN_EVENTS`) the std is NaN: undefined, not the small number a few resamples would give.
    """
    if n < 2:
        raise ConfigError(f"bootstrap: n must be at least 2, got {n}.")
    groups = tuple(range(len(arrays))) if groups is None else tuple(groups)
    if len(groups) != len(arrays):
        raise DataError(f"bootstrap: {len(arrays)} arrays but {len(groups)} group labels.")
    sizes: dict[int, int] = {}
    for g, a in zip(groups, arrays, strict=True):
        if a is None:
            continue
        length = len(a)
        if sizes.setdefault(g, length) != length:
            raise DataError(f"bootstrap: arrays of group {g} have different lengths ({sizes[g]} and {length}).")
    value = metric(*arrays)
    if sizes and min(sizes.values()) < min_events:
        std = np.full(np.shape(value), np.nan)
        return (float(value), float("nan")) if np.ndim(value) == 0 else (np.asarray(value, dtype=float), std)
    rng = np.random.default_rng(seed)
    replicas = []
    for _ in range(n):
        idx = {g: rng.integers(0, size, size) for g, size in sizes.items()}
        resampled = [None if a is None else np.asarray(a)[idx[g]] for g, a in zip(groups, arrays, strict=True)]
        replicas.append(np.asarray(metric(*resampled), dtype=float))
    std = np.std(np.stack(replicas), axis=0, ddof=1)
    if np.ndim(value) == 0:
        return float(value), float(std)
    return np.asarray(value, dtype=float), std


def poisson_weights(n: int, replicas: int, seed: int | np.random.Generator = 0) -> np.ndarray:
    """``(replicas, n)`` Poisson(1) factors, the bootstrap of a weighted sample: replica b counts event i
    k_bi ~ Poisson(1) times (multiply the event weights by row b). For large n this is :func:`bootstrap`'s
    drawing with replacement, with independent counts per event, so samples of different lengths (data and
    simulation, one event's truth and reco rows) are resampled consistently by their own factors.
    ``seed``: an integer or a numpy Generator (its stream continues)."""
    if int(replicas) != replicas or replicas < 0:
        raise ConfigError(f"poisson_weights: replicas must be a non-negative integer, got {replicas!r}.")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return rng.poisson(1.0, (int(replicas), int(n))).astype(np.float64)
