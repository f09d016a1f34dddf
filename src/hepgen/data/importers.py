"""The field's public jet datasets in hepgen's jet layout: top tagging, LHC Olympics 2020 and JetNet.

Each file is read as it is published and converted, chunk by chunk, into the layout ``hepgen data jets``
writes, by the same code (:func:`hepgen.data.generators.jet_features.jet_arrays`), so every model, ``hepgen
roc`` and ``load_sample`` read the result as they read the shipped sample. Kinds (``KINDS``):

* ``top-tagging``: the Top Quark Tagging Reference Dataset (Kasieczka, Plehn et al., SciPost Phys. 7 (2019)
  014): pandas HDF5 (PyTables, key ``table``), one row per anti-kT R = 0.8 jet (pT 550-650 GeV), columns
  ``E_i, PX_i, PY_i, PZ_i`` for the 200 hardest constituents (zero-padded), ``truthE..truthPZ``, ``ttv`` and
  the label ``is_signal_new`` (0 QCD, 1 top). The jet 4-momentum is the sum of the constituents (the truth
  top 4-momentum and ``ttv``, the file's split, are not carried over).
  Groups ``qcd`` and ``top``.
* ``lhco``: the LHC Olympics 2020 R&D dataset (Kasieczka, Nachman, Shih et al., Rep. Prog. Phys. 84 (2021)
  124201): pandas HDF5 (key ``df``), one row per *event*, columns 0..2099 the (pT, eta, phi) of up to 700
  hadrons (zero-padded) and column 2100 the label (0 background, 1 signal; the black boxes have none).
  The hadrons (massless) are clustered here with FastJet, anti-kT R = 1.0 (option ``R``); the two
  leading jets are kept as ``jet1/`` and ``jet2/`` (each the jet layout, with R the clustering radius)
  beside ``mjj`` (n,), the invariant mass of their sum. An event with a single jet has a zero ``jet2``
  (its mask all False) and ``mjj`` the mass of jet 1. Groups ``background`` and ``signal`` (``events``
  without labels).
* ``jetnet``: JetNet (Kansal et al., NeurIPS 2021), one HDF5 file per jet type as the ``jetnet`` package
  stores it (``g.hdf5``, ``t150.hdf5``, ...): ``particle_features (N, 30|150, 4)`` = (eta_rel, phi_rel,
  pT_rel, mask) and ``jet_features (N, 4)`` = (pt, eta, mass, num_particles). Constituents are rebuilt as
  massless 4-momenta at pT = pT_rel pT_jet, eta = eta_rel + eta_jet, phi = phi_rel (jet axis at phi = 0);
  the jet 4-momentum is the file's (pt, eta, mass) at phi = 0, so the features' pt, eta and mass are
  JetNet's. R = 0.8. The group is the jet type, from the file name or option ``jet_type``: ``gluon``,
  ``quark``, ``top``, ``w``, ``z`` (g, q, t, w, z).

Output per group (n jets; N = ``max_constituents``, S = ``image_size``): ``constituents (n, N, 3)``
float32 (pT [GeV], deta, dphi to the jet axis; columns and units attributes), ``mask (n, N)`` bool,
``images (n, S, S)`` float32 (pT [GeV] per pixel, +-1.5 R), ``features (n, 11)`` float32 (``columns``
and ``units`` attributes: pt, eta, mass, tau1, tau2, tau3, tau21, tau32, c2, d2, n_constituents),
``weights (n,)`` (ones: the datasets are unweighted), ``labels (n,)`` (the dataset's label, where it has
one) and ``index (n,)`` (the row of the source file). Only groups with jets are written. The file
records the dataset, the source file, its row count and every option.

Reading a dataset file directly (``io.read("train.h5:qcd/features")``, or a command's DATA argument)
converts it in memory with the default options when it holds at most :data:`DIRECT_MAX_ROWS` rows; the
kind is recognised from the layout (:func:`detect_kind`). Larger files are refused with the import
command to run once (converting 1.2M top-tagging jets takes about an hour of CPU).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.data.generators import jet_features as jf
from hepgen.data.generators.shared import resolve_workers
from hepgen.progress import show_progress
from hepgen.errors import ConfigError, DataError
from hepgen.files import atomic_path
from hepgen.options import Option, check_options

__all__ = ["DIRECT_MAX_ROWS", "KINDS", "detect_kind", "import_jets", "read_jets", "read_top_tagging",
           "read_lhco", "read_jetnet"]

KINDS: dict[str, str] = {
    "top-tagging": "Top Quark Tagging Reference Dataset (pandas HDF5, key 'table'; groups qcd, top)",
    "lhco": "LHC Olympics 2020 R&D / black-box events (pandas HDF5, key 'df'; two leading anti-kT jets + mjj)",
    "jetnet": "JetNet particle clouds (particle_features, jet_features; one file per jet type)",
}
#: rows a dataset file may hold to be converted on the fly when read directly as DATA
DIRECT_MAX_ROWS = 20_000

_JET_DATASETS = ("constituents", "mask", "images", "features", "weights")
_JETNET_TYPES = {"g": "gluon", "q": "quark", "t": "top", "w": "w", "z": "z"}
_LHCO_HADRONS = 700
_CONSTITUENT = re.compile(r"(?:E|PX|PY|PZ)_(\d+)")  # a top-tagging constituent column

OPTIONS: dict[str, Option] = {
    "R": Option(None, kind=float, low=0.05, high=2.0,
                help="jet radius: lhco's clustering radius (default 1.0); top-tagging and jetnet jets are R = 0.8"),
    "max_constituents": Option(30, low=1, help="number N of pT-ordered constituents kept per jet (zero-padded)"),
    "image_size": Option(40, low=1, help="jet image side in pixels, covering +-1.5 R in both directions"),
    "nsub_axes": Option("kt", choices=tuple(jf.AXES), help="N-subjettiness axes: kt or wta_kt"),
    "chunk_size": Option(2000, low=1, help="rows read from the file at a time (memory is bounded by it)"),
    "workers": Option(1, low=-1, help="processes converting chunks in parallel, -1 for every core (the output does "
                                      "not depend on it)"),
    "jet_type": Option(None, kind=str, help="jetnet: the jet type (g, q, t, w, z) when the file name does not say"),
}
_DEFAULT_R = {"top-tagging": 0.8, "lhco": 1.0, "jetnet": 0.8}


def resolve_options(kind: str, **options: Any) -> dict[str, Any]:
    """Defaults of :data:`OPTIONS` updated by ``options`` (CLI strings converted); ConfigError naming a bad one."""
    kind = _check_kind(kind)
    opts = check_options(options, OPTIONS, owner=f"data import {kind!r}")
    if opts["workers"] == 0:
        raise ConfigError(f"data import {kind!r}: option 'workers' must be a positive integer or -1 (every core)")
    if opts["R"] is None:
        opts["R"] = _DEFAULT_R[kind]
    elif kind != "lhco" and opts["R"] != _DEFAULT_R[kind]:
        raise ConfigError(f"data import {kind!r}: the jets of this dataset are R = {_DEFAULT_R[kind]} jets; "
                          f"option R={opts['R']:g} applies to lhco's clustering only")
    if opts["jet_type"] is not None:
        if kind != "jetnet":
            raise ConfigError(f"data import {kind!r}: option 'jet_type' is for jetnet files only")
        if opts["jet_type"] not in _JETNET_TYPES:
            raise ConfigError(f"data import 'jetnet': option 'jet_type' must be one of {', '.join(_JETNET_TYPES)}, "
                              f"got {opts['jet_type'][:20]!r}")
    return opts


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ConfigError(f"unknown dataset kind {str(kind)[:40]!r}; known: {', '.join(KINDS)}")
    return kind


# ------------------------------------------------------------------------------------------------ readers


def _h5(path: Path):
    import h5py

    if not path.exists():
        raise DataError(f"'{path}' does not exist.")
    if path.is_dir():
        raise DataError(f"'{path}' is a directory, not a dataset file.")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"'{path}' is not a readable HDF5 file ({str(exc)[:120]}).") from None


def _pandas_key(handle, key: str) -> bool:
    return key in handle and "pandas_type" in handle[key].attrs


class _PandasFile:
    """Row ranges of a pandas HDF5 frame (fixed or table format), read with PyTables through pandas."""

    def __init__(self, path: Path, key: str, kind: str) -> None:
        self.path, self.key, self.kind = path, key, kind
        with _h5(path) as handle:
            if not _pandas_key(handle, key):
                keys = [k for k in handle if "pandas_type" in handle[k].attrs]
                hint = f"its pandas keys: {', '.join(keys)}" if keys else "it holds no pandas table"
                other = detect_kind(path)
                guess = f"; it looks like a {other} file" if other and other != kind else ""
                raise DataError(f"'{path}' has no pandas key '{key}' of a {kind} file ({hint}{guess}).")
        try:
            import pandas as pd
            import tables  # noqa: F401  (pandas reads HDF5 through PyTables)
        except ImportError as exc:
            raise ConfigError(f"reading the pandas HDF5 file '{path}' needs pandas and PyTables "
                              f"(pip install pandas tables): {exc}") from None
        try:
            self.store = pd.HDFStore(path, "r")
            storer = self.store.get_storer(key)
            self.n_rows = int(storer.nrows if getattr(storer, "nrows", None) is not None else storer.shape[0])
            self.columns = list(self.store.select(key, start=0, stop=1).columns) if self.n_rows else []
        except Exception as exc:  # PyTables/pandas errors on a damaged file
            self.close()
            raise DataError(f"'{path}': cannot read pandas key '{key}' ({str(exc)[:160]}).") from None
        if self.n_rows == 0:
            self.close()
            raise DataError(f"'{path}': key '{key}' holds no rows: there is nothing to import.")

    def read(self, start: int, stop: int, columns: list[Any]) -> np.ndarray:
        frame = self.store.select(self.key, start=start, stop=stop)
        return frame[columns].to_numpy(dtype=np.float64)

    def close(self) -> None:
        store = getattr(self, "store", None)
        if store is not None:
            store.close()


def _first_missing(have: list[Any], want: list[Any]) -> Any | None:
    present = set(have)
    return next((c for c in want if c not in present), None)


def _check_finite(values: np.ndarray, path: Path, names: list[Any], row0: int) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"'{path}': column '{names[col]}' holds {values[row, col]} in row {row0 + row} "
                        f"({int(bad.sum())} non-finite value(s) in rows {row0}-{row0 + len(values) - 1}).")


def _check_labels(labels: np.ndarray, allowed: tuple[int, ...], path: Path, column: Any, row0: int) -> None:
    bad = ~np.isin(labels, allowed)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"'{path}': label column '{column}' holds {labels[row]:g} in row {row0 + row}; "
                        f"expected {' or '.join(map(str, allowed))}.")


def _massless(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """4-momenta (n, 4) = (px, py, pz, E) of massless particles."""
    return np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)], axis=-1)


class _TopTagging:
    """Top Quark Tagging Reference Dataset: one jet per row; the jet is the sum of its constituents."""

    key, label = "table", "is_signal_new"
    groups = {0: "qcd", 1: "top"}
    group_names = ("qcd", "top")
    labelled = True

    def __init__(self, path: Path, opts: dict[str, Any]) -> None:
        self.path, self.opts = path, opts
        self.file = _PandasFile(path, self.key, "top-tagging")
        # the constituents the columns name (a gap, e.g. no E_5 beside E_6, is a missing column, not the end)
        indices = [int(m.group(1)) for m in map(_CONSTITUENT.fullmatch, map(str, self.file.columns)) if m]
        n = max(indices) + 1 if indices else 0
        wanted = [f"{p}_{i}" for i in range(max(n, 1)) for p in ("E", "PX", "PY", "PZ")] + [self.label]
        missing = _first_missing(self.file.columns, wanted)
        if missing is not None:
            self.file.close()
            raise DataError(f"'{path}' is not a top-tagging file: it has no column '{missing}' (key 'table' needs "
                            f"E_i, PX_i, PY_i, PZ_i for each constituent i and '{self.label}').")
        self.names = wanted
        self.n_rows = self.file.n_rows

    def jets(self, start: int, stop: int) -> Iterator[tuple[str, int, dict[str, np.ndarray]]]:
        values = self.file.read(start, stop, self.names)
        _check_finite(values, self.path, self.names, start)
        labels = values[:, -1]
        _check_labels(labels, (0, 1), self.path, self.label, start)
        p4 = values[:, :-1].reshape(len(values), -1, 4)[:, :, [1, 2, 3, 0]]  # (E, px, py, pz) -> (px, py, pz, E)
        for row in range(len(values)):
            constituents = p4[row][p4[row, :, 3] > 0]
            if len(constituents) == 0:
                raise DataError(f"'{self.path}': row {start + row} has no constituent (every E_i is 0).")
            arrays = _jet(constituents, constituents.sum(axis=0), self.opts)
            arrays["labels"] = labels[row]
            yield self.groups[int(labels[row])], start + row, arrays

    def close(self) -> None:
        self.file.close()


class _Lhco:
    """LHC Olympics 2020: one event per row, clustered into the two leading anti-kT jets."""

    key = "df"

    def __init__(self, path: Path, opts: dict[str, Any]) -> None:
        self.path, self.opts = path, opts
        self.file = _PandasFile(path, self.key, "lhco")
        columns = self.file.columns
        by_name = {str(c): c for c in columns}
        missing = next((str(i) for i in range(3 * _LHCO_HADRONS) if str(i) not in by_name), None)
        if missing is not None:
            self.file.close()
            raise DataError(f"'{path}' is not an LHC Olympics file: it has no column '{missing}' (key 'df' needs "
                            f"columns 0-{3 * _LHCO_HADRONS - 1}: pT, eta, phi of {_LHCO_HADRONS} hadrons, and "
                            f"optionally the label {3 * _LHCO_HADRONS}).")
        self.names = [by_name[str(i)] for i in range(3 * _LHCO_HADRONS)]
        self.labelled = str(3 * _LHCO_HADRONS) in by_name
        self.group_names = ("background", "signal") if self.labelled else ("events",)
        if self.labelled:
            self.names.append(by_name[str(3 * _LHCO_HADRONS)])
        self.n_rows = self.file.n_rows

    def jets(self, start: int, stop: int) -> Iterator[tuple[str, int, dict[str, np.ndarray]]]:
        fastjet = jf._fastjet()
        values = self.file.read(start, stop, self.names)
        _check_finite(values, self.path, self.names, start)
        if self.labelled:
            _check_labels(values[:, -1], (0, 1), self.path, self.names[-1], start)
        hadrons = values[:, : 3 * _LHCO_HADRONS].reshape(len(values), _LHCO_HADRONS, 3)
        definition = fastjet.JetDefinition(fastjet.antikt_algorithm, self.opts["R"])
        for row in range(len(values)):
            kept = hadrons[row][hadrons[row, :, 0] > 0]
            if len(kept) == 0:
                raise DataError(f"'{self.path}': event in row {start + row} has no hadron (every pT is 0).")
            p4 = _massless(kept[:, 0], kept[:, 1], kept[:, 2])
            particles = []
            for i, momentum in enumerate(p4):
                particle = fastjet.PseudoJet(*map(float, momentum))
                particle.set_user_index(i)
                particles.append(particle)
            sequence = fastjet.ClusterSequence(particles, definition)
            leading = fastjet.sorted_by_pt(sequence.inclusive_jets(0.0))[:2]
            arrays: dict[str, np.ndarray] = {}
            total = np.zeros(4)
            for j in (0, 1):
                prefix = f"jet{j + 1}/"
                if j < len(leading):
                    members = p4[[c.user_index() for c in leading[j].constituents()]]
                    jet = np.array([leading[j].px(), leading[j].py(), leading[j].pz(), leading[j].e()])
                    total += jet
                    arrays.update({prefix + k: v for k, v in _jet(members, jet, self.opts).items()})
                else:  # a single jet: jet 2 is zero, its mask all False
                    arrays.update({f"jet2/{k[5:]}": np.zeros_like(v) for k, v in list(arrays.items())
                                   if k.startswith("jet1/")})
            arrays["mjj"] = np.float64(np.sqrt(max(total[3] ** 2 - total[:3] @ total[:3], 0.0)))
            group = "events"
            if self.labelled:
                arrays["labels"] = values[row, -1]
                group = ("background", "signal")[int(values[row, -1])]
            yield group, start + row, arrays

    def close(self) -> None:
        self.file.close()


class _JetNet:
    """JetNet: relative particle coordinates plus the jet's (pt, eta, mass)."""

    def __init__(self, path: Path, opts: dict[str, Any]) -> None:
        self.path, self.opts = path, opts
        self.handle = _h5(path)
        for name, ndim in (("particle_features", 3), ("jet_features", 2)):
            if name not in self.handle:
                keys = ", ".join(list(self.handle)[:8]) or "none"
                self.handle.close()
                raise DataError(f"'{path}' is not a JetNet file: it has no dataset '{name}' (keys: {keys}).")
            ds = self.handle[name]
            if ds.ndim != ndim or ds.shape[-1] < 4 or ds.dtype.kind not in "fiu":
                shape = "(N, particles, 4): eta_rel, phi_rel, pt_rel, mask" if ndim == 3 else \
                    "(N, 4): pt, eta, mass, num_particles"
                self.handle.close()
                raise DataError(f"'{path}': dataset '{name}' has shape {ds.shape} ({ds.dtype}); JetNet stores {shape}.")
        self.particles, self.jet = self.handle["particle_features"], self.handle["jet_features"]
        if len(self.particles) != len(self.jet):
            self.handle.close()
            raise DataError(f"'{path}': particle_features has {len(self.particles)} jets, jet_features {len(self.jet)}.")
        self.n_rows = len(self.jet)
        if self.n_rows == 0:
            self.handle.close()
            raise DataError(f"'{path}': jet_features holds no jets: there is nothing to import.")
        jet_type = opts["jet_type"] or path.stem.removesuffix("150")
        if jet_type not in _JETNET_TYPES:
            self.handle.close()
            raise ConfigError(f"cannot tell the JetNet jet type of '{path}' from its name; pass it as option "
                              f"jet_type (one of {', '.join(_JETNET_TYPES)}; --option jet_type=t)")
        self.group = _JETNET_TYPES[jet_type]
        self.group_names, self.labelled = (self.group,), False

    def jets(self, start: int, stop: int) -> Iterator[tuple[str, int, dict[str, np.ndarray]]]:
        particles = np.asarray(self.particles[start:stop, :, :4], dtype=np.float64)
        jets = np.asarray(self.jet[start:stop, :4], dtype=np.float64)
        names = ["eta_rel", "phi_rel", "pt_rel", "mask"]
        _check_finite(particles.reshape(len(particles), -1), self.path,
                      [f"particle_features[:, {i // 4}, {i % 4}] ({names[i % 4]})"
                       for i in range(particles.shape[1] * 4)], start)
        _check_finite(jets, self.path, ["jet_features pt", "jet_features eta", "jet_features mass",
                                        "jet_features num_particles"], start)
        for row in range(len(jets)):
            pt, eta, mass = jets[row, :3]
            if pt <= 0 or mass < 0:
                raise DataError(f"'{self.path}': jet_features row {start + row} has pt = {pt:g}, mass = {mass:g}; "
                                "expected pt > 0 and mass >= 0.")
            real = particles[row][(particles[row, :, 3] > 0) & (particles[row, :, 2] > 0)]
            if len(real) == 0:
                raise DataError(f"'{self.path}': particle_features row {start + row} has no particle (mask all 0).")
            constituents = _massless(real[:, 2] * pt, real[:, 0] + eta, real[:, 1])
            pz, energy = pt * np.sinh(eta), np.sqrt((pt * np.cosh(eta)) ** 2 + mass**2)
            yield self.group, start + row, _jet(constituents, np.array([pt, 0.0, pz, energy]), self.opts)

    def close(self) -> None:
        self.handle.close()


_READERS = {"top-tagging": _TopTagging, "lhco": _Lhco, "jetnet": _JetNet}


def _jet(constituents: np.ndarray, jet: np.ndarray, opts: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return jf.jet_arrays(constituents, jet, opts["R"], max_constituents=opts["max_constituents"],
                         image_size=opts["image_size"], axes=opts["nsub_axes"])


def _layout_names(kind: str, reader: Any) -> list[str]:
    """The arrays of one group of the output (see the module docstring)."""
    jet = [*_JET_DATASETS, "index"] + (["labels"] if reader.labelled else [])
    if kind != "lhco":
        return jet
    return [f"jet{j}/{n}" for j in (1, 2) for n in _JET_DATASETS] + ["mjj", "index"] + \
        (["labels"] if reader.labelled else [])


def _pandas_width(group: Any) -> int:
    """Number of columns of a pandas frame stored by PyTables: fixed format (``axis0`` holds the names) or table
    format (the ``values_block_*`` fields of its ``table``)."""
    if "axis0" in group:
        return len(group["axis0"])
    if "table" in group and group["table"].dtype.names:
        dtype = group["table"].dtype
        return sum(int(np.prod(dtype[n].shape or (1,))) for n in dtype.names if n.startswith("values_block"))
    return 0


def detect_kind(path: str | os.PathLike) -> str | None:
    """The dataset kind the layout of the HDF5 file ``path`` shows (pandas key ``table`` with ``E_0``: top-tagging;
    pandas key ``df``: lhco; datasets ``particle_features`` and ``jet_features``: jetnet), or None."""
    import h5py

    try:
        with h5py.File(Path(path), "r") as handle:
            if "particle_features" in handle and "jet_features" in handle:
                return "jetnet"
            if _pandas_key(handle, "df") and _pandas_width(handle["df"]) >= 3 * _LHCO_HADRONS:
                return "lhco"
            if _pandas_key(handle, "table"):
                group = handle["table"]
                names = group["axis0"][:8] if "axis0" in group else []  # fixed format: the column names
                text = b" ".join(np.asarray(names).astype(bytes).tolist()) if len(names) else \
                    bytes(group.attrs.get("non_index_axes", b""))[:200]
                return "top-tagging" if b"E_0" in text else None
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return None


def _open(kind: str | None, path: str | os.PathLike, opts_in: Mapping[str, Any]):
    path = Path(path).expanduser()
    if kind in (None, "auto"):
        with _h5(path):
            pass
        kind = detect_kind(path)
        if kind is None:
            raise DataError(f"'{path}' is none of the known dataset layouts ({', '.join(KINDS)}); "
                            "name the kind to see which key or column it lacks.")
    opts = resolve_options(kind, **opts_in)
    return kind, opts, _READERS[kind](path, opts)


def _bar(total: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="row", unit_scale=True, disable=not (progress and show_progress()),
                leave=False)


def _convert_rows(reader, start: int, end: int) -> dict[str, dict[str, np.ndarray]]:
    """Rows [start, end) of ``reader`` as ``{group: {name: array}}`` (plus ``index``, the source rows)."""
    chunk: dict[str, dict[str, list]] = {}
    for group, row, arrays in reader.jets(start, end):
        entry = chunk.setdefault(group, {"index": []})
        entry["index"].append(row)
        for name, value in arrays.items():
            entry.setdefault(name, []).append(value)
    return {g: _stack(entry) for g, entry in chunk.items()}


_WORKER_READERS: dict[tuple[str, str, str], Any] = {}


def _convert_in_worker(kind: str, path: str, opts: dict[str, Any], start: int, end: int
                       ) -> dict[str, dict[str, np.ndarray]]:
    """:func:`_convert_rows` in a worker process, which opens the file once and keeps it open."""
    key = (kind, path, json.dumps(opts, sort_keys=True, default=str))
    if key not in _WORKER_READERS:
        jf.silence_fastjet_banner()
        _WORKER_READERS[key] = _READERS[kind](Path(path), opts)
    return _convert_rows(_WORKER_READERS[key], start, end)


def _convert(reader, opts: Mapping[str, Any], stop: int | None, desc: str, progress: bool
             ) -> Iterator[dict[str, dict[str, np.ndarray]]]:
    """Chunks ``{group: {name: array}}`` (plus ``index``) of rows [0, stop), in file order.

    With ``workers`` > 1 the chunks are converted in that many processes, at most two chunks per worker in
    flight (memory stays bounded); the chunks and their order do not depend on ``workers``.
    """
    total = reader.n_rows if stop is None else min(int(stop), reader.n_rows)
    size = opts["chunk_size"]
    ranges = [(start, min(start + size, total)) for start in range(0, total, size)]
    workers = min(resolve_workers(opts["workers"]) or 1, len(ranges))
    jf.silence_fastjet_banner()
    with _bar(total, desc, progress) as bar:
        if workers <= 1:
            for start, end in ranges:
                yield _convert_rows(reader, start, end)
                bar.update(end - start)
            return
        import sys
        from collections import deque
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        context = get_context("fork" if sys.platform.startswith("linux") else "spawn")
        kind = next(k for k, cls in _READERS.items() if isinstance(reader, cls))
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            pending: deque = deque()
            todo = iter(ranges)
            try:
                for start, end in todo:
                    pending.append((end - start, pool.submit(_convert_in_worker, kind, str(reader.path), dict(opts),
                                                             start, end)))
                    if len(pending) < 2 * workers:
                        continue
                    rows, future = pending.popleft()
                    yield future.result()
                    bar.update(rows)
                while pending:
                    rows, future = pending.popleft()
                    yield future.result()
                    bar.update(rows)
            finally:
                for _, future in pending:
                    future.cancel()


def _stack(entry: dict[str, list]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, values in entry.items():
        array = np.asarray(values)
        leaf = name.rsplit("/", 1)[-1]
        if leaf == "mask":
            array = array.astype(bool)
        elif leaf in ("index",):
            array = array.astype(np.int64)
        elif leaf == "labels":
            array = array.astype(np.int8)
        else:
            array = array.astype(np.float32)
        out[name] = array
    for prefix in {n.rsplit("/", 1)[0] + "/" if "/" in n else "" for n in out if n.endswith("features")}:
        out[prefix + "weights"] = np.ones(len(out[prefix + "features"]), dtype=np.float32)
    return out


def _dataset_attrs(name: str) -> dict[str, Any]:
    from hepgen.data.generators.jets import CONSTITUENT_UNITS, FEATURE_UNITS

    leaf = name.rsplit("/", 1)[-1]
    if leaf == "features":
        return {"columns": list(jf.FEATURE_COLUMNS), "units": [FEATURE_UNITS.get(c, "") for c in jf.FEATURE_COLUMNS]}
    if leaf == "constituents":
        return {"columns": list(jf.CONSTITUENT_COLUMNS), "units": list(CONSTITUENT_UNITS)}
    if leaf in ("images", "mjj"):
        return {"unit": "GeV"}
    return {}


def _file_attrs(kind: str, path: Path, n_rows: int, opts: Mapping[str, Any]) -> dict[str, Any]:
    from hepgen._version import __version__

    return {"dataset": kind, "description": KINDS[kind], "source": str(path), "source_rows": int(n_rows),
            "parameters": json.dumps({k: v for k, v in opts.items() if k != "workers"}, sort_keys=True, default=str), "hepgen_version": __version__,
            "importer": "hepgen.data.importers"}


# ------------------------------------------------------------------------------------------------ public


def read_jets(kind: str | None, path: str | os.PathLike, *, stop: int | None = None, progress: bool = False,
              **options: Any) -> dict[str, dict[str, np.ndarray]]:
    """The jets of a dataset file in memory: ``{group: {name: array}}`` in hepgen's jet layout (module docstring).

    ``kind``: one of :data:`KINDS`, or None/"auto" to recognise it from the layout; ``stop``: only the first
    ``stop`` rows; ``options``: see :data:`OPTIONS`. Raises DataError naming the file and the first missing
    key or column, or the row and column of a bad value; ConfigError for a bad option.
    """
    kind, opts, reader = _open(kind, path, options)
    try:
        parts: dict[str, list[dict[str, np.ndarray]]] = {}
        for chunk in _convert(reader, opts, stop, f"import {kind}", progress):
            for group, arrays in chunk.items():
                parts.setdefault(group, []).append(arrays)
    finally:
        reader.close()
    return {g: {k: np.concatenate([p[k] for p in chunks]) for k in chunks[0]} for g, chunks in parts.items()}


def read_top_tagging(path: str | os.PathLike, **options: Any) -> dict[str, dict[str, np.ndarray]]:
    """:func:`read_jets` of a Top Quark Tagging Reference Dataset file: groups ``qcd`` and ``top``."""
    return read_jets("top-tagging", path, **options)


def read_lhco(path: str | os.PathLike, **options: Any) -> dict[str, dict[str, np.ndarray]]:
    """:func:`read_jets` of an LHC Olympics 2020 file: groups ``background``/``signal`` (or ``events``)."""
    return read_jets("lhco", path, **options)


def read_jetnet(path: str | os.PathLike, **options: Any) -> dict[str, dict[str, np.ndarray]]:
    """:func:`read_jets` of a JetNet file: one group named after the jet type."""
    return read_jets("jetnet", path, **options)


def import_jets(kind: str | None, path: str | os.PathLike, out: str | os.PathLike, *, stop: int | None = None,
                progress: bool = True, **options: Any) -> dict[str, int]:
    """Convert the dataset file ``path`` into the HDF5 file ``out`` in chunks; returns the jets per group.

    Memory is bounded by ``chunk_size`` rows; the output is written under a temporary name and renamed
    into place only when every row converted (a bad row, an interrupt or a full disk leave no file, and an
    existing ``out`` untouched). Every check of the file's key and columns runs before any conversion.
    """
    import h5py

    out = Path(out).expanduser()
    if out.suffix.lower() not in (".h5", ".hdf5", ".hdf"):
        raise ConfigError(f"-o {out}: the jet layout is written to HDF5 (.h5), not {out.suffix or 'a bare name'}")
    if out.exists() and Path(path).expanduser().exists() and out.resolve() == Path(path).expanduser().resolve():
        raise ConfigError(f"-o {out}: that is the file being imported; write the jets to another file")
    kind, opts, reader = _open(kind, path, options)
    counts: dict[str, int] = {}
    try:
        with atomic_path(out) as tmp, h5py.File(tmp, "w", track_order=True) as handle:
            handle.attrs.update(_file_attrs(kind, Path(path), reader.n_rows, opts))
            for chunk in _convert(reader, opts, stop, f"import {kind}", progress):
                for group, arrays in chunk.items():
                    rows = len(arrays["index"])
                    start = counts.get(group, 0)
                    for name, array in arrays.items():
                        key = f"{group}/{name}"
                        if key not in handle:
                            chunk_rows = max(1, min(1024, (1 << 18) // max(1, int(np.prod(array.shape[1:])))))
                            ds = handle.create_dataset(key, shape=(0, *array.shape[1:]),
                                                       maxshape=(None, *array.shape[1:]), dtype=array.dtype,
                                                       chunks=(chunk_rows, *array.shape[1:]), compression="gzip",
                                                       compression_opts=4, shuffle=True)
                            ds.attrs.update(_dataset_attrs(name))
                        ds = handle[key]
                        ds.resize(start + rows, axis=0)
                        ds[start:start + rows] = array
                    counts[group] = start + rows
            for group, n in counts.items():
                handle[group].attrs["n_jets"] = n
    except OSError as exc:
        raise DataError(f"Cannot write '{out}': {str(exc)[:160]}.") from None
    finally:
        reader.close()
    return counts


def direct_source(path: Path, key: str | None, request: Any):
    """The :class:`~hepgen.data.formats.base.Source` of ``path:key`` when ``path`` is a dataset file of a known
    kind read through the jet layout's names (``qcd/features``, ``top/images``, ``signal/jet1/features``,
    ``background/mjj``); None when it is not (the file is then read as plain HDF5).

    Converts in memory with the default options; a file of more than :data:`DIRECT_MAX_ROWS` rows is refused
    with the import command to run instead.
    """
    kind = detect_kind(path)
    if kind is None:
        return None
    if kind == "jetnet" and key is not None:
        import h5py

        with h5py.File(path, "r") as handle:
            if key.split("/")[0] in handle:
                return None  # the raw particle_features / jet_features
    _, opts, reader = _open(kind, path, {})
    try:
        names = sorted(f"{g}/{n}" for g in reader.group_names for n in _layout_names(kind, reader))
        if key is not None and key not in names and "/" in key and key.rsplit("/", 1)[0] in names:
            key, picked = key.rsplit("/", 1)  # qcd/features/mass,pt: columns of a table, as the HDF5 reader reads them
            request = replace(request, columns=[c.strip() for c in picked.split(",")])
        if key is None or key not in names:
            listing = ", ".join(names[:14]) + (", ..." if len(names) > 14 else "")
            what = "names no array of" if key else "needs a key naming an array of"
            raise DataError(f"'{path}' is a {kind} file read in hepgen's jet layout; ':{key or ''}' {what} it "
                            f"(keys: {listing}).")
        if reader.n_rows > DIRECT_MAX_ROWS:
            raise DataError(f"'{path}' is a {kind} file of {reader.n_rows} rows: reading it directly converts every "
                            f"jet on each read (more than {DIRECT_MAX_ROWS} rows are refused); convert it once with "
                            f"`hepgen data import {kind} {path} -o jets.h5` and read jets.h5:{key}.")
        group, name = key.split("/", 1)
        parts = [chunk[group][name] for chunk in _convert(reader, opts, None, "", False) if group in chunk]
    finally:
        reader.close()
    if not parts:
        raise DataError(f"'{path}' holds no jets of group '{group}' (of {', '.join(reader.group_names)}).")
    from hepgen.data.formats.base import ArraySource

    array = np.concatenate(parts)
    attrs = _dataset_attrs(name)
    columns = attrs.get("columns")
    if request.columns is not None or request.exclude:
        if columns is None:
            raise DataError(f"'{path}:{key}' has no named columns to select.")
        wanted = [c for c in (request.columns or columns) if c not in request.exclude]
        missing = _first_missing(columns, wanted)
        if missing is not None:
            raise DataError(f"'{path}:{key}' has no column '{missing}' (its columns: {', '.join(columns)}).")
        array = array[..., [columns.index(c) for c in wanted]]
        attrs = {"columns": wanted, "units": [attrs["units"][columns.index(c)] for c in wanted]}
        columns = wanted
    source = ArraySource(array, columns, spec=f"{path}:{key}", dtype=request.dtype)
    if columns is not None:
        source.units = {c: u for c, u in zip(columns, attrs["units"], strict=True) if u}
    return source
