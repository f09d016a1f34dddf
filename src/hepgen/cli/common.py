"""Helpers every sub-command shares: value parsing, suggestions, contexts given on the command line."""

from __future__ import annotations

from pathlib import Path
import difflib
from collections.abc import Sequence
from typing import Any

import yaml

from hepgen.errors import ConfigError


def parse_value(text: str, default: Any) -> Any:
    """A flag or config value: YAML scalars, with 'a,b,c' as a list where the default is a sequence."""
    if isinstance(default, (tuple, list)) and isinstance(text, str):
        return [yaml.safe_load(t) for t in text.split(",") if t.strip()]
    return yaml.safe_load(text) if isinstance(text, str) else text


def suggest(key: str, valid: Sequence[str]) -> str:
    near = difflib.get_close_matches(key, list(valid), n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


def column_names(value: Any) -> list[str]:
    from hepgen.data.sources import is_column_name

    return [c.strip() for c in value.split(",") if c.strip()] if is_column_name(value) else []


def context_size(context: Any, data: str) -> int:
    from hepgen.data import io

    if context is None:
        return 0
    names = column_names(context)
    if names:
        return len(names)
    table = io.read(context)
    return 1 if table.data.ndim == 1 else int(table.data.shape[1])


def load_context(value: str | None, n: int | None) -> Any:
    if value is None:
        return None
    import numpy as np

    from hepgen.data import io

    if ":" in value or Path(value).exists():
        c = io.read(value).data
        return c[:, None] if c.ndim == 1 else c
    try:
        return np.array([[float(v) for v in value.split(",")]], dtype=np.float32)
    except ValueError:
        raise ConfigError(f"--context {value!r} is neither FILE:KEY nor a comma-separated row of numbers") from None


def write_outputs(out: str, arrays: dict[str, Any], columns: dict[str, list[str]] | None = None) -> None:
    """Write named arrays; a 2-D array with column names becomes named columns (``key/column`` in HDF5)."""
    from hepgen.data import io

    columns = {k: v for k, v in (columns or {}).items() if k in arrays and v}
    if len(arrays) == 1:
        (key, array), = arrays.items()
        io.write(out, array, columns=columns.get(key)) if key in columns else io.write(out, {key: array})
        return
    suffix = Path(out.split(":")[0]).suffix.lower()
    if suffix in (".csv", ".parquet", ".pq"):  # one flat table: a 2-D array becomes one column per feature
        flat = {}
        for key, array in arrays.items():
            if getattr(array, "ndim", 1) == 2:
                names = columns.get(key) or [str(j) for j in range(array.shape[1])]
                flat.update({f"{key}_{c}": array[:, j] for j, c in enumerate(names)})
            else:
                flat[key] = array
        arrays = flat
    elif suffix in (".h5", ".hdf5", ".hdf"):
        flat: dict[str, Any] = {}
        for key, array in arrays.items():
            if key in columns and getattr(array, "ndim", 0) == 2 and array.shape[1] == len(columns[key]):
                flat.update({f"{key}/{c}": array[:, j] for j, c in enumerate(columns[key])})
            else:
                flat[key] = array
        arrays = flat
    io.write(out, arrays)


