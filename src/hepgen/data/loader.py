"""Batches for the training engine, from memory or streamed from files larger than memory.

Events travel together: ``x`` (N, *event_shape), per-event weights ``w`` (N,), an optional
``context`` (N, c) and optional training ``labels`` (N, k) are cut by the same indices, so they follow their events through
shuffling, validation splits, streaming and DDP sharding. A multi-array event (calorimeter layers
of different shapes, constituents plus mask) has ``x`` a dict ``{name: (N, *shape_name)}``: every
array is cut by the same indices too.

* In memory, the order of an epoch is torch's :class:`~torch.utils.data.DistributedSampler`
  (seeded with ``seed``, ``set_epoch(epoch)``): with one process it is a plain seeded shuffle; with
  K processes rank r sees every K-th index of the same permutation, so K ranks with batch B/K see
  exactly the events of the single-process batch B.
* Streamed, the rows are cut into chunks; each epoch shuffles the chunk order (seeded by
  ``seed + epoch``), deals chunks to ranks round-robin and shuffles rows within a chunk. Only one
  chunk per source is in memory at a time, so peak memory does not grow with the file.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DistributedSampler


def tree_map(fn: Any, value: Any) -> Any:
    """``fn`` applied to every leaf of a nest of dicts (the arrays of a multi-array event)."""
    if isinstance(value, dict):
        return {k: tree_map(fn, v) for k, v in value.items()}
    return fn(value)


def tree_leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in tree_leaves(v)]
    return [value]


def tree_concat(a: Any, b: Any) -> Any:
    if isinstance(a, dict):
        return {k: tree_concat(a[k], b[k]) for k in a}
    return np.concatenate([a, b])


def _rows(source: Any, start: int, stop: int) -> Any:
    if isinstance(source, dict):
        return {k: _rows(v, start, stop) for k, v in source.items()}
    if hasattr(source, "read_rows"):
        return source.read_rows(start, stop)
    return np.asarray(source[start:stop])


def _length(source: Any) -> int:
    return len(tree_leaves(source)[0])


class RowRange:
    """A view of rows [start, stop) of a row source (array, tensor, or ``read_rows`` reader)."""

    def __init__(self, source: Any, start: int, stop: int):
        self.source, self.start, self.stop = source, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        return _rows(self.source, self.start + start, self.start + min(stop, len(self)))


@dataclass
class Events:
    """Events with what travels with them.

    x: (N, *event_shape) array/tensor or a row reader with ``read_rows``; w: (N,) or None;
    context: (N, c) or None; labels: (N, k) or None — columns only training reads (a tagger's label
    and nuisance), never preprocessed and not part of what a fitted model takes.
    """

    x: Any
    w: Any = None
    context: Any = None
    labels: Any = None
    #: column names of ``x`` and ``context`` (``{"x": [...], "context": [...]}``) and where they were read from
    names: dict = field(default_factory=dict)
    spec: Any = None

    def __len__(self) -> int:
        return _length(self.x)

    @property
    def event_shape(self) -> Any:
        """Shape of one event: a tuple, or {name: tuple} for events of several arrays."""
        def shape(a: Any) -> tuple[int, ...]:
            return tuple(a.event_shape) if hasattr(a, "event_shape") else tuple(np.shape(a)[1:])

        return {k: shape(v) for k, v in self.x.items()} if isinstance(self.x, dict) else shape(self.x)

    @property
    def context_size(self) -> int:
        if self.context is None:
            return 0
        shape = self.context.event_shape if hasattr(self.context, "event_shape") else np.shape(self.context)[1:]
        return int(np.prod(shape))

    @property
    def targets(self) -> Any:
        """Deprecated name of :attr:`labels`."""
        warnings.warn("Events.targets is now Events.labels", DeprecationWarning, stacklevel=2)
        return self.labels

    @property
    def multi(self) -> bool:
        """Whether an event is several arrays (``x`` a dict)."""
        return isinstance(self.x, dict)

    @property
    def in_memory(self) -> bool:
        return not any(hasattr(leaf, "read_rows") for s in self._parts() if s is not None
                       for leaf in tree_leaves(s))

    def _parts(self) -> tuple[Any, Any, Any, Any]:
        return self.x, self.w, self.context, self.labels

    def rows(self, start: int, stop: int) -> dict[str, Any]:
        out = {"x": _rows(self.x, start, stop)}
        out["w"] = (_rows(self.w, start, stop) if self.w is not None
                    else np.ones(_length(out["x"]), dtype=np.float64))
        if self.context is not None:
            out["context"] = _rows(self.context, start, stop)
        if self.labels is not None:
            out["labels"] = _rows(self.labels, start, stop)
        return out

    def slice(self, start: int, stop: int) -> Events:
        """The events in rows [start, stop), without reading them."""
        def cut(s: Any) -> Any:
            return RowRange(s, start, stop) if hasattr(s, "read_rows") else s[start:stop]

        return Events(*(None if s is None else tree_map(cut, s) for s in self._parts()))

    def take(self, index: np.ndarray) -> Events:
        """In-memory events at ``index`` (for seeded random validation splits)."""
        return Events(*(None if s is None else tree_map(lambda a: a[index], s) for s in self._parts()))

    def chunks(self, chunk_size: int) -> Iterator[Any]:
        """The event features ``x`` chunk by chunk, in file order (fits preprocessing on streams)."""
        for start in range(0, len(self), chunk_size):
            yield _rows(self.x, start, min(start + chunk_size, len(self)))


def epoch_order(n: int, epoch: int, seed: int, rank: int = 0, world: int = 1, shuffle: bool = True) -> torch.Tensor:
    """This rank's event indices for ``epoch``: torch's DistributedSampler, set to the epoch."""
    sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=shuffle, seed=seed)
    sampler.set_epoch(epoch)
    return torch.tensor(list(iter(sampler)), dtype=torch.long)


def memory_batches(data: dict[str, Any], batch_size: int, epoch: int, seed: int,
                   rank: int = 0, world: int = 1, shuffle: bool = True) -> Iterator[dict[str, Any]]:
    """Batches of this rank's share; ``batch_size`` is per rank. data: name -> (N, ...) tensors (or dicts of them)."""
    n = _length(data["x"])
    order = epoch_order(n, epoch, seed, rank, world, shuffle)
    for i in range(0, len(order), batch_size):
        index = order[i:i + batch_size]
        yield tree_map(lambda v: v[index], data)


def memory_batch_count(n: int, batch_size: int, world: int = 1) -> int:
    return math.ceil(math.ceil(n / world) / batch_size)


def _chunk_bounds(n: int, chunk_size: int) -> list[tuple[int, int]]:
    return [(s, min(s + chunk_size, n)) for s in range(0, n, chunk_size)]


def _rank_chunks(n: int, chunk_size: int, epoch: int, seed: int, rank: int, world: int,
                 shuffle: bool) -> list[list[tuple[int, int]]]:
    bounds = _chunk_bounds(n, chunk_size)
    if shuffle:
        g = torch.Generator().manual_seed(seed + epoch)
        bounds = [bounds[i] for i in torch.randperm(len(bounds), generator=g).tolist()]
    return [bounds[r::world] for r in range(world)]


def stream_batch_count(n: int, batch_size: int, chunk_size: int, world: int = 1) -> int:
    """Batches per rank in a streamed epoch, equal on every rank so that DDP steps in lockstep.

    One process sees every row. With K ranks each rank stops after the batches that the rank dealt
    the fewest rows can fill (the short last chunk may land on any rank), so a few rows per epoch —
    different ones each epoch — are skipped.
    """
    if world == 1:
        return math.ceil(n / batch_size)
    n_chunks = math.ceil(n / chunk_size)
    last = n - (n_chunks - 1) * chunk_size
    fewest_rows = (n_chunks // world - 1) * chunk_size + last
    return max(1, fewest_rows // batch_size)


def stream_batches(events: Events, batch_size: int, chunk_size: int, epoch: int, seed: int,
                   rank: int = 0, world: int = 1, shuffle: bool = True) -> Iterator[dict[str, np.ndarray]]:
    """Batches read chunk by chunk; rows are shuffled within chunks, chunks across the epoch."""
    chunks = _rank_chunks(len(events), chunk_size, epoch, seed, rank, world, shuffle)[rank]
    limit = stream_batch_count(len(events), batch_size, chunk_size, world)
    g = torch.Generator().manual_seed(seed + epoch * 7919 + rank)
    buffer: dict[str, np.ndarray] | None = None
    produced = 0
    for start, stop in chunks:
        block = events.rows(start, stop)
        if shuffle:
            perm = torch.randperm(stop - start, generator=g).numpy()
            block = tree_map(lambda v: v[perm], block)
        if buffer is not None:
            block = tree_concat(buffer, block)
        size = _length(block["x"])
        full = size - size % batch_size
        for i in range(0, full, batch_size):
            yield tree_map(lambda v: v[i:i + batch_size], block)
            produced += 1
            if produced == limit:
                return
        buffer = tree_map(lambda v: v[full:], block) if full < size else None
    if buffer is not None and produced < limit:
        yield buffer
