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
import re
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
    return sorted(manifest(), key=_natural)


def _natural(name: str) -> list:
    """Sort key that orders the numbers in a name by value (phi4-L6 before phi4-L10)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


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
                          + (", ".join(PREFIX + n for n in sorted(models, key=_natural)) or "none"))
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


def ship(name: str, run_dir: str | Path, model: str, description: str, training: dict[str, Any],
         quality: dict[str, Any] | None = None) -> Path:
    """For maintainers: copy a finished run's ``model.pt`` and ``config.yaml`` into this package as NAME (replacing
    an earlier NAME) and record them in the manifest with their sha256, ``description``, ``training`` (at least the
    command, steps and CPU seconds) and ``quality`` (what the shipped model measured, e.g. its acceptance).
    Refused when the package would exceed :data:`MAX_BYTES`."""
    from hepgen.files import atomic_write, atomic_write_text

    source = Path(run_dir)
    files = {f: source / f for f in ("model.pt", "config.yaml")}
    for file, path in files.items():
        if not path.is_file():
            raise ConfigError(f"cannot ship {name}: {path} is missing (a finished run directory has {file})")
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"cannot ship {name!r}: a shipped model's name is a plain folder name")
    growth = sum(p.stat().st_size for p in files.values())
    folder = ROOT / name
    if folder.is_dir():
        growth -= sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    if total_bytes() + growth > MAX_BYTES:
        raise ConfigError(f"cannot ship {name}: the shipped models would weigh {(total_bytes() + growth) / 1e6:.1f} MB, "
                          f"over {MAX_BYTES / 1e6:.0f} MB")
    folder.mkdir(exist_ok=True)
    for file, path in files.items():
        data = path.read_bytes()
        atomic_write(folder / file, lambda f, data=data: f.write(data))
    models = manifest() if MANIFEST.is_file() else {}
    models[name] = {"model": model, "description": description,
                    "files": {f: file_sha256(folder / f) for f in files}, "training": training,
                    **({"quality": quality} if quality else {})}
    document = json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {}
    document["models"] = dict(sorted(models.items(), key=lambda item: _natural(item[0])))
    atomic_write_text(MANIFEST, json.dumps(document, indent=1) + "\n")
    return folder


def total_bytes() -> int:
    """Bytes of every file in this package's folder (the models and the manifest)."""
    return sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


__all__ = ["MAX_BYTES", "PREFIX", "describe", "is_pretrained", "manifest", "names", "resolve", "run_path", "ship",
           "total_bytes"]
