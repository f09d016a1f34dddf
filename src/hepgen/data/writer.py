"""Streamed output: events appended block by block to one file, so memory does not grow with the file.

:class:`BlockWriter` takes named arrays per block — ``{"samples": (b, d), "context": (b, c)}`` or
``{"log_prob": (b,), "score": (b,), "score_per_feature": (b, d)}`` — and appends them to
``path[:key]``, the format chosen by the extension. The file is written under a temporary name
(:func:`hepgen.files.atomic_path`) and renamed over the target only when every one of the
announced ``n_rows`` rows has been written: an error or an interrupt never leaves a partial file,
and an existing file is untouched until then.

Layout. Each array is a *field*; a 2-D field with column names is written as one column per name
(``bare`` fields under the names themselves — features, context — others as ``field_name`` in
tables, ``field/name`` in HDF5); a 1-D field is one column ``field``. A 2-D field without names is
``x0 .. x{d-1}`` (bare) or ``field_0 ..`` in tables — and in every format when another bare field
is named (samples of an unnamed model beside their named context columns form one table).

======== ====================================================================================
.h5      named columns: one 1-D dataset each (``field/name`` in a group for non-bare fields),
         in the group ``key`` if given; unnamed fields: one dataset ``field`` (n, *shape).
         Datasets are chunked and resizable (maxshape (None, ...)), grown per block.
.npy     one unnamed field: a plain array (n, *shape); otherwise one structured array with a
         field per column. Written through ``numpy.lib.format.open_memmap`` of the final shape.
.csv     one table, a header line of column names; rows appended per block (pyarrow CSVWriter).
.parquet one table; one row group per block (pyarrow ParquetWriter).
.root    one TTree ``events`` (or ``key``): a branch per column, fixed-size array branches for
         unnamed fields; one ``TTree.extend`` (a basket) per block (uproot).
.npz     a zip cannot append to several members at once: each member is streamed to a memory-
         mapped ``.npy`` in a temporary folder, and the members are copied into the (uncompressed)
         archive at the end — memory stays bounded, the disk holds the data twice meanwhile.
         Members are named like the HDF5 datasets ('/' becomes '_').
======== ====================================================================================
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.data.formats import kind_of
from hepgen.errors import DataError
from hepgen.files import atomic_path

__all__ = ["BlockWriter", "Column"]


@dataclass(frozen=True)
class Column:
    """One output column (or one whole unnamed array): ``name`` in the file, ``field`` and its index."""

    name: str
    field: str
    index: int | None  # None: the whole field (n, *shape)


def layout(fields: Mapping[str, tuple[tuple[int, ...], list[str] | None, bool]], kind: str) -> list[Column]:
    """The columns of the file for ``fields`` = {name: (per-event shape, column names or None, bare)}.

    HDF5, ``.npz`` and ROOT keep an unnamed field of any shape as one array; the tables (CSV,
    Parquet) and a structured ``.npy`` need every field 1-D or 2-D and give it one column per entry.
    Raises DataError when the layout does not fit the format or two columns get one name.
    """
    table = (kind in ("csv", "parquet") or (kind == "npy" and not _single_array(fields))
             or (any(names is not None and bare for _, names, bare in fields.values())  # named context beside
                 and any(names is None and bare and len(shape) == 1  # unnamed tabular samples (images stay
                         for shape, names, bare in fields.values())))  # one array beside the context columns)
    sep = "/" if kind == "hdf5" else "_"
    out: list[Column] = []
    for field, (shape, names, bare) in fields.items():
        if names is not None and (len(shape) != 1 or shape[0] != len(names)):
            raise DataError(f"{len(names)} column names for '{field}' of per-event shape {shape}.")
        if not shape:
            out.append(Column(field, field, None))
        elif names is not None:
            out += [Column(n if bare else f"{field}{sep}{n}", field, j) for j, n in enumerate(names)]
        elif table:
            if len(shape) != 1:
                raise DataError(f"'{field}' has events of shape {shape}; a {kind} table holds 1-D or 2-D "
                                "arrays only. Write it to .h5, .npz, .root or .npy instead.")
            out += [Column(f"x{j}" if bare else f"{field}_{j}", field, j) for j in range(shape[0])]
        else:
            out.append(Column(field, field, None))
    names_seen = [c.name for c in out]
    twice = sorted({n for n in names_seen if names_seen.count(n) > 1})
    if twice:
        raise DataError(f"the output would hold the column(s) {', '.join(map(repr, twice))} twice; rename them.")
    return out


def _single_array(fields: Mapping[str, Any]) -> bool:
    return len(fields) == 1 and next(iter(fields.values()))[1] is None


class BlockWriter:
    """Append blocks of named arrays to ``spec`` (``path[:key]``); ``n_rows`` rows in all.

    Use as a context manager: ``with BlockWriter(out, n, columns={...}) as w: w.write({...})``.
    ``columns`` names the last axis of 2-D fields, ``bare`` lists the fields written under their
    column names alone. The fields, their shapes and dtypes are fixed by the first block. On a
    clean exit with all ``n_rows`` written the file replaces ``spec``; otherwise nothing is left.
    """

    def __init__(self, spec: str | os.PathLike, n_rows: int, *, columns: Mapping[str, Sequence[str] | None] | None = None,
                 bare: Sequence[str] = ()) -> None:
        from hepgen.data.io import parse_spec

        self.path, self.key = parse_spec(spec)
        self.kind = kind_of(self.path)
        if self.key is not None and self.kind in ("npy", "csv", "parquet"):
            raise DataError(f"'{self.path}': a {self.kind} file takes no key (':{self.key}').")
        if self.path.is_dir():
            raise DataError(f"Cannot write '{self.path}': it is a directory.")
        if int(n_rows) < 1:
            raise DataError(f"Nothing to write to '{self.path}': {n_rows} rows.")
        self.n_rows = int(n_rows)
        self.columns = {k: (None if v is None else list(v)) for k, v in (columns or {}).items()}
        self.bare = set(bare)
        self.rows_written = 0
        self.blocks_written = 0
        self._stack: ExitStack | None = None
        self._backend: _Backend | None = None
        self._tmp: Path | None = None

    def __enter__(self) -> BlockWriter:
        self._stack = ExitStack()
        try:
            self._tmp = self._stack.enter_context(atomic_path(self.path))
        except OSError as exc:
            raise DataError(f"Cannot write '{self.path}': {exc}.") from exc
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._stack is not None
        try:
            if exc_type is None:
                if self.rows_written != self.n_rows:
                    raise DataError(f"'{self.path}': {self.rows_written} of {self.n_rows} rows were written.")
                if self._backend is not None:
                    self._backend.close()
            elif self._backend is not None:
                self._backend.abort()
        except BaseException as error:
            self._stack.__exit__(type(error), error, error.__traceback__)
            if isinstance(error, OSError):
                raise DataError(f"Cannot write '{self.path}': {error}.") from error
            raise
        try:
            self._stack.__exit__(exc_type, exc, tb)
        except OSError as error:
            raise DataError(f"Cannot write '{self.path}': {error}.") from error

    def write(self, block: Mapping[str, Any]) -> None:
        """Append one block ``{field: (b, *shape)}``; every field has the same ``b`` rows."""
        if self._tmp is None:
            raise RuntimeError("BlockWriter.write outside its 'with' block")
        arrays = {k: np.asarray(v) for k, v in block.items()}
        arrays = {k: (v if v.ndim else v.reshape(1)) for k, v in arrays.items()}
        lengths = {len(v) for v in arrays.values()}
        if len(lengths) != 1:
            raise DataError(f"a block of fields with different lengths: { {k: len(v) for k, v in arrays.items()} }")
        rows = lengths.pop()
        if self.rows_written + rows > self.n_rows:
            raise DataError(f"'{self.path}': more than the announced {self.n_rows} rows.")
        if self._backend is None:
            fields = {k: (tuple(v.shape[1:]), self.columns.get(k), k in self.bare) for k, v in arrays.items()}
            dtypes = {k: _float_dtype(v.dtype, k) for k, v in arrays.items()}
            self._fields = list(fields)
            self._layout = layout(fields, self.kind)
            self._shapes = {k: s for k, (s, _, _) in fields.items()}
            self._backend = _BACKENDS[self.kind](self._tmp, self.key, self.n_rows, self._layout, self._shapes, dtypes)
        if list(arrays) != self._fields or any(arrays[k].shape[1:] != self._shapes[k] for k in self._fields):
            raise DataError(f"block fields {[(k, v.shape[1:]) for k, v in arrays.items()]} differ from the first "
                            f"block's {[(k, self._shapes[k]) for k in self._fields]}")
        columns = {c.name: (arrays[c.field] if c.index is None else arrays[c.field][:, c.index]) for c in self._layout}
        try:
            self._backend.append(columns, self.rows_written, rows)
        except OSError as exc:
            raise DataError(f"Cannot write '{self.path}': {exc}.") from exc
        self.rows_written += rows
        self.blocks_written += 1


def _float_dtype(dtype: np.dtype, name: str) -> np.dtype:
    if dtype.kind not in "fiub":
        raise DataError(f"'{name}' holds {dtype} values; outputs are numbers.")
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


class _Backend(ABC):
    """One output format: ``open`` the temporary file, ``append`` blocks of columns, ``close`` it."""

    def __init__(self, tmp: Path, key: str | None, n_rows: int, columns: list[Column],
                 shapes: dict[str, tuple[int, ...]], dtypes: dict[str, np.dtype]) -> None:
        self.tmp, self.key, self.n_rows = tmp, key, n_rows
        self.shapes = {c.name: (() if c.index is not None else shapes[c.field]) for c in columns}
        self.whole = len(columns) == 1 and columns[0].index is None  # one unnamed array, no table
        self.dtypes = {c.name: dtypes[c.field] for c in columns}
        self.open()

    def open(self) -> None: ...

    @abstractmethod
    def append(self, columns: dict[str, np.ndarray], start: int, rows: int) -> None:
        """Write ``rows`` rows of every column, starting at row ``start``."""

    def close(self) -> None: ...

    def abort(self) -> None:
        try:
            self.close()
        except Exception:  # the temporary file is removed anyway
            pass


class _Hdf5(_Backend):
    def open(self) -> None:
        import h5py

        self.handle = h5py.File(self.tmp, "w", track_order=True)
        single = len(self.shapes) == 1 and self.key is not None
        root = self.handle.create_group(self.key, track_order=True) if self.key and not single else self.handle
        self.datasets = {}
        for name, shape in self.shapes.items():
            if single:  # file.h5:key names the dataset of a single array
                parent, leaf = self.handle, self.key
            else:
                parent = root
                *groups, leaf = name.split("/")
                for part in groups:
                    parent = parent[part] if part in parent else parent.create_group(part, track_order=True)
            chunk_rows = max(1, min(self.n_rows, (1 << 18) // max(1, int(np.prod(shape)))))
            self.datasets[name] = parent.create_dataset(leaf, shape=(0, *shape), maxshape=(None, *shape),
                                                        dtype=self.dtypes[name], chunks=(chunk_rows, *shape))

    def append(self, columns, start, rows):
        for name, array in columns.items():
            ds = self.datasets[name]
            ds.resize(start + rows, axis=0)
            ds[start:start + rows] = array

    def close(self):
        self.handle.close()


class _Npy(_Backend):
    def open(self):
        from numpy.lib.format import open_memmap

        self.structured = not self.whole
        if self.whole:
            (name, shape), = self.shapes.items()
            self.array = open_memmap(self.tmp, mode="w+", dtype=self.dtypes[name], shape=(self.n_rows, *shape))
        else:
            dtype = np.dtype([(n, self.dtypes[n]) for n in self.shapes])
            self.array = open_memmap(self.tmp, mode="w+", dtype=dtype, shape=(self.n_rows,))

    def append(self, columns, start, rows):
        if self.structured:
            for name, array in columns.items():
                self.array[name][start:start + rows] = array
        else:
            self.array[start:start + rows] = next(iter(columns.values()))

    def close(self):
        self.array.flush()
        del self.array


class _Npz(_Backend):
    def open(self):
        from numpy.lib.format import open_memmap

        self.folder = Path(tempfile.mkdtemp(prefix="hepgen-npz-"))
        single = len(self.shapes) == 1 and self.key is not None
        self.members = {}
        for name, shape in self.shapes.items():
            member = (self.key if single else name).replace("/", "_")
            self.members[name] = (member, open_memmap(self.folder / f"{member}.npy", mode="w+",
                                                      dtype=self.dtypes[name], shape=(self.n_rows, *shape)))

    def append(self, columns, start, rows):
        for name, array in columns.items():
            self.members[name][1][start:start + rows] = array

    def close(self):
        try:
            with zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
                for member, array in self.members.values():
                    array.flush()
                    del array
                    with open(self.folder / f"{member}.npy", "rb") as src, \
                            archive.open(f"{member}.npy", "w", force_zip64=True) as dst:
                        shutil.copyfileobj(src, dst, 1 << 22)
        finally:
            self.members.clear()
            shutil.rmtree(self.folder, ignore_errors=True)

    def abort(self):
        self.members.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


class _Arrow(_Backend):
    def _table(self, columns):
        import pyarrow as pa

        return pa.table({name: pa.array(np.ascontiguousarray(a)) for name, a in columns.items()})

    def append(self, columns, start, rows):
        table = self._table(columns)
        if self.writer is None:
            self.writer = self._make(table.schema)
        self.writer.write_table(table)

    def open(self):
        self.writer = None

    def close(self):
        if self.writer is not None:
            self.writer.close()


class _Csv(_Arrow):
    def _make(self, schema):
        import pyarrow.csv as pacsv

        self.sink = open(self.tmp, "wb")
        return pacsv.CSVWriter(self.sink, schema, write_options=pacsv.WriteOptions(include_header=True))

    def close(self):
        super().close()
        if self.writer is not None:
            self.sink.close()


class _Parquet(_Arrow):
    def _make(self, schema):
        import pyarrow.parquet as pq

        return pq.ParquetWriter(self.tmp, schema)


class _Root(_Backend):
    def open(self):
        import uproot

        self.file = uproot.recreate(self.tmp)
        types = {name: np.dtype((self.dtypes[name], shape)) if shape else self.dtypes[name]
                 for name, shape in self.shapes.items()}
        try:
            self.tree = self.file.mktree(self.key or "events", types)
        except (TypeError, ValueError) as exc:
            self.file.close()
            raise DataError(f"Cannot write these arrays as a ROOT TTree: {exc}.") from exc

    def append(self, columns, start, rows):
        self.tree.extend({name: np.ascontiguousarray(a) for name, a in columns.items()})

    def close(self):
        self.file.close()


_BACKENDS: dict[str, type[_Backend]] = {"hdf5": _Hdf5, "npy": _Npy, "npz": _Npz, "csv": _Csv, "parquet": _Parquet,
                                         "root": _Root}
