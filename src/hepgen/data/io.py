"""Reading and writing event data: ``path[:key]`` specs for npy, npz, HDF5, ROOT, CSV and Parquet.

Rows are events. ``read`` returns a :class:`Table` ``data (n, *event_shape)`` (float32 unless
asked), with column names for tabular data; ``open_source`` returns a :class:`Source` that reads
row ranges, so HDF5, ROOT and ``.npy`` files larger than memory can be streamed (CSV, Parquet and
``.npz`` are loaded whole). ``write`` picks the format from the extension and replaces the file
atomically. Every problem with the user's data raises :class:`~hepgen.errors.DataError` naming the
file, the key/column and, where it applies, the first bad row (rows count from 0).

Layouts per format are described in the modules of :mod:`hepgen.data.formats`; in short: a plain
array is ``(n, *event_shape)`` with columns None (a 1-D array is ``(n, 1)``); compound/structured
arrays, HDF5 groups of 1-D datasets, ROOT flat branches, CSV and Parquet give ``(n, n_columns)``
with names; ROOT jagged branches give ``(n, jagged_length, n_branches)`` with a ``(n,
jagged_length)`` mask.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.data.formats import EXTENSIONS, MULTI_KIND, backend, kind_of
from hepgen.data.formats.base import ArraySource, Payload, Request, Source
from hepgen.data.formats.messages import missing_file, quoted_list, require_numeric
from hepgen.errors import ConfigError, DataError
from hepgen.files import atomic_path

__all__ = [
    "ArraySource",
    "DataError",
    "DataSpec",
    "Source",
    "Table",
    "available_keys",
    "open_source",
    "parse_spec",
    "read",
    "read_column",
    "write",
]

SUPPORTED_EXTENSIONS = tuple(EXTENSIONS)


def parse_spec(spec: str | os.PathLike | DataSpec) -> tuple[Path, str | None]:
    """Split ``"path[:key]"`` (uproot's convention) into ``(path, key or None)``.

    The split is at the last ``':'`` whose left part names an existing file or ends in a known
    extension, so directories with colons work; the key may contain ``'/'`` (HDF5 groups, ROOT
    directories). A spec naming an existing file as a whole is never split. ``~`` is expanded.
    A :class:`DataSpec` gives its own ``(path, key)``.
    """
    if isinstance(spec, DataSpec):
        return spec.path, spec.key
    text = os.fsdecode(os.fspath(spec))
    whole = Path(text).expanduser()
    if whole.is_file():
        return whole, None
    for index in range(len(text) - 1, 0, -1):
        if text[index] != ":":
            continue
        left = text[:index]
        path = Path(left).expanduser()
        if left.lower().endswith(SUPPORTED_EXTENSIONS) or path.is_file():
            return path, text[index + 1 :] or None
    return whole, None


def _names(value: Sequence[str] | str | None, what: str) -> tuple[str, ...] | None:
    """Column names from a sequence or a comma-separated string (``"a,b,c"``); None stays None."""
    if value is None:
        return None
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else list(value)
    if not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"{what} must be column names (strings, comma separated on the command line), got {value!r}.")
    return tuple(names)


@dataclass(frozen=True)
class DataSpec:
    """Where events come from and which of their columns to read: a file, a key, and a selection.

    ``path``/``key`` as in :func:`parse_spec`; ``columns`` (None: all) and ``exclude`` select named
    columns (fields, group members, ROOT branches); ``jagged_length`` pads/truncates jagged ROOT
    branches to that many entries. :func:`open_source`, :func:`read` and everything built on them
    (``Model.fit``, the engine) accept a DataSpec wherever they accept a ``"path[:key]"`` string.
    Columns passed to :func:`open_source` explicitly take the place of the spec's ``columns`` and
    ``exclude`` (that is how a weight column is read from the same file); its ``exclude`` adds to them.

    ``os.fspath(spec)`` and ``str(spec)`` give the ``"path:key"`` text it was parsed from, so a
    DataSpec goes wherever such a string goes; :meth:`describe` adds the selection.
    """

    path: Path
    key: str | None = None
    columns: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    jagged_length: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path).expanduser())
        object.__setattr__(self, "key", self.key or None)
        object.__setattr__(self, "columns", _names(self.columns, "columns"))
        object.__setattr__(self, "exclude", _names(self.exclude, "exclude") or ())
        _check_jagged_length(self.jagged_length)

    @classmethod
    def parse(
        cls,
        spec: str | os.PathLike | DataSpec,
        *,
        columns: Sequence[str] | str | None = None,
        exclude: Sequence[str] | str = (),
        jagged_length: int | None = None,
    ) -> DataSpec:
        """``"file.root:tree"`` (or a DataSpec) with a selection; given values replace the spec's own.

        Branch-level keys need no selection: ``"file.root:tree/branch"``,
        ``"file.root:tree/a,b"`` and ``"file.h5:group/dataset"`` are resolved by the format when
        the file is opened.
        """
        if isinstance(spec, DataSpec):
            return cls(spec.path, spec.key, spec.columns if columns is None else columns,
                       tuple(spec.exclude) + tuple(_names(exclude, "exclude") or ()),
                       spec.jagged_length if jagged_length is None else jagged_length)
        path, key = parse_spec(spec)
        return cls(path, key, columns, exclude, jagged_length)

    @property
    def selects(self) -> bool:
        """Whether the spec carries a selection (columns, exclude or jagged_length)."""
        return self.columns is not None or bool(self.exclude) or self.jagged_length is not None

    def __fspath__(self) -> str:
        return str(self)

    def describe(self) -> dict[str, Any]:
        """What a run's config.yaml records: the spec and the selection that was asked for."""
        return {"spec": str(self), "columns": None if self.columns is None else list(self.columns),
                "exclude": list(self.exclude), "jagged_length": self.jagged_length}

    def __str__(self) -> str:
        return f"{self.path}:{self.key}" if self.key else str(self.path)


def _check_jagged_length(jagged_length: Any) -> None:
    if jagged_length is not None and (isinstance(jagged_length, bool) or not isinstance(jagged_length, (int, np.integer))
                                      or jagged_length < 1):
        raise ConfigError(f"jagged_length must be a positive integer, got {jagged_length!r}.")


@dataclass
class Table:
    """Events read from a file.

    ``data``: (n, *event_shape), float32 unless asked; ``columns``: names of the last axis of
    ``data`` (None for unnamed arrays/images); ``mask``: (n, max_length) bool, True on real entries,
    for padded jagged ROOT branches, else None; ``source``: the spec it came from; ``units``:
    ``{column: unit}`` where the file records them (HDF5 ``unit`` attributes, as ``hepgen data``
    writes them), else ``{}``.
    """

    data: np.ndarray
    columns: list[str] | None
    mask: np.ndarray | None
    source: str
    units: dict[str, str] = field(default_factory=dict)

    def column(self, name: str) -> np.ndarray:
        """The values ``(n,)`` of the named column, or a DataError listing the columns there are."""
        if not self.columns or name not in self.columns:
            have = f"its columns: {quoted_list(self.columns)}" if self.columns else "it has no named columns"
            raise DataError(f"'{self.source}' has no column '{name}' ({have}).")
        return self.data[..., self.columns.index(name)]

    def __len__(self) -> int:
        return len(self.data)


def _request(spec, columns, exclude, jagged_length, dtype) -> Request:
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ConfigError(f"dtype must be a floating-point type (float32 or float64), got {dtype}.")
    if isinstance(columns, str):
        columns = [columns]
    if isinstance(exclude, str):
        exclude = [exclude]
    if isinstance(spec, DataSpec):  # explicit columns replace the spec's selection; exclude adds to it
        if columns is None:
            columns = None if spec.columns is None else list(spec.columns)
            exclude = list(spec.exclude) + [name for name in exclude if name not in spec.exclude]
        jagged_length = spec.jagged_length if jagged_length is None else jagged_length
    _check_jagged_length(jagged_length)
    return Request(
        spec=str(spec) if isinstance(spec, DataSpec) else os.fsdecode(os.fspath(spec)),
        columns=None if columns is None else list(columns),
        exclude=tuple(exclude),
        jagged_length=None if jagged_length is None else int(jagged_length),
        dtype=dtype,
    )


def _existing(path: Path) -> str:
    """The format kind of an existing data file, or a DataError."""
    if not path.exists():
        raise missing_file(path)
    if path.is_dir():
        raise DataError(f"'{path}' is a directory, not a data file ({', '.join(SUPPORTED_EXTENSIONS)}).")
    return kind_of(path)


def _call(kind: str, name: str, *args: Any) -> Any:
    function = getattr(backend(kind), name)
    return function(*args, kind) if kind in MULTI_KIND else function(*args)


def open_source(
    spec: str | os.PathLike | DataSpec,
    columns: Sequence[str] | None = None,
    *,
    exclude: Sequence[str] = (),
    jagged_length: int | None = None,
    dtype: Any = np.float32,
) -> Source:
    """A :class:`Source` over the events of ``spec`` (``path[:key]``), for row-range reads.

    HDF5 and ROOT files are read slice by slice and ``.npy`` through a memory map, so memory does
    not grow with file size; CSV, Parquet and ``.npz`` are loaded whole. ``columns`` selects and
    ``exclude`` drops named columns (fields, group members, branches); ``jagged_length`` pads or
    truncates jagged ROOT branches. ``spec`` may be a :class:`DataSpec` carrying that selection
    (explicit ``columns`` replace its columns and exclude; ``exclude`` adds to them). Raises DataError on a missing/corrupt file, unknown key or
    column, non-numeric data or 0 events. Use as a context manager, or call ``close()``.
    """
    request = _request(spec, columns, exclude, jagged_length, dtype)
    path, key = parse_spec(spec)
    kind = _existing(path)
    source = None
    if kind == "hdf5":  # a field dataset (top tagging, LHC Olympics, JetNet) read in hepgen's jet layout
        from hepgen.data.importers import direct_source

        source = direct_source(path, key, request)
    if source is None:
        source = _call(kind, "open_source", path, key, request)
    if len(source) == 0:
        source.close()
        raise DataError(f"'{request.spec}' holds 0 events (rows): there is nothing to read.")
    return source


def read(
    spec: str | os.PathLike | DataSpec,
    columns: Sequence[str] | None = None,
    *,
    exclude: Sequence[str] = (),
    jagged_length: int | None = None,
    dtype: Any = np.float32,
    check_finite: bool = True,
) -> Table:
    """All events of ``spec`` in memory as a :class:`Table` (see :func:`open_source` for the arguments).

    With ``check_finite`` (the default) any NaN/inf raises a DataError giving their count and the
    first row and column. The file is opened once: the Table carries the columns' ``units`` too, and a
    command that needs several columns of one DATA argument (features, flags, weights) reads them all
    here and takes each by :meth:`Table.column`.
    """
    with open_source(spec, columns, exclude=exclude, jagged_length=jagged_length, dtype=dtype) as source:
        data, mask = source.read_masked(0, len(source), check_finite=check_finite)
        return Table(data=data, columns=source.columns, mask=mask, source=source.spec, units=dict(source.units))


def read_column(spec: str | os.PathLike | DataSpec, column: str | None = None) -> np.ndarray:
    """One number per event as float64 ``(n,)``, e.g. per-event weights (``--weights file:COL``).

    ``column`` names a column of a table; None accepts a spec holding a single column or a 1-D array.
    """
    with open_source(spec, None if column is None else [column], dtype=np.float64) as source:
        if source.event_shape != (1,) or source.has_mask:
            what = f"column '{column}' of '{source.spec}'" if column else f"'{source.spec}'"
            names = f" (columns: {quoted_list(source.columns)})" if source.columns and column is None else ""
            raise DataError(
                f"Expected one number per event, but {what} holds events of shape {source.event_shape}"
                f"{names}; name a single column."
            )
        return source.read_rows(0, len(source))[:, 0]


def column_units(spec: str | os.PathLike) -> dict[str, str]:
    """Units of the columns of ``spec`` where the file records them (HDF5 ``unit`` attributes, as
    ``hepgen data`` writes them: ``{"pt": "GeV", ...}``); ``{}`` for other formats or unlabelled data."""
    path, key = parse_spec(spec)
    if not path.is_file() or kind_of(path) != "hdf5":
        return {}
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            node = handle[key] if key else handle
            if isinstance(node, h5py.Dataset):
                unit = node.attrs.get("unit")
                return {key.rsplit("/", 1)[-1] if key else "data": str(unit)} if unit is not None and str(unit) else {}
            return {name: str(member.attrs["unit"]) for name, member in node.items()
                    if isinstance(member, h5py.Dataset) and str(member.attrs.get("unit", ""))}
    except (OSError, KeyError):
        return {}


def available_keys(path: str | os.PathLike) -> list[str]:
    """What ``path`` offers to select: HDF5 datasets and groups, ROOT trees, ``.npz`` arrays,
    CSV/Parquet columns, ``.npy`` structured fields.

    ``path`` may carry a key: ``file.h5:group`` lists below the group, ``file.root:tree`` lists the
    tree's branches, a compound HDF5 dataset or structured ``.npz`` member lists its fields.
    """
    file, key = parse_spec(path)
    return _call(_existing(file), "keys", file, key)


def _is_awkward(array: Any) -> bool:
    return type(array).__module__.split(".")[0] == "awkward"


def _payload(arrays: Mapping[str, Any] | np.ndarray, columns: Sequence[str] | None) -> Payload:
    if isinstance(arrays, Mapping):
        if columns is not None:
            raise ValueError("columns= names the columns of a single 2-D array; a mapping already names its arrays.")
        if not arrays:
            raise DataError("Nothing to write: the mapping of arrays is empty.")
        named: dict[str, Any] = {}
        for name, array in arrays.items():
            if not isinstance(name, str) or not name:
                raise DataError(f"Array names must be non-empty strings, got {name!r}.")
            named[name] = array if _is_awkward(array) else np.asarray(array)
            if not _is_awkward(array):
                require_numeric(named[name].dtype, "<array to write>", name)
        return Payload(named, single=False)
    array = np.asarray(arrays)
    require_numeric(array.dtype, "<array to write>")
    if array.ndim == 0:
        raise DataError("Nothing to write: a 0-d array holds no events.")
    if columns is None:
        return Payload({"data": array}, single=True)
    columns = [columns] if isinstance(columns, str) else list(columns)
    if array.ndim != 2 or array.shape[1] != len(columns):
        raise DataError(f"{len(columns)} column names for an array of shape {array.shape}; expected (n, {len(columns)}).")
    if len(set(columns)) != len(columns) or not all(isinstance(c, str) and c for c in columns):
        raise DataError(f"Column names must be distinct non-empty strings, got {columns}.")
    return Payload({name: np.ascontiguousarray(array[:, j]) for j, name in enumerate(columns)}, single=False)


def write(
    spec: str | os.PathLike,
    arrays: Mapping[str, np.ndarray] | np.ndarray,
    *,
    columns: Sequence[str] | None = None,
    attrs: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Write ``arrays`` to ``spec`` (``path[:key]``), the format chosen by the extension; returns the path.

    ``attrs`` (HDF5 only; other formats have no place for them and ignore them): attributes to set,
    ``{path: {name: value}}`` with paths relative to where the arrays go (``"/"``: that group, or the
    file), e.g. ``{"/": {"seed": 3}, "truth/pt": {"unit": "GeV"}}``; values are numbers, strings or
    lists of them.

    A single array (with ``columns``: a 2-D array written as named 1-D columns) or a mapping of
    named arrays. ``.h5``: one dataset per key (``file.h5:key`` names the dataset or group);
    ``.root``: one TTree ``events`` (or the key), one branch per array; ``.npy``: one array;
    ``.npz``: one member per array; ``.csv``/``.parquet``: one column per 1-D array. The file is
    replaced atomically (temporary file in the same directory, fsync, ``os.replace``): on failure
    no partial file is left and a previous file is untouched. Missing parent directories are created.
    """
    path, key = parse_spec(spec)
    kind = kind_of(path)
    payload = _payload(arrays, columns)
    payload.attrs = {str(k): dict(v) for k, v in (attrs or {}).items()}
    if path.is_dir():
        raise DataError(f"Cannot write '{path}': it is a directory.")
    try:
        with atomic_path(path) as tmp:
            _call(kind, "write", tmp, payload, key)
    except OSError as exc:
        raise DataError(f"Cannot write '{path}': {exc}.") from exc
    return path


def write_arrays(out: str | os.PathLike, arrays: Mapping[str, Any], columns: Mapping[str, Sequence[str]] | None = None,
                 attrs: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Write named arrays in the layout of the format: a 2-D array with column names becomes named columns
    (``key/column`` in HDF5, ``key_column`` in one flat CSV/Parquet table); a single named array is written
    as the file's table. ``attrs``: HDF5 attributes by written path (see :func:`write`)."""
    columns = {k: v for k, v in (columns or {}).items() if k in arrays and v}
    if len(arrays) == 1:
        (key, array), = arrays.items()
        if key in columns:
            write(out, array, columns=columns.get(key), attrs=attrs)
        else:
            write(out, {key: array}, attrs=attrs)
        return
    suffix = Path(os.fspath(out).split(":")[0]).suffix.lower()
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
    write(out, arrays, attrs=attrs)
