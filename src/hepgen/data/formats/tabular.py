"""Tables of named columns: CSV and Parquet (pyarrow), loaded whole, read as (n, n_columns).

CSV: the first line is the header (``# a,b`` as written by ``np.savetxt(header=...)`` works too);
a first line made only of numbers is data, and the columns are then unnamed (None). The delimiter
is the first of ``,`` tab ``;`` space found in the first line (``np.savetxt``'s default is a space). Empty cells
and ``nan`` are NaN (and so rejected unless ``check_finite=False``); a cell that is not a number
is a DataError naming column, row and line. Parquet: numeric columns; nested ones are refused.
Neither format takes a key. Writing: one column per 1-D array; an unnamed 2-D array is written
without header to CSV and with columns ``x0, x1, ...`` to Parquet.
"""

from __future__ import annotations

from pathlib import Path
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hepgen.data.formats.base import ArraySource, Payload, Request
from hepgen.data.formats.messages import quoted_list, select_names, unnamed, unreadable
from hepgen.errors import DataError

_NAMES = {"csv": "CSV", "parquet": "Parquet"}


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _csv_options(path: Path) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions, bool, int]:
    """(read and parse options, whether the columns are named, file line of data row 0)."""
    with open(path, "rb") as handle:
        first = handle.readline().decode("utf-8", errors="replace").strip()
    if not first:
        raise DataError(f"The CSV file '{path}' is empty or starts with a blank line; expected a header row.")
    commented = first.startswith("#")
    if commented:
        first = first[1:].strip()
    delimiter = next((d for d in (",", "\t", ";", " ") if d in first), ",")
    parse = pacsv.ParseOptions(delimiter=delimiter)
    tokens = [token.strip() for token in first.split(delimiter)]
    if commented:
        names = [token.strip('"') for token in tokens]
        return pacsv.ReadOptions(skip_rows=1, column_names=names), parse, True, 2
    if any(tokens) and all(not token or _is_number(token) for token in tokens):
        return pacsv.ReadOptions(autogenerate_column_names=True), parse, False, 1
    return pacsv.ReadOptions(), parse, True, 2


def _load(path: Path, kind: str, columns: list[str] | None = None) -> tuple[pa.Table, bool, int | None]:
    """(table, whether the columns are named, file line of data row 0 — None for Parquet)."""
    try:
        if kind == "parquet":
            return pq.read_table(path, columns=columns), True, None
        options, parse, named, first_line = _csv_options(path)
        return pacsv.read_csv(path, read_options=options, parse_options=parse), named, first_line
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise unreadable(path, _NAMES[kind], exc) from exc


def keys(path: Path, key: str | None, kind: str) -> list[str]:
    """The column names (empty for a CSV without header)."""
    if kind == "parquet":
        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as exc:
            raise unreadable(path, "Parquet", exc) from exc
    table, named, _ = _load(path, kind)
    return list(table.column_names) if named else []


def _to_float(column: pa.ChunkedArray, name: str, where: str, first_line: int | None) -> np.ndarray:
    """One column as float64 (nulls -> NaN); a non-number raises naming row (and CSV line)."""
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind) \
            or pa.types.is_decimal(kind) or pa.types.is_null(kind):
        return pc.fill_null(pc.cast(column, pa.float64()), np.nan).to_numpy()
    values = column.to_pylist()
    floats = np.empty(len(values))
    for row, value in enumerate(values):
        try:
            floats[row] = np.nan if value is None or value == "" else float(value)
        except (TypeError, ValueError):
            line = f" (line {row + first_line} of the file)" if first_line is not None else ""
            raise DataError(
                f"Column '{name}' of '{where}' is not numeric ({kind}): row {row}{line} holds {value!r}. "
                "hepgen reads only numbers; exclude the column (exclude=...) or fix the value."
            ) from None
    return floats


def open_source(path: Path, key: str | None, request: Request, kind: str) -> ArraySource:
    where = request.spec
    if key is not None:
        raise DataError(f"'{where}': {_NAMES[kind]} files take no key (':{key}'); select columns with columns=[...].")
    selected = None
    if kind == "parquet":  # read only the selected columns
        selected = select_names(keys(path, None, kind), request.columns, request.exclude, where)
    table, named, first_line = _load(path, kind, selected)
    if not named:
        if request.selects:
            raise unnamed(where, (table.num_rows, table.num_columns))
        names = list(table.column_names)
    else:
        names = selected or select_names(table.column_names, request.columns, request.exclude, where)
    parts = [_to_float(table.column(name), name, where, first_line) for name in names]
    data = np.stack(parts, axis=1) if parts else np.empty((0, 0))
    return ArraySource(data, names if named else None, spec=where, dtype=request.dtype)


def _columns(payload: Payload, kind: str) -> tuple[dict[str, np.ndarray], bool]:
    """The columns to write, and whether they carry real names."""
    if payload.single:
        array = payload.first()
        if array.ndim > 2:
            raise DataError(f"{_NAMES[kind]} holds 2-D tables; got an array of shape {array.shape}. Use .h5 or .npy.")
        array = array.reshape(len(array), -1)
        return {f"x{j}": array[:, j] for j in range(array.shape[1])}, False
    arrays = payload.arrays
    if any(not isinstance(a, np.ndarray) or a.ndim != 1 for a in arrays.values()) \
            or len({len(a) for a in arrays.values()}) != 1:
        raise DataError(
            f"{_NAMES[kind]} holds one table of equal-length 1-D columns; the arrays {quoted_list(list(arrays))} "
            "are not. Use .h5 or .npz for arrays of other shapes."
        )
    return dict(arrays), True


def write(tmp: Path, payload: Payload, key: str | None, kind: str) -> None:
    if key is not None:
        raise DataError(f"{_NAMES[kind]} files take no key (':{key}').")
    columns, named = _columns(payload, kind)
    table = pa.table({name: pa.array(array) for name, array in columns.items()})
    if kind == "parquet":
        pq.write_table(table, tmp)
        return
    options = pacsv.WriteOptions(include_header=named)
    with open(tmp, "wb") as handle:
        pacsv.write_csv(table, handle, write_options=options)

