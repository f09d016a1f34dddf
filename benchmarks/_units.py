"""Resumable units of a long benchmark: each unit (a scorer trained with one seed on one task, a tagger at one λ)
leaves its arrays and its record in one .npz, so a killed run continues where it stopped (``--resume``).

    units = Units(folder, manifest={...settings that decide the arrays...}, resume=args.resume)
    got = units.get("direct/conv_ae/seed1")          # (arrays, record) or None
    if got is None:
        meter = Meter()
        ... train, score ...
        units.put("direct/conv_ae/seed1", {"background": b, "top": s}, {"machine": meter.record()})

Each file is written under a temporary name and renamed (hepgen.files.atomic_write), so a unit is there whole or
not at all. ``manifest.json`` holds the settings the arrays depend on (scale, epochs, architectures, data); with
``resume`` a folder whose manifest differs is refused (exit 2, naming the first differing setting) rather than
mixing stale units with new ones. Without it, a folder holding finished units is refused too (hours of training
are not thrown away by a forgotten flag) unless ``discard`` says to remove them (``--fresh``, a smoke run).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from hepgen.files import atomic_write, atomic_write_text

_RECORD = "__record__"


class Units:
    def __init__(self, folder: Path, manifest: dict, resume: bool, discard: bool = False):
        self.folder = Path(folder)
        self.manifest = json.loads(json.dumps(manifest))  # as it reads back from JSON
        path = self.folder / "manifest.json"
        if resume and path.exists():
            old = json.loads(path.read_text())
            for key in sorted(set(old) | set(self.manifest)):
                if old.get(key) != self.manifest.get(key):
                    sys.stderr.write(f"--resume: {self.folder} was made with {key} = {_short(old.get(key))}, this run "
                                     f"has {_short(self.manifest.get(key))}; rerun with the same settings or without "
                                     "--resume (which starts again)\n")
                    raise SystemExit(2)
        elif not resume and self.folder.exists():
            old_units = sorted(self.folder.rglob("*.npz"))
            if old_units and not discard:
                sys.stderr.write(f"{self.folder} holds {len(old_units)} finished units (e.g. "
                                 f"{old_units[0].relative_to(self.folder)}); continue them with --resume, or discard "
                                 "them with --fresh\n")
                raise SystemExit(2)
            for old_unit in old_units:
                old_unit.unlink()
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.manifest, indent=1) + "\n")

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def get(self, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
        """The unit's arrays and record, or None when it was not finished."""
        path = self._path(key)
        if not path.exists():
            return None
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files if k != _RECORD}
            record = json.loads(str(f[_RECORD]))
        return arrays, record

    def put(self, key: str, arrays: dict[str, np.ndarray], record: dict) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {**{k: np.asarray(v) for k, v in arrays.items()}, _RECORD: np.array(json.dumps(record))}
        atomic_write(path, lambda f: np.savez(f, **payload))

    def done(self) -> list[str]:
        return sorted(str(p.relative_to(self.folder).with_suffix("")) for p in self.folder.rglob("*.npz"))


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
