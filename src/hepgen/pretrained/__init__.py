"""Trained models shipped with hepgen: ``hepgen.load("pretrained:NAME")``, ``hepgen sample pretrained:NAME ...``,
``hepgen info pretrained:NAME``, ``init_from="pretrained:NAME"``.

Each entry is an ordinary run directory's model (``NAME/model.pt`` and ``NAME/config.yaml``, read like any run:
torch.load(weights_only=True), yaml.safe_load) in this package's folder, listed in ``manifest.json`` with the
sha256 of each file, the model, what it is for and how it was trained (the command, the steps, the CPU time,
the measured quality). :func:`run_path` checks the files against the manifest before a model is built from them.

Shipped entries stay small: the whole folder is at most :data:`MAX_BYTES` (a test keeps it so).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hepgen.errors import CheckpointError, ConfigError
from hepgen.files import file_sha256

PREFIX = "pretrained:"
ROOT = Path(__file__).resolve().parent
MANIFEST = ROOT / "manifest.json"
#: the most the shipped models may weigh together, in bytes
MAX_BYTES = 25_000_000


def manifest() -> dict[str, dict[str, Any]]:
    """The shipped models: name -> {"model", "description", "files": {file: sha256}, "training": {...}, ...}."""
    try:
        return json.loads(MANIFEST.read_text())["models"]
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"the manifest of hepgen's shipped models, {MANIFEST}, cannot be read: {exc}") from None


def names() -> list[str]:
    """The names ``pretrained:NAME`` accepts."""
    return sorted(manifest())


def is_pretrained(spec: Any) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIX)


def run_path(spec: str, verify: bool = True) -> Path:
    """The run directory of ``pretrained:NAME`` (or of NAME), its files checked against the manifest's sha256;
    a ConfigError lists the available names for an unknown one."""
    name = spec[len(PREFIX):] if is_pretrained(spec) else spec
    models = manifest()
    if name not in models:
        shown = name if len(name) <= 40 else name[:37] + "..."
        raise ConfigError(f"no shipped model {PREFIX}{shown}; available: "
                          + (", ".join(PREFIX + n for n in sorted(models)) or "none"))
    folder = ROOT / name
    if verify:
        for file, sha in models[name].get("files", {}).items():
            path = folder / file
            if not path.is_file():
                raise CheckpointError(f"{PREFIX}{name}: {path} is missing from the installed package")
            if file_sha256(path) != sha:
                raise CheckpointError(f"{PREFIX}{name}: {path} does not have the manifest's sha256 ({sha[:12]}...); "
                                      "the installed package is damaged")
    return folder


def resolve(run: str | Path) -> Path:
    """A run directory as given, or a shipped model's for ``pretrained:NAME``."""
    return run_path(run) if is_pretrained(run) else Path(run)


def describe(spec: str) -> dict[str, Any]:
    """The manifest's entry of ``pretrained:NAME`` (after :func:`run_path`'s checks)."""
    run_path(spec)
    return manifest()[spec[len(PREFIX):] if is_pretrained(spec) else spec]


def total_bytes() -> int:
    """Bytes of every file in this package's folder (the models and the manifest)."""
    return sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


__all__ = ["MAX_BYTES", "PREFIX", "describe", "is_pretrained", "manifest", "names", "resolve", "run_path",
           "total_bytes"]
