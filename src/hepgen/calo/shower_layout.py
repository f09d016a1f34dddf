"""The shower layout of ``hepgen data calo`` and reading it back from any file that holds it.

A shower file holds three layers and the incident energy, one row per shower::

    layer_0 (n, 3, 96)   layer_1 (n, 12, 12)   layer_2 (n, 12, 6)   cell energies [MeV]
    energy  (n,)                                                      incident energy [GeV]

at the top level (the simulator, and ``hepgen sample`` of a shower model), in a group ``file.h5:group``,
or as older versions of ``hepgen sample`` wrote them: the layers in ``samples/`` and the context column
``energy`` beside them. :func:`read_showers` finds any of these and checks the shapes; a file of another layout is
a DataError naming the file, the dataset and the shape.

The other layout is the CaloChallenge's (datasets 1-3): ``incident_energies`` (n, 1) and ``showers`` (n, voxels),
both in MeV, with a binning XML that lays the voxels out in layers (:mod:`hepgen.data.calochallenge`). Given
``geometry`` (the XML, ``binning.xml[:particle]``) :func:`read_showers` reads it as layers ``layer_<id>``
(n, n_alpha, n_r) and the energy in GeV, :func:`write_showers` writes it back, and a shower model fitted on it
records the geometry's content (hyper-parameter ``geometry``: the layers' edges and angular bins, the XML's path
and sha256), so that ``hepgen sample`` writes the same layout without the XML.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from hepgen.data.calochallenge import (
    ENERGY_KEY,
    MEV,
    SHOWERS_KEY,
    ChallengeGeometry,
    find_challenge,
    read_challenge,
    read_geometry,
    write_challenge,
)
from hepgen.errors import ConfigError, DataError
from hepgen.options import excerpt

LAYERS: dict[str, tuple[int, int]] = {"layer_0": (3, 96), "layer_1": (12, 12), "layer_2": (12, 6)}
ENERGY = "energy"

#: a shower model generates up to this factor beyond its training energies (below and above) without being
#: told to extrapolate; farther out it refuses unless ``extrapolate=True`` (``hepgen sample --extrapolate``)
EXTRAPOLATION_FACTOR = 2.0

__all__ = ["ENERGY", "EXTRAPOLATION_FACTOR", "LAYERS", "Showers", "check_incident_energy", "check_training_energy",
           "IncidentEnergyChecks", "find_layout", "is_shower_file", "layer_shapes", "read_showers", "shower_geometry",
           "shower_model_from_data", "write_showers"]


@dataclass
class Showers:
    """Showers in memory: ``layers`` {name: (n, rows, cols)} in MeV, ``energy`` (n,) in GeV; ``geometry`` the
    CaloChallenge binning they were read with (None: the simulator's layout)."""

    layers: dict[str, np.ndarray]
    energy: np.ndarray
    spec: str = ""
    geometry: ChallengeGeometry | None = None

    def __len__(self) -> int:
        return len(self.energy)

    def list(self) -> list[np.ndarray]:
        """The layers in order (layer_0, layer_1, layer_2 of the simulator; a geometry's in its order)."""
        return list(self.layers.values())

    def take(self, index: np.ndarray) -> Showers:
        return Showers({k: v[index] for k, v in self.layers.items()}, self.energy[index], self.spec, self.geometry)

    def feature_layout(self) -> dict[str, Any]:
        """The keywords of :func:`~hepgen.metrics.shower_observables.shower_features` (and ``classifier_inputs``)
        for these showers: none for the simulator's layout; for a geometry its bin centres in η (axis x) and φ
        (axis y) — None for a layer of one angular bin, as the CaloChallenge's HighLevelFeatures — and its layer
        ids as the labels: ``E_12``, ``centroid_x_1`` (η), ``width_y_2`` (φ)."""
        if self.geometry is None:
            return {}
        centres = self.geometry.centres()
        return {"centres": [centres[k] for k in self.layers], "labels": [k.removeprefix("layer_") for k in self.layers],
                "axes": ("x", "y")}


def _keys(path: str) -> set[str]:
    from hepgen.data import io

    return set(io.available_keys(path))


def find_layout(spec: str | os.PathLike) -> tuple[str, str, str] | None:
    """(path, group of the layers ("" = top level), the energy dataset) of a shower file, or None."""
    from hepgen.data import io

    path, key = io.parse_spec(os.fspath(spec))
    if not str(path).endswith((".h5", ".hdf5", ".hdf")) or not os.path.exists(path):
        return None
    keys = _keys(path)
    candidates = [key.strip("/")] if key else ["", "samples"]
    for group in candidates:
        prefix = f"{group}/" if group else ""
        if all(f"{prefix}{k}" in keys for k in LAYERS):
            for energy in (f"{prefix}{ENERGY}", ENERGY, f"{prefix}context/{ENERGY}", f"context/{ENERGY}", "context"):
                if energy in keys:
                    return str(path), group, energy
            return str(path), group, ""
    return None


def is_shower_file(spec: str | os.PathLike) -> bool:
    """True when ``spec`` holds the three layers (at the top level, in its group or in ``samples/``) or is a
    CaloChallenge file (``incident_energies`` and ``showers``)."""
    try:
        return find_layout(spec) is not None or find_challenge(spec) is not None
    except Exception:  # noqa: BLE001 - not readable as HDF5: not a shower file
        return False


def read_showers(spec: str | os.PathLike, limit: int | None = None, geometry: Any = None) -> Showers:
    """The showers of ``spec`` (``file.h5`` or ``file.h5:group``), checked against :data:`LAYERS`; with
    ``geometry`` (a CaloChallenge binning XML ``binning.xml[:particle]``, or a geometry) a CaloChallenge file,
    its voxels laid out in the geometry's layers (module doc)."""
    from hepgen.data import io

    spec = os.fspath(spec)
    path, _ = io.parse_spec(spec)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if geometry is not None:
        layers, energy, geometry = read_challenge(spec, geometry, limit)
        return Showers(layers, energy, spec, geometry)
    layout = find_layout(spec)
    if layout is None and find_challenge(spec) is not None:
        raise DataError(f"{spec} is a CaloChallenge file (incident_energies, showers): give its binning XML "
                        "(--geometry binning.xml, geometry= in Python) to lay its voxels out in layers")
    if layout is None:
        raise DataError(f"{spec} holds no showers: expected datasets {', '.join(LAYERS)} (and {ENERGY}) at its top "
                        f"level, in the group it names or in samples/ (as 'hepgen data calo' and 'hepgen sample' "
                        f"write them); it has {', '.join(sorted(_keys(path))) or 'nothing'}")
    path, group, energy_key = layout
    if not energy_key:
        raise DataError(f"{spec}: the layers are there but no incident energy dataset '{ENERGY}' (n,) in GeV")
    prefix = f"{group}/" if group else ""
    layers = {}
    for name, shape in LAYERS.items():
        arr = io.read(f"{path}:{prefix}{name}", check_finite=False).data
        if tuple(arr.shape[1:]) != shape:
            raise DataError(f"{path}:{prefix}{name} has showers of shape {tuple(arr.shape[1:])}, expected {shape} "
                            "(the layout of 'hepgen data calo')")
        layers[name] = arr if limit is None else arr[:limit]
    energy = np.asarray(io.read(f"{path}:{energy_key}", dtype=np.float64).data, dtype=np.float64).reshape(-1)
    energy = energy if limit is None else energy[:limit]
    n = {k: len(v) for k, v in layers.items()}
    if len(set(n.values())) != 1 or len(energy) != next(iter(n.values())):
        raise DataError(f"{spec}: the layers and the energy have different numbers of showers: "
                        f"{dict(n, **{energy_key: len(energy)})}")
    for name, arr in layers.items():
        bad = ~np.isfinite(arr)
        if bad.any():
            row = int(np.argwhere(bad.reshape(len(arr), -1).any(1))[0, 0])
            raise DataError(f"{path}:{prefix}{name} holds NaN/inf cell energies; the first in row {row}")
    if len(energy) and not np.all(energy > 0):
        row = int(np.argmax(~(energy > 0)))
        raise DataError(f"{path}:{energy_key}: the incident energy must be positive; row {row} is {energy[row]}")
    return Showers(layers, energy, spec)


def write_showers(spec: str | os.PathLike, layers: dict[str, np.ndarray], energy: np.ndarray,
                  geometry: Any = None) -> None:
    """Write showers in the simulator's layout (the layers and ``energy`` at the top level or in the key's group),
    or with ``geometry`` in the CaloChallenge layout (``incident_energies`` (n, 1), ``showers`` (n, voxels), MeV)."""
    from hepgen.data import io

    if geometry is not None:
        write_challenge(spec, geometry, layers, energy)
        return

    arrays = {k: np.asarray(layers[k], dtype=np.float32) for k in LAYERS}
    arrays[ENERGY] = np.asarray(energy, dtype=np.float64).reshape(-1)
    io.write(spec, arrays, attrs={k: {"unit": "MeV"} for k in LAYERS} | {ENERGY: {"unit": "GeV"}})


def shower_geometry(name: str, geometry: Any, shapes: Any) -> tuple[dict[str, Any] | None, Any]:
    """(the geometry as a run records it, the layers' shapes) of a shower model given ``geometry`` (a
    CaloChallenge binning XML ``binning.xml[:particle]``, a geometry, the mapping a run recorded, or None) and
    ``shapes``: with a geometry the layers are its own, and shapes given beside it must be those."""
    if geometry is None:
        return None, shapes
    g = read_geometry(geometry)
    own = {k: list(v) for k, v in g.shapes.items()}
    if shapes is not None:
        given = {str(k): [int(x) for x in v] for k, v in dict(shapes).items()}
        if given != own:
            diff = next((k for k in own if given.get(k) != own[k]), None) or next(k for k in given if k not in own)
            raise ConfigError(f"{name}: shapes give layer '{diff}' {given.get(diff)}, but the geometry "
                              f"{g.describe()} gives it {own.get(diff)} (angular, radial bins); leave shapes out")
    return g.to_dict(), own


def layer_shapes(name: str, shapes: Any, context: int, preprocess: Any, own: str) -> dict[str, list[int]]:
    """{layer: [rows, cols]} of a shower model (default :data:`LAYERS`), after the checks every shower model
    shares: conditional on the incident energy, and no generic preprocessing (``own`` says what it does)."""
    if int(context) < 1:
        raise ConfigError(f"{name} is conditional on the incident energy: fit it with --context energy "
                          "(context=1, the energy in GeV first)")
    if preprocess != "none":
        raise ConfigError(f"{name} {own}; preprocess must be 'none'")
    return {str(k): [int(x) for x in v] for k, v in (shapes or LAYERS).items()}


def shower_model_from_data(cls: type, event_shape: Any, context: int, **params: Any) -> Any:
    """``from_data`` of a shower model (``from_data = classmethod(shower_model_from_data)``): the CLI found
    events of several arrays, one per layer. A ``shapes`` hyper-parameter (config file or ``--shapes``) is
    accepted when it is the data's own, and refused naming the layer where it differs."""
    if not isinstance(event_shape, dict):
        raise ConfigError(f"{cls.cli_name} models showers of several layers (an HDF5 file or group holding "
                          f"{', '.join(LAYERS)}); this data has single-array events of shape {event_shape}")
    data = {str(k): tuple(int(x) for x in v) for k, v in event_shape.items()}
    given = params.pop("shapes", None)
    if given is not None:
        if not isinstance(given, dict):
            raise ConfigError(f"{cls.cli_name}: shapes must map each layer to [rows, cols], got {excerpt(given)}")
        for name in sorted(set(given) | set(data)):
            if name not in data:
                raise ConfigError(f"{cls.cli_name}: shapes names layer {excerpt(name)}, which the training data does "
                                  f"not hold (its layers: {', '.join(data)}); leave shapes out to take the data's")
            if name not in given:
                raise ConfigError(f"{cls.cli_name}: shapes gives no shape for the training data's layer '{name}' "
                                  f"{list(data[name])}; leave shapes out to take the data's")
            try:
                want = tuple(int(x) for x in given[name])
            except (TypeError, ValueError):
                want = None
            if want != data[name]:
                raise ConfigError(f"{cls.cli_name}: shapes gives layer '{name}' the shape {excerpt(given[name])}, "
                                  f"but the training data's layer '{name}' is {list(data[name])}; leave shapes "
                                  "out to take the data's")
    return cls(shapes=data, context=context, **params)


def check_training_energy(context: np.ndarray, names: Any, where: str, model: str) -> tuple[float, float]:
    """Refuse training showers of non-physical incident energy (context column 0: not a positive, finite number
    of GeV) with a DataError naming ``where`` (the file), the column and the row; (min, max) of the energies."""
    energy = np.asarray(context, dtype=np.float64).reshape(len(context), -1)[:, 0]
    name = names[0] if names else "context column 0"
    bad = ~(np.isfinite(energy) & (energy > 0))
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{where}: column '{name}' (the incident energy in GeV) is {energy[row]:.6g} at row {row}; "
                        f"{model} trains on showers of positive incident energy")
    if not len(energy):
        raise DataError(f"{where}: no showers")
    return float(energy.min()), float(energy.max())


def check_incident_energy(energy: Any, model: str, training: Any = None, extrapolate: bool = False,
                          where: str = "") -> None:
    """Refuse to generate at a non-physical incident energy (GeV: not positive and finite) and, unless
    ``extrapolate``, farther than :data:`EXTRAPOLATION_FACTOR` beyond the ``training`` range (low, high);
    ``where``: the file the energies are the rows of (named with the row), else "context row"."""
    import torch

    e = torch.as_tensor(energy).detach().reshape(-1).double().cpu()
    if not len(e):
        return
    bad = ~(torch.isfinite(e) & (e > 0))
    if bool(bad.any()):
        row = int(torch.argmax(bad.to(torch.int8)))
        at = f" ({where or 'context'} row {row})" if where or bool((e != e[0]).any()) else ""
        raise ConfigError(f"{model}: the incident energy (context column 0) must be a positive number of GeV, got "
                          f"{float(e[row]):.6g}{at}")
    if training is None or extrapolate:
        return
    low, high = (float(v) for v in training)
    f = EXTRAPOLATION_FACTOR
    below, above = e < low / f, e > high * f
    if bool(below.any() or above.any()):
        row = int(torch.argmax((below | above).to(torch.int8)))
        at = f" ({where or 'context'} row {row})" if where or bool((e != e[0]).any()) else ""
        raise ConfigError(f"{model}: the incident energy {float(e[row]):.6g} GeV{at} lies far outside the "
                          f"training range {low:.6g} to {high:.6g} GeV (more than a factor {f:g} beyond it): the "
                          "showers would be an extrapolation the model never saw; to sample them anyway pass "
                          "extrapolate=True (hepgen sample --extrapolate)")


class IncidentEnergyChecks:
    """Mixin of the shower models (before the family base in the bases): the incident energy (context
    column 0, GeV) must be physical where they train and generate, and their training range is fitted state.

    ``energy_range_``: (min, max) GeV of the training showers (config.yaml ``fitted: energy_range``; widened
    by a warm start, forgotten by ``reset_parameters``; None for runs saved before it was recorded, which are then not range-checked).
    """

    energy_range_: tuple[float, float] | None = None
    #: the context's name when the model was fitted on unnamed arrays: the simulator's incident-energy dataset, so
    #: ``hepgen score RUN SHOWERS.h5`` reads it from the shower file (``hepgen.cli.columns.context_names``)
    default_context_columns = (ENERGY,)

    def check_context(self, context: np.ndarray, names: Any, where: str) -> None:
        """The engine's check of the training (and validation) contexts, before anything is trained."""
        check_training_energy(context, names, where, self.cli_name)

    def _record_energy_range(self, events: Any) -> None:
        """``energy_range_`` from every training shower's incident energy (on_fit_start)."""
        context = events.context
        if hasattr(context, "read_rows"):
            context = context.read_rows(0, len(context))
        low, high = check_training_energy(np.asarray(context), self.context_columns_, "the training showers",
                                          self.cli_name)
        if self.energy_range_ is not None:  # a warm start: the range it was trained on before counts too
            low, high = min(low, self.energy_range_[0]), max(high, self.energy_range_[1])
        self.energy_range_ = (low, high)

    def reset_parameters(self) -> None:
        """A fit from scratch forgets the training range with the weights."""
        super().reset_parameters()  # type: ignore[misc]
        self.energy_range_ = None

    def _check_energy(self, energy: Any, extrapolate: bool = False) -> None:
        check_incident_energy(energy, self.cli_name, self.energy_range_, extrapolate)

    def check_context_energies(self, context: Any, where: str, extrapolate: bool = False) -> None:
        """``hepgen sample --context FILE``: every incident energy (column 0, GeV) of the file checked before any
        shower is drawn, a bad one named with its row of ``where`` (per block, the row was the block's)."""
        energy = np.asarray(context, dtype=np.float64).reshape(len(context), -1)[:, 0]
        check_incident_energy(energy, self.cli_name, self.energy_range_, extrapolate, where=where)

    @property
    def geometry_(self) -> ChallengeGeometry | None:
        """The CaloChallenge geometry of the showers (hyper-parameter ``geometry``), or None."""
        value = getattr(self, "geometry", None)
        return None if value is None else read_geometry(value)

    def output_arrays(self, drawn: dict[str, Any], context: np.ndarray) -> dict[str, np.ndarray] | None:
        """What ``hepgen sample`` writes of a block of showers {layer: (n, rows, cols)} drawn at ``context``
        (n, c) (GeV first): with a geometry the CaloChallenge layout, ``incident_energies`` (n, 1) and
        ``showers`` (n, voxels) in MeV (float32, as the challenge's files); without one, for a model conditioned
        on the energy alone, the simulator's layout (``hepgen data calo``): the layers as drawn and ``energy`` (n,)
        in GeV, whatever the training file called it, so ``hepgen compare SIM.h5 FAKE.h5`` reads it back (a run
        fitted on unnamed arrays, e.g. a shipped model, would otherwise write ``context_0``); None (the layers and
        the context under the model's context names) for more context columns.

        Voxels drawn below 0 MeV are written as 0: the challenge's showers (Geant4 deposits, no electronic noise)
        have none, and its ``evaluate.py`` takes log10(E_k + 10⁻⁸) of each layer's sum, NaN for a negative one.
        (calo-flow's cells come back as y − offset, so an empty cell drawn a little below its offset is negative;
        ``model.sample`` in Python returns the cells as drawn.)"""
        g = self.geometry_
        layers = {k: v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v) for k, v in drawn.items()}
        context = np.asarray(context, dtype=np.float64).reshape(len(context), -1)
        if g is None:
            return {**layers, ENERGY: context[:, 0].copy()} if context.shape[1] == 1 else None
        energy = context[:, 0] * MEV
        showers = np.maximum(g.join(layers), 0.0).astype(np.float32)
        return {ENERGY_KEY: energy.astype(np.float32)[:, None], SHOWERS_KEY: showers}

    def context_file(self, spec: str) -> Any:
        """``sample --context FILE`` (and ``score``'s): the incident energies in GeV (a row source). On a
        CaloChallenge geometry, those of a CaloChallenge file of that geometry (one of another voxel count is
        refused, naming the layer) or of an HDF5 file holding ``incident_energies`` alone; in the simulator's layout,
        the ``energy`` dataset of a shower file (``hepgen data calo``'s: the layers beside it, so one shower is drawn
        per shower of the file); None for any other file (the context is then read by column names)."""
        if self.geometry_ is None:
            if self.context != 1:
                return None
            from hepgen.data.formats.base import ArraySource
            from hepgen.data.io import open_source

            found = find_layout(spec)
            if found is None or not found[2]:
                return None
            where = f"{found[0]}:{found[2]}"
            with open_source(where) as source:
                energy = source.read_rows(0, len(source)).astype(np.float64).reshape(len(source), -1)
            if energy.shape[1] != 1:
                raise DataError(f"{where}: the incident energy must be one value per shower (n,), got "
                                f"{energy.shape[1]} columns")
            return ArraySource(energy, ["energy"], spec=where, dtype=np.float64)
        from hepgen.data.calochallenge import context_energies
        from hepgen.data.formats.base import ArraySource

        found = context_energies(spec, self.geometry_)
        if found is None:
            return None
        energy, where = found
        return ArraySource(energy[:, None] / MEV, ["energy"], spec=where)

    def extra_state(self) -> dict[str, Any]:
        state = super().extra_state()  # type: ignore[misc]
        return {**state, "energy_range": None if self.energy_range_ is None else [float(v) for v in self.energy_range_]}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)  # type: ignore[misc]
        value = state.get("energy_range")
        self.energy_range_ = None if value is None else (float(value[0]), float(value[1]))
