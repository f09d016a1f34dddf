"""CaloChallenge 2022 files and their binning XML: the voxels of a shower laid out in layers of (α, r) bins.

A CaloChallenge file (datasets 1-3) holds, at its top level (or in the group ``file.h5:group`` names)::

    incident_energies (N, 1)        the incident energy [MeV]
    showers           (N, voxels)   the voxel energies [MeV], every layer's voxels one after the other

and its binning XML (``binning_dataset_1_photons.xml`` ...) gives, per particle, each layer's radial bin edges
(mm) and its number of angular bins::

    <Bins><Bin pid="22" name="photon">
        <Layer id="0" r_edges="0,5,10,30,50,100,200,400,600" n_bin_alpha="1"/> ... </Bin></Bins>

:func:`read_geometry` reads it (``binning.xml`` with one ``<Bin>``, or ``binning.xml:photon`` naming one)
with the conventions of the challenge's own ``XMLHandler.py`` and ``HighLevelFeatures.py``:

* the layers in the order of the file, their ids counting 0, 1, 2 ... (ids that skip some, e.g. only dataset 1's
  layers 0, 1, 2, 3, 12, are taken as labels: the voxels follow the file's order); a layer with ``r_edges="0"``
  holds no voxels (dataset 1 photons: 24 layers, of which 0, 1, 2, 3 and 12 hold 8, 160, 190, 5 and 5 voxels = 368);
* within a layer, voxel ``j_α · n_r + i_r``: angular bins outer, radial bins inner, so a layer's slice of
  ``showers`` reshapes to ``(n_alpha, n_r)`` — the array a shower model sees as layer ``layer_<id>``;
* bin centres r_i = (e_i + e_{i+1}) / 2 and α_j the midpoints of ``n_alpha`` equal bins of [−π, π];
  η = r cos α and φ = r sin α [mm], the coordinates of the centroids and widths;
* centroids and widths in η and φ only of layers with more than one angular bin (``HighLevelFeatures``'s
  ``layersBinnedInAlpha``): a layer of one angular bin has φ = 0 everywhere.

:func:`open_challenge` gives the events of such a file for training (the layers as arrays of the model's
multi-array events, the incident energy in GeV as the context, streamed from disk when large);
:func:`read_challenge` reads one whole and :func:`write_challenge` writes the same layout back, so the
challenge's ``evaluate.py`` reads what ``hepgen sample`` writes. Every problem — a malformed XML (a
missing attribute, a non-numeric edge, an unknown particle), a file of another layout, a voxel count
that is not the geometry's — is a DataError naming the file and the layer.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.errors import DataError
from hepgen.options import excerpt

__all__ = ["ENERGY_KEY", "SHOWERS_KEY", "ChallengeGeometry", "ChallengeLayer", "context_energies", "find_challenge",
           "open_challenge", "read_challenge", "read_geometry", "write_challenge"]

ENERGY_KEY = "incident_energies"
SHOWERS_KEY = "showers"
#: MeV per GeV: CaloChallenge files are in MeV, hepgen's shower models condition on GeV
MEV = 1000.0


@dataclass(frozen=True)
class ChallengeLayer:
    """One ``<Layer>``: its id, radial bin edges [mm] and number of angular bins (``r_edges="0"``: no voxels)."""

    id: int
    r_edges: tuple[float, ...]
    n_alpha: int

    @property
    def n_r(self) -> int:
        return len(self.r_edges) - 1

    @property
    def voxels(self) -> int:
        return self.n_r * self.n_alpha

    @property
    def name(self) -> str:
        return f"layer_{self.id}"

    @property
    def shape(self) -> tuple[int, int]:
        """(n_alpha, n_r): angular bins outer, radial bins inner, as the voxels are ordered."""
        return self.n_alpha, self.n_r

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(η, φ) of the bin centres [mm], each (n_alpha, n_r): η = r cos α, φ = r sin α."""
        edges = np.asarray(self.r_edges, dtype=np.float64)
        r = 0.5 * (edges[1:] + edges[:-1])
        a_edges = np.linspace(-math.pi, math.pi, self.n_alpha + 1)
        alpha = 0.5 * (a_edges[1:] + a_edges[:-1])
        return np.cos(alpha)[:, None] * r[None, :], np.sin(alpha)[:, None] * r[None, :]


@dataclass(frozen=True)
class ChallengeGeometry:
    """The binning of one particle: its layers (with the empty ones, in file order) and where it came from.

    ``source`` and ``sha256`` record the XML it was read from; :meth:`to_dict` is what a run records (the
    content, so sampling needs no XML), :meth:`from_dict` reads it back.
    """

    particle: str
    layers: tuple[ChallengeLayer, ...]
    pid: str | None = None
    source: str = ""
    sha256: str = ""

    @property
    def filled(self) -> list[ChallengeLayer]:
        """The layers that hold voxels (the challenge's ``relevantLayers``)."""
        return [layer for layer in self.layers if layer.voxels]

    @property
    def voxels(self) -> int:
        return sum(layer.voxels for layer in self.layers)

    @property
    def shapes(self) -> dict[str, tuple[int, int]]:
        """{``layer_<id>``: (n_alpha, n_r)} of the layers that hold voxels: a shower model's event shape."""
        return {layer.name: layer.shape for layer in self.filled}

    @property
    def bin_edges(self) -> list[int]:
        """Where each layer's voxels start in ``showers`` (the challenge's ``GetBinEdges``: len(layers) + 1)."""
        return [int(v) for v in np.cumsum([0] + [layer.voxels for layer in self.layers])]

    def describe(self) -> str:
        where = f"{self.source} ({self.particle})" if self.source else f"the {self.particle} geometry"
        return where

    def summary(self) -> str:
        """One line for a run's description: particle, layers (those with voxels), voxels, the XML and its sha256
        prefix (``hepgen info``; the run's config.yaml keeps the whole record)."""
        line = (f"{self.particle or '?'}: {len(self.layers)} layers ({len(self.filled)} with voxels), "
                f"{self.voxels} voxels")
        if self.source:
            line += f", {self.source}" + (f" (sha256 {self.sha256[:12]})" if self.sha256 else "")
        return line

    def layer_sizes(self) -> str:
        """The voxels of each layer that has some, for messages; a run of three or more consecutive layers of one
        size in one entry (dataset 2: 'layers 0-44: 144 each'), so the line stays short."""
        parts, filled, i = [], self.filled, 0
        while i < len(filled):
            j = i
            while (j + 1 < len(filled) and filled[j + 1].voxels == filled[i].voxels
                   and filled[j + 1].id == filled[j].id + 1):
                j += 1
            if j - i >= 2:
                parts.append(f"layers {filled[i].id}-{filled[j].id}: {filled[i].voxels} each")
            else:
                parts += [f"layer {layer.id}: {layer.voxels}" for layer in filled[i:j + 1]]
            i = j + 1
        return ", ".join(parts)

    def locate(self, voxel: int) -> str:
        """Where voxel ``voxel`` of ``showers`` lies: 'layer 1, angular bin 3, radial bin 5' (for messages)."""
        start = 0
        for layer in self.layers:
            if start <= voxel < start + layer.voxels:
                a, r = divmod(voxel - start, layer.n_r)
                return f"layer {layer.id}, angular bin {a}, radial bin {r}"
            start += layer.voxels
        return f"beyond the last layer ({self.voxels} voxels)"

    def split(self, showers: np.ndarray) -> dict[str, np.ndarray]:
        """``showers`` (n, voxels) -> {``layer_<id>``: (n, n_alpha, n_r)} (copies, C-contiguous)."""
        showers = np.asarray(showers)
        if showers.ndim != 2 or showers.shape[1] != self.voxels:
            raise DataError(f"showers of shape {showers.shape[1:]} per event, but {self.describe()} has "
                            f"{self.voxels} voxels ({self.layer_sizes()})")
        out, start = {}, 0
        for layer in self.layers:
            if layer.voxels:
                out[layer.name] = np.ascontiguousarray(
                    showers[:, start:start + layer.voxels]).reshape(len(showers), *layer.shape)
            start += layer.voxels
        return out

    def join(self, layers: Mapping[str, Any]) -> np.ndarray:
        """{``layer_<id>``: (n, n_alpha, n_r)} -> ``showers`` (n, voxels), the inverse of :meth:`split`."""
        parts = []
        for name, shape in self.shapes.items():
            if name not in layers:
                raise DataError(f"no array '{name}' for {self.describe()} (given: {', '.join(layers)})")
            arr = np.asarray(layers[name])
            if tuple(arr.shape[1:]) != shape:
                raise DataError(f"'{name}' has showers of shape {tuple(arr.shape[1:])}, but {self.describe()} "
                                f"gives it {shape} (angular, radial bins)")
            parts.append(arr.reshape(len(arr), -1))
        return np.concatenate(parts, axis=1)

    def centres(self) -> dict[str, tuple[np.ndarray, np.ndarray] | None]:
        """{``layer_<id>``: (η, φ) bin centres (n_alpha, n_r) [mm], or None for a layer of one angular bin}."""
        return {layer.name: layer.centres() if layer.n_alpha > 1 else None for layer in self.filled}

    def to_dict(self) -> dict[str, Any]:
        return {"particle": self.particle, "pid": self.pid, "source": self.source, "sha256": self.sha256,
                "layers": [{"id": layer.id, "r_edges": list(layer.r_edges), "n_bin_alpha": layer.n_alpha}
                           for layer in self.layers]}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any], where: str = "the recorded geometry") -> ChallengeGeometry:
        """The geometry :meth:`to_dict` recorded (checked as an XML is)."""
        if not isinstance(value, Mapping) or not isinstance(value.get("layers"), list):
            raise DataError(f"{where}: a geometry is a mapping with 'particle' and 'layers', got {excerpt(value)}")
        particle = str(value.get("particle") or "")
        layers = []
        for position, entry in enumerate(value["layers"]):
            if not isinstance(entry, Mapping):
                raise DataError(f"{where}: layer {position} is {excerpt(entry)}, not a mapping")
            attrs = {k: (",".join(str(v) for v in entry[k]) if k == "r_edges" and isinstance(entry.get(k), list)
                         else None if entry.get(k) is None else str(entry[k]))
                     for k in ("id", "r_edges", "n_bin_alpha")}
            layers.append(_layer(attrs, position, where, particle, layers[-1].id if layers else None))
        return _geometry(particle, layers, where, value.get("pid"), str(value.get("source") or ""),
                         str(value.get("sha256") or ""))


def _fail(where: str, particle: str, layer: str, message: str) -> DataError:
    return DataError(f"{where}: particle '{particle}', {layer}: {message}")


def _layer(attrs: Mapping[str, str | None], position: int, where: str, particle: str,
           previous: int | None = None) -> ChallengeLayer:
    """One layer from its attributes, every value checked (the message names the file, particle and layer);
    ``previous``: the id of the layer before it in the file, which its id must exceed."""
    label = f"layer {attrs['id']}" if attrs.get("id") is not None else f"layer #{position} (no id)"
    for key in ("id", "r_edges", "n_bin_alpha"):
        if attrs.get(key) is None:
            raise _fail(where, particle, label, f"no '{key}' attribute (a <Layer> needs id, r_edges and n_bin_alpha)")
    try:
        layer_id = int(str(attrs["id"]).strip())
    except ValueError:
        raise _fail(where, particle, label, f"id {excerpt(attrs['id'])} is not an integer") from None
    if layer_id < 0 or (previous is not None and layer_id <= previous):
        after = f"after layer {previous}" if previous is not None else "first"
        raise _fail(where, particle, label, f"the layer ids must be >= 0 and increase in file order (a layer's voxels "
                                           f"follow those of the layer before it); this is <Layer> #{position}, "
                                           f"{after}")
    try:
        edges = tuple(float(s) for s in str(attrs["r_edges"]).split(","))
    except ValueError:
        raise _fail(where, particle, label, f"r_edges {excerpt(attrs['r_edges'])} is not a comma-separated list "
                                           "of numbers") from None
    if not all(math.isfinite(e) for e in edges) or edges[0] < 0 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise _fail(where, particle, label, f"r_edges {excerpt(attrs['r_edges'])} must be finite, start at >= 0 and "
                                           "increase")
    try:
        n_alpha = int(str(attrs["n_bin_alpha"]).strip())
    except ValueError:
        raise _fail(where, particle, label, f"n_bin_alpha {excerpt(attrs['n_bin_alpha'])} is not an integer") from None
    if n_alpha < 1:
        raise _fail(where, particle, label, f"n_bin_alpha must be at least 1, got {n_alpha}")
    return ChallengeLayer(layer_id, edges, n_alpha)


def _geometry(particle: str, layers: list[ChallengeLayer], where: str, pid: Any, source: str,
              sha256: str) -> ChallengeGeometry:
    geometry = ChallengeGeometry(particle, tuple(layers), None if pid is None else str(pid), source, sha256)
    if not geometry.voxels:
        raise DataError(f"{where}: particle '{particle}' has no layer with voxels (every r_edges is '0')")
    return geometry


def read_geometry(spec: str | os.PathLike | ChallengeGeometry | Mapping[str, Any]) -> ChallengeGeometry:
    """The geometry of ``binning.xml`` (one ``<Bin>``) or ``binning.xml:PARTICLE`` (its ``<Bin name=...>``, or its
    ``pid`` where the <Bin>s have no name, as the challenge's older ``binning.xml``); a
    geometry, or the mapping a run recorded (:meth:`ChallengeGeometry.to_dict`), is returned as it is."""
    if isinstance(spec, ChallengeGeometry):
        return spec
    if isinstance(spec, Mapping):
        return ChallengeGeometry.from_dict(spec)
    from hepgen.files import file_sha256

    text = os.fspath(spec)
    path, particle = Path(text), None
    if not path.is_file() and ":" in text:
        head, _, tail = text.rpartition(":")
        if Path(head).is_file():
            path, particle = Path(head), tail.strip() or None
    if not path.is_file():
        raise DataError(f"{text}: no such binning XML file")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise DataError(f"{path}: not a readable XML file ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    bins = [b for b in root if b.tag == "Bin"]
    if not bins:
        raise DataError(f"{path}: no <Bin> element (a CaloChallenge binning XML holds <Bins><Bin name=...> with "
                        "<Layer id=... r_edges=... n_bin_alpha=.../>)")
    # a <Bin> is named by its 'name' (photon, pion, electron: the files of datasets 1-3) or, in the challenge's
    # older binning.xml whose <Bin>s have none, by its pid (binning.xml:211)
    names = [(b.attrib.get("name") or "").strip() or (b.attrib.get("pid") or "").strip() for b in bins]
    for position, name in enumerate(names):
        if not name:
            raise DataError(f"{path}: <Bin> #{position} has neither a 'name' (the particle: photon, pion, electron "
                            "...) nor a 'pid' attribute")
    if particle is None:
        if len(bins) > 1:
            raise DataError(f"{path} holds several particles ({', '.join(names)}); name one as {path}:{names[0]}")
        chosen = bins[0]
    else:
        pids = [(b.attrib.get("pid") or "").strip() for b in bins]
        if particle not in names and particle not in pids:
            raise DataError(f"{path} has no particle {excerpt(particle)} (its particles: {', '.join(names)})")
        chosen = bins[names.index(particle) if particle in names else pids.index(particle)]
    name = names[bins.index(chosen)]
    where = str(path)
    layers = []
    for position, element in enumerate(e for e in chosen if e.tag == "Layer"):
        attrs = {k: element.attrib.get(k) for k in ("id", "r_edges", "n_bin_alpha")}
        layers.append(_layer(attrs, position, where, name, layers[-1].id if layers else None))
    if not layers:
        raise DataError(f"{path}: particle '{name}' has no <Layer> elements")
    return _geometry(name, layers, where, chosen.attrib.get("pid"), str(path.resolve()), file_sha256(path))


# -- files --------------------------------------------------------------------------------------------------------
def _hdf5_keys(spec: str | os.PathLike) -> tuple[Path, str, set[str]] | None:
    """(path, the prefix its key names, every dataset key) of an existing HDF5 file, or None for any other spec."""
    from hepgen.data import io

    path, key = io.parse_spec(os.fspath(spec))
    if not str(path).lower().endswith((".h5", ".hdf5", ".hdf")) or not path.is_file():
        return None
    try:
        keys = set(io.available_keys(path))
    except DataError:
        return None
    return path, (f"{key.strip('/')}/" if key else ""), keys


def find_challenge(spec: str | os.PathLike) -> tuple[Path, str] | None:
    """(path, the prefix of its datasets) of a file in the CaloChallenge layout (``incident_energies`` and
    ``showers`` at the top level or in the group the key names), or None."""
    found = _hdf5_keys(spec)
    if found is None:
        return None
    path, prefix, keys = found
    if f"{prefix}{ENERGY_KEY}" in keys and f"{prefix}{SHOWERS_KEY}" in keys:
        return path, prefix
    return None


def _layout(spec: str | os.PathLike, geometry: ChallengeGeometry) -> tuple[Path, str, Any, np.ndarray]:
    """(path, prefix, the showers source, the incident energies (n,) in MeV) of a checked CaloChallenge file."""
    from hepgen.data import io

    spec = os.fspath(spec)
    path, _ = io.parse_spec(spec)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    found = find_challenge(spec)
    if found is None:
        try:
            have = ", ".join(sorted(io.available_keys(spec))) or "nothing"
        except DataError as exc:
            raise DataError(f"{spec}: not a CaloChallenge file ({exc})") from None
        raise DataError(f"{spec} is not a CaloChallenge file: expected datasets {ENERGY_KEY} (N, 1) and "
                        f"{SHOWERS_KEY} (N, voxels) in MeV; it has {have}")
    path, prefix = found
    source = io.open_source(f"{path}:{prefix}{SHOWERS_KEY}")
    try:
        shape = tuple(source.event_shape)
        if len(shape) != 1:
            raise DataError(f"{path}:{prefix}{SHOWERS_KEY} has showers of shape {shape}; a CaloChallenge file holds "
                            "(N, voxels)")
        _check_voxels(f"{path}:{prefix}{SHOWERS_KEY}", shape[0], geometry)
        energy = read_incident_energies(path, prefix)
        if len(energy) != len(source):
            raise DataError(f"{path}: {len(energy)} incident energies but {len(source)} showers; one each")
    except BaseException:
        source.close()
        raise
    return path, prefix, source, energy


def read_incident_energies(path: Path, prefix: str = "") -> np.ndarray:
    """The ``incident_energies`` (N, 1) of a CaloChallenge file as (N,) MeV, each checked to be a positive finite
    number (a DataError names the file, the dataset and the row)."""
    from hepgen.data import io

    energy = np.asarray(io.read(f"{path}:{prefix}{ENERGY_KEY}", dtype=np.float64, check_finite=False).data,
                        dtype=np.float64)
    if energy.ndim != 2 or energy.shape[1] != 1:
        raise DataError(f"{path}:{prefix}{ENERGY_KEY} has shape {energy.shape}; expected (N, 1) incident "
                        "energies in MeV")
    energy = energy[:, 0]
    bad = ~(np.isfinite(energy) & (energy > 0))
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{path}:{prefix}{ENERGY_KEY}: the incident energy must be a positive number of MeV; "
                        f"row {row} is {energy[row]:.6g}")
    return energy


def context_energies(spec: str | os.PathLike, geometry: Any) -> tuple[np.ndarray, str] | None:
    """(the incident energies (n,) [MeV], where they were read) of ``spec`` given as the condition of showers to be
    generated on ``geometry`` (``hepgen sample --context``): a CaloChallenge file, whose showers must be the
    geometry's (a file of another binning is refused naming the layer, as in training), or an HDF5 file that holds
    ``incident_energies`` (N, 1) alone; None for any other file (read by column names then)."""
    geometry = read_geometry(geometry)
    if find_challenge(spec) is not None:
        path, prefix, source, energy = _layout(spec, geometry)
        source.close()
        return energy, f"{path}:{prefix}{ENERGY_KEY}"
    found = _hdf5_keys(spec)
    if found is None:
        return None
    path, prefix, keys = found
    if f"{prefix}{ENERGY_KEY}" not in keys:
        return None
    return read_incident_energies(path, prefix), f"{path}:{prefix}{ENERGY_KEY}"


def _check_voxels(where: str, voxels: int, geometry: ChallengeGeometry) -> None:
    """A DataError naming the layer where the file's voxels stop matching the geometry."""
    if voxels == geometry.voxels:
        return
    if voxels > geometry.voxels:
        last = geometry.filled[-1]
        detail = f"{voxels - geometry.voxels} voxel(s) beyond its last layer ({last.id})"
    else:
        start = 0
        for layer in geometry.layers:
            if start + layer.voxels > voxels:
                break
            start += layer.voxels
        detail = (f"they end inside layer {layer.id}, which gets {voxels - start} of its {layer.voxels} voxels" if
                  voxels > start else f"layer {layer.id} gets none of its {layer.voxels} voxels")
    raise DataError(f"{where} has {voxels} voxels per shower, but {geometry.describe()} gives {geometry.voxels} "
                    f"({geometry.layer_sizes()}): {detail}")


def read_challenge(spec: str | os.PathLike, geometry: Any, limit: int | None = None
                   ) -> tuple[dict[str, np.ndarray], np.ndarray, ChallengeGeometry]:
    """({``layer_<id>``: (n, n_alpha, n_r)} in MeV, the incident energy (n,) in GeV, the geometry) of a
    CaloChallenge file ``path[:group]`` (``limit``: its first rows only)."""
    geometry = read_geometry(geometry)
    path, prefix, source, energy = _layout(spec, geometry)
    with source:
        n = len(source) if limit is None else min(int(limit), len(source))
        showers = _read_rows(source, 0, n, geometry)  # NaN/inf: a DataError naming the file, row, voxel, layer
    return geometry.split(showers), energy[:n] / MEV, geometry


def write_challenge(spec: str | os.PathLike, geometry: Any, layers: Mapping[str, Any], energy: Any) -> None:
    """Write showers in the CaloChallenge layout: ``incident_energies`` (n, 1) and ``showers`` (n, voxels), both
    in MeV (``energy`` is in GeV, as hepgen's shower models take it), as float32 like the challenge's files."""
    from hepgen.data import io

    geometry = read_geometry(geometry)
    showers = geometry.join(layers).astype(np.float32)
    energy = np.asarray(energy, dtype=np.float64).reshape(-1, 1) * MEV
    io.write(spec, {ENERGY_KEY: energy.astype(np.float32), SHOWERS_KEY: showers})


def _read_rows(source: Any, start: int, stop: int, geometry: ChallengeGeometry) -> np.ndarray:
    """``source.read_rows``; its DataError for a NaN/inf voxel ('... at row 7, column 200') also names the voxel's
    layer and bins."""
    try:
        return source.read_rows(start, stop)
    except DataError as exc:
        import re

        found = re.search(r", column (\d+)", str(exc))
        if found is None:
            raise
        column = int(found.group(1))
        where = f", column {column} ({geometry.locate(column)})"
        raise DataError(str(exc).replace(found.group(0), where, 1)) from None


class _SharedRows:
    """Rows of the showers dataset, read once per (start, stop) for all the layers cut from them."""

    def __init__(self, source: Any, geometry: ChallengeGeometry):
        self.source, self.geometry = source, geometry
        self._key: tuple[int, int] | None = None
        self._rows: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.source)

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        if self._key != (start, stop):
            self._key, self._rows = (start, stop), _read_rows(self.source, start, stop, self.geometry)
        return self._rows

    def close(self) -> None:
        self.source.close()


class _LayerRows:
    """One layer of streamed showers: ``read_rows(start, stop)`` -> (rows, n_alpha, n_r)."""

    def __init__(self, shared: _SharedRows, start: int, layer: ChallengeLayer):
        self.shared, self.start, self.layer = shared, start, layer
        self.event_shape = layer.shape

    def __len__(self) -> int:
        return len(self.shared)

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        rows = self.shared.read_rows(start, stop)[:, self.start:self.start + self.layer.voxels]
        return np.ascontiguousarray(rows).reshape(len(rows), *self.layer.shape)

    def close(self) -> None:
        self.shared.close()


class ChallengeRows:
    """Row-range reads of a CaloChallenge file's showers as layers: ``read_rows(start, stop)`` -> {``layer_<id>``:
    (rows, n_alpha, n_r)} in MeV, ``energy`` (n,) the incident energies in GeV (what ``hepgen score`` reads)."""

    def __init__(self, spec: Any, geometry: Any):
        self.geometry = read_geometry(geometry)
        _, _, source, energy = _layout(spec, self.geometry)
        self.energy = energy / MEV
        shared, self.layers, start = _SharedRows(source, self.geometry), {}, 0
        for layer in self.geometry.layers:
            if layer.voxels:
                self.layers[layer.name] = _LayerRows(shared, start, layer)
            start += layer.voxels
        self._shared = shared

    def __len__(self) -> int:
        return len(self.energy)

    def read_rows(self, start: int, stop: int) -> dict[str, np.ndarray]:
        return {k: v.read_rows(start, stop) for k, v in self.layers.items()}

    def close(self) -> None:
        self._shared.close()


def open_challenge(spec: Any, geometry: Any, *, weights: Any = None, weight_column: str | None = None,
                   context: Any = None, stream: bool | None = None, memory_limit_mb: float = 1024.0) -> Any:
    """The events of a CaloChallenge file for training: :class:`~hepgen.data.loader.Events` of the layers
    {``layer_<id>``: (n_alpha, n_r)} in MeV, the context (n, 1) the incident energy in GeV (column
    ``energy``), optional per-shower ``weights`` (FILE:KEY or an array) or ``weight_column`` (a dataset
    beside the showers).

    ``context``: None, ``energy`` or ``incident_energies`` (a CaloChallenge file has no other condition).
    ``stream``: True keeps the showers on disk (read chunk by chunk), False reads them, None decides by
    ``memory_limit_mb``. The result carries ``geometry`` (the :class:`ChallengeGeometry`).
    """
    from hepgen.data.loader import Events
    from hepgen.errors import ConfigError

    geometry = read_geometry(geometry)
    if context is not None and not (isinstance(context, str) and context.strip() in ("energy", ENERGY_KEY)):
        raise ConfigError(f"--context {excerpt(context)}: a CaloChallenge file's condition is its incident energy "
                          f"({ENERGY_KEY}, in GeV for the model); leave --context out or give 'energy'")
    path, prefix, source, energy = _layout(spec, geometry)
    try:
        w = _weights(path, prefix, len(energy), weights, weight_column)
    except BaseException:
        source.close()
        raise
    nbytes = len(source) * geometry.voxels * 4
    keep_on_disk = stream if stream is not None else nbytes > memory_limit_mb * 2**20
    if keep_on_disk:
        shared = _SharedRows(source, geometry)
        x, start = {}, 0
        for layer in geometry.layers:
            if layer.voxels:
                x[layer.name] = _LayerRows(shared, start, layer)
            start += layer.voxels
    else:
        with source:
            showers = _read_rows(source, 0, len(source), geometry)
        x = geometry.split(showers)
    events = Events(x, w, (energy / MEV).astype(np.float32)[:, None], names={"context": ["energy"]}, spec=spec)
    events.geometry = geometry
    return events


def _weights(path: Path, prefix: str, n: int, weights: Any, column: str | None) -> np.ndarray | None:
    """Per-shower weights (n,): a dataset beside the showers (``column``), FILE:KEY or an array; or None."""
    from hepgen.data import io

    if column is not None:
        w = io.read_column(f"{path}:{prefix}{column.strip()}")
    elif weights is None:
        return None
    elif isinstance(weights, (str, os.PathLike)):
        w = io.read_column(weights)
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(w) != n:
        raise DataError(f"the weights have {len(w)} rows but {path} holds {n} showers; one each")
    if not np.isfinite(w).all() or not float(np.sum(w)) > 0:
        raise DataError(f"the weights of {path} must be finite with a positive sum")
    return w
