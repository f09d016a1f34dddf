"""The run directory, and the one module that reads and writes it.

    RUN/config.yaml            sections: model, hepgen_version, params (constructor arguments),
                               fitted (feature names ...), train (engine settings), data (what it was
                               trained on: specs, columns, weights, context, event counts)
                               user_code (the user's integrand or matrix element: the option, the file's
                               path, the function's name and the file's sha256; never imported from here)
    RUN/model.pt               the final weights and preprocessing statistics (a state_dict)
    RUN/metrics.csv            one row per epoch
    RUN/checkpoints/last.pt    everything ``--resume`` needs; best.pt: the monitored best weights
    RUN/plots/                 figures (the CLI draws plots/loss.png)

Every file is replaced atomically (:mod:`hepgen.files`). Checkpoints load with
``torch.load(weights_only=True)``: a checkpoint never runs code. Configs load with
:func:`hepgen.yamlconfig.load_yaml` (a bounded ``yaml.SafeLoader``); a damaged config.yaml is refused.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import pickle
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from hepgen._version import __version__
from hepgen.errors import CheckpointError, ConfigError
from hepgen.options import excerpt
from hepgen.yamlconfig import load_yaml
from hepgen.files import (
    atomic_write,
    atomic_write_text,
    file_sha256,
    remove_stale_temporaries,
    writable_location,
)

FORMAT_VERSION = 1
#: the sections of config.yaml, in the order they are written
SECTIONS = ("model", "hepgen_version", "params", "fitted", "user_code", "train", "data")


def save_checkpoint(obj: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` a dict of tensors and plain values atomically."""
    try:
        return atomic_write(path, lambda fh: torch.save(obj, fh))
    except OSError as exc:
        raise CheckpointError(f"cannot write {path}: {exc.strerror or exc}") from None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with a clear error for missing, corrupted or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch's warnings about a foreign file's pickle protocol: not for users
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:  # torch's text here advises weights_only=False: never repeat that
        raise CheckpointError(
            f"{path} is not a hepgen checkpoint: it holds Python objects other than tensors and plain values, "
            "which could only be loaded by running code from the file; hepgen refuses such files") from None
    except Exception as exc:  # noqa: BLE001 - any other failure to read is a damaged or foreign file
        detail = (str(exc).splitlines() or [""])[0]
        detail = detail if len(detail) <= 100 else detail[:97] + "..."
        detail = "" if "weights_only" in detail else f" ({type(exc).__name__}: {detail})"
        raise CheckpointError(f"{path} is not a hepgen checkpoint: it is truncated, corrupted or written by "
                              f"another program{detail}") from None
    if not isinstance(obj, dict) or obj.get("format") != "hepgen" or "state_dict" not in obj:
        raise CheckpointError(f"{path} was not written by hepgen (no hepgen header); refusing to load it")
    return obj


#: what config.yaml's sections and training settings hold; a truncated YAML often still parses (``lr: 0.0``
#: of ``lr: 0.001``), so a damaged file is refused rather than half-read
_NONE, _NUM = type(None), (int, float)
_CONFIG_TYPES = {"model": str, "hepgen_version": str, "params": dict, "fitted": (dict, _NONE),
                 "train": (dict, _NONE), "data": (dict, _NONE), "command": (dict, _NONE),
                 "user_code": (dict, _NONE)}
_TRAIN_TYPES = {"epochs": int, "batch_size": int, "lr": _NUM, "seed": (int, _NONE), "optimizer": str,
                "weight_decay": _NUM, "scheduler": str, "clip_grad": (*_NUM, _NONE), "patience": (int, _NONE),
                "val_fraction": _NUM, "precision": str, "stream": (str, bool), "chunk_size": int,
                "memory_limit_mb": _NUM, "steps_per_epoch": (int, _NONE), "warm_start": bool, "device": str,
                "monitor": (str, _NONE), "monitor_every": int, "world_size": int}


def _check_config(config: dict[str, Any], text: str, path: Path) -> None:
    """Refuse a config.yaml that was cut short (hepgen writes whole lines) or holds ill-typed sections."""
    if text and not text.endswith("\n"):
        raise CheckpointError(f"{path} ends in the middle of a line: the file was cut short (hepgen writes it "
                              "whole); refusing the damaged run configuration")
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    for where, value, kinds in [*((k, config[k], t) for k, t in _CONFIG_TYPES.items() if k in config),
                                *((f"train.{k}", train[k], t) for k, t in _TRAIN_TYPES.items() if k in train)]:
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join("null" if k is _NONE else k.__name__ for k in kinds)
            raise CheckpointError(f"{path} is damaged: {where} should be {names}, it holds {excerpt(value)}")


def _number(text: str | None) -> float | None:
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return None


class RunDir:
    """A run directory: where each file lives, and how it is read and written."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # -- where things are ----------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def model_path(self) -> Path:
        return self.path / "model.pt"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    # -- checks (they write nothing) -----------------------------------------------------------------
    def holds_run(self) -> bool:
        """A finished or resumable run is here (model.pt or checkpoints/last.pt)."""
        return self.model_path.is_file() or self.last_checkpoint.is_file()

    def check_new(self) -> None:
        """Refuse a directory that already holds a run, a path that is a file, or an unwritable place."""
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"--out {self.path} is an existing file, not a run directory; choose another path")
        if self.holds_run():
            raise ConfigError(f"{self.path} already holds a run; resume it with --resume or choose a new --out")
        self.check_writable()

    def check_writable(self) -> None:
        problem = writable_location(self.path)
        if problem is not None:
            raise ConfigError(f"cannot write the run directory {self.path}: {problem}")

    def clean(self, older_than_s: float | None = None) -> None:
        """Remove temporaries that a killed writer left here, in checkpoints/ and plots/ (by default those
        older than :data:`hepgen.files.STALE_AFTER_S`; ``--resume`` removes all: their writer is dead)."""
        for directory in (self.path, self.checkpoints, self.plots):
            if older_than_s is None:
                remove_stale_temporaries(directory)
            else:
                remove_stale_temporaries(directory, older_than_s=older_than_s)

    def remove(self, written: Iterable[Path], directory: bool = False) -> None:
        """Undo a failed fit: remove the files it ``written`` here, temporaries, the then empty checkpoints/
        and plots/, and the run directory itself when ``directory`` (this fit created it) and it is empty."""
        for path in sorted(written, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                path.unlink()
        self.clean()
        for folder in (self.checkpoints, self.plots, self.path):
            if folder == self.path and not directory:
                continue
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty

    # -- config.yaml -----------------------------------------------------------------------------------
    def read_config(self) -> dict[str, Any]:
        path = self.config_path
        if not path.is_file():
            raise CheckpointError(f"{self.path} is not a hepgen run directory: {path.name} is missing")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
        config = load_yaml(text, str(path), CheckpointError)
        if not isinstance(config, dict) or "model" not in config or not isinstance(config.get("params"), dict):
            raise CheckpointError(f"{path} is not a hepgen run configuration (needs 'model' and 'params')")
        _check_config(config, text, path)
        return config

    def write_config(self, **sections: Any) -> Path:
        """Write config.yaml from ``sections`` merged over the existing file (None removes nothing)."""
        previous = self.read_config() if self.config_path.is_file() else {}
        merged = {**previous, **{k: v for k, v in sections.items() if v is not None}}
        merged["hepgen_version"] = __version__
        ordered = {k: merged[k] for k in SECTIONS if k in merged}
        ordered.update({k: v for k, v in merged.items() if k not in ordered})
        try:
            return atomic_write_text(self.config_path, yaml.safe_dump(ordered, sort_keys=False))
        except OSError as exc:
            raise CheckpointError(f"cannot write {self.config_path}: {exc.strerror or exc}") from None

    # -- model.pt ------------------------------------------------------------------------------------
    def save_model(self, model: Any) -> Path:
        """``model.pt`` and config.yaml (model, params, fitted; train and data sections kept)."""
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        save_checkpoint({"format": "hepgen", "version": FORMAT_VERSION, "model": model.cli_name,
                         "state_dict": state}, self.model_path)
        code = model.user_code() if hasattr(model, "user_code") else None
        self.write_config(model=model.cli_name, params=model.get_config(), fitted=model.extra_state(), user_code=code)
        return self.path

    # -- the user's own code (an integrand, a matrix element) ------------------------------------------------
    def check_user_code(self, config: Mapping[str, Any], given: Mapping[str, Any]) -> None:
        """Before a model of this run is rebuilt: the user's code it was trained on must be ``given`` again
        (``{option: "FILE.py:NAME" or the function}``), and a file must have the recorded sha256; the code is
        never imported because config.yaml names it. A ConfigError says what to pass, or names both files."""
        code = config.get("user_code")
        flag = lambda option: "--" + option.replace("_", "-")  # noqa: E731
        if not isinstance(code, dict):
            if given:
                key = next(iter(given))
                raise ConfigError(f"{flag(key)} was given, but the run {self.path} ({config.get('model')}) was not "
                                  "trained on the user's own code; drop it")
            return
        option = str(code.get("option"))
        where = f"{code.get('path')}:{code.get('name')}" if code.get("path") else str(code.get("name"))
        if option not in given:
            extra = [k for k in given if k != option]
            how = (f"give it again, on the command line {flag(option)} {where} or in Python hepgen.load(run, "
                   f"{option}='{where}')" if code.get("path") else
                   f"give the function again in Python, hepgen.load(run, {option}=<the function>)")
            raise ConfigError(f"the run {self.path} was trained on the user's {option.replace('_', ' ')} {where}"
                              + (f" (sha256 {str(code.get('sha256'))[:12]}...)" if code.get("sha256") else "")
                              + f", which hepgen never imports on its own; {how}"
                              + (f" ({flag(extra[0])} is not this run's option)" if extra else ""))
        extra = [k for k in given if k != option]
        if extra:
            raise ConfigError(f"{flag(extra[0])} is not an option of the run {self.path}: it takes only its user's "
                              f"{option.replace('_', ' ')} again ({flag(option)})")
        value = given[option]
        if isinstance(value, str) and code.get("sha256"):
            path, _, name = value.rpartition(":")
            file = Path(path)
            if not file.is_file():
                raise ConfigError(f"{flag(option)} {excerpt(value)}: the file {path or value} does not exist")
            sha = file_sha256(file)
            if sha != code["sha256"]:
                raise ConfigError(f"{flag(option)} {value}: {file} (sha256 {sha[:12]}...) is not the file the run "
                                  f"{self.path} was trained with, {code.get('path')} (sha256 {str(code['sha256'])[:12]}"
                                  "...); give that file, or train a new run")
            if name != code.get("name"):
                raise ConfigError(f"{flag(option)} {value}: the run {self.path} was trained with the function "
                                  f"{code.get('name')!r} of this file, not {name!r}")

    def load_model_state(self, expected_model: str) -> dict[str, Any]:
        checkpoint = load_checkpoint(self.model_path)
        if checkpoint.get("model") != expected_model:
            raise CheckpointError(f"{self.model_path} holds a {checkpoint.get('model')!r} model but "
                                  f"config.yaml says {expected_model!r}")
        return checkpoint["state_dict"]

    # -- metrics.csv -------------------------------------------------------------------------------------
    def write_metrics(self, history: Sequence[Mapping[str, float]]) -> Path:
        columns: list[str] = []
        for row in history:
            columns += [k for k in row if k not in columns]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for row in history:
            writer.writerow(["" if k not in row or row[k] is None else f"{row[k]:.10g}" for k in columns])
        try:
            return atomic_write_text(self.metrics_path, buffer.getvalue())
        except OSError as exc:
            raise CheckpointError(f"cannot write {self.metrics_path}: {exc.strerror or exc}") from None

    def read_metrics(self) -> list[dict[str, float | None]]:
        """metrics.csv as rows of column -> number (None for empty cells); [] when there is none."""
        if not self.metrics_path.is_file():
            return []
        with open(self.metrics_path, newline="") as fh:
            return [{k: _number(v) for k, v in row.items() if k is not None} for row in csv.DictReader(fh)]

    def best_epoch(self) -> tuple[float, int] | None:
        """(best monitored value, its epoch) from metrics.csv, or None."""
        rows = [(r["monitor"], int(r["epoch"])) for r in self.read_metrics()
                if r.get("monitor") is not None and r.get("epoch") is not None and math.isfinite(r["monitor"])]
        return min(rows) if rows else None
