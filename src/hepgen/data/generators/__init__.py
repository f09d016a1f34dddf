"""Built-in data generators, reachable as ``hepgen data NAME``.

Each generator module exposes ``generate(n: int, seed: int = 0, **options) -> dict[str, np.ndarray]``
(arrays keyed by the dataset name they are written under) and a module docstring describing the
physics. Modules are imported lazily so that a missing optional generator (e.g. Pythia on an
unsupported platform) does not break the others.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from hepgen.errors import ConfigError

GENERATORS: dict[str, str] = {
    "toys": "hepgen.data.generators.toys",
    "jets": "hepgen.data.generators.jets",
    "calo": "hepgen.data.generators.calo",
    "phi4": "hepgen.data.generators.phi4",
    "smear": "hepgen.data.generators.smear",
}


def get_generator(name: str) -> ModuleType:
    """Return the generator module called ``name`` (raises ConfigError naming the valid ones)."""
    if name not in GENERATORS:
        raise ConfigError(f"unknown data generator {name!r}; available: {', '.join(sorted(GENERATORS))}")
    return importlib.import_module(GENERATORS[name])
