"""File formats behind :mod:`hepgen.data.io`: one module per family, chosen by file extension.

Each backend offers ``open_source(path, key, request[, kind])``, ``keys(path, key[, kind])`` and
``write(tmp, payload, key[, kind])``; they are imported lazily, so reading an ``.npy`` file never
imports uproot.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from hepgen.errors import DataError

#: extension -> format kind
EXTENSIONS = {
    ".npy": "npy",
    ".npz": "npz",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".hdf": "hdf5",
    ".root": "root",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_MODULES = {"npy": "numpy_files", "npz": "numpy_files", "hdf5": "hdf5", "root": "root", "csv": "tabular", "parquet": "tabular"}
#: kinds whose backend functions take the kind as a last argument
MULTI_KIND = {"npy", "npz", "csv", "parquet"}


def kind_of(path: Path) -> str:
    """The format kind of ``path`` from its extension, or a DataError listing the supported ones."""
    kind = EXTENSIONS.get(Path(path).suffix.lower())
    if kind is None:
        raise DataError(
            f"Cannot tell the format of '{path}' from its extension '{Path(path).suffix}'; supported: "
            f"{', '.join(EXTENSIONS)}."
        )
    return kind


def backend(kind: str) -> ModuleType:
    return importlib.import_module(f"hepgen.data.formats.{_MODULES[kind]}")
