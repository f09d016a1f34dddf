"""The one training loop every model family runs on.

A family supplies its players and their per-event losses (see :mod:`hepgen.models`); the engine
owns the rest: devices and precision, seeding, batching (memory or streamed), per-event weights,
k steps of one player per step of another, LR schedules, gradient clipping, NaN/inf detection,
validation and early stopping on a chosen quantity, checkpoints and resume, DDP, progress and logs.

Each player's objective is the weighted mean of its per-event loss over the *global* batch,

    L = Σ_i w_i ℓ_i / Σ_i w_i,

computed exactly under DDP too: every rank divides its local Σ w ℓ by the all-reduced Σ w and
multiplies by the world size, which DDP's gradient averaging divides back out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from hepgen.data.loader import (
    Events,
    memory_batch_count,
    memory_batches,
    stream_batch_count,
    stream_batches,
    tree_leaves,
    tree_map,
)
from hepgen.data.sources import is_column_name, load_events
from hepgen.errors import CheckpointError, ConfigError, DataError, TrainingError
from hepgen.train import distributed
from hepgen.train.monitor import SAMPLE_METRICS, sample_metric
from hepgen.train.protocol import Player, Stream, Trainable
from hepgen.train.rundir import RunDir, load_checkpoint, save_checkpoint

SCHEDULERS = ("none", "cosine", "exponential", "plateau", "step")
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


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


def _plain(value: Any) -> Any:
    """Tuples as lists, so that a config read back from YAML compares equal to the live one."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _describe(value: Any) -> Any:
    """A data argument as config.yaml records it: the spec or column names, or the array's shape."""
    if value is None:
        return None
    if isinstance(value, Events):  # opened by the caller: where it came from
        return _describe(value.spec) if value.spec is not None else f"events of shape {value.event_shape}"
    if hasattr(value, "describe"):  # a DataSpec: the spec with its column selection
        return value.describe()
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {k: _describe(v) for k, v in value.items()}
    shape = getattr(value, "shape", None)
    return f"array of shape {tuple(shape)}" if shape is not None else type(value).__name__


def _materialised(values: Any) -> np.ndarray:
    """(N, k) array of a column source or an array (targets are a few columns: read whole)."""
    if hasattr(values, "read_rows"):
        values = values.read_rows(0, len(values))
    return np.asarray(values, dtype=np.float64).reshape(len(values), -1)


def _check_context(model: Trainable, events: Events, names: dict[str, list[str]], x: Any, context: Any) -> None:
    """A model's own check of its context values (``check_context(values (N, c), names, where)``, e.g. a shower
    model's positive incident energies), before the split so that rows are the file's; before any training."""
    check = getattr(model, "check_context", None)
    if check is None or events.context is None:
        return
    own_file = isinstance(context, (str, os.PathLike)) and not is_column_name(context)
    described = _describe(context if own_file else x)
    if isinstance(described, Mapping):
        described = described.get("spec")
    check(_materialised(events.context), names.get("context"),
          described if isinstance(described, str) else "the context given")


class _StreamData:
    """A further event stream during one fit: its events, validation events, preprocessing and batches."""

    def __init__(self, name: str, spec: Stream, train: Events, val: Events | None, salt: int):
        self.name, self.spec, self.train, self.val, self.salt = name, spec, train, val, salt
        self.train_data: Any = train
        self.val_data: Any = val

    @classmethod
    def load(cls, name: str, spec: Stream, engine: Engine, salt: int) -> _StreamData:
        stream = None if engine.stream == "auto" else bool(engine.stream)
        shape_check = _ShapeOnly(spec.event_shape, spec.context_preprocessor) if spec.event_shape else None
        train, _ = load_events(spec.data, spec.weights, spec.context, shape_check, stream=stream,
                               memory_limit_mb=engine.memory_limit_mb)
        if spec.val is not None:
            val, _ = load_events(spec.val, spec.weights if is_column_name(spec.weights) else None,
                                 spec.context if is_column_name(spec.context) else None, shape_check,
                                 stream=stream, memory_limit_mb=engine.memory_limit_mb)
        elif engine.val_fraction > 0:
            train, val = engine._split(train)
        else:
            val = None
        return cls(name, spec, train, val, salt)

    def fit_preprocessing(self, chunk_size: int) -> None:
        if self.spec.preprocessor is not None:
            self.spec.preprocessor.fit(lambda: self.train.chunks(chunk_size))
        if self.spec.context_preprocessor is not None and self.train.context is not None:
            ctx = Events(self.train.context)
            self.spec.context_preprocessor.fit(lambda: ctx.chunks(chunk_size))

    def to(self, device: torch.device) -> None:
        for module in (self.spec.preprocessor, self.spec.context_preprocessor):
            if module is not None:
                module.to(device)

    def place(self, engine: Engine) -> None:
        """Events in memory go to the device once; streamed ones stay on disk."""
        if self.train.in_memory:
            self.train_data = engine._to_device(self.train)
        if self.val is not None and self.val.in_memory:
            self.val_data = engine._to_device(self.val)

    def cycle(self, engine: Engine, epoch: int, shuffle: bool, world: int, rank: int, batch_size: int | None,
              validation: bool = False) -> Iterator[dict[str, Any]]:
        """Endless batches: pass p of main epoch e is the stream's seeded epoch e·1009 + p, so every main
        epoch (and a resume at its start) sees the same stream batches."""
        data = self.val_data if validation and self.val_data is not None else self.train_data
        p = 0
        while True:
            batches, _ = engine._batches(data, epoch * 1009 + p, shuffle, world, rank, batch_size,
                                         seed=engine.seed + 7919 * self.salt)
            produced = False
            for batch in batches:
                produced = True
                yield batch
            if not produced:
                raise DataError(f"stream {self.name!r} has too few events for one batch on each process")
            p += 1

    def prepare(self, raw: dict[str, Any], engine: Engine) -> dict[str, Tensor]:
        dtype = torch.get_default_dtype()
        batch = tree_map(lambda v: torch.as_tensor(v).to(engine.device, dtype=dtype, non_blocking=True), raw)
        if self.spec.preprocessor is not None:
            batch["x"] = self.spec.preprocessor(batch["x"])
        if "context" in batch and self.spec.context_preprocessor is not None:
            batch["context"] = self.spec.context_preprocessor(batch["context"])
        return batch

    def describe(self) -> dict[str, Any]:
        return {"events": _describe(self.spec.data), "weights": _describe(self.spec.weights),
                "context": _describe(self.spec.context), "n_train": len(self.train),
                "n_val": 0 if self.val is None else len(self.val)}


class _ShapeOnly:
    """What load_events checks a stream's events against: an event shape and a context size."""

    cli_name = "stream"

    def __init__(self, event_shape: tuple[int, ...], context_preprocessor: Any):
        self.event_shape = tuple(event_shape)
        self.context = int(context_preprocessor.event_shape[0]) if context_preprocessor is not None else 0


class _Stepper(nn.Module):
    """What DDP wraps: ``forward(batch, player)`` runs the family's step for that player."""

    def __init__(self, model: Trainable):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Tensor], player: str) -> dict[str, Tensor]:
        return self.model.player_step(player, batch)


class Engine:
    """Trains a :class:`~hepgen.train.protocol.Trainable`; hyper-parameters of training live here.

    Args:
        epochs, batch_size (global, over all DDP ranks), lr, seed, device: the usual.
        run_dir: where checkpoints, ``metrics.csv``, plots and the final model go (None: nothing written).
        resume: continue from ``run_dir/checkpoints/last.pt``.
        quiet: no progress bar or epoch lines (default: quiet when stderr is not a terminal for the bar).
        optimizer: ``adam``, ``adamw`` or ``sgd`` (momentum 0.9); weight_decay: L2 / decoupled decay.
        scheduler: ``none``, ``cosine``, ``exponential`` (gamma 0.95), ``step`` (×0.5 every 10 epochs)
            or ``plateau`` (×0.5 after 3 epochs without improvement of the monitored quantity).
        clip_grad: max gradient norm per player (None: no clipping; the norm is logged either way).
        patience: epochs without improvement before stopping early (None: never).
        monitor: the quantity that picks the best checkpoint and drives early stopping: a column of
            metrics.csv (``val_loss``, ``val_kl`` ...), a sample metric (``w1``, ``fpd``: computed on
            ``monitor_samples`` samples vs the validation events), or a callable
            ``f(model, val_events) -> float``; lower is better. None: keep the last epoch.
        val_fraction: seeded share of the data held out for validation when no ``val`` is given.
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast; fp16 with a GradScaler, CUDA only).
        stream: ``auto`` streams file data larger than ``memory_limit_mb``; True/False forces it.
        chunk_size: rows per read when streaming.
        steps_per_epoch: steps of a data-free model per epoch (its batches are ``batch_size`` events it
            draws itself); required when the model is trained with ``x=None``.
        warm_start: continue from the model's current weights and fitted preprocessing (fine-tuning on new
            events, e.g. a surrogate refreshed around a moved design point) instead of re-drawing them; the
            optimiser state starts fresh.
        diagnostics: callables ``d(model) -> {name: value}`` (or objects with ``evaluate(model)``) run after
            each epoch's validation pass and logged as ``val_<name>`` (monitorable); they need validation events.
    """

    def __init__(self, *, epochs: int = 20, batch_size: int = 256, lr: float = 1e-3, seed: int = 0,
                 device: str = "auto", run_dir: str | Path | None = None, resume: bool = False,
                 quiet: bool | None = None, optimizer: str = "adam", weight_decay: float = 0.0,
                 scheduler: str = "none", clip_grad: float | None = None, patience: int | None = None,
                 monitor: str | Callable | None = "val_loss", monitor_samples: int = 5000,
                 val_fraction: float = 0.1, precision: str = "fp32", stream: bool | str = "auto",
                 chunk_size: int = 65536, memory_limit_mb: float = 1024.0, log_every: int = 10,
                 steps_per_epoch: int | None = None, diagnostics: Sequence[Callable[..., Any]] | None = None,
                 warm_start: bool = False):
        _integer("epochs", epochs, 1)
        _integer("batch_size", batch_size, 1)
        _integer("seed", seed, None)
        _integer("chunk_size", chunk_size, 1)
        _integer("monitor_samples", monitor_samples, 1)
        _integer("log_every", log_every, 1)
        if patience is not None:
            _integer("patience", patience, 1)
        if steps_per_epoch is not None:
            _integer("steps_per_epoch", steps_per_epoch, 1)
        _number("lr", lr, positive=True)
        _number("weight_decay", weight_decay, positive=False)
        _number("val_fraction", val_fraction, positive=False)
        _number("memory_limit_mb", memory_limit_mb, positive=True)
        if clip_grad is not None:
            _number("clip_grad", clip_grad, positive=True)
        if not (isinstance(stream, bool) or stream == "auto"):
            raise ConfigError(f"stream must be 'auto', True or False, got {stream!r}")
        if scheduler not in SCHEDULERS:
            raise ConfigError(f"unknown scheduler {scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
        if precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {precision!r}; choose fp32, bf16 or fp16")
        if optimizer not in ("adam", "adamw", "sgd"):
            raise ConfigError(f"unknown optimizer {optimizer!r}; choose adam, adamw or sgd")
        if not 0 <= val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.epochs, self.batch_size, self.lr, self.seed = int(epochs), int(batch_size), float(lr), int(seed)
        self.device = resolve_device(device)
        self.run = RunDir(run_dir) if run_dir is not None else None
        self.run_dir = self.run.path if self.run is not None else None
        self.resume, self.quiet = resume, quiet
        self.optimizer, self.weight_decay, self.scheduler = optimizer, weight_decay, scheduler
        self.clip_grad, self.patience, self.monitor = clip_grad, patience, monitor
        self.monitor_samples, self.val_fraction, self.precision = monitor_samples, val_fraction, precision
        self.stream, self.chunk_size, self.memory_limit_mb = stream, int(chunk_size), memory_limit_mb
        self.log_every = log_every
        self.steps_per_epoch = steps_per_epoch
        if not isinstance(warm_start, bool):
            raise ConfigError(f"warm_start must be True or False, got {warm_start!r}")
        self.warm_start = warm_start
        self.diagnostics = list(diagnostics or [])
        if not all(callable(d) or hasattr(d, "evaluate") for d in self.diagnostics):
            raise ConfigError("diagnostics must be callables d(model) -> {name: value} (or have evaluate(model))")
        self.inputs: dict[str, Any] = {}
        if precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("fp16 mixed precision needs CUDA; use bf16 on the CPU")

    # -- public ----------------------------------------------------------------------------------
    def fit(self, model: Trainable, x: Any, val: Any = None, *, weights: Any = None, val_weights: Any = None,
            context: Any = None, val_context: Any = None, streams: Mapping[str, Any] | None = None,
            targets: Any = None, val_targets: Any = None) -> Trainable:
        """Train ``model`` on ``x`` (array, tensor or data spec) and return it.

        ``targets``: what only training reads beside the features (a tagger's label and nuisance;
        ``batch["targets"]`` (batch, k), never preprocessed): column names of ``x`` — by default the
        model's :meth:`target_columns` — or an (N, k) array; ``val_targets`` likewise for ``val``.
        """
        self.dist = distributed.setup(self.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        if self.batch_size % self.dist.world_size:
            raise ConfigError(f"batch size {self.batch_size} is not divisible by the {self.dist.world_size} "
                              "DDP processes")
        self.local_batch = self.batch_size // self.dist.world_size
        self._check_run_dir(model)
        self._config_written = False
        self._resumable = bool(self.resume and self.run is not None and self.run.last_checkpoint.is_file())
        self._created_dir = self.run is not None and not self.run.path.exists()
        self._written: set[Path] = set()
        self.data_free = x is None
        if self.data_free != bool(getattr(model, "data_free", False)):
            raise ConfigError(f"{model.cli_name} is trained without input events: call fit(None, steps_per_epoch=N)"
                              if self.data_free is False else
                              f"no training events given; {model.cli_name} learns from data (pass x)")
        if self.data_free:
            if self.steps_per_epoch is None:
                raise ConfigError(f"{model.cli_name} is trained without data: give steps_per_epoch (steps of "
                                  f"batch_size={self.batch_size} events it draws itself per epoch)")
            train, val_events, names = None, None, {}
        else:
            train, val_events, names = self._main_events(model, x, val, weights, val_weights, context, val_context,
                                                         targets, val_targets)
            model.columns_, model.context_columns_ = names.get("x"), names.get("context")
        if self.diagnostics and val_events is None:
            raise ConfigError("diagnostics are evaluated in the validation pass after each epoch; give val= or "
                              "val_fraction > 0")
        self.streaming = train is not None and not train.in_memory
        extra = self._load_streams(model, streams)
        self.inputs = self._describe_inputs(x, val, weights, context, train, val_events, names, streams, extra)
        check_fit = getattr(model, "check_fit", None)  # a model's own checks (memory, a learnable target) before work
        if check_fit is not None:
            check_fit(self.local_batch, self.device)

        torch.manual_seed(self.seed)
        if self.warm_start:  # continue from the current weights and fitted preprocessing (fine-tuning)
            fitted = getattr(model.preprocessor, "fitted", None)
            if train is not None and fitted is not None and not bool(fitted):
                raise ConfigError(f"warm_start continues a fitted {model.cli_name}; this one was never fitted")
        else:
            model.reset_parameters()
        if train is not None and not self.warm_start:
            self._fit_preprocessing(model, train)
        for data in extra.values():
            data.fit_preprocessing(self.chunk_size)
        model.to(self.device)
        for data in extra.values():
            data.to(self.device)
        model.on_fit_start(train)
        players = model.players()
        if self.monitor == "val_loss" and val_events is None and len(players) > 1:
            # the val_loss default falls back on train_loss, which players with their own losses do not log
            raise ConfigError(f"{model.cli_name} trains {', '.join(p.name for p in players)} on losses of their "
                              "own: without validation events there is no loss to pick an epoch by; give val= "
                              "(--val) or val_fraction > 0, or monitor=None to keep the last epoch")
        self._build_optimisers(players)
        history: list[dict[str, float]] = []
        state = {"epoch": 0, "best": math.inf, "best_epoch": 0, "bad_epochs": 0}
        if self.resume:
            history, state = self._restore(model, state)
        self.stepper = _Stepper(model)
        runner: nn.Module = self.stepper
        if self.dist.enabled:
            runner = nn.parallel.DistributedDataParallel(
                self.stepper, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=len(players) > 1)
        train_data = None if train is None else (train if self.streaming else self._to_device(train))
        val_data = self._to_device(val_events) if val_events is not None and val_events.in_memory else val_events
        for data in extra.values():
            data.place(self)
        self.extra = extra

        try:
            self._epochs_bar = tqdm(total=self.epochs, initial=state["epoch"], desc="fit", unit="epoch",
                                    file=sys.stderr, disable=self._bar_disabled(), dynamic_ncols=True)
            for epoch in range(state["epoch"] + 1, self.epochs + 1):
                start = time.perf_counter()
                model.on_epoch_start(epoch)
                players = self._players_this_epoch(model, players)
                model.train()
                row: dict[str, float] = {"epoch": epoch}
                row.update(self._train_epoch(model, runner, players, train_data, epoch))
                model.eval()
                if val_data is not None:
                    row.update(self._validate(model, val_data))
                    row.update(self._diagnose(model))
                row["lr"] = self.optimisers[players[0].name].param_groups[0]["lr"]
                value = self._monitored(model, row, val_events)
                if value is not None:
                    row["monitor"] = value
                row["time"] = time.perf_counter() - start
                history.append(row)
                improved = value is not None and value < state["best"]
                if improved:
                    state.update(best=value, best_epoch=epoch, bad_epochs=0)
                else:
                    state["bad_epochs"] += 1
                self._step_schedulers(value)
                state["epoch"] = epoch
                self._after_epoch(model, history, state, improved)
                self._epochs_bar.update(1)
                self._epochs_bar.set_postfix({k: f"{v:.4g}" for k, v in row.items()
                                              if k in ("train_loss", "val_loss", "monitor")})
                if self.patience is not None and value is not None and state["bad_epochs"] >= self.patience:
                    self._say(f"early stop after epoch {epoch}: no improvement of {self._monitor_name()} for "
                              f"{self.patience} epochs (best {state['best']:.5g} at epoch {state['best_epoch']})")
                    break

            self._finish(model, history, state, train)
        except BaseException:
            self._remove_unresumable()
            raise
        finally:
            if hasattr(self, "_epochs_bar"):
                self._epochs_bar.close()
        model.history_ = history
        model.eval()
        return model

    # -- data ------------------------------------------------------------------------------------
    def _main_events(self, model: Trainable, x: Any, val: Any, weights: Any, val_weights: Any, context: Any,
                     val_context: Any, targets: Any = None,
                     val_targets: Any = None) -> tuple[Events, Events | None, dict[str, list[str]]]:
        stream = None if self.stream == "auto" else bool(self.stream)
        declared = list(model.target_columns()) if hasattr(model, "target_columns") else []
        targets = self._targets_for(model, x, targets, declared)
        train, names = load_events(x, weights, context, model, stream=stream, memory_limit_mb=self.memory_limit_mb,
                                   targets=targets)
        _check_context(model, train, names, x, context)
        if val is not None:
            # columns named for the training file (weights, context, targets) are taken from the validation file too
            val_weights = weights if val_weights is None and is_column_name(weights) else val_weights
            val_context = context if val_context is None and is_column_name(context) else val_context
            named = isinstance(targets, (list, tuple)) and bool(targets) and all(isinstance(t, str) for t in targets)
            if val_targets is None and isinstance(val, (str, os.PathLike)) and (is_column_name(targets) or named):
                val_targets = targets
            val_targets = self._targets_for(model, val, val_targets, declared, "val")
            val_events, _ = load_events(val, val_weights, val_context, model, stream=stream,
                                        memory_limit_mb=self.memory_limit_mb, targets=val_targets)
            _check_context(model, val_events, names, val, val_context)
        elif self.val_fraction > 0:
            train, val_events = self._split(train)
        else:
            val_events = None
        for events, where in ((train, x), (val_events, val)):
            if declared and events is not None:
                spec = where.spec if isinstance(where, Events) else where
                model.check_targets(_materialised(events.targets),
                                    os.fspath(spec) if isinstance(spec, (str, os.PathLike)) else "the data")
        if len(train) < 2:
            held = f" after holding out {len(val_events)} for validation" if val_events is not None else ""
            raise DataError(f"{_describe(x) if isinstance(x, (str, os.PathLike, Events)) else 'the data'}: training "
                            "needs at least 2 "
                            f"events, got {len(train)}{held}")
        return train, val_events, names

    @staticmethod
    def _targets_for(model: Trainable, x: Any, targets: Any, declared: list[str], what: str = "x") -> Any:
        """The targets to read with ``x``: the ones given, else the model's declared columns of a file."""
        if targets is None and declared and isinstance(x, (str, os.PathLike, Events)):
            if not (isinstance(x, Events) and x.targets is not None):
                targets = declared
        has = targets is not None or (isinstance(x, Events) and x.targets is not None)
        if declared and not has:
            raise ConfigError(f"{model.cli_name} trains on {', '.join(declared)} beside the features: give "
                              f"{'val_targets' if what == 'val' else 'targets'}= (an array with one row per event) "
                              "or the events as a file whose columns include them")
        if not declared and has:
            raise ConfigError(f"{model.cli_name} takes no training targets; drop targets=")
        if declared and targets is not None:
            k = (len([c for c in targets.split(",") if c.strip()]) if isinstance(targets, str)
                 else len(targets) if isinstance(targets, (list, tuple)) and all(isinstance(t, str) for t in targets)
                 else 1 if np.ndim(targets) == 1 else int(np.shape(targets)[1]))
            if k != len(declared):
                raise DataError(f"{model.cli_name} reads {len(declared)} target column(s) ({', '.join(declared)}), "
                                f"got {k}")
        return targets

    def _load_streams(self, model: Trainable, given: Mapping[str, Any] | None) -> dict[str, _StreamData]:
        declared = dict(model.streams())
        given = dict(given or {})
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise ConfigError(f"{model.cli_name} has no event stream {unknown[0]!r}"
                              + (f"; its streams: {', '.join(declared)}" if declared else "; it takes one stream"))
        out = {}
        for index, (name, spec) in enumerate(declared.items(), start=1):
            value = given.get(name)
            if isinstance(value, Mapping):
                spec = Stream(**{**vars(spec), **value})
            elif value is not None:
                spec = Stream(**{**vars(spec), "data": value})
            if spec.data is None:
                raise ConfigError(spec.missing or f"{model.cli_name} needs the events of its stream {name!r}: "
                                  f"fit(..., streams={{{name!r}: data}})")
            out[name] = _StreamData.load(name, spec, self, salt=index)
        return out

    def _describe_inputs(self, x: Any, val: Any, weights: Any, context: Any, train: Events | None,
                         val_events: Events | None, names: dict[str, list[str]], streams: Any,
                         extra: dict[str, _StreamData]) -> dict[str, Any]:
        """The ``data`` section of config.yaml: what the run was trained on."""
        if train is None:
            return {"events": None, "data_free": True, "steps_per_epoch": self.steps_per_epoch,
                    "events_per_epoch": self.steps_per_epoch * self.batch_size}
        out = {"events": _describe(x), "columns": names.get("x"), "weights": _describe(weights),
               "context": _describe(context), "context_columns": names.get("context"),
               **({"targets": names["targets"]} if names.get("targets") else {}),
               "validation": _describe(val) if val is not None else f"{self.val_fraction:g} of the events (seeded)",
               "n_train": len(train), "n_val": 0 if val_events is None else len(val_events),
               "streamed": self.streaming}
        if extra:
            out["streams"] = {name: d.describe() for name, d in extra.items()}
        return out

    def _split(self, events: Events) -> tuple[Events, Events | None]:
        n_val = int(round(len(events) * self.val_fraction))
        if n_val == 0 or n_val == len(events):
            return events, None
        if not events.in_memory:  # streamed: hold out the last rows, read in order
            return events.slice(0, len(events) - n_val), events.slice(len(events) - n_val, len(events))
        g = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(len(events), generator=g).numpy()
        return events.take(np.sort(order[n_val:])), events.take(np.sort(order[:n_val]))

    def _fit_preprocessing(self, model: Trainable, events: Events) -> None:
        if isinstance(model.preprocess, dict) and not events.multi:
            from hepgen.data.preprocess import resolve_kinds

            model.preprocessor.set_kinds(resolve_kinds(model.preprocess, model.event_shape[0], model.columns_))
        model.preprocessor.fit(lambda: events.chunks(self.chunk_size), columns=model.columns_)
        if model.context_preprocessor is not None:
            ctx = Events(events.context)
            model.context_preprocessor.fit(lambda: ctx.chunks(self.chunk_size))

    def _to_device(self, events: Events) -> dict[str, Any]:
        dtype = torch.get_default_dtype()

        def put(v: Any) -> Tensor:
            return torch.as_tensor(np.asarray(v) if not isinstance(v, Tensor) else v).to(self.device, dtype=dtype)

        out = {"x": tree_map(put, events.x)}
        out["w"] = put(events.w) if events.w is not None else torch.ones(len(events), dtype=dtype, device=self.device)
        if events.context is not None:
            out["context"] = put(events.context)
        if events.targets is not None:
            out["targets"] = put(events.targets)
        return out

    def _prepare(self, model: Trainable, raw: dict[str, Any]) -> dict[str, Any]:
        """Move a raw batch to the device and preprocess it (the model's events and each stream's)."""
        dtype = torch.get_default_dtype()
        streams = raw.pop("streams", None)
        batch = tree_map(lambda v: torch.as_tensor(v).to(self.device, dtype=dtype, non_blocking=True), raw)
        if "x" in batch:
            batch["x"] = model.preprocessor(batch["x"])
        if "context" in batch:
            batch["context"] = model.context_preprocessor(batch["context"])
        if streams is not None:
            batch["streams"] = {name: self.extra[name].prepare(b, self) for name, b in streams.items()}
        return batch

    def _batches(self, data: Any, epoch: int, shuffle: bool, world: int = 1, rank: int = 0,
                 batch_size: int | None = None, seed: int | None = None) -> tuple[Iterator[dict[str, Any]], int]:
        bs = batch_size or self.local_batch
        seed = self.seed if seed is None else seed
        if isinstance(data, dict):
            return (memory_batches(data, bs, epoch, seed, rank, world, shuffle),
                    memory_batch_count(len(tree_leaves(data["x"])[0]), bs, world))
        return (stream_batches(data, bs, self.chunk_size, epoch, seed, rank, world, shuffle),
                stream_batch_count(len(data), bs, self.chunk_size, world))

    def _epoch_batches(self, data: Any, epoch: int, shuffle: bool, world: int, rank: int,
                       batch_size: int | None = None) -> tuple[Iterator[dict[str, Any]], int]:
        """This epoch's raw batches, each with a batch of every further stream beside it."""
        if data is None:  # data-free: batches of weights only; the model draws its own events
            n = batch_size or self.local_batch
            steps = self.steps_per_epoch
            batches: Iterator[dict[str, Any]] = ({"w": torch.ones(n)} for _ in range(steps))
        else:
            batches, steps = self._batches(data, epoch, shuffle, world, rank, batch_size)
        if not self.extra:
            return batches, steps
        cycles = {name: d.cycle(self, epoch, shuffle, world, rank, batch_size, validation=not shuffle)
                  for name, d in self.extra.items()}

        def with_streams() -> Iterator[dict[str, Any]]:
            for raw in batches:
                raw["streams"] = {name: next(c) for name, c in cycles.items()}
                yield raw

        return with_streams(), steps

    # -- optimisation ----------------------------------------------------------------------------
    def _build_optimisers(self, players: list[Player]) -> None:
        self.optimisers, self.schedulers, self.scalers = {}, {}, {}
        for p in players:
            lr = p.lr if p.lr is not None else self.lr
            wd = p.weight_decay if p.weight_decay is not None else self.weight_decay
            if self.optimizer == "sgd":
                opt = torch.optim.SGD(p.parameters, lr=lr, momentum=0.9, weight_decay=wd)
            else:
                cls = torch.optim.AdamW if self.optimizer == "adamw" else torch.optim.Adam
                # the fused kernel (one launch for every parameter) on CPU and CUDA; same update rule
                fused = self.device.type in ("cpu", "cuda") and all(q.is_floating_point() for q in p.parameters)
                opt = cls(p.parameters, lr=lr, betas=p.betas, weight_decay=wd, fused=fused or None)
            self.optimisers[p.name] = opt
            sched = {"cosine": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=self.epochs),
                     "exponential": lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.95),
                     "step": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=10, gamma=0.5),
                     "plateau": lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=3),
                     }.get(self.scheduler)
            if sched is not None:
                self.schedulers[p.name] = sched(opt)
            self.scalers[p.name] = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")

    def _step_schedulers(self, value: float | None) -> None:
        for s in self.schedulers.values():
            if isinstance(s, torch.optim.lr_scheduler.ReduceLROnPlateau):
                if value is not None:
                    s.step(value)
            else:
                s.step()

    def _autocast(self) -> contextlib.AbstractContextManager:
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    @staticmethod
    def _players_this_epoch(model: Trainable, players: list[Player]) -> list[Player]:
        """The step schedule may follow the epoch (a pivot's classifier steps on every batch while it is
        pretrained alone): each player's ``every`` is read again from ``model.players()`` after
        ``on_epoch_start``; the players themselves (names, parameters, optimisers) stay."""
        now = model.players()
        if [p.name for p in now] != [p.name for p in players]:
            raise TrainingError(f"{model.cli_name}.players() changed from {[p.name for p in players]} to "
                                f"{[p.name for p in now]} during fit; only a player's 'every' may change")
        return [dataclasses.replace(p, every=int(q.every)) for p, q in zip(players, now)]

    def _train_epoch(self, model: Trainable, runner: nn.Module, players: list[Player], data: Any,
                     epoch: int) -> dict[str, float]:
        """One pass; a player with ``every=k`` steps on every k-th batch of the epoch (an epoch of fewer than k
        batches never steps it: a warning says so once)."""
        if self.data_free:  # each rank, each epoch its own draws, reproducible on resume
            torch.manual_seed(self.seed * 1_000_003 + epoch * 7919 + self.dist.rank)
        batches, total = self._epoch_batches(data, epoch, shuffle=True, world=self.dist.world_size,
                                             rank=self.dist.rank)
        starved = [p.name for p in players if p.every > total]
        if starved and not getattr(self, "_warned_starved", False) and len(players) > 1:
            self._warned_starved = True
            warnings.warn(f"player(s) {', '.join(starved)} step every {max(p.every for p in players)} batches but an "
                          f"epoch has {total}: they will not be trained. Lower critic_steps or batch_size.",
                          UserWarning, stacklevel=2)
        sums: dict[str, Tensor] = {}
        weight_sums: dict[str, Tensor] = {}
        bar = tqdm(total=total, desc=f"epoch {epoch}/{self.epochs}", leave=False, file=sys.stderr,
                   disable=self._bar_disabled(), dynamic_ncols=True)
        for step, raw in enumerate(batches, start=1):
            batch = self._prepare(model, raw)
            for p in players:
                if step % p.every:
                    continue
                losses, wsum, grad_norm = self._player_step(runner, p, batch, epoch, step)
                for name, value in losses.items():
                    key = name if len(players) == 1 else f"{p.name}_{name}"
                    sums[key] = sums.get(key, 0.0) + value
                    weight_sums[key] = weight_sums.get(key, 0.0) + wsum
                gkey = "grad_norm" if len(players) == 1 else f"{p.name}_grad_norm"
                sums[gkey] = sums.get(gkey, 0.0) + grad_norm
                weight_sums[gkey] = weight_sums.get(gkey, 0.0) + 1.0
            bar.update(1)
            if step % self.log_every == 0 and not bar.disable:
                bar.set_postfix({k: f"{float(sums[k] / weight_sums[k]):.4g}" for k in list(sums)[:4]})
        bar.close()
        row = {}
        for key in sums:
            s = torch.stack([torch.as_tensor(sums[key], dtype=torch.float64, device=self.device),
                             torch.as_tensor(weight_sums[key], dtype=torch.float64, device=self.device)])
            if not key.endswith("grad_norm"):
                distributed.all_reduce_sum(s, self.dist)
            row[f"train_{key}"] = float(s[0] / s[1])
        return row

    def _player_step(self, runner: nn.Module, player: Player, batch: dict[str, Tensor], epoch: int,
                     step: int) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        opt, scaler = self.optimisers[player.name], self.scalers[player.name]
        opt.zero_grad(set_to_none=True)
        with self._autocast():
            losses = runner(batch, player.name)
        w = batch["w"]
        names = list(losses)
        values = torch.stack([v.float() if v.dim() else v.float().expand(len(w)) for v in losses.values()])
        local = (values[names.index("loss")] * w).sum()
        # one vector [Σw, Σ w·ℓ_k ...] all-reduced and checked at once: a NaN/inf anywhere in a loss shows
        # up in its weighted sum (0·inf is NaN too), and a single host sync serves every check.
        local_sums = (values.detach() * w).sum(1).double()
        stats = torch.cat([w.sum().reshape(1).double(), local_sums])
        distributed.all_reduce_sum(stats, self.dist)
        checked = stats.tolist()
        if not all(math.isfinite(v) for v in checked[1:]):
            bad = [k for k, v in zip(names, checked[1:]) if not math.isfinite(v)]
            raise TrainingError(self._nan_message(epoch, step, player.name, bad[0]))
        if checked[0] == 0:
            raise TrainingError(f"epoch {epoch}, step {step}: the events of this batch have a total weight of 0; "
                                "the weighted mean loss is undefined (check the weights)")
        objective = local * (self.dist.world_size / checked[0])
        scaler.scale(objective).backward()
        scaler.unscale_(opt)
        params = [q for q in player.parameters if q.grad is not None]
        if not params:
            grad_norm = torch.zeros((), device=self.device)
        elif self.clip_grad is not None:
            grad_norm = nn.utils.clip_grad_norm_(params, self.clip_grad)
        else:  # the same norm, without clip_grad_norm_'s multiply of every gradient by 1
            grad_norm = nn.utils.get_total_norm([q.grad for q in params])
        if self.precision != "fp16" and not torch.isfinite(grad_norm):
            raise TrainingError(self._nan_message(epoch, step, player.name, "gradient norm"))
        scaler.step(opt)
        scaler.update()
        # this rank's weighted sums (the epoch's row all-reduces them once at the end)
        return dict(zip(names, local_sums.unbind())), w.sum().double(), grad_norm.detach().double()

    def _nan_message(self, epoch: int, step: int, player: str, what: str) -> str:
        where = f" of player {player!r}" if player != "model" else ""
        keep = (f"; the last good checkpoint is {self.run.last_checkpoint} (continue with --resume)"
                if self.run is not None and epoch > 1 else "")
        return (f"training stopped at epoch {epoch}, step {step}: the {what!r}{where} became NaN or infinite"
                f"{keep}. Try a lower learning rate (--lr), gradient clipping (clip_grad) or check the input "
                "data and preprocessing.")

    # -- validation and monitoring ---------------------------------------------------------------
    @torch.no_grad()
    def _validate(self, model: Trainable, data: Any) -> dict[str, float]:
        batches, _ = self._epoch_batches(data, 0, shuffle=False, world=1, rank=0,
                                         batch_size=max(self.local_batch, 1024))
        sums: dict[str, float] = {}
        wsum = 0.0
        for raw in batches:
            batch = self._prepare(model, raw)
            with self._autocast():
                losses = model.validation_step(batch)
            w = batch["w"].double()
            for k, v in losses.items():
                v = v.double() if v.dim() else v.double().expand(len(w))
                sums[k] = sums.get(k, 0.0) + float((v * w).sum())
            wsum += float(w.sum())
        return {f"val_{k}": v / wsum for k, v in sums.items()} if wsum else {}

    def _diagnose(self, model: Trainable) -> dict[str, float]:
        """``val_<name>`` of every diagnostic ``d(model) -> {name: value}`` (or ``d.evaluate(model)``) after an
        epoch, logged beside the validation losses (a GAN's mode coverage, a grid divergence ...)."""
        out: dict[str, float] = {}
        for d in self.diagnostics:
            values = d.evaluate(model) if hasattr(d, "evaluate") else d(model)
            for key, value in values.items():
                if f"val_{key}" in out:
                    raise ConfigError(f"two diagnostics both report {key!r}; give each quantity once")
                out[f"val_{key}"] = float(value)
        return out

    def _monitor_name(self) -> str:
        return getattr(self.monitor, "__name__", str(self.monitor))

    def _monitored(self, model: Trainable, row: dict[str, float], val: Events | None) -> float | None:
        if self.monitor is None:
            return None
        if callable(self.monitor):
            return float(self.monitor(model, val))
        if self.monitor in SAMPLE_METRICS:
            if val is None:
                raise ConfigError(f"monitor {self.monitor!r} compares samples with validation events; "
                                  "give validation data or val_fraction > 0")
            return sample_metric(self.monitor, model, val, self.monitor_samples, seed=self.seed)
        key = self.monitor
        if key not in row and key == "val_loss" and "val_loss" not in row:
            key = "train_loss" if "train_loss" in row else key
        if key not in row:
            raise ConfigError(f"monitor {self.monitor!r} is neither a logged quantity ({', '.join(row)}) nor a "
                              f"sample metric ({', '.join(SAMPLE_METRICS)})")
        return row[key]

    # -- files -----------------------------------------------------------------------------------
    def _check_run_dir(self, model: Trainable) -> None:
        """Every check on the run directory, before anything is written into it."""
        if self.run is None:
            return
        if not self.resume:
            self.run.check_new()
            return
        self.run.check_writable()
        self.run.clean(older_than_s=0.0)  # temporaries of the killed process this resume continues
        if not self.run.last_checkpoint.is_file():
            if self.run.model_path.is_file():
                raise ConfigError(f"{self.run.path} holds a finished run (model.pt) and no checkpoints/last.pt "
                                      "to resume from; choose a new --out")
            return
        config = self.run.read_config()
        if config.get("model") != model.cli_name:
            raise ConfigError(f"cannot resume {self.run.path}: it holds a {config.get('model')!r} run, not "
                                  f"{model.cli_name!r}")
        ours, theirs = model.get_config(), config.get("params") or {}
        differ = [k for k in sorted(set(ours) | set(theirs)) if _plain(ours.get(k)) != _plain(theirs.get(k))]
        if differ:
            shown = "; ".join(f"{k}: run {theirs.get(k)!r}, now {ours.get(k)!r}" for k in differ)
            raise ConfigError(f"cannot resume {self.run.path}: the model differs from the run's ({shown}); "
                                  "resume with the same model, data and hyper-parameters")

    def settings(self) -> dict[str, Any]:
        """The training settings, as recorded in the run's config.yaml."""
        keys = ("epochs", "batch_size", "lr", "seed", "optimizer", "weight_decay", "scheduler", "clip_grad",
                "patience", "val_fraction", "precision", "stream", "chunk_size", "memory_limit_mb",
                "steps_per_epoch", "warm_start")
        out = {k: getattr(self, k) for k in keys}
        out["device"] = str(self.device)
        out["monitor"] = self._monitor_name() if self.monitor is not None else None
        out["world_size"] = self.dist.world_size
        return out

    def _write_run_config(self, model: Trainable) -> None:
        if self.run is None or not self.dist.is_main or self._config_written:
            return
        self.run.write_config(model=model.cli_name, params=model.get_config(), train=self.settings(),
                              data=self.inputs)
        self._config_written = True

    def _checkpoint_state(self, model: Trainable, history: list[dict[str, float]], state: dict[str, Any]) -> dict:
        return {
            "format": "hepgen", "model": model.cli_name, "state_dict": model.state_dict(),
            "optimisers": {k: o.state_dict() for k, o in self.optimisers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "history": history, "state": dict(state), "seed": self.seed,
        }

    def _restore(self, model: Trainable, state: dict[str, Any]) -> tuple[list[dict[str, float]], dict[str, Any]]:
        path = self.run.last_checkpoint if self.run is not None else None
        if path is None or not path.exists():
            self._say("nothing to resume: no checkpoint found, starting from scratch")
            return [], state
        ckpt = load_checkpoint(path, map_location=self.device)
        if ckpt.get("seed") != self.seed:
            raise ConfigError(f"{path} was written with seed {ckpt.get('seed')}, not {self.seed}; resume with "
                              "the same seed to continue the same run")
        try:
            model.load_state_dict(ckpt["state_dict"])
            for k, o in self.optimisers.items():
                o.load_state_dict(ckpt["optimisers"][k])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"cannot resume from {path}: it does not match this model "
                                  f"({str(exc).splitlines()[0][:200]})") from None
        for k, s in self.schedulers.items():
            s.load_state_dict(ckpt["schedulers"][k])
        for k, s in self.scalers.items():
            s.load_state_dict(ckpt["scalers"][k])
        torch.set_rng_state(ckpt["rng"].cpu())
        if ckpt["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in ckpt["cuda_rng"]])
        self._config_written = True  # the run's config.yaml is already there
        self._say(f"resuming {self.run.path} after epoch {ckpt['state']['epoch']}")
        return list(ckpt["history"]), dict(ckpt["state"])

    def _after_epoch(self, model: Trainable, history: list[dict[str, float]], state: dict[str, Any],
                     improved: bool) -> None:
        row = history[-1]
        shown = "  ".join(f"{k} {v:.5g}" for k, v in row.items() if k not in ("epoch", "time", "lr"))
        self._say(f"epoch {row['epoch']}/{self.epochs}  {shown}  ({row['time']:.1f}s)")
        if improved and self.run is None:  # no files: keep the best weights in memory
            self._best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if self.run is None or not self.dist.is_main:
            return
        self._written.update({self.run.config_path, self.run.last_checkpoint, self.run.metrics_path})
        self._write_run_config(model)
        save_checkpoint(self._checkpoint_state(model, history, state), self.run.last_checkpoint)
        if improved:
            self._written.add(self.run.best_checkpoint)
            save_checkpoint({"format": "hepgen", "model": model.cli_name, "state_dict": model.state_dict(),
                             "epoch": row["epoch"]}, self.run.best_checkpoint)
        self.run.write_metrics(history)
        self._resumable = True

    def _remove_unresumable(self) -> None:
        """A fit that fails before it wrote a complete checkpoint leaves nothing behind: what it wrote goes,
        and the run directory too if this fit created it (a later checkpoint stays, for --resume)."""
        if self.run is None or not self.dist.is_main or getattr(self, "_resumable", True):
            return
        for path in sorted(self._written, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                path.unlink()
        self.run.clean()
        for directory in (self.run.checkpoints, self.run.plots, self.run.path):
            if directory == self.run.path and not self._created_dir:
                continue
            with contextlib.suppress(OSError):
                directory.rmdir()  # only when empty

    def _finish(self, model: Trainable, history: list[dict[str, float]], state: dict[str, Any],
                train: Any) -> None:
        best = self.run.best_checkpoint if self.run is not None else None
        if self.monitor is not None and state["best_epoch"] and state["best_epoch"] != state["epoch"]:
            if best is not None and best.exists():
                model.load_state_dict(load_checkpoint(best, map_location=self.device)["state_dict"])
            elif hasattr(self, "_best_state"):
                model.load_state_dict(self._best_state)
        model.eval()
        model.on_fit_end(train)
        distributed.barrier(self.dist)
        if self.run is None or not self.dist.is_main:
            return
        self._write_run_config(model)
        self.run.save_model(model)
        self.run.write_metrics(history)

    # -- messages --------------------------------------------------------------------------------
    def _bar_disabled(self) -> bool:
        """Bars (an outer one over epochs with ETA and losses, an inner one over batches) only on a terminal."""
        return bool(self.quiet) or not self.dist.is_main or not sys.stderr.isatty()

    def _say(self, message: str) -> None:
        """Epoch lines and notices on stderr: shown unless quiet; by default only on a terminal."""
        shown = (not self.quiet) if self.quiet is not None else sys.stderr.isatty()
        if shown and self.dist.is_main:
            bar = getattr(self, "_epochs_bar", None)
            if bar is not None and not bar.disable:
                bar.write(message, file=sys.stderr)  # above the bars, not through them
            else:
                print(message, file=sys.stderr, flush=True)
