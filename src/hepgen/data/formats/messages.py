"""User-facing error messages shared by every file format: one paragraph naming file, key and row.

Each helper *returns* a :class:`~hepgen.errors.DataError` so that call sites read
``raise unknown_name(...)`` and tracebacks point at the caller.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hepgen.errors import DataError

_LIST_LIMIT = 20


def quoted_list(names: Sequence[str], limit: int = _LIST_LIMIT) -> str:
    """``'a', 'b', 'c'`` — at most ``limit`` names, then ``... and N more``."""
    shown = ", ".join(f"'{name}'" for name in names[:limit])
    if len(names) > limit:
        shown += f", ... and {len(names) - limit} more"
    return shown or "(none)"


def missing_file(path: Path) -> DataError:
    """The file does not exist: say whether its directory does, and suggest near names in it."""
    parent = path.parent
    if parent.is_dir():
        siblings = sorted(entry.name for entry in parent.iterdir())
        close = difflib.get_close_matches(path.name, siblings, n=3, cutoff=0.6)
        hint = f" Files with similar names there: {quoted_list(close)}." if close else ""
        return DataError(f"Data file '{path}' does not exist (its directory '{parent.absolute()}' does).{hint}")
    return DataError(
        f"Data file '{path}' does not exist, and neither does its directory '{parent.absolute()}'; "
        "check the path (relative paths are taken from the current working directory)."
    )


def unknown_name(what: str, name: str, available: Sequence[str], where: str) -> DataError:
    """``what`` ('column', 'key', 'branch', 'tree') ``name`` is not in ``where``: suggest the nearest."""
    available = list(available)
    hint = ""
    lowered = {candidate.lower(): candidate for candidate in available}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    if close:
        hint = f" Did you mean '{lowered[close[0]]}'?"
    return DataError(
        f"No {what} '{name}' in '{where}'.{hint} Available {what}s: {quoted_list(available)}."
    )


def unreadable(path: Path, fmt: str, exc: BaseException) -> DataError:
    """A library failed to open or decode ``path``: truncated, corrupted or of another format."""
    reason = str(exc).strip() or type(exc).__name__
    return DataError(
        f"Cannot read '{path}' as {fmt}: {reason}. The file may be truncated, corrupted, still being "
        f"written, or not a {fmt} file despite its extension."
    )


def unnamed(where: str, shape: tuple[int, ...]) -> DataError:
    """``columns=``/``exclude=`` were given for an array that has no column names."""
    return DataError(
        f"'{where}' holds an unnamed array of shape {shape}; it has no column names, so columns or "
        "exclude cannot select from it. Select a dataset/array by key instead (path:key), or store "
        "the data with named columns."
    )


def require_numeric(dtype: np.dtype, where: str, name: str | None = None) -> None:
    """Raise if ``dtype`` is not bool, integer or floating point."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf":
        what = f"column '{name}'" if name else "the data"
        raise DataError(
            f"In '{where}', {what} has the non-numeric type {dtype}; hepgen reads only numbers "
            "(bool, integer, float). Exclude or convert that column."
        )


def select_names(
    available: Sequence[str],
    columns: Sequence[str] | str | None,
    exclude: Sequence[str] | str,
    where: str,
    what: str = "column",
) -> list[str]:
    """The names to read: ``columns`` (all of ``available`` if None) minus ``exclude``, validated.

    Every requested or excluded name must exist (else a DataError with the nearest match); the
    result keeps the order of ``columns`` (or of ``available``) and is never empty.
    """
    available = list(available)
    if isinstance(columns, str):
        columns = [columns]
    if isinstance(exclude, str):
        exclude = [exclude]
    selected = available if columns is None else list(columns)
    known = set(available)
    seen: set[str] = set()
    for name in selected:
        if name not in known:
            raise unknown_name(what, name, available, where)
        if name in seen:
            raise DataError(f"The {what} '{name}' of '{where}' is selected twice.")
        seen.add(name)
    for name in exclude:
        if name not in known:
            raise unknown_name(what, name, available, where)
    dropped = set(exclude)
    selected = [name for name in selected if name not in dropped]
    if not selected:
        raise DataError(
            f"No {what}s left to read from '{where}' after excluding {quoted_list(list(exclude))}."
        )
    return selected


def describe_position(index: tuple[int, ...], columns: Sequence[str] | None) -> str:
    """Name the place of one value inside an event: ``column 'pt'``, ``entry 3, column 'pt'``, ``index (3, 5)``."""
    if not index:
        return "the only value of the event"
    if columns is not None:
        column = f"column '{columns[index[-1]]}'"
        inner = index[:-1]
        if not inner:
            return column
        return f"entry {inner[0] if len(inner) == 1 else inner} of {column}"
    if len(index) == 1:
        return f"column {index[0]}"
    return f"feature index {index}"


def check_finite(
    data: np.ndarray,
    where: str,
    columns: Sequence[str] | None = None,
    *,
    row_offset: int = 0,
    raw: np.ndarray | None = None,
    partial: bool = False,
) -> None:
    """Raise a DataError if ``data`` (n, *event_shape) holds NaN or ±inf.

    The message gives the count, the first offending absolute row (``row_offset`` + local row) and
    column; ``partial`` says ``data`` is a row range of a larger source (the message names the range).
    ``raw`` is the array before conversion: if it is finite where ``data`` is not, the value
    overflowed the target float type and the message says so.
    """
    if data.dtype.kind != "f":
        return
    finite = np.isfinite(data)
    if finite.all():
        return
    bad = ~finite
    count = int(bad.sum())
    first = np.unravel_index(int(np.argmax(bad.reshape(-1))), data.shape)
    row = row_offset + int(first[0])
    position = describe_position(tuple(int(i) for i in first[1:]), columns)
    span = f" in rows {row_offset}-{row_offset + len(data) - 1}" if partial else ""
    original = raw[first] if raw is not None and raw.shape == data.shape else None
    if original is not None and np.isfinite(original):
        cause = (
            f"the value {float(original)!r} at row {row}, {position} is too large for {data.dtype}; read "
            "with dtype=np.float64 or rescale it"
        )
    else:
        cause = f"the first is {float(data[first])!r} at row {row}, {position}"
    raise DataError(
        f"'{where}' holds {count} non-finite value(s) (NaN or inf){span}: {cause}. hepgen never "
        "trains on NaN; drop or fix these events first (rows count from 0)."
    )
