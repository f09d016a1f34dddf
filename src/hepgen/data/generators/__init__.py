"""Built-in data generators, reachable as ``hepgen data NAME``.

Each generator module exposes ``generate(n: int, seed: int = 0, **options) -> dict[str, np.ndarray]``
(arrays keyed by the dataset name they are written under), an ``OPTIONS`` table (option name ->
:class:`hepgen.options.Option`: default, type, bounds, description), ``OPTION_UNITS`` (option name -> unit, for those that have one),
``units(**options)`` (dataset -> unit of its values, or list of units of its last axis' columns),
``process(**options)`` (what was simulated, one line) and a module docstring describing the physics.
Modules are imported lazily so that a missing optional generator (e.g. Pythia on an unsupported
platform) does not break the others.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from hepgen.errors import ConfigError

GENERATORS: dict[str, str] = {
    "toys": "hepgen.data.generators.toys",
    "jets": "hepgen.data.generators.jets",
    "calo": "hepgen.data.generators.calo",
    "phi4": "hepgen.data.generators.phi4",
    "smear": "hepgen.data.generators.smear",
}

#: one line per generator, for ``hepgen data --help`` (without importing them)
SUMMARIES: dict[str, str] = {
    "toys": "2-D shapes and Gaussians of any dimension (moons, 8 Gaussians, checkerboard, rings, spirals, "
            "correlated Gaussian, Gaussian mixture)",
    "jets": "boosted QCD, top and W jets from Pythia 8 + FastJet: constituents, 40x40 images, substructure",
    "calo": "a CaloGAN-like three-layer calorimeter, GFLASH-style showers of e+, gamma, pi+",
    "phi4": "2-D lattice phi^4 field configurations by Hybrid Monte Carlo",
    "smear": "truth/reco jet observables through a parametrised detector, for unfolding",
}


def get_generator(name: str) -> ModuleType:
    """Return the generator module called ``name`` (raises ConfigError naming the valid ones)."""
    if name not in GENERATORS:
        raise ConfigError(f"unknown data generator {name!r}; available: {', '.join(sorted(GENERATORS))}")
    return importlib.import_module(GENERATORS[name])


def options_help(name: str) -> str:
    """The option table of generator ``name`` as ``hepgen data NAME --help`` prints it.

    One line per option: name, type, default, unit (where it has one) and description, from the
    module's ``OPTIONS`` and ``OPTION_UNITS``.
    """
    module = get_generator(name)
    units = getattr(module, "OPTION_UNITS", {})
    rows = []
    for key, option in module.OPTIONS.items():
        unit, default = units.get(key, ""), option.default
        kind = "list" if option.type is tuple else option.type.__name__
        bounded = option.low is not None or option.high is not None or option.choices
        text = option.help + (f" ({option.describe()})" if bounded else "")
        rows.append((key, kind, "none" if default is None else str(default), f"[{unit}]" if unit else "", text))
    header = ("KEY", "TYPE", "DEFAULT", "UNIT", "DESCRIPTION")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(4)]
    lines = [f"generator {name!r}: {SUMMARIES.get(name, '')}", "", "options (--option KEY=VALUE, repeatable):"]
    for row in (header, *rows):
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
    return "\n".join(lines) + "\n"


def file_attributes(name: str, n: int, seed: int, options: Mapping[str, Any],
                    arrays: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """HDF5 attributes describing a generated sample: ``{dataset path: {attribute: value}}``.

    The file (``"/"``) gets ``generator``, ``process`` (what was simulated), ``seed``, ``n_events``,
    ``parameters`` (every option, defaults included, as JSON) and ``hepgen_version``. Each dataset
    gets ``unit`` (its values' unit) or ``units`` (one per column of its last axis) where the
    generator knows them; a 2-D array written as a group of named columns gets ``unit`` on each
    column (``truth/pt``) and ``units`` on the group. Paths are those of :func:`hepgen.data.io.write_arrays`.
    """
    from hepgen._version import __version__

    module = get_generator(name)
    resolved = _resolved_options(module, options)
    process = module.process(**options) if hasattr(module, "process") else name
    attrs: dict[str, dict[str, Any]] = {"/": {
        "generator": name, "process": process, "seed": int(seed), "n_events": int(n),
        "parameters": json.dumps(resolved, sort_keys=True, default=str), "hepgen_version": __version__}}
    units = module.units(**options) if hasattr(module, "units") else {}
    columns = module.columns(**options) if hasattr(module, "columns") else {}
    for key, unit in units.items():
        if key not in arrays:
            continue
        if isinstance(unit, str):
            attrs[key] = {"unit": unit}
            continue
        attrs[key] = {"units": list(unit)}
        names = columns.get(key)
        if names and getattr(arrays[key], "ndim", 0) == 2:  # written as a group of 1-D columns
            prefix = "" if len(arrays) == 1 else f"{key}/"
            for column, column_unit in zip(names, unit, strict=True):
                attrs[f"{prefix}{column}"] = {"unit": column_unit}
            if len(arrays) == 1:
                attrs["/"]["units"] = attrs.pop(key)["units"]
                attrs["/"]["columns"] = list(names)
    return attrs


def _resolved_options(module: ModuleType, options: Mapping[str, Any]) -> dict[str, Any]:
    """Every option with its default filled in (the generator's own checks run on generate())."""
    resolved = {key: option.default for key, option in module.OPTIONS.items()}
    resolved.update(options)
    return resolved
