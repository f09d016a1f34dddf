"""The shower layout of ``hepgen data calo`` and reading it back from any file that holds it.

A shower file holds three layers and the incident energy, one row per shower::

    layer_0 (n, 3, 96)   layer_1 (n, 12, 12)   layer_2 (n, 12, 6)   cell energies [MeV]
    energy  (n,)                                                      incident energy [GeV]

at the top level (the simulator), in a group ``file.h5:group``, or as ``hepgen sample`` writes a
conditional model's samples: the layers in ``samples/`` and the context column ``energy`` beside
them. :func:`read_showers` finds any of these and checks the shapes; a file of another layout is
a DataError naming the file, the dataset and the shape.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from hepgen.errors import ConfigError, DataError

LAYERS: dict[str, tuple[int, int]] = {"layer_0": (3, 96), "layer_1": (12, 12), "layer_2": (12, 6)}
ENERGY = "energy"

__all__ = ["ENERGY", "LAYERS", "Showers", "find_layout", "is_shower_file", "layer_shapes", "read_showers",
           "shower_model_from_data", "write_showers"]


@dataclass
class Showers:
    """Showers in memory: ``layers`` {name: (n, rows, cols)} in MeV, ``energy`` (n,) in GeV."""

    layers: dict[str, np.ndarray]
    energy: np.ndarray
    spec: str = ""

    def __len__(self) -> int:
        return len(self.energy)

    def list(self) -> list[np.ndarray]:
        """The layers in order layer_0, layer_1, layer_2."""
        return [self.layers[k] for k in LAYERS]

    def take(self, index: np.ndarray) -> Showers:
        return Showers({k: v[index] for k, v in self.layers.items()}, self.energy[index], self.spec)


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
    """True when ``spec`` holds the three layers (at the top level, in its group or in ``samples/``)."""
    try:
        return find_layout(spec) is not None
    except Exception:  # noqa: BLE001 - not readable as HDF5: not a shower file
        return False


def read_showers(spec: str | os.PathLike, limit: int | None = None) -> Showers:
    """The showers of ``spec`` (``file.h5`` or ``file.h5:group``), checked against :data:`LAYERS`."""
    from hepgen.data import io

    spec = os.fspath(spec)
    path, _ = io.parse_spec(spec)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    layout = find_layout(spec)
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


def write_showers(spec: str | os.PathLike, layers: dict[str, np.ndarray], energy: np.ndarray) -> None:
    """Write showers in the simulator's layout (the layers and ``energy`` at the top level or in the key's group)."""
    from hepgen.data import io

    arrays = {k: np.asarray(layers[k], dtype=np.float32) for k in LAYERS}
    arrays[ENERGY] = np.asarray(energy, dtype=np.float64).reshape(-1)
    io.write(spec, arrays, attrs={k: {"unit": "MeV"} for k in LAYERS} | {ENERGY: {"unit": "GeV"}})


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
    events of several arrays, one per layer."""
    if not isinstance(event_shape, dict):
        raise ConfigError(f"{cls.cli_name} models showers of several layers (an HDF5 file or group holding "
                          f"{', '.join(LAYERS)}); this data has single-array events of shape {event_shape}")
    return cls(shapes=event_shape, context=context, **params)
