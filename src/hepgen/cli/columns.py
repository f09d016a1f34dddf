"""The columns a trained run answers to, and how ``sample`` and ``score`` find them in a file.

A fitted model knows the names of its features (``model.columns_``) and context
(``model.context_columns_``); models fitted on unnamed arrays answer to the default names
``x0 .. x{d-1}`` and ``context_0 ..`` that ``sample`` writes. ``score`` reads those columns by
name from DATA (a file may hold more, e.g. the weight column it was trained with), and so does
``sample --context FILE``.
"""

from __future__ import annotations

import math
from typing import Any

from hepgen.errors import ConfigError, DataError

#: the files ``sample`` and ``score`` write
OUTPUTS = ".h5, .npy, .npz, .csv, .parquet or .root"


def feature_names(model: Any) -> list[str] | None:
    """The model's feature columns, or ``x0 ..`` for a tabular model fitted on an unnamed array."""
    if model.columns_:
        return list(model.columns_)
    if isinstance(model.event_shape, dict):  # events of several arrays: no columns
        return None
    return [f"x{j}" for j in range(model.event_shape[0])] if len(model.event_shape) == 1 else None


def context_names(model: Any) -> list[str]:
    """The model's context columns; when they had no names (fitted on arrays), the family's own names for them
    (``default_context_columns``: a shower model's ``energy``, the simulator's dataset) or ``context_0 ..``."""
    if model.context_columns_:
        return list(model.context_columns_)
    default = getattr(model, "default_context_columns", None)
    if default is not None and len(default) == model.context:
        return list(default)
    return [f"context_{j}" for j in range(model.context)]


def open_by_names(spec: Any, names: list[str] | None, what: str, **selection: Any) -> Any:
    """A source over ``spec`` reading ``names`` when the file has named columns (DataError naming a missing
    one); an unnamed array is taken whole. An explicit ``columns`` selection wins over ``names``."""
    from hepgen.data import io

    if selection.get("columns") or names is None:
        return io.open_source(spec, **selection)
    source = io.open_source(spec, jagged_length=selection.get("jagged_length"))
    if source.columns is None or source.columns == names:
        return source
    source.close()
    missing = [n for n in names if n not in source.columns]
    if missing and names[0] == "x0":  # an unnamed model: a named file is read whole
        return io.open_source(spec, **selection)
    if missing:
        raise DataError(f"'{spec}' has no column '{missing[0]}' of the model's {what} ({', '.join(names)}); "
                        f"its columns: {', '.join(source.columns)}. Select them with --columns, or pass a file "
                        "with those columns.")
    return io.open_source(spec, columns=names, jagged_length=selection.get("jagged_length"))


def literal_row(value: str, size: int | None) -> Any:
    """``"v1,v2"`` as a (1, size) float32 row, or None when ``value`` is not a list of numbers (``size`` None:
    any length)."""
    import numpy as np

    parts = [p.strip() for p in value.split(",") if p.strip()]
    try:
        row = np.array([[float(p) for p in parts]], dtype=np.float64)
    except ValueError:
        return None
    bad = [p for p, v in zip(parts, row[0]) if not math.isfinite(v)]
    if bad:
        raise ConfigError(f"--context {value!r}: the value {bad[0]!r} is not a finite number")
    if size is not None and row.shape[1] != size:
        raise ConfigError(f"--context {value!r} has {row.shape[1]} value(s); the model's context has {size}")
    return row.astype(np.float32)


def context_source(value: str | None, model: Any, data: Any = None) -> Any:
    """What conditions ``model``: None, a (1, c) row (a literal), or a Source of one row per event.

    ``value``: a literal row, FILE[:KEY] (its columns named like the model's context are read by name)
    or, with ``data``, columns of DATA. Without ``value`` the model's context columns are read from
    ``data``. Raises ConfigError when a context is given to an unconditional model or is missing.
    """
    from hepgen.data import io
    from hepgen.data.sources import is_column_name

    if not model.context:
        if value is not None:
            raise ConfigError(f"--context given, but the model ({model.cli_name}) was trained without a context")
        return None
    names = context_names(model)
    multi = isinstance(model.event_shape, dict)  # context columns are datasets beside the arrays
    if value is None:
        if data is None:
            raise ConfigError(f"the model is conditional on a context of {model.context} value(s) "
                              f"({', '.join(names)}); give --context v1,v2,... or FILE:KEY")
        if multi:
            from hepgen.data.sources import GroupColumns

            return GroupColumns(data, names)
        return _context_width(open_by_names(data, names, "context"), model, names)
    row = literal_row(value, model.context)
    if row is not None:
        return row
    if is_column_name(value):
        if data is None:
            raise ConfigError(f"--context {value!r} is neither a row of numbers nor an existing FILE[:KEY]")
        columns = [c.strip() for c in value.split(",") if c.strip()]
        if multi:
            from hepgen.data.sources import GroupColumns

            return GroupColumns(data, columns)
        return io.open_source(data, columns=columns)
    return _context_width(open_by_names(value, names, "context"), model, names)


def _context_width(source: Any, model: Any, names: list[str]) -> Any:
    """``source`` when its events hold the model's context values; else a DataError naming it (an unnamed array
    of another width, e.g. the images themselves when a conditional GAN's context came from another file)."""
    width = math.prod(source.event_shape)
    if width != model.context:
        source.close()
        raise DataError(f"'{source.spec}' holds {width} value(s) per event, but the model's context is "
                        f"{model.context} ({', '.join(names)}); give --context FILE:KEY with those columns, or one "
                        "row 'v1,v2'")
    return source


def context_rows(source: Any, start: int, stop: int) -> Any:
    """Rows of a context: a broadcast literal row, or rows ``start:stop`` of a source."""
    return source if not hasattr(source, "read_rows") else source.read_rows(start, stop)
