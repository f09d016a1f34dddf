"""The engine's training settings: one frozen object, checked whole before any work starts.

:class:`Settings` holds every hyper-parameter of training (not of the model); building it validates
each value and raises a :class:`~hepgen.errors.ConfigError` naming the setting and the value, so that a
bad setting is refused before data is read or a run directory is touched. The engine, the inputs, the
optimisation and the run recorder all read the same object.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hepgen.errors import ConfigError

SCHEDULERS = ("none", "cosine", "exponential", "plateau", "step")
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
OPTIMIZERS = ("adam", "adamw", "sgd")
#: the settings config.yaml records under ``train`` (device, monitor and world_size are added by the engine)
RECORDED = ("epochs", "batch_size", "lr", "seed", "optimizer", "weight_decay", "scheduler", "clip_grad",
            "patience", "val_fraction", "precision", "stream", "chunk_size", "memory_limit_mb",
            "steps_per_epoch", "warm_start", "monitor_every")


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; explicit devices are checked."""
    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} was requested but CUDA is not available on this machine")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' was requested but Apple MPS is not available on this machine")
    if name not in ("cpu", "mps") and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {name!r}; choose auto, cpu, cuda, cuda:N or mps")
    return torch.device(name)


def _integer(name: str, value: Any, minimum: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"training setting {name!r} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"training setting {name!r} must be >= {minimum}, got {value}")


def _number(name: str, value: Any, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"training setting {name!r} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ConfigError(f"training setting {name!r} must be a finite number {'> 0' if positive else '>= 0'}, "
                          f"got {value}")


def _choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise ConfigError(f"unknown {name} {shown}; choose one of {', '.join(allowed)}")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What :class:`~hepgen.train.engine.Engine` takes (see its docstring for each setting's meaning).

    Validated on construction; ``device`` is resolved (``auto`` -> cuda, mps or cpu) and ``run_dir``
    becomes a :class:`~pathlib.Path`.
    """

    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0
    device: torch.device | str = "auto"
    run_dir: Path | str | None = None
    resume: bool = False
    quiet: bool | None = None
    optimizer: str = "adam"
    weight_decay: float = 0.0
    scheduler: str = "none"
    clip_grad: float | None = None
    patience: int | None = None
    monitor: str | Callable[..., float] | None = "val_loss"
    monitor_samples: int = 5000
    monitor_every: int = 1
    val_fraction: float = 0.1
    precision: str = "fp32"
    stream: bool | str = "auto"
    chunk_size: int = 65536
    memory_limit_mb: float = 1024.0
    log_every: int = 10
    steps_per_epoch: int | None = None
    diagnostics: tuple[Callable[..., Any], ...] = ()
    warm_start: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "chunk_size", "monitor_samples", "monitor_every", "log_every"):
            _integer(name, getattr(self, name), 1)
        _integer("seed", self.seed, None)
        for name in ("patience", "steps_per_epoch"):
            if getattr(self, name) is not None:
                _integer(name, getattr(self, name), 1)
        for name, positive in (("lr", True), ("weight_decay", False), ("val_fraction", False),
                               ("memory_limit_mb", True)):
            _number(name, getattr(self, name), positive)
        if self.clip_grad is not None:
            _number("clip_grad", self.clip_grad, positive=True)
        if not (isinstance(self.stream, bool) or self.stream == "auto"):
            raise ConfigError(f"stream must be 'auto', True or False, got {self.stream!r}")
        _choice("scheduler", self.scheduler, SCHEDULERS)
        _choice("precision", self.precision, tuple(PRECISIONS))
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        for name in ("resume", "warm_start"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.quiet is not None and not isinstance(self.quiet, bool):
            raise ConfigError(f"quiet must be True, False or None, got {self.quiet!r}")
        if self.monitor is not None and not (isinstance(self.monitor, str) or callable(self.monitor)):
            raise ConfigError(f"monitor must be a logged quantity's name, a sample metric or a callable, got "
                              f"{type(self.monitor).__name__}")
        if not isinstance(self.diagnostics or (), (list, tuple)):
            raise ConfigError(f"diagnostics must be a list of callables d(model) -> {{name: value}}, got "
                              f"{type(self.diagnostics).__name__}")
        diagnostics = tuple(self.diagnostics or ())
        if not all(callable(d) or hasattr(d, "evaluate") for d in diagnostics):
            raise ConfigError("diagnostics must be callables d(model) -> {name: value} (or have evaluate(model))")
        set_ = object.__setattr__  # frozen: normalised once, here
        set_(self, "diagnostics", diagnostics)
        set_(self, "device", resolve_device(self.device))
        set_(self, "run_dir", Path(self.run_dir) if self.run_dir is not None else None)
        for name in ("epochs", "batch_size", "seed", "chunk_size"):
            set_(self, name, int(getattr(self, name)))
        set_(self, "lr", float(self.lr))
        if self.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("fp16 mixed precision needs CUDA; use bf16 on the CPU")

    @property
    def stream_mode(self) -> bool | None:
        """``stream`` as the data layer takes it: None (decide by size), True or False."""
        return None if self.stream == "auto" else bool(self.stream)

    @property
    def monitor_name(self) -> str | None:
        if self.monitor is None:
            return None
        return getattr(self.monitor, "__name__", str(self.monitor))

    def record(self, device: torch.device, world_size: int) -> dict[str, Any]:
        """The ``train`` section of config.yaml: the recorded settings, the device used and the world size."""
        out = {k: getattr(self, k) for k in RECORDED}
        out["device"] = str(device)
        out["monitor"] = self.monitor_name
        out["world_size"] = world_size
        return out
