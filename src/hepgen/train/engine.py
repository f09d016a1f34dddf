"""The one training loop every model family runs on.

A family supplies its players and their per-event losses (see :mod:`hepgen.models`); the engine owns
the rest, in five parts:

    settings.py      the training settings: one frozen object, validated before any work
    inputs.py        the events: opened once, validation split, preprocessing, batches, further streams
    optimisation.py  optimisers, LR schedules, mixed precision, clipping, the NaN guard, one player step
    recorder.py      what goes into the run directory (rundir.py) when: checkpoints, resume, metrics.csv
    console.py       progress bars and epoch lines

This module is the loop: per epoch, each player steps on its share of the batches (``every=k``), then
a validation pass, the diagnostics, the monitored quantity, the LR schedules, a checkpoint and early
stopping; at the end the best weights are restored and the model saved.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hepgen.data.loader import Events
from hepgen.errors import ConfigError, TrainingError
from hepgen.options import excerpt, suggest
from hepgen.train import distributed
from hepgen.train.console import Console
from hepgen.train.distributed import DistInfo
from hepgen.train.inputs import Inputs, StreamData, renamed_labels
from hepgen.train.monitor import SAMPLE_METRICS, sample_metric
from hepgen.train.optimisation import Optimisation
from hepgen.train.protocol import Player, Trainable
from hepgen.train.recorder import Recorder
from hepgen.train.settings import PRECISIONS, SCHEDULERS, Settings, resolve_device

__all__ = ["PRECISIONS", "SCHEDULERS", "Engine", "Settings", "StreamData", "resolve_device"]


class _Stepper(nn.Module):
    """What DDP wraps: ``forward(batch, player)`` runs the family's step for that player."""

    def __init__(self, model: Trainable):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Tensor], player: str) -> dict[str, Tensor]:
        return self.model.player_step(player, batch)


@dataclasses.dataclass
class _Fit:
    """The parts of one running fit (the engine itself keeps its settings, and the optimisers of its last fit)."""

    model: Trainable
    dist: DistInfo
    device: torch.device
    inputs: Inputs
    recorder: Recorder
    console: Console
    optimisation: Optimisation | None = None
    runner: nn.Module | None = None
    warned_starved: bool = False


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
            ``f(model, val_events) -> float``; lower is better, except for a quantity the model names in its
            ``higher_is_better`` (a lattice flow's ``val_ess``), whose negative is monitored. None: keep the last
            epoch. A model may name sample metrics of its own in ``monitors() -> {name: f(model, val_events, n,
            seed) -> float}`` (a shower model's high-level FPD or classifier AUC), logged as ``val_<name>``.
            A model with an ``epoch_metrics() -> {name: value}`` method (a data-free flow measuring its
            effective sample size on its own draws) has them logged as ``val_<name>`` after every epoch.
            A name the fit cannot log is a ConfigError before any step or write (``train_*`` names, and ``val_*``
            ones of diagnostics or ``epoch_metrics``, after the first epoch, still before anything is written).
        monitor_every: the monitored quantity is computed after every k-th epoch (and the last) only, for
            costly ones (a classifier trained on samples); the best epoch is chosen among those, and
            ``patience`` counts them.
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
                 monitor: str | Callable | None = "val_loss", monitor_samples: int = 5000, monitor_every: int = 1,
                 val_fraction: float = 0.1, precision: str = "fp32", stream: bool | str = "auto",
                 chunk_size: int = 65536, memory_limit_mb: float = 1024.0, log_every: int = 10,
                 steps_per_epoch: int | None = None, diagnostics: Sequence[Callable[..., Any]] | None = None,
                 warm_start: bool = False):
        self.settings = Settings(
            epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device, run_dir=run_dir, resume=resume,
            quiet=quiet, optimizer=optimizer, weight_decay=weight_decay, scheduler=scheduler, clip_grad=clip_grad,
            patience=patience, monitor=monitor, monitor_samples=monitor_samples, monitor_every=monitor_every,
            val_fraction=val_fraction,
            precision=precision, stream=stream, chunk_size=chunk_size, memory_limit_mb=memory_limit_mb,
            log_every=log_every, steps_per_epoch=steps_per_epoch, diagnostics=diagnostics or (),
            warm_start=warm_start)
        self.device: torch.device = self.settings.device
        #: the optimisers of the last fit, by player name
        self.optimisers: dict[str, torch.optim.Optimizer] = {}

    def __getattr__(self, name: str) -> Any:
        """Each setting reads as an attribute too (``engine.epochs``), as before there was one object."""
        settings = self.__dict__.get("settings")
        if settings is not None and name in {f.name for f in dataclasses.fields(settings)}:
            return getattr(settings, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- public ----------------------------------------------------------------------------------
    def fit(self, model: Trainable, x: Any, val: Any = None, *, weights: Any = None, val_weights: Any = None,
            context: Any = None, val_context: Any = None, streams: Mapping[str, Any] | None = None,
            labels: Any = None, val_labels: Any = None, targets: Any = None,
            val_targets: Any = None) -> Trainable:
        """Train ``model`` on ``x`` (array, tensor or data spec) and return it.

        ``labels``: what only training reads beside the features (a tagger's label and nuisance;
        ``batch["labels"]`` (batch, k), never preprocessed): column names of ``x`` — by default the
        model's :meth:`label_columns` — or an (N, k) array; ``val_labels`` likewise for ``val``.
        ``targets``/``val_targets``: their deprecated spellings.
        """
        labels, val_labels = renamed_labels(labels, targets), renamed_labels(val_labels, val_targets, "val_")
        # training draws from a fork of torch's RNG seeded with ``seed``: the caller's global RNG is as it was
        gpus = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=gpus):
            return self._fit(model, x, val, weights=weights, val_weights=val_weights, context=context,
                             val_context=val_context, streams=streams, labels=labels, val_labels=val_labels)

    def _fit(self, model: Trainable, x: Any, val: Any, *, weights: Any, val_weights: Any, context: Any,
             val_context: Any, streams: Mapping[str, Any] | None, labels: Any, val_labels: Any) -> Trainable:
        s = self.settings
        fit = self._start(model, x is None)
        inputs, recorder, console = fit.inputs, fit.recorder, fit.console
        inputs.open(model, x, val, weights=weights, val_weights=val_weights, context=context, val_context=val_context,
                    streams=streams, labels=labels, val_labels=val_labels)
        if x is not None:
            model.columns_, model.context_columns_ = inputs.names.get("x"), inputs.names.get("context")
        self._check_monitor(fit, probe=False)  # a name no epoch can log is refused before any work
        if isinstance(s.monitor, str) and s.monitor in _own_monitors(model) and inputs.val is None:
            raise ConfigError(f"monitor {s.monitor!r} of {model.cli_name} compares samples with validation events; "
                              "give validation data (--val) or val_fraction > 0")
        if s.diagnostics and inputs.val is None:
            raise ConfigError("diagnostics are evaluated in the validation pass after each epoch; give val= or "
                              "val_fraction > 0")
        recorder.sections = {"train": s.record(fit.device, fit.dist.world_size), "data": inputs.record}
        check_fit = getattr(model, "check_fit", None)  # a model's own checks (memory, a learnable target) before work
        if check_fit is not None:
            check_fit(inputs.local_batch, fit.device)

        torch.manual_seed(s.seed)
        if s.warm_start:  # continue from the current weights and fitted preprocessing (fine-tuning)
            fitted = getattr(model.preprocessor, "fitted", None)
            if inputs.train is not None and fitted is not None and not bool(fitted):
                raise ConfigError(f"warm_start continues a fitted {model.cli_name}; this one was never fitted")
        else:
            model.reset_parameters()
        inputs.fit_preprocessing(model, warm_start=s.warm_start)
        model.to(fit.device)
        inputs.to(fit.device)
        model.on_fit_start(inputs.train)
        players = model.players()
        if s.monitor == "val_loss" and inputs.val is None and len(players) > 1:
            # the val_loss default falls back on train_loss, which players with their own losses do not log
            raise ConfigError(f"{model.cli_name} trains {', '.join(p.name for p in players)} on losses of their "
                              "own: without validation events there is no loss to pick an epoch by; give val= "
                              "(--val) or val_fraction > 0, or monitor=None to keep the last epoch")
        fit.optimisation = Optimisation(players, s, fit.device, fit.dist, self._explainer(fit))
        self.optimisers = fit.optimisation.optimisers
        history: list[dict[str, float]] = []
        state = {"epoch": 0, "best": math.inf, "best_epoch": 0, "bad_epochs": 0}
        if s.resume:
            history, state = recorder.restore(model, fit.optimisation, fit.device, state, console.say)
        fit.runner = _Stepper(model)
        if fit.dist.enabled:
            fit.runner = nn.parallel.DistributedDataParallel(
                fit.runner, device_ids=[fit.device.index] if fit.device.type == "cuda" else None,
                find_unused_parameters=len(players) > 1)
        inputs.place()
        self._check_monitor(fit, probe=True)  # a validation loss's name, on one batch: still before any step

        try:
            console.start(s.epochs, state["epoch"])
            first = state["epoch"] + 1
            for epoch in range(state["epoch"] + 1, s.epochs + 1):
                start = time.perf_counter()
                model.on_epoch_start(epoch)
                players = self._players_this_epoch(model, players)
                model.train()
                row: dict[str, float] = {"epoch": epoch}
                row.update(self._train_epoch(fit, players, epoch))
                model.eval()
                if inputs.val_data is not None:
                    row.update(self._validate(fit))
                    row.update(self._diagnose(model))
                epoch_metrics = getattr(model, "epoch_metrics", None)  # a data-free model's own judgement of itself
                if epoch_metrics is not None:
                    row.update({f"val_{k}": float(v) for k, v in epoch_metrics().items()})
                row["lr"] = fit.optimisation.lr(players[0].name)
                if epoch == first:  # what the probes could not settle, before any write
                    self._check_logged(model, row)
                value = self._monitored(model, row, inputs.val) if self._monitor_due(epoch) else None
                if value is not None:
                    row["monitor"] = value
                row["time"] = time.perf_counter() - start
                history.append(row)
                improved = value is not None and value < state["best"]
                if improved:
                    state.update(best=value, best_epoch=epoch, bad_epochs=0)
                elif value is not None or s.monitor is None:  # epochs between monitored ones do not count
                    state["bad_epochs"] += 1
                fit.optimisation.step_schedulers(value)
                state["epoch"] = epoch
                console.epoch(row, s.epochs)
                recorder.epoch(model, fit.optimisation, history, state, improved)
                if s.patience is not None and value is not None and state["bad_epochs"] >= s.patience:
                    console.say(f"early stop after epoch {epoch}: no improvement of {s.monitor_name} for "
                                f"{s.patience} epochs (best {state['best']:.5g} at epoch {state['best_epoch']})")
                    break

            if s.monitor is not None and state["best_epoch"] and state["best_epoch"] != state["epoch"]:
                recorder.restore_best(model, fit.device)
            model.eval()
            model.on_fit_end(inputs.train)
            distributed.barrier(fit.dist)
            recorder.finish(model, history)
        except BaseException:
            recorder.discard()
            raise
        finally:
            console.close()
            fit.runner = None  # the DDP wrapper holds the process group: release it with the fit
        model.history_ = history
        model.eval()
        return model

    def _start(self, model: Trainable, data_free: bool) -> _Fit:
        """The parts of a new fit, after every check that needs no data (DDP, the run directory, data-free)."""
        s = self.settings
        dist = distributed.setup(self.device)
        device = self.device
        if dist.enabled and device.type == "cuda":
            device = torch.device("cuda", dist.local_rank)
            torch.cuda.set_device(device)
        self.device = device
        if s.batch_size % dist.world_size:
            raise ConfigError(f"batch size {s.batch_size} is not divisible by the {dist.world_size} DDP processes")
        recorder = Recorder(s, dist)
        recorder.check(model)
        if data_free != bool(getattr(model, "data_free", False)):
            raise ConfigError(f"{model.cli_name} is trained without input events: call fit(None, steps_per_epoch=N)"
                              if not data_free else
                              f"no training events given; {model.cli_name} learns from data (pass x)")
        if data_free and s.steps_per_epoch is None:
            raise ConfigError(f"{model.cli_name} is trained without data: give steps_per_epoch (steps of "
                              f"batch_size={s.batch_size} events it draws itself per epoch)")
        return _Fit(model, dist, device, Inputs(s, device, dist), recorder, Console(s.quiet, dist.is_main))

    def _explainer(self, fit: _Fit) -> Callable[[int, int, str, str], str]:
        def explain(epoch: int, step: int, player: str, what: str) -> str:
            where = f" of player {player!r}" if player != "model" else ""
            return (f"training stopped at epoch {epoch}, step {step}: the {what!r}{where} became NaN or infinite"
                    f"{fit.recorder.nan_hint(epoch)}. Try a lower learning rate (--lr), gradient clipping "
                    "(clip_grad) or check the input data and preprocessing.")

        return explain

    # -- one epoch ---------------------------------------------------------------------------------
    @staticmethod
    def _players_this_epoch(model: Trainable, players: list[Player]) -> list[Player]:
        """The step schedule may follow the epoch (a pivot's classifier steps on every batch while it is
        pretrained alone; a StackGAN's stage II waits, ``every=0``, while stage I trains alone): each player's
        ``every`` is read again from ``model.players()`` after ``on_epoch_start``; the players themselves
        (names, parameters, optimisers) stay."""
        now = model.players()
        if [p.name for p in now] != [p.name for p in players]:
            raise TrainingError(f"{model.cli_name}.players() changed from {[p.name for p in players]} to "
                                f"{[p.name for p in now]} during fit; only a player's 'every' may change")
        return [dataclasses.replace(p, every=int(q.every)) for p, q in zip(players, now)]

    def _train_epoch(self, fit: _Fit, players: list[Player], epoch: int) -> dict[str, float]:
        """One pass; a player with ``every=k`` steps on every k-th batch of the epoch (an epoch of fewer than k
        batches never steps it: a warning says so once). Returns the ``train_*`` columns of the epoch's row."""
        s, dist = self.settings, fit.dist
        if fit.inputs.train is None:  # data-free: each rank, each epoch its own draws, reproducible on resume
            torch.manual_seed(s.seed * 1_000_003 + epoch * 7919 + dist.rank)
        batches, total = fit.inputs.epoch(fit.inputs.train_data, epoch, shuffle=True, world=dist.world_size,
                                          rank=dist.rank)
        starved = [p.name for p in players if p.every > total]  # every=0: sitting this epoch out, on purpose
        if starved and not fit.warned_starved and len(players) > 1:
            fit.warned_starved = True
            warnings.warn(f"player(s) {', '.join(starved)} step every {max(p.every for p in players)} batches but an "
                          f"epoch has {total}: they will not be trained. Lower critic_steps or batch_size.",
                          UserWarning, stacklevel=2)
        # per-player running sums stay tensors (no host sync per step); keys: the loss names of the row
        sums: dict[str, Tensor] = {}
        weight_sums: dict[str, Tensor] = {}
        bar = fit.console.batches(total, epoch, s.epochs)
        for step, raw in enumerate(batches, start=1):
            batch = fit.inputs.prepare(fit.model, raw)
            for p in players:
                if not p.every or step % p.every:  # every=0: the player sits this epoch out (staged training)
                    continue
                losses, wsum, grad_norm = fit.optimisation.step(fit.runner, p, batch, epoch, step)
                for name, value in losses.items():
                    key = name if len(players) == 1 else f"{p.name}_{name}"
                    sums[key] = sums.get(key, 0.0) + value
                    weight_sums[key] = weight_sums.get(key, 0.0) + wsum
                gkey = "grad_norm" if len(players) == 1 else f"{p.name}_grad_norm"
                sums[gkey] = sums.get(gkey, 0.0) + grad_norm
                weight_sums[gkey] = weight_sums.get(gkey, 0.0) + 1.0
            bar.update(1)
            if step % s.log_every == 0 and not bar.disable:
                bar.set_postfix({k: f"{float(sums[k] / weight_sums[k]):.4g}" for k in list(sums)[:4]})
        bar.close()
        row = {}
        for key in sums:
            pair = torch.stack([torch.as_tensor(sums[key], dtype=torch.float64, device=fit.device),
                                torch.as_tensor(weight_sums[key], dtype=torch.float64, device=fit.device)])
            if not key.endswith("grad_norm"):
                distributed.all_reduce_sum(pair, dist)
            row[f"train_{key}"] = float(pair[0] / pair[1])
        return row

    # -- validation and monitoring ---------------------------------------------------------------
    @torch.no_grad()
    def _validate(self, fit: _Fit) -> dict[str, float]:
        """``val_<loss>``: the weighted mean of each validation loss over the validation events."""
        batches, _ = fit.inputs.epoch(fit.inputs.val_data, 0, shuffle=False, world=1, rank=0,
                                      batch_size=max(fit.inputs.local_batch, 1024))
        sums: dict[str, Tensor] = {}
        wsum = torch.zeros((), dtype=torch.float64, device=fit.device)
        for raw in batches:
            batch = fit.inputs.prepare(fit.model, raw)
            with fit.optimisation.autocast():
                losses = fit.model.validation_step(batch)
            w = batch["w"].double()
            for k, v in losses.items():
                v = v.double() if v.dim() else v.double().expand(len(w))
                sums[k] = sums[k] + (v * w).sum() if k in sums else (v * w).sum()
            wsum += w.sum()
        total = float(wsum)
        return {f"val_{k}": float(v) / total for k, v in sums.items()} if total else {}

    def _diagnose(self, model: Trainable) -> dict[str, float]:
        """``val_<name>`` of every diagnostic ``d(model) -> {name: value}`` (or ``d.evaluate(model)``) after an
        epoch, logged beside the validation losses (a GAN's mode coverage, a grid divergence ...)."""
        out: dict[str, float] = {}
        for d in self.settings.diagnostics:
            values = d.evaluate(model) if hasattr(d, "evaluate") else d(model)
            for key, value in values.items():
                if f"val_{key}" in out:
                    raise ConfigError(f"two diagnostics both report {key!r}; give each quantity once")
                out[f"val_{key}"] = float(value)
        return out

    def _check_monitor(self, fit: _Fit, probe: bool) -> None:
        """Refuse a ``monitor`` name no epoch of this fit can log, before any training step or write.

        Every column of an epoch's row is ``epoch``, ``lr``, ``time``, ``train_*`` or ``val_*``; the ``val_*``
        ones come from the validation losses, the diagnostics, ``epoch_metrics()`` and the model's own monitors.
        Without ``probe`` only what needs no model output is judged; with it (preprocessing fitted), the names
        of the validation losses are read off one validation batch (no gradient, the RNG left as it was). A
        ``train_*`` name, or a ``val_*`` one a diagnostic or ``epoch_metrics()`` may log, is judged on the
        first epoch's row before anything is written (:meth:`_check_logged`).
        """
        name, model, inputs = self.settings.monitor, fit.model, fit.inputs
        if not isinstance(name, str) or name in _own_monitors(model) or name in SAMPLE_METRICS:
            return
        if name in ("epoch", "lr") or name.startswith("train_") or (name == "val_loss" and inputs.val is None):
            return  # val_loss without validation events: the default, falls back on train_loss
        if name.startswith("val_"):
            if self.settings.diagnostics or hasattr(model, "epoch_metrics"):
                return  # names known only once logged
            if inputs.val is not None and not probe:
                return  # judged on the validation losses' names once preprocessing is fitted
            losses = self._validation_names(fit) if inputs.val is not None else []
            if name[4:] in losses:
                return
            if losses:
                self._refuse_monitor(model, ["train_<loss>", *(f"val_{k}" for k in losses)])
        self._refuse_monitor(model, ["train_<loss>", "val_<loss>" if inputs.val is not None else
                                     "(no val_* without validation events)"])

    def _validation_names(self, fit: _Fit) -> list[str]:
        """The names of the validation losses, from one validation batch (what :meth:`_validate` will log)."""
        batches, _ = fit.inputs.epoch(fit.inputs.val_data, 0, shuffle=False, world=1, rank=0,
                                      batch_size=min(fit.inputs.local_batch, 256))
        raw = next(iter(batches), None)
        if raw is None:
            return []
        was_training = fit.model.training
        gpus = [fit.device] if fit.device.type == "cuda" else []
        with torch.random.fork_rng(devices=gpus), torch.no_grad():
            fit.model.eval()
            names = list(fit.model.validation_step(fit.inputs.prepare(fit.model, raw)))
        fit.model.train(was_training)
        return names

    def _check_logged(self, model: Trainable, row: Mapping[str, float]) -> None:
        """After the first epoch of a fit, before its first write: the monitored column is one it logs."""
        name = self.settings.monitor
        if not isinstance(name, str) or name in _own_monitors(model) or name in SAMPLE_METRICS:
            return
        if name not in row and not (name == "val_loss" and "train_loss" in row):
            self._refuse_monitor(model, [k for k in row if k.startswith(("train_", "val_"))])

    def _refuse_monitor(self, model: Trainable, columns: Sequence[str]) -> None:
        name = self.settings.monitor
        own = list(_own_monitors(model))
        metrics = [*own, *(m for m in SAMPLE_METRICS if m not in own)]
        valid = [*metrics, *columns]
        raise ConfigError(f"unknown monitor {excerpt(name)} for {model.cli_name}{suggest(name, valid)}; choose a "
                          f"sample metric ({', '.join(metrics)}) or a quantity it logs ({', '.join(columns)})")

    def _monitor_due(self, epoch: int) -> bool:
        """Whether the monitored quantity is computed after ``epoch``: every ``monitor_every``-th and the last."""
        return epoch % self.settings.monitor_every == 0 or epoch == self.settings.epochs

    def _monitored(self, model: Trainable, row: dict[str, float], val: Events | None) -> float | None:
        """The monitored quantity of this epoch (lower is better), or None without a monitor."""
        monitor = self.settings.monitor
        if monitor is None:
            return None
        if callable(monitor):
            return float(monitor(model, val))
        own = _own_monitors(model).get(monitor)
        if own is not None:  # the model's own sample metric (a shower model's high-level FPD), logged too
            row[f"val_{monitor}"] = float(own(model, val, self.settings.monitor_samples, self.settings.seed))
            return row[f"val_{monitor}"]
        if monitor in SAMPLE_METRICS:
            if val is None:
                raise ConfigError(f"monitor {monitor!r} compares samples with validation events; "
                                  "give validation data or val_fraction > 0")
            return sample_metric(monitor, model, val, self.settings.monitor_samples, seed=self.settings.seed)
        key = monitor
        if key == "val_loss" and "val_loss" not in row and "train_loss" in row:
            key = "train_loss"
        if key not in row:
            raise ConfigError(f"monitor {monitor!r} is neither a logged quantity ({', '.join(row)}) nor a "
                              f"sample metric ({', '.join([*SAMPLE_METRICS, *_own_monitors(model)])})")
        # a quantity the model says is better higher (a flow's effective sample size) is maximised
        return -row[key] if key in getattr(model, "higher_is_better", ()) else row[key]


def _own_monitors(model: Trainable) -> Mapping[str, Callable[..., float]]:
    """The sample metrics a model names itself (``monitors()``; none by default)."""
    monitors = getattr(model, "monitors", None)
    return monitors() if monitors is not None else {}
