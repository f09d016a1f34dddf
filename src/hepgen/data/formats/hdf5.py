"""HDF5 files (h5py): ``file.h5[:group/dataset]``, read in row slices so large files stream.

Layouts read:
  * a numeric dataset (n, *event_shape) -> as is, columns None (a 1-D dataset is (n, 1)); a 2-D
    dataset with a ``columns`` attribute of one name per column -> named, selectable columns;
  * a compound dataset (n,) -> (n, n_fields), columns = field names;
  * a group whose members are equal-length 1-D datasets -> (n, n_members), columns = member names
    (creation order when the group tracks it, else alphabetical — h5py's iteration order);
  * no key: the root group read by the same rules, descending into a lone member; several
    unrelated members -> DataError listing the keys;
  * a key whose last part names columns (``file.h5:truth/pt,eta``, ``file.h5:pt,eta`` at the top level), as
    ``tree.root:events/a,b`` names branches: those columns of the table above, in that order.
Writing: one dataset per key (``file.h5:key`` names a single array's dataset, default ``data``);
named arrays with a key go into group ``key`` with tracked creation order.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hepgen.data.formats.base import FileSource, Payload, Request, stack_columns
from hepgen.data.formats.messages import (
    quoted_list,
    require_numeric,
    select_names,
    unknown_name,
    unnamed,
    unreadable,
)
from hepgen.errors import DataError


def _open(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise unreadable(path, "HDF5", exc) from exc


def _all_keys(group: h5py.Group) -> list[str]:
    """Every group and dataset below ``group``, as paths relative to it."""
    names: list[str] = []
    for name, child in group.items():  # h5py's order: creation order where tracked
        names.append(name)
        if isinstance(child, h5py.Group):
            names += [f"{name}/{below}" for below in _all_keys(child)]
    return names


def keys(path: Path, key: str | None) -> list[str]:
    """Groups and datasets of the file (or below group ``key``), as full paths."""
    with _open(path) as handle:
        if key is None:
            return _all_keys(handle)
        obj = _lookup(handle, key, path)
        if isinstance(obj, h5py.Dataset):
            return list(obj.dtype.names or [])
        return [f"{key.strip('/')}/{name}" for name in _all_keys(obj)]


def _lookup(handle: h5py.File, key: str, path: Path) -> Any:
    try:
        return handle[key]
    except KeyError:
        raise unknown_name("key", key, _all_keys(handle), str(path)) from None


class HDF5Source(FileSource):
    """Rows of one HDF5 dataset, compound dataset (``fields``) or group of 1-D datasets (``members``)."""

    format_name = "HDF5"

    def __init__(self, path: Path, obj_path: str, kind: str, names: list[str] | None, **kwargs: Any):
        super().__init__(**kwargs)
        self.path, self.obj_path, self.kind, self.names = path, obj_path, kind, names

    def _open(self) -> h5py.File:
        return _open(self.path)

    def _read_file(self, handle: h5py.File, start: int, stop: int) -> tuple[np.ndarray, None]:
        obj = handle[self.obj_path]
        if self.kind == "group":
            return stack_columns([obj[name][start:stop] for name in self.names]), None
        if self.kind == "compound":
            rows = obj.fields(self.names)[start:stop]
            return stack_columns([rows[name] for name in self.names]), None
        rows = obj[start:stop]
        if self.kind == "matrix":
            return rows[:, self.index], None
        return (rows.reshape(-1, 1) if rows.ndim == 1 else rows), None


def _is_column(obj: Any) -> bool:
    return isinstance(obj, h5py.Dataset) and obj.ndim == 1 and obj.dtype.names is None


def _column_key(handle: h5py.File, key: str) -> tuple[str | None, list[str] | None]:
    """``group/a,b`` -> (``group``, [``a``, ``b``]) when ``key`` is no object of the file but its last part names
    columns of the table above it (members of a group, fields of a compound dataset, labelled columns), as
    ``tree.root:events/a,b`` names branches; ``a,b`` names columns of the file's top level. Else (key, None)."""
    if key in handle:
        return key, None
    head, _, tail = key.strip("/").rpartition("/")
    names = [name.strip() for name in tail.split(",") if name.strip()]
    if not names or (head and head not in handle):
        return key, None
    obj = handle[head] if head else handle
    if isinstance(obj, h5py.Dataset):
        known = list(obj.dtype.names or _column_labels(obj) or [])
    else:
        known = list(obj.keys())
    if not any(name in known for name in names) and len(names) == 1:
        return key, None  # a plain missing key: let the lookup name it
    return (head or None), names


def open_source(path: Path, key: str | None, request: Request) -> HDF5Source:
    with _open(path) as handle:
        if key is not None:
            key, named = _column_key(handle, key)
            if named is not None:
                if request.columns is not None and list(request.columns) != named:
                    raise DataError(f"'{request.spec}' names the columns {quoted_list(named)} in its key and "
                                    f"--columns names {quoted_list(request.columns)}; give them once")
                request = replace(request, columns=named)
        obj = handle if key is None else _lookup(handle, key, path)
        where = request.spec
        while True:
            if isinstance(obj, h5py.Dataset):
                return _dataset_source(path, obj, request, where)
            members = list(obj.keys())
            if not members:
                raise DataError(f"The HDF5 group '{obj.name}' of '{path}' is empty: there is nothing to read.")
            # named columns need only themselves to be equal-length 1-D datasets: a group may hold other shapes
            # beside them (hepgen score writes score_per_feature (n, d) beside score and weight)
            if request.columns is not None and isinstance(obj, h5py.Group) and len(members) > 1:
                select_names(members, request.columns, (), where)  # a missing name is named, with its nearest
                candidates = list(request.columns)
            else:
                candidates = members
            children = [obj.get(name) for name in candidates]
            lengths = {len(child) for child in children if _is_column(child)}
            if all(_is_column(child) for child in children) and len(lengths) == 1:
                names = select_names(candidates, request.columns, request.exclude, where)
                for name in names:
                    require_numeric(obj[name].dtype, where, name)
                source = HDF5Source(
                    path, obj.name, "group", names, spec=request.spec, n_rows=lengths.pop(),
                    event_shape=(len(names),), columns=names, dtype=request.dtype,
                )
                source.units = {name: _unit(obj[name]) for name in names if _unit(obj[name])}
                return source
            if len(members) == 1:
                obj = children[0]
                continue
            prefix = "" if obj.name == "/" else obj.name.strip("/") + "/"
            raise DataError(
                f"'{where}' holds several datasets/groups ({quoted_list(members)}) that are not "
                f"equal-length 1-D columns of one table; name the one to read as "
                f"'{path}:{prefix}{members[0]}'. All keys: {quoted_list(_all_keys(handle))}."
            )


def _unit(obj: Any) -> str:
    """The ``unit`` attribute of a dataset (as ``hepgen data`` writes it), or ``''``."""
    unit = obj.attrs.get("unit", "")
    return unit.decode() if isinstance(unit, bytes) else str(unit)


def _column_labels(dataset: h5py.Dataset) -> list[str] | None:
    """Names of the columns of a 2-D dataset from its ``columns`` attribute (as hepgen writes it), if any."""
    labels = dataset.attrs.get("columns")
    if dataset.ndim != 2 or labels is None or len(labels) != dataset.shape[1]:
        return None
    return [label.decode() if isinstance(label, bytes) else str(label) for label in labels]


def _dataset_source(path: Path, dataset: h5py.Dataset, request: Request, where: str) -> HDF5Source:
    common = {"spec": request.spec, "dtype": request.dtype}
    if dataset.ndim == 0:
        raise DataError(f"The HDF5 dataset '{dataset.name}' of '{path}' is a scalar, not events.")
    if dataset.dtype.names is not None:
        fields = list(dataset.dtype.names)
        names = select_names(fields, request.columns, request.exclude, where, what="field")
        for name in names:
            sub = dataset.dtype.fields[name][0]
            if sub.shape:
                raise DataError(f"Field '{name}' of '{where}' holds arrays of shape {sub.shape}; only scalar fields are read.")
            require_numeric(sub, where, name)
        if dataset.ndim != 1:
            raise DataError(f"The compound dataset '{where}' has shape {dataset.shape}; expected (n,).")
        return HDF5Source(
            path, dataset.name, "compound", names, n_rows=len(dataset),
            event_shape=(len(names),), columns=names, **common,
        )
    require_numeric(dataset.dtype, where)
    labels = _column_labels(dataset)
    if labels is not None:
        names = select_names(labels, request.columns, request.exclude, where)
        source = HDF5Source(path, dataset.name, "matrix", names, n_rows=len(dataset),
                            event_shape=(len(names),), columns=names, **common)
        source.index = [labels.index(name) for name in names]
        units = dataset.attrs.get("units")  # one per column, as hepgen writes them beside `columns`
        if units is not None and len(units) == len(labels):
            units = [u.decode() if isinstance(u, bytes) else str(u) for u in units]
            source.units = {name: units[labels.index(name)] for name in names if units[labels.index(name)]}
        return source
    if request.selects:
        raise unnamed(where, dataset.shape)
    event_shape = dataset.shape[1:] or (1,)
    source = HDF5Source(path, dataset.name, "dataset", None, n_rows=len(dataset), event_shape=event_shape, **common)
    if _unit(dataset) and event_shape == (1,):
        source.units = {dataset.name.rsplit("/", 1)[-1]: _unit(dataset)}
    return source


def write(tmp: Path, payload: Payload, key: str | None) -> None:
    """Write ``payload`` to the new file ``tmp`` (see the module docstring for the layout)."""
    for name, array in payload.arrays.items():
        if not isinstance(array, np.ndarray):
            raise DataError(f"Array '{name}' is a {type(array).__name__}; HDF5 output takes NumPy arrays (awkward arrays only go to .root).")
    with h5py.File(tmp, "w", track_order=True) as handle:
        if payload.single:
            handle.create_dataset(key or "data", data=payload.first())
            _set_attrs(handle, payload.attrs)
            return
        group = handle.create_group(key, track_order=True) if key else handle
        for name, array in payload.arrays.items():
            parent = group
            *parents, leaf = name.split("/")
            for part in parents:  # intermediate groups keep creation order too (columns read back in order)
                parent = parent[part] if part in parent else parent.create_group(part, track_order=True)
            parent.create_dataset(leaf, data=array)
        _set_attrs(group, payload.attrs)


def _set_attrs(group: h5py.Group, attrs: dict[str, dict[str, Any]]) -> None:
    """Attributes ``{path relative to group ("/": group itself): {name: value}}``; lists of strings as UTF-8."""
    for where, values in attrs.items():
        rel = where.strip("/")
        if rel and rel not in group:
            raise DataError(f"Cannot set HDF5 attributes on '{where}': no such dataset or group is written.")
        obj = group[rel] if rel else group
        for name, value in values.items():
            if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                value = np.array(value, dtype=h5py.string_dtype())
            obj.attrs[name] = value
