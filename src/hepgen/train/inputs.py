"""The training inputs of one fit: the events, their validation share, further streams, and their batches.

:class:`Inputs` opens what :meth:`~hepgen.train.engine.Engine.fit` is given once, through the data layer
(:func:`~hepgen.data.sources.load_events`), holds out the validation events, fits the preprocessing, puts
in-memory events on the device and deals the batches of each epoch: seeded shuffles, per-rank shards under
DDP, streamed chunks for file data larger than the memory limit, and beside every batch of the main events
one batch of each further stream (:class:`StreamData`). A data-free model gets batches of weights only.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hepgen.data.loader import (
    Events,
    memory_batch_count,
    memory_batches,
    stream_batch_count,
    stream_batches,
    tree_leaves,
    tree_map,
)
from hepgen.data.sources import is_column_name, labels_for, load_events, read_whole
from hepgen.errors import ConfigError, DataError
from hepgen.train.distributed import DistInfo
from hepgen.train.protocol import Stream, Trainable
from hepgen.train.settings import Settings


def describe(value: Any) -> Any:
    """A data argument as config.yaml records it: the spec or column names, or the array's shape."""
    if value is None:
        return None
    if isinstance(value, Events):  # opened by the caller: where it came from
        return describe(value.spec) if value.spec is not None else f"events of shape {value.event_shape}"
    if hasattr(value, "describe"):  # a DataSpec: the spec with its column selection
        return value.describe()
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {k: describe(v) for k, v in value.items()}
    shape = getattr(value, "shape", None)
    return f"array of shape {tuple(shape)}" if shape is not None else type(value).__name__


def renamed_labels(labels: Any, targets: Any, prefix: str = "", stacklevel: int = 3) -> Any:
    """``labels`` (or ``val_labels``), or the value of their deprecated spelling ``targets=``
    (``val_targets=``), with a DeprecationWarning; a ConfigError when both are given."""
    if targets is None:
        return labels
    new, old = f"{prefix}labels", f"{prefix}targets"
    warnings.warn(f"{old}= is now {new}= (the training columns a tagger reads beside the features; "
                  "the integrands and actions keep the word targets)", DeprecationWarning, stacklevel=stacklevel)
    if labels is not None:
        raise ConfigError(f"give {new}= or the deprecated {old}=, not both")
    return targets


def _check_context(model: Trainable, events: Events, names: dict[str, list[str]], x: Any, context: Any) -> None:
    """A model's own check of its context values (``check_context(values (N, c), names, where)``, e.g. a shower
    model's positive incident energies), before the split so that rows are the file's; before any training."""
    check = getattr(model, "check_context", None)
    if check is None or events.context is None:
        return
    own_file = isinstance(context, (str, os.PathLike)) and not is_column_name(context)
    described = describe(context if own_file else x)
    if isinstance(described, Mapping):
        described = described.get("spec")
    check(read_whole(events.context), names.get("context"),
          described if isinstance(described, str) else "the context given")


def _check_events(model: Trainable, events: Events, x: Any) -> None:
    """A model's own check of its event values (``check_events(values (n, *event_shape), first_row, where)``, e.g. a
    PixelCNN's non-negative intensities), chunk by chunk in the file's rows; before any training."""
    check = getattr(model, "check_events", None)
    if check is None or events is None:
        return
    described = describe(x)
    if isinstance(described, Mapping):
        described = described.get("spec")
    where = described if isinstance(described, str) else "the data"
    for start in range(0, len(events), 65536):
        check(events.rows(start, min(start + 65536, len(events)))["x"], start, where)


class _ShapeOnly:
    """What load_events checks a stream's events against: an event shape and a context size."""

    cli_name = "stream"

    def __init__(self, event_shape: tuple[int, ...], context_preprocessor: Any):
        self.event_shape = tuple(event_shape)
        self.context = int(context_preprocessor.event_shape[0]) if context_preprocessor is not None else 0


class StreamData:
    """A further event stream during one fit: its events, validation events, preprocessing and batches."""

    def __init__(self, name: str, spec: Stream, train: Events, val: Events | None, salt: int):
        self.name, self.spec, self.train, self.val, self.salt = name, spec, train, val, salt
        self.train_data: Any = train
        self.val_data: Any = val

    @classmethod
    def load(cls, name: str, spec: Stream, inputs: Inputs, salt: int) -> StreamData:
        settings = inputs.settings
        shape_check = _ShapeOnly(spec.event_shape, spec.context_preprocessor) if spec.event_shape else None
        train, _ = load_events(spec.data, spec.weights, spec.context, shape_check, stream=settings.stream_mode,
                               memory_limit_mb=settings.memory_limit_mb)
        if spec.val is not None:
            val, _ = load_events(spec.val, spec.weights if is_column_name(spec.weights) else None,
                                 spec.context if is_column_name(spec.context) else None, shape_check,
                                 stream=settings.stream_mode, memory_limit_mb=settings.memory_limit_mb)
        elif settings.val_fraction > 0:
            train, val = inputs.split(train)
        else:
            val = None
        return cls(name, spec, train, val, salt)

    def fit_preprocessing(self, chunk_size: int) -> None:
        if self.spec.preprocessor is not None:
            self.spec.preprocessor.fit(lambda: self.train.chunks(chunk_size))
        if self.spec.context_preprocessor is not None and self.train.context is not None:
            ctx = Events(self.train.context)
            self.spec.context_preprocessor.fit(lambda: ctx.chunks(chunk_size))

    def to(self, device: torch.device) -> None:
        for module in (self.spec.preprocessor, self.spec.context_preprocessor):
            if module is not None:
                module.to(device)

    def place(self, inputs: Inputs) -> None:
        """Events in memory go to the device once; streamed ones stay on disk."""
        if self.train.in_memory:
            self.train_data = inputs.to_device(self.train)
        if self.val is not None and self.val.in_memory:
            self.val_data = inputs.to_device(self.val)

    def cycle(self, inputs: Inputs, epoch: int, shuffle: bool, world: int, rank: int, batch_size: int | None,
              validation: bool = False) -> Iterator[dict[str, Any]]:
        """Endless batches: pass p of main epoch e is the stream's seeded epoch e·1009 + p, so every main
        epoch (and a resume at its start) sees the same stream batches."""
        data = self.val_data if validation and self.val_data is not None else self.train_data
        p = 0
        while True:
            batches, _ = inputs.batches(data, epoch * 1009 + p, shuffle, world, rank, batch_size,
                                        seed=inputs.settings.seed + 7919 * self.salt)
            produced = False
            for batch in batches:
                produced = True
                yield batch
            if not produced:
                raise DataError(f"stream {self.name!r} has too few events for one batch on each process")
            p += 1

    def prepare(self, raw: dict[str, Any], device: torch.device) -> dict[str, Tensor]:
        dtype = torch.get_default_dtype()
        batch = tree_map(lambda v: torch.as_tensor(v).to(device, dtype=dtype, non_blocking=True), raw)
        if self.spec.preprocessor is not None:
            batch["x"] = self.spec.preprocessor(batch["x"])
        if "context" in batch and self.spec.context_preprocessor is not None:
            batch["context"] = self.spec.context_preprocessor(batch["context"])
        return batch

    def describe(self) -> dict[str, Any]:
        return {"events": describe(self.spec.data), "weights": describe(self.spec.weights),
                "context": describe(self.spec.context), "n_train": len(self.train),
                "n_val": 0 if self.val is None else len(self.val)}


class Inputs:
    """What one fit trains and validates on, and the batches it deals.

    After :meth:`open`: ``train`` and ``val`` (:class:`Events`, None for a data-free model / no validation),
    ``names`` (column names of the features, context and labels), ``streams`` (name -> :class:`StreamData`)
    and ``record`` (config.yaml's ``data`` section). After :meth:`place`: ``train_data`` and ``val_data``,
    the events the batches are cut from (tensors on the device, or the on-disk events when streamed).
    """

    def __init__(self, settings: Settings, device: torch.device, dist: DistInfo):
        self.settings, self.device, self.dist = settings, device, dist
        self.local_batch = settings.batch_size // dist.world_size
        self.train: Events | None = None
        self.val: Events | None = None
        self.names: dict[str, list[str]] = {}
        self.streams: dict[str, StreamData] = {}
        self.record: dict[str, Any] = {}
        self.train_data: Any = None
        self.val_data: Any = None

    @property
    def streaming(self) -> bool:
        return self.train is not None and not self.train.in_memory

    # -- opening ---------------------------------------------------------------------------------------
    def open(self, model: Trainable, x: Any, val: Any = None, *, weights: Any = None, val_weights: Any = None,
             context: Any = None, val_context: Any = None, streams: Mapping[str, Any] | None = None,
             labels: Any = None, val_labels: Any = None) -> Inputs:
        """Open the main events (unless the model is data-free) and every further stream, with every check."""
        if x is not None:
            self.train, self.val, self.names = self._main_events(model, x, val, weights, val_weights, context,
                                                                 val_context, labels, val_labels)
        self.streams = self._load_streams(model, streams)
        self.record = self._describe(x, val, weights, context, streams)
        return self

    def _main_events(self, model: Trainable, x: Any, val: Any, weights: Any, val_weights: Any, context: Any,
                     val_context: Any, labels: Any,
                     val_labels: Any) -> tuple[Events, Events | None, dict[str, list[str]]]:
        stream, limit = self.settings.stream_mode, self.settings.memory_limit_mb
        declared = list(model.label_columns()) if hasattr(model, "label_columns") else []
        labels = labels_for(model.cli_name, x, labels, declared)
        train, names = load_events(x, weights, context, model, stream=stream, memory_limit_mb=limit, labels=labels)
        _check_context(model, train, names, x, context)
        _check_events(model, train, x)
        if val is not None:
            # columns named for the training file (weights, context, labels) are taken from the validation file too
            val_weights = weights if val_weights is None and is_column_name(weights) else val_weights
            val_context = context if val_context is None and is_column_name(context) else val_context
            named = isinstance(labels, (list, tuple)) and bool(labels) and all(isinstance(t, str) for t in labels)
            if val_labels is None and isinstance(val, (str, os.PathLike)) and (is_column_name(labels) or named):
                val_labels = labels
            val_labels = labels_for(model.cli_name, val, val_labels, declared, "val")
            val_events, _ = load_events(val, val_weights, val_context, model, stream=stream, memory_limit_mb=limit,
                                        labels=val_labels)
            _check_context(model, val_events, names, val, val_context)
            _check_events(model, val_events, val)
        elif self.settings.val_fraction > 0:
            train, val_events = self.split(train)
        else:
            val_events = None
        for events, where in ((train, x), (val_events, val)):
            if declared and events is not None:
                spec = where.spec if isinstance(where, Events) else where
                model.check_labels(read_whole(events.labels),
                                    os.fspath(spec) if isinstance(spec, (str, os.PathLike)) else "the data")
        if len(train) < 2:
            held = f" after holding out {len(val_events)} for validation" if val_events is not None else ""
            raise DataError(f"{describe(x) if isinstance(x, (str, os.PathLike, Events)) else 'the data'}: training "
                            f"needs at least 2 events, got {len(train)}{held}")
        return train, val_events, names

    def _load_streams(self, model: Trainable, given: Mapping[str, Any] | None) -> dict[str, StreamData]:
        declared = dict(model.streams())
        given = dict(given or {})
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise ConfigError(f"{model.cli_name} has no event stream {unknown[0]!r}"
                              + (f"; its streams: {', '.join(declared)}" if declared else "; it takes one stream"))
        out = {}
        for index, (name, spec) in enumerate(declared.items(), start=1):
            value = given.get(name)
            if isinstance(value, Mapping):
                spec = Stream(**{**vars(spec), **value})
            elif value is not None:
                spec = Stream(**{**vars(spec), "data": value})
            if spec.data is None:
                raise ConfigError(spec.missing or f"{model.cli_name} needs the events of its stream {name!r}: "
                                  f"fit(..., streams={{{name!r}: data}})")
            out[name] = StreamData.load(name, spec, self, salt=index)
        return out

    def _describe(self, x: Any, val: Any, weights: Any, context: Any, streams: Any) -> dict[str, Any]:
        """The ``data`` section of config.yaml: what the run was trained on."""
        s = self.settings
        if self.train is None:
            return {"events": None, "data_free": True, "steps_per_epoch": s.steps_per_epoch,
                    "events_per_epoch": s.steps_per_epoch * s.batch_size if s.steps_per_epoch else None}
        out = {"events": describe(x), "columns": self.names.get("x"), "weights": describe(weights),
               "context": describe(context), "context_columns": self.names.get("context"),
               **({"labels": self.names["labels"]} if self.names.get("labels") else {}),
               "validation": describe(val) if val is not None else f"{s.val_fraction:g} of the events (seeded)",
               "n_train": len(self.train), "n_val": 0 if self.val is None else len(self.val),
               "streamed": self.streaming}
        if self.streams:
            out["streams"] = {name: d.describe() for name, d in self.streams.items()}
        return out

    def split(self, events: Events) -> tuple[Events, Events | None]:
        """(training, validation) events: a seeded ``val_fraction`` held out (the last rows when streamed)."""
        n_val = int(round(len(events) * self.settings.val_fraction))
        if n_val == 0 or n_val == len(events):
            return events, None
        if not events.in_memory:  # streamed: hold out the last rows, read in order
            return events.slice(0, len(events) - n_val), events.slice(len(events) - n_val, len(events))
        g = torch.Generator().manual_seed(self.settings.seed)
        order = torch.randperm(len(events), generator=g).numpy()
        return events.take(np.sort(order[n_val:])), events.take(np.sort(order[:n_val]))

    # -- preprocessing and placement ---------------------------------------------------------------------
    def fit_preprocessing(self, model: Trainable, warm_start: bool) -> None:
        """Fit the model's preprocessing on the training events (kept as it is on a warm start), then each
        stream's on its own training events."""
        chunk_size = self.settings.chunk_size
        events = self.train
        if events is not None and not warm_start:
            if isinstance(model.preprocess, dict) and not events.multi:
                from hepgen.data.preprocess import resolve_kinds

                model.preprocessor.set_kinds(resolve_kinds(model.preprocess, model.event_shape[0], model.columns_))
            model.preprocessor.fit(lambda: events.chunks(chunk_size), columns=model.columns_)
            if model.context_preprocessor is not None:
                ctx = Events(events.context)
                model.context_preprocessor.fit(lambda: ctx.chunks(chunk_size))
        for data in self.streams.values():
            data.fit_preprocessing(chunk_size)

    def to(self, device: torch.device) -> None:
        """Each stream's preprocessing to the device (the model's moves with the model)."""
        for data in self.streams.values():
            data.to(device)

    def place(self) -> None:
        """In-memory events go to the device once; streamed ones stay on disk."""
        if self.train is not None:
            self.train_data = self.train if self.streaming else self.to_device(self.train)
        if self.val is not None:
            self.val_data = self.to_device(self.val) if self.val.in_memory else self.val
        for data in self.streams.values():
            data.place(self)

    def to_device(self, events: Events) -> dict[str, Any]:
        dtype = torch.get_default_dtype()

        def put(v: Any) -> Tensor:
            return torch.as_tensor(np.asarray(v) if not isinstance(v, Tensor) else v).to(self.device, dtype=dtype)

        out = {"x": tree_map(put, events.x)}
        out["w"] = put(events.w) if events.w is not None else torch.ones(len(events), dtype=dtype, device=self.device)
        if events.context is not None:
            out["context"] = put(events.context)
        if events.labels is not None:
            out["labels"] = put(events.labels)
        return out

    def prepare(self, model: Trainable, raw: dict[str, Any]) -> dict[str, Any]:
        """Move a raw batch to the device and preprocess it (the model's events and each stream's)."""
        dtype = torch.get_default_dtype()
        streams = raw.pop("streams", None)
        batch = tree_map(lambda v: torch.as_tensor(v).to(self.device, dtype=dtype, non_blocking=True), raw)
        if "x" in batch:
            batch["x"] = model.preprocessor(batch["x"])
        if "context" in batch:
            batch["context"] = model.context_preprocessor(batch["context"])
        if streams is not None:
            batch["streams"] = {name: self.streams[name].prepare(b, self.device) for name, b in streams.items()}
        if "labels" in batch and getattr(model, "legacy_targets", False):  # a family on the old names
            batch["targets"] = batch["labels"]
        return batch

    # -- batches -----------------------------------------------------------------------------------------
    def batches(self, data: Any, epoch: int, shuffle: bool, world: int = 1, rank: int = 0,
                batch_size: int | None = None, seed: int | None = None) -> tuple[Iterator[dict[str, Any]], int]:
        """(raw batches, their number) of ``data`` (tensors on the device, or streamed events) in ``epoch``."""
        bs = batch_size or self.local_batch
        seed = self.settings.seed if seed is None else seed
        if isinstance(data, dict):
            return (memory_batches(data, bs, epoch, seed, rank, world, shuffle),
                    memory_batch_count(len(tree_leaves(data["x"])[0]), bs, world))
        return (stream_batches(data, bs, self.settings.chunk_size, epoch, seed, rank, world, shuffle),
                stream_batch_count(len(data), bs, self.settings.chunk_size, world))

    def epoch(self, data: Any, epoch: int, shuffle: bool, world: int, rank: int,
              batch_size: int | None = None) -> tuple[Iterator[dict[str, Any]], int]:
        """This epoch's raw batches, each with a batch of every further stream beside it."""
        if data is None:  # data-free: batches of weights only; the model draws its own events
            n = batch_size or self.local_batch
            steps = self.settings.steps_per_epoch
            batches: Iterator[dict[str, Any]] = ({"w": torch.ones(n)} for _ in range(steps))
        else:
            batches, steps = self.batches(data, epoch, shuffle, world, rank, batch_size)
        if not self.streams:
            return batches, steps
        cycles = {name: d.cycle(self, epoch, shuffle, world, rank, batch_size, validation=not shuffle)
                  for name, d in self.streams.items()}

        def with_streams() -> Iterator[dict[str, Any]]:
            for raw in batches:
                raw["streams"] = {name: next(c) for name, c in cycles.items()}
                yield raw

        return with_streams(), steps
