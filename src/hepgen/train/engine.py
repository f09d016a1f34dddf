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
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
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
)
from hepgen.data.sources import is_column_name, load_events
from hepgen.errors import CheckpointError, ConfigError, TrainingError
from hepgen.train import distributed
from hepgen.train.monitor import SAMPLE_METRICS, sample_metric
from hepgen.train.protocol import Player, Trainable
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


def _plain(value: Any) -> Any:
    """Tuples as lists, so that a config read back from YAML compares equal to the live one."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


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
    """

    def __init__(self, *, epochs: int = 20, batch_size: int = 256, lr: float = 1e-3, seed: int = 0,
                 device: str = "auto", run_dir: str | Path | None = None, resume: bool = False,
                 quiet: bool | None = None, optimizer: str = "adam", weight_decay: float = 0.0,
                 scheduler: str = "none", clip_grad: float | None = None, patience: int | None = None,
                 monitor: str | Callable | None = "val_loss", monitor_samples: int = 5000,
                 val_fraction: float = 0.1, precision: str = "fp32", stream: bool | str = "auto",
                 chunk_size: int = 65536, memory_limit_mb: float = 1024.0, log_every: int = 10,
                 steps_per_epoch: int | None = None):
        if epochs < 1 or batch_size < 1 or lr <= 0:
            raise ConfigError(f"need epochs >= 1, batch_size >= 1 and lr > 0 (got {epochs}, {batch_size}, {lr})")
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
        self.inputs: dict[str, Any] = {}
        if precision == "fp16" and self.device.type != "cuda":
            raise ConfigError("fp16 mixed precision needs CUDA; use bf16 on the CPU")

    # -- public ----------------------------------------------------------------------------------
    def fit(self, model: Trainable, x: Any, val: Any = None, *, weights: Any = None, val_weights: Any = None,
            context: Any = None, val_context: Any = None, streams: Mapping[str, Any] | None = None) -> Trainable:
        """Train ``model`` on ``x`` (array, tensor or data spec) and return it."""
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

        stream = None if self.stream == "auto" else bool(self.stream)
        train, names = load_events(x, weights, context, model, stream=stream,
                                   memory_limit_mb=self.memory_limit_mb)
        if val is not None:
            # columns named for the training file (weights, context) are taken from the validation file too
            val_weights = weights if val_weights is None and is_column_name(weights) else val_weights
            val_context = context if val_context is None and is_column_name(context) else val_context
            val_events, _ = load_events(val, val_weights, val_context, model, stream=stream,
                                        memory_limit_mb=self.memory_limit_mb)
        elif self.val_fraction > 0:
            train, val_events = self._split(train)
        else:
            val_events = None
        self.streaming = not train.in_memory
        model.columns_, model.context_columns_ = names.get("x"), names.get("context")

        torch.manual_seed(self.seed)
        model.reset_parameters()
        self._fit_preprocessing(model, train)
        model.to(self.device)
        players = model.players()
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
        train_data = self._to_device(train) if not self.streaming else train
        val_data = self._to_device(val_events) if val_events is not None and val_events.in_memory else val_events

        for epoch in range(state["epoch"] + 1, self.epochs + 1):
            start = time.perf_counter()
            model.train()
            row: dict[str, float] = {"epoch": epoch}
            row.update(self._train_epoch(model, runner, players, train_data, epoch))
            model.eval()
            if val_data is not None:
                row.update(self._validate(model, val_data))
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
            if self.patience is not None and value is not None and state["bad_epochs"] >= self.patience:
                self._say(f"early stop after epoch {epoch}: no improvement of {self._monitor_name()} for "
                          f"{self.patience} epochs (best {state['best']:.5g} at epoch {state['best_epoch']})")
                break

        self._finish(model, history, state, train)
        model.history_ = history
        model.eval()
        return model

    # -- data ------------------------------------------------------------------------------------
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
        if isinstance(model.preprocess, dict):
            from hepgen.data.preprocess import resolve_kinds

            model.preprocessor.set_kinds(resolve_kinds(model.preprocess, model.event_shape[0], model.columns_))
        model.preprocessor.fit(lambda: events.chunks(self.chunk_size))
        if model.context_preprocessor is not None:
            ctx = Events(events.context)
            model.context_preprocessor.fit(lambda: ctx.chunks(self.chunk_size))

    def _to_device(self, events: Events) -> dict[str, Tensor]:
        dtype = torch.get_default_dtype()
        out = {"x": torch.as_tensor(np.asarray(events.x) if not isinstance(events.x, Tensor) else events.x)}
        out["w"] = (torch.as_tensor(events.w) if events.w is not None else torch.ones(len(events), dtype=dtype))
        if events.context is not None:
            out["context"] = torch.as_tensor(events.context)
        return {k: v.to(self.device, dtype=dtype) for k, v in out.items()}

    def _prepare(self, model: Trainable, batch: dict[str, Any]) -> dict[str, Tensor]:
        dtype = torch.get_default_dtype()
        batch = {k: torch.as_tensor(v).to(self.device, dtype=dtype, non_blocking=True) for k, v in batch.items()}
        batch["x"] = model.preprocessor(batch["x"])
        if "context" in batch:
            batch["context"] = model.context_preprocessor(batch["context"])
        return batch

    def _batches(self, data: Any, epoch: int, shuffle: bool, world: int = 1, rank: int = 0,
                 batch_size: int | None = None) -> tuple[Iterator[dict[str, Any]], int]:
        bs = batch_size or self.local_batch
        if isinstance(data, dict):
            return (memory_batches(data, bs, epoch, self.seed, rank, world, shuffle),
                    memory_batch_count(len(data["x"]), bs, world))
        return (stream_batches(data, bs, self.chunk_size, epoch, self.seed, rank, world, shuffle),
                stream_batch_count(len(data), bs, self.chunk_size, world))

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

    def _train_epoch(self, model: Trainable, runner: nn.Module, players: list[Player], data: Any,
                     epoch: int) -> dict[str, float]:
        batches, total = self._batches(data, epoch, shuffle=True, world=self.dist.world_size, rank=self.dist.rank)
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
        batches, _ = self._batches(data, 0, shuffle=False, batch_size=max(self.local_batch, 1024))
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
                "steps_per_epoch")
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
        self._write_run_config(model)
        if improved:
            save_checkpoint({"format": "hepgen", "model": model.cli_name, "state_dict": model.state_dict(),
                             "epoch": row["epoch"]}, self.run.best_checkpoint)
        save_checkpoint(self._checkpoint_state(model, history, state), self.run.last_checkpoint)
        self.run.write_metrics(history)

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
        return bool(self.quiet) or not self.dist.is_main or not sys.stderr.isatty()

    def _say(self, message: str) -> None:
        """Epoch lines and notices on stderr: shown unless quiet; by default only on a terminal."""
        shown = (not self.quiet) if self.quiet is not None else sys.stderr.isatty()
        if shown and self.dist.is_main:
            print(message, file=sys.stderr, flush=True)
