"""Turn what a user passes as data — arrays, tensors or ``path[:key]`` specs — into :class:`Events`.

``x`` is an array/tensor (batch, *event_shape) or a spec. Weights and contexts are arrays, specs
(``FILE:KEY``) or, when ``x`` is a file, names of its columns (``--weights weight``,
``--context E,theta``); named columns are removed from the features. Training ``labels`` (a
tagger's label and nuisance) come the same ways and are removed from the features too. File data larger than the
memory limit (or any file data with ``stream=True``) stays on disk and is read chunk by chunk.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hepgen.data import io
from hepgen.data.loader import Events
from hepgen.errors import ConfigError, DataError, HepgenError


DATA_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5", ".hdf", ".root", ".csv", ".parquet", ".pq")


def is_column_name(value: Any) -> bool:
    """A plain column name (``weight``, ``E,theta``) rather than an array or a ``FILE:KEY`` spec."""
    if not isinstance(value, str):
        return False
    return ":" not in value and not os.path.exists(value) and Path(value).suffix.lower() not in DATA_SUFFIXES


def _split_columns(value: str) -> list[str]:
    return [c.strip() for c in value.split(",") if c.strip()]


class _Squeezed:
    """Row reader that returns (rows,) from a one-column source (weights streamed from a file)."""

    def __init__(self, source: Any):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self.source.read_rows(start, stop), dtype=np.float64).reshape(-1)


def _array(value: Any, what: str, finite: bool = True) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
        raise DataError(f"{what} must be numeric, got an array of {array.dtype}")
    if array.ndim == 0:
        raise DataError(f"{what} must have one row per event, got a scalar")
    if finite and array.size and not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array.reshape(len(array), -1)))
        raise DataError(f"{what} holds {len(bad)} NaN/inf values; the first is in row {bad[0][0]}, "
                        f"column {bad[0][1]}")
    return array


def _label_columns(labels: Any) -> list[str]:
    """Column names given as labels: ``"label,z"`` or a list/tuple of names (an array gives none)."""
    if is_column_name(labels):
        return _split_columns(labels)
    if isinstance(labels, (list, tuple)) and labels and all(isinstance(t, str) for t in labels):
        return [str(t) for t in labels]
    return []


def split_labels(events: Events, labels: Any) -> Events:
    """Events opened with every column as a feature, with the named ``labels`` columns moved out of
    ``x`` into ``labels`` (in the order named). A DataError names a missing column."""
    cols = _label_columns(labels)
    if not cols:
        raise DataError("labels of opened events must be column names")
    names = list((events.names or {}).get("x") or [])
    where = events.spec if events.spec is not None else "the data"
    missing = [c for c in cols if c not in names]
    if missing:
        raise DataError(f"{where}: no column '{missing[0]}' (columns: {', '.join(names) or 'unnamed'})")
    if events.multi:
        raise DataError(f"{where}: training labels (label/nuisance columns) need single-array events")
    idx = [names.index(c) for c in cols]
    keep = [j for j in range(len(names)) if j not in idx]
    x = events.x
    if hasattr(x, "read_rows") and isinstance(events.spec, (str, os.PathLike)):
        # streamed: the features and the labels are read from the file by name, still chunk by chunk
        features, tgt = (io.open_source(events.spec, columns=c) for c in ([names[j] for j in keep], cols))
        return Events(features, events.w, events.context, tgt,
                      names={**events.names, "x": [names[j] for j in keep], "labels": cols}, spec=events.spec)
    x = np.asarray(x.read_rows(0, len(x)) if hasattr(x, "read_rows") else x)
    out = Events(x[:, keep], events.w, events.context, np.asarray(x[:, idx], dtype=np.float64),
                 names={**events.names, "x": [names[j] for j in keep], "labels": cols}, spec=events.spec)
    return out


def labels_for(model_name: str, x: Any, labels: Any, declared: list[str], what: str = "x") -> Any:
    """The training labels to read with the events ``x`` of a model named ``model_name`` that declares the
    label columns ``declared``: the ones given (column names, ``"a,b"``, an array), else the declared
    columns of a file ``x``. ConfigError when labels are missing or given to a model that takes none;
    DataError when their count differs from the declared columns. ``what``: ``"x"`` or ``"val"``."""
    if labels is None and declared and isinstance(x, (str, os.PathLike, Events)):
        if not (isinstance(x, Events) and x.labels is not None):
            labels = declared
    has = labels is not None or (isinstance(x, Events) and x.labels is not None)
    if declared and not has:
        raise ConfigError(f"{model_name} trains on {', '.join(declared)} beside the features: give "
                          f"{'val_labels' if what == 'val' else 'labels'}= (an array with one row per event) "
                          "or the events as a file whose columns include them")
    if not declared and has:
        raise ConfigError(f"{model_name} takes no training labels; drop labels=")
    if declared and labels is not None:
        k = (len(_split_columns(labels)) if isinstance(labels, str)
             else len(labels) if isinstance(labels, (list, tuple)) and all(isinstance(t, str) for t in labels)
             else 1 if np.ndim(labels) == 1 else int(np.shape(labels)[1]))
        if k != len(declared):
            raise DataError(f"{model_name} reads {len(declared)} label column(s) ({', '.join(declared)}), got {k}")
    return labels


def read_whole(values: Any) -> np.ndarray:
    """(N, k) float64 rows of a column source (read whole: a few columns such as labels or a context) or an
    array."""
    if hasattr(values, "read_rows"):
        values = values.read_rows(0, len(values))
    return np.asarray(values, dtype=np.float64).reshape(len(values), -1)


def load_events(x: Any, weights: Any = None, context: Any = None, model: Any = None, *,
                stream: bool | None = None, memory_limit_mb: float = 1024.0,
                labels: Any = None) -> tuple[Events, dict[str, list[str]]]:
    """Events (features, weights, context, labels) and their column names, checked against ``model``.

    stream: True keeps file data on disk, False reads it, None decides by ``memory_limit_mb``.
    labels: column names of ``x`` (a list or ``"label,z"``) or an (N,) / (N, k) array.
    """
    if isinstance(x, Events):  # opened once already (open_events): check it against the model
        if labels is not None and x.labels is None and not _label_columns(labels):  # an array beside them
            tgt = np.asarray(_array(labels, "the labels", finite=False), dtype=np.float64)
            tgt = tgt[:, None] if tgt.ndim == 1 else tgt.reshape(len(tgt), -1)
            if len(tgt) != len(x):
                raise DataError(f"the labels have {len(tgt)} rows but the events have {len(x)}; "
                                "they must match row by row")
            x = Events(x.x, x.w, x.context, tgt, names=x.names, spec=x.spec)
        elif labels is not None and x.labels is None:
            x = split_labels(x, labels)
        if model is not None:
            _check_against(model, x)
        return x, x.names
    geometry = getattr(model, "geometry_", None)
    if geometry is not None and isinstance(x, (str, os.PathLike)):  # a shower model on a CaloChallenge geometry
        events = open_events(x, weights, context, stream=stream, memory_limit_mb=memory_limit_mb, labels=labels,
                             geometry=geometry)  # model.fit("ds.h5") reads it as 'hepgen fit --geometry' does
        _check_against(model, events)
        return events, events.names
    shapes = getattr(model, "event_shape", None)
    if isinstance(x, dict) or isinstance(shapes, dict):
        if labels is not None:
            raise DataError("training labels (label/nuisance columns) need single-array events")
        return _load_multi(x, weights, context, model, stream=stream, memory_limit_mb=memory_limit_mb)
    names: dict[str, list[str]] = {}
    weight_cols = _split_columns(weights) if is_column_name(weights) else []
    context_cols = _split_columns(context) if is_column_name(context) else []
    label_cols = _label_columns(labels)
    if (weight_cols or context_cols or label_cols) and not isinstance(x, (str, os.PathLike)):
        raise DataError("weights, context or labels given as column names need the events as a file spec "
                        "(path[:key]); with arrays, pass arrays")
    twice = [c for c in label_cols if c in weight_cols + context_cols]
    if twice:
        role = "weights" if twice[0] in weight_cols else "context"
        raise DataError(f"{x}: '{twice[0]}' is both a training label (label/nuisance) and the {role} "
                        "column; give each column one role")
    if isinstance(x, (str, os.PathLike)):
        if label_cols:  # the label columns exist, or the error says what reads them
            try:
                io.open_source(x, columns=label_cols).close()
            except DataError as exc:
                who = getattr(model, "cli_name", None) or "the model"
                raise DataError(f"{exc} ({who} reads its training labels {', '.join(label_cols)} from the columns "
                                "of the data; name them with its hyper-parameters, e.g. --label)") from None
        try:
            source = io.open_source(x, exclude=weight_cols + context_cols + label_cols)
        except DataError as exc:
            if not (weight_cols or context_cols) or "unnamed array" not in str(exc):
                raise
            flag, value = ("--context", context) if context_cols else ("--weights", weights)
            raise DataError(f"{flag} {value!r} names columns of the events, but '{x}' holds an unnamed array (an "
                            f"image or a plain matrix: no column names); give {flag} as FILE:KEY, a dataset of one "
                            f"value per event (e.g. {str(x).split(':')[0]}:{value.split(',')[0]})") from None
        nbytes = len(source) * int(np.prod(source.event_shape)) * 4
        keep_on_disk = stream if stream is not None else nbytes > memory_limit_mb * 2**20
        names["x"] = list(source.columns) if source.columns else None
        if len(source) == 0:
            raise DataError(f"{x} holds no events (0 rows)")
        features: Any = source if keep_on_disk else source.read_rows(0, len(source))
        if not keep_on_disk:
            source.close()

        def column_source(cols: list[str]) -> Any:
            s = io.open_source(x, columns=cols)
            return s if keep_on_disk else s.read_rows(0, len(s))

        w: Any = None
        if weight_cols:
            if len(weight_cols) != 1:
                raise DataError(f"--weights names one column, got {weights!r}")
            w = column_source(weight_cols)
            w = _Squeezed(w) if keep_on_disk else np.asarray(w, dtype=np.float64).reshape(-1)
        ctx: Any = column_source(context_cols) if context_cols else None
        if context_cols:
            names["context"] = context_cols
        tgt: Any = column_source(label_cols) if label_cols else None
        if label_cols:
            names["labels"] = label_cols
    else:
        features = _array(x, "the events")
        if features.ndim < 2:
            raise DataError(f"events must be an array of shape (batch, features), got shape {features.shape}; "
                            "reshape a single feature with x[:, None]")
        if len(features) == 0:
            raise DataError("the events are empty (0 rows)")
        w, ctx, tgt = None, None, None
    if weights is not None and not weight_cols:
        w = (io.read(weights, dtype=np.float64).data if isinstance(weights, (str, os.PathLike))
             else _array(weights, "the weights").astype(np.float64))
        w = np.asarray(w, dtype=np.float64).reshape(len(w), -1)
        if w.shape[1] != 1:
            raise DataError(f"weights must be one number per event, got shape {w.shape}")
        w = w[:, 0]
    if context is not None and not context_cols:
        if isinstance(context, (str, os.PathLike)):  # FILE:KEY: its column names, when it has them, are the context's
            table = io.read(context)
            ctx = table.data
            if table.columns and np.ndim(ctx) == 2 and len(table.columns) == np.shape(ctx)[1]:
                names["context"] = list(table.columns)
        else:
            ctx = _array(context, "the context")
        ctx = np.asarray(ctx, dtype=np.float32)
        ctx = ctx[:, None] if ctx.ndim == 1 else ctx
    if labels is not None and not label_cols:
        # finiteness is the model's check (check_labels), which names the column
        tgt = np.asarray(_array(labels, "the labels", finite=False), dtype=np.float64)
        tgt = tgt[:, None] if tgt.ndim == 1 else tgt.reshape(len(tgt), -1)
    for what, extra, given in (("weights", w, weights), ("context", ctx, context), ("labels", tgt, labels)):
        if extra is not None and len(extra) != len(features):
            where = f" ({given})" if isinstance(given, (str, os.PathLike)) else ""  # a file names itself
            events_where = f" ({x})" if isinstance(x, (str, os.PathLike, io.DataSpec)) else ""
            raise DataError(f"the {what}{where} {'has' if what == 'context' else 'have'} {len(extra)} rows but the "
                            f"events{events_where} have {len(features)}; they must match row by row")
    w = _checked_weights(w, x)
    events = Events(features, w, ctx, tgt)
    if model is not None:
        shape = tuple(features.event_shape) if hasattr(features, "event_shape") else tuple(features.shape[1:])
        if shape != tuple(model.event_shape):
            raise DataError(f"the model {model.cli_name!r} expects events of shape {tuple(model.event_shape)}, "
                            f"but {x if isinstance(x, (str, os.PathLike)) else 'the data'} has events of shape "
                            f"{shape}")
        c = 0 if ctx is None else (ctx.shape[1] if hasattr(ctx, "shape") else len(context_cols))
        if c != model.context:
            raise DataError(f"the model expects a context of {model.context} columns, got {c}")
    return events, names


def _checked_weights(w: Any, where: Any) -> Any:
    """In-memory weights must have a positive sum (negative weights are fine, but not all of them)."""
    if w is None or hasattr(w, "read_rows"):
        return w
    total = float(np.sum(w))
    if not total > 0:
        what = where if isinstance(where, (str, os.PathLike)) else "the data"
        raise DataError(f"the weights of {what} sum to {total:.6g}: the weighted mean loss needs a positive total "
                        f"weight ({int(np.sum(w < 0))} of {len(w)} weights are negative, {int(np.sum(w == 0))} "
                        "are zero)")
    return w


def member_spec(spec: str | os.PathLike, name: str) -> str:
    """The spec of array ``name`` inside the group ``spec`` names: ``f.h5:calo`` -> ``f.h5:calo/name``."""
    path, key = io.parse_spec(spec)
    return f"{path}:{key.rstrip('/')}/{name}" if key else f"{path}:{name}"


def _load_multi(x: Any, weights: Any, context: Any, model: Any, *, stream: bool | None,
                memory_limit_mb: float) -> tuple[Events, dict[str, list[str]]]:
    """Events made of several arrays: a dict of arrays, or the datasets of one HDF5 group (one per array
    the model names); weights and context may name further 1-D datasets of that group."""
    shapes = getattr(model, "event_shape", None)
    if model is not None and not isinstance(shapes, dict):
        raise DataError(f"the model {model.cli_name!r} expects single-array events of shape {shapes}, but the data "
                        "holds several arrays per event")
    names: dict[str, list[str]] = {}
    if isinstance(x, dict):
        features: Any = {k: _array(v, f"array {k!r} of the events") for k, v in x.items()}
        group_column = None
    else:
        wanted = list(shapes) if shapes is not None else list(group_event_shapes(x))
        sources = {k: io.open_source(member_spec(x, k)) for k in wanted}
        nbytes = sum(len(s) * int(np.prod(s.event_shape)) * 4 for s in sources.values())
        keep_on_disk = stream if stream is not None else nbytes > memory_limit_mb * 2**20
        features = {}
        for k, s in sources.items():
            features[k] = s if keep_on_disk else s.read_rows(0, len(s))
            if not keep_on_disk:
                s.close()

        def group_column(cols: list[str]) -> np.ndarray:
            return np.column_stack([io.read_column(member_spec(x, c)) for c in cols])
    lengths = {k: len(v) for k, v in features.items()}
    if len(set(lengths.values())) != 1:
        raise DataError(f"the arrays of {x if isinstance(x, (str, os.PathLike)) else 'the events'} have different "
                        f"numbers of events: {lengths}; each event needs one row in every array")
    n = next(iter(lengths.values()))
    if n == 0:
        raise DataError("the events are empty (0 rows)")

    def extra(value: Any, what: str) -> np.ndarray | None:
        if value is None:
            return None
        if is_column_name(value):
            if group_column is None:
                raise DataError(f"{what} given as column names need the events as a file spec (path[:key])")
            cols = _split_columns(value)
            if what == "context":
                names["context"] = cols
            return group_column(cols)
        if isinstance(value, (str, os.PathLike)):
            return np.asarray(io.read(value).data)
        return _array(value, f"the {what}")

    w = extra(weights, "weights")
    if w is not None:
        w = np.asarray(w, dtype=np.float64).reshape(len(w), -1)
        if w.shape[1] != 1:
            raise DataError(f"weights must be one number per event, got shape {w.shape}")
        w = _checked_weights(w[:, 0], x)
    ctx = extra(context, "context")
    if ctx is not None:
        ctx = np.asarray(ctx, dtype=np.float32)
        ctx = ctx[:, None] if ctx.ndim == 1 else ctx
    for what, arr in (("weights", w), ("context", ctx)):
        if arr is not None and len(arr) != n:
            raise DataError(f"the {what} {'has' if what == 'context' else 'have'} {len(arr)} rows but the events have "
                            f"{n}; they must match row by row")
    if model is not None:
        for k, shape in shapes.items():
            if k not in features:
                raise DataError(f"the model {model.cli_name!r} needs array {k!r}; the data has "
                                f"{', '.join(features)}")
            got = tuple(getattr(features[k], "event_shape", None) or features[k].shape[1:])
            if got != tuple(shape):
                raise DataError(f"array {k!r}: the model {model.cli_name!r} expects events of shape {tuple(shape)}, "
                                f"got {got}")
        features = {k: features[k] for k in shapes}
        c = 0 if ctx is None else ctx.shape[1]
        if model.context is not None and c != model.context:
            raise DataError(f"the model expects a context of {model.context} columns, got {c}")
    return Events(features, w, ctx), names


def group_event_shapes(spec: str | os.PathLike, exclude: Any = ()) -> dict[str, tuple[int, ...]]:
    """The arrays of one event in an HDF5 group of datasets of different shapes: member name -> event shape.

    ``f.h5:showers`` holding ``layer0 (N, 3, 96)``, ``layer1 (N, 12, 12)`` and ``energy (N,)`` gives
    ``{"layer0": (3, 96), "layer1": (12, 12), "energy": (1,)}``; members named in ``exclude`` (weight or
    context columns) are left out.
    """
    _, key = io.parse_spec(spec)
    prefix = f"{key.strip('/')}/" if key else ""
    members = [k[len(prefix):] for k in io.available_keys(spec) if k.startswith(prefix) and k != prefix.rstrip("/")]
    shapes = {}
    for name in members:
        if "/" in name or name in set(exclude):
            continue
        with io.open_source(member_spec(spec, name)) as source:
            shapes[name] = tuple(source.event_shape)
    if not shapes:
        raise DataError(f"{spec} names no group of arrays")
    return shapes


class GroupSource:
    """Row-range reads of events made of several arrays: ``read_rows(start, stop) -> {name: rows}``.

    ``spec`` names the HDF5 group; ``shapes`` (name -> event shape, e.g. a model's ``event_shape``)
    chooses and checks its member arrays.
    """

    def __init__(self, spec: str | os.PathLike, shapes: dict[str, Any]):
        self.spec = os.fspath(spec)
        self.sources = {}
        try:
            for name, shape in shapes.items():
                source = io.open_source(member_spec(spec, name))
                self.sources[name] = source
                if tuple(source.event_shape) != tuple(shape):
                    raise DataError(f"array {name!r} of {self.spec} has events of shape {tuple(source.event_shape)}, "
                                    f"the model expects {tuple(shape)}")
        except BaseException:
            self.close()
            raise
        lengths = {k: len(v) for k, v in self.sources.items()}
        if len(set(lengths.values())) != 1:
            self.close()
            raise DataError(f"the arrays of {self.spec} have different numbers of events: {lengths}")
        self._n = next(iter(lengths.values()))

    def __len__(self) -> int:
        return self._n

    def read_rows(self, start: int, stop: int) -> dict[str, np.ndarray]:
        return {k: s.read_rows(start, stop) for k, s in self.sources.items()}

    def close(self) -> None:
        for source in self.sources.values():
            source.close()


def _check_against(model: Any, events: Events) -> None:
    shape = events.event_shape
    expected = model.event_shape
    if isinstance(expected, dict) != isinstance(shape, dict) or (
            not isinstance(shape, dict) and tuple(shape) != tuple(expected)) or (
            isinstance(shape, dict) and {k: tuple(v) for k, v in expected.items()} != shape):
        raise DataError(f"the model {model.cli_name!r} expects events of shape {expected}, but "
                        f"{events.spec or 'the data'} has events of shape {shape}")
    if events.context_size != model.context:
        raise DataError(f"the model expects a context of {model.context} columns, got {events.context_size}")


def open_events(x: Any, weights: Any = None, context: Any = None, *, stream: bool | None = None,
                memory_limit_mb: float = 1024.0, labels: Any = None, geometry: Any = None) -> Events:
    """The events of a data argument, opened once, with their weights, context, column names and shape.

    A spec naming an HDF5 group of arrays of different shapes gives events of several arrays; anything
    else is read as one array per event (a table's columns, an image dataset ...). With ``geometry`` (a
    CaloChallenge binning XML, ``binning.xml[:particle]``) ``x`` is a CaloChallenge file, its voxels laid out in
    the XML's layers (:func:`hepgen.data.calochallenge.open_challenge`). Pass the result to ``Model.fit``:
    the data are not opened a second time.
    """
    if geometry is not None:
        if labels is not None:
            raise DataError("training labels (label/nuisance columns) need single-array events, not showers")
        from hepgen.data.calochallenge import open_challenge

        column = weights.strip() if is_column_name(weights) else None
        return open_challenge(x, geometry, weights=None if column else weights, weight_column=column,
                              context=context, stream=stream, memory_limit_mb=memory_limit_mb)
    if isinstance(x, (str, os.PathLike)) and not getattr(x, "selects", False):
        from hepgen.data.calochallenge import find_challenge

        if find_challenge(x) is not None:
            raise DataError(f"{x} is a CaloChallenge file (incident_energies, showers in MeV): give its binning XML "
                            "(--geometry binning.xml[:particle], for calo-flow and calo-gan), or name one dataset "
                            f"({x}:showers)")
    try:
        events, names = load_events(x, weights, context, stream=stream, memory_limit_mb=memory_limit_mb,
                                    labels=labels)
    except DataError as single_error:
        if labels is not None or not isinstance(x, (str, os.PathLike)) or getattr(x, "selects", False):
            raise
        named = [c for v in (weights, context) if is_column_name(v) for c in _split_columns(v)]
        try:
            shapes = group_event_shapes(x, exclude=named)
        except HepgenError:
            raise single_error from None
        if len(shapes) < 2 or all(s == (1,) for s in shapes.values()):
            raise single_error from None
        events, names = _load_multi(x, weights, context, _Shapes(shapes), stream=stream,
                                    memory_limit_mb=memory_limit_mb)
    events.names, events.spec = names, x
    return events


class _Shapes:
    """A stand-in model for reading a group: only its arrays' shapes are known (any context size)."""

    cli_name = "data"

    def __init__(self, shapes: dict[str, tuple[int, ...]]):
        self.event_shape = shapes
        self.context = None


class GroupColumns:
    """Columns kept as 1-D datasets beside the arrays of a group (a calorimeter file's ``energy``), read as
    one table: ``read_rows(start, stop) -> (rows, len(names))``."""

    def __init__(self, spec: str | os.PathLike, names: list[str]):
        self.spec, self.names = os.fspath(spec), list(names)
        self.sources = [io.open_source(member_spec(spec, name)) for name in self.names]
        lengths = {n: len(s) for n, s in zip(self.names, self.sources)}
        if len(set(lengths.values())) != 1:
            self.close()
            raise DataError(f"the columns of {self.spec} have different numbers of events: {lengths}")
        self.event_shape = (len(self.names),)
        self._n = next(iter(lengths.values()))

    def __len__(self) -> int:
        return self._n

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        return np.column_stack([s.read_rows(start, stop).reshape(stop - start, -1) for s in self.sources])

    def close(self) -> None:
        for source in self.sources:
            source.close()
