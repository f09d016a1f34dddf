"""NumPy files: ``.npy`` (one array, memory-mapped, so it streams) and ``.npz`` (``file.npz[:array]``, loaded whole).

A plain array (n, *event_shape) is read as is with columns None (a 1-D array is (n, 1)); a
structured array gives columns from its fields. An ``.npz`` without a key holding one array reads
that array; several equal-length 1-D arrays read as the columns of one table; otherwise name one.
Writing: ``.npy`` takes one array (with ``columns``, a structured array so the names survive);
``.npz`` one member per key (a single array is member ``data`` or the key).
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.data.formats.base import (
    ArraySource,
    FileSource,
    Payload,
    Request,
    stack_columns,
)
from hepgen.data.formats.messages import (
    quoted_list,
    require_numeric,
    select_names,
    unknown_name,
    unnamed,
    unreadable,
)
from hepgen.errors import DataError

_NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError)


def _header_dtype(handle: Any) -> np.dtype | None:
    """The dtype in the header of the ``.npy`` stream ``handle``, or None when it cannot be read."""
    try:
        version = np.lib.format.read_magic(handle)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(
            version, lambda fh: np.lib.format._read_array_header(fh, version))
        return np.dtype(read_header(handle)[2])
    except Exception:  # noqa: BLE001 - a damaged header is reported by the caller as unreadable
        return None


def _python_objects(where: str, dtype: np.dtype) -> DataError:
    return DataError(
        f"'{where}' holds Python objects (NumPy dtype {dtype}), not numbers: it was saved with "
        "allow_pickle=True (e.g. from a list of mixed types or of strings and None), and loading it would "
        "mean running pickled code, which hepgen never does. Convert it to a numeric array "
        "(np.asarray(x, dtype=float)) and save it again."
    )


def _memmap(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        try:
            with open(path, "rb") as handle:
                dtype = _header_dtype(handle)
        except OSError:
            dtype = None
        if dtype is not None and dtype.hasobject:
            raise _python_objects(str(path), dtype) from None
        raise unreadable(path, "NumPy .npy", exc) from exc


def _fields(array: np.ndarray, where: str, request: Request) -> list[str]:
    names = select_names(list(array.dtype.names), request.columns, request.exclude, where, "field")
    for name in names:
        sub = array.dtype.fields[name][0]
        if sub.shape:
            raise DataError(f"Field '{name}' of '{where}' holds arrays of shape {sub.shape}; only scalar fields are read.")
        require_numeric(sub, where, name)
    if array.ndim != 1:
        raise DataError(f"The structured array '{where}' has shape {array.shape}; expected (n,).")
    return names


class NpySource(FileSource):
    """Rows of a memory-mapped ``.npy`` file (plain, or the ``fields`` of a structured array)."""

    format_name = "NumPy .npy"

    def __init__(self, path: Path, fields: list[str] | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path, self.fields = path, fields

    def _open(self) -> Any:
        return _Closing(_memmap(self.path))

    def _read_file(self, handle: Any, start: int, stop: int) -> tuple[np.ndarray, None]:
        rows = handle.array[start:stop]
        if self.fields is not None:
            return stack_columns([rows[name] for name in self.fields]), None
        return rows.reshape(stop - start, *self.event_shape), None  # Source copies it off the read-only map


class _Closing:
    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def close(self) -> None:
        self.array = None  # the map is released when the last view of it is gone


def keys(path: Path, key: str | None, kind: str) -> list[str]:
    if kind == "npy":
        return list(_memmap(path).dtype.names or [])
    with _npz(path) as archive:
        if key is None:
            return list(archive.files)
        return list(_npz_member(archive, key, path).dtype.names or [])


def _npz(path: Path) -> Any:
    try:
        return np.load(path, allow_pickle=False)
    except _NPZ_ERRORS as exc:
        raise unreadable(path, "NumPy .npz", exc) from exc


def _npz_member(archive: Any, key: str, path: Path) -> np.ndarray:
    if key not in archive.files:
        raise unknown_name("array", key, archive.files, str(path))
    try:
        return archive[key]
    except _NPZ_ERRORS as exc:
        try:
            with archive.zip.open(f"{key}.npy") as handle:
                dtype = _header_dtype(handle)
        except (*_NPZ_ERRORS, AttributeError):
            dtype = None
        if dtype is not None and dtype.hasobject:
            raise _python_objects(f"{path}:{key}", dtype) from None
        raise unreadable(path, "NumPy .npz", exc) from exc


def open_source(path: Path, key: str | None, request: Request, kind: str) -> Any:
    where = request.spec
    common = {"spec": where, "dtype": request.dtype}
    if kind == "npy":
        if key is not None:
            raise DataError(f"'{where}': a .npy file holds one array and takes no key (':{key}').")
        array = _memmap(path)
        if array.ndim == 0:
            raise DataError(f"'{where}' holds a single number (a 0-d array), not events.")
        if array.dtype.names is not None:
            fields = _fields(array, where, request)
            return NpySource(path, fields, n_rows=len(array), event_shape=(len(fields),), columns=fields, **common)
        require_numeric(array.dtype, where)
        if request.selects:
            raise unnamed(where, array.shape)
        return NpySource(path, None, n_rows=len(array), event_shape=array.shape[1:] or (1,), **common)
    with _npz(path) as archive:
        members = list(archive.files)
        if key is None and len(members) != 1:
            arrays = {name: _npz_member(archive, name, path) for name in members}
            lengths = {len(a) for a in arrays.values() if a.ndim == 1 and a.dtype.names is None}
            if not members or len(lengths) != 1 or any(a.ndim != 1 or a.dtype.names for a in arrays.values()):
                raise DataError(
                    f"'{where}' holds {len(members)} arrays ({quoted_list(members)}) that are not equal-length "
                    f"1-D columns of one table; name the one to read as '{path}:{members[0] if members else 'KEY'}'."
                )
            names = select_names(members, request.columns, request.exclude, where)
            for name in names:
                require_numeric(arrays[name].dtype, where, name)
            return ArraySource(stack_columns([arrays[name] for name in names]), names, **common)
        array = _npz_member(archive, key or members[0], path)
    if array.ndim == 0:
        raise DataError(f"'{where}' holds a single number (a 0-d array), not events.")
    if array.dtype.names is not None:
        fields = _fields(array, where, request)
        return ArraySource(stack_columns([array[name] for name in fields]), fields, **common)
    require_numeric(array.dtype, where)
    if request.selects:
        raise unnamed(where, array.shape)
    return ArraySource(array, **common)


def write(tmp: Path, payload: Payload, key: str | None, kind: str) -> None:
    """``.npy``: one array (a table becomes a structured array); ``.npz``: one member per key."""
    for name, array in payload.arrays.items():
        if not isinstance(array, np.ndarray):
            raise DataError(f"Array '{name}' is a {type(array).__name__}; NumPy files take NumPy arrays.")
    with open(tmp, "wb") as handle:
        if kind == "npz":
            if key is not None and not payload.single:
                raise DataError(f"A .npz file has no groups: ':{key}' names the member for a single array only.")
            arrays = {key or "data": payload.first()} if payload.single else payload.arrays
            np.savez(handle, **arrays)
            return
        if key is not None:
            raise DataError(f"A .npy file holds one array and takes no key (':{key}'); use .npz or .h5 for named arrays.")
        if payload.single:
            np.save(handle, payload.first(), allow_pickle=False)
            return
        arrays = payload.arrays
        if any(a.ndim != 1 for a in arrays.values()) or len({len(a) for a in arrays.values()}) != 1:
            raise DataError(
                f"A .npy file holds one array; the arrays {quoted_list(list(arrays))} are not equal-length "
                "1-D columns of one table. Write them to .npz or .h5 instead."
            )
        table = np.empty(len(payload.first()), dtype=[(name, a.dtype) for name, a in arrays.items()])
        for name, array in arrays.items():
            table[name] = array
        np.save(handle, table, allow_pickle=False)
