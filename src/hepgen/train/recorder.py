"""The run recording of one fit: what goes into the run directory when, and what ``--resume`` reads back.

:class:`~hepgen.train.rundir.RunDir` is the one owner of the directory's layout and of every read and
write in it; the :class:`Recorder` decides, for one fit, *when*: every check before anything is written,
config.yaml with the first checkpoint, ``checkpoints/last.pt`` (weights, optimisers, schedules, scalers,
RNG states, history) and ``metrics.csv`` after every epoch, ``best.pt`` when the monitored quantity
improves, ``model.pt`` at the end, and nothing left behind by a fit that fails before its first complete
checkpoint. Without a run directory the best weights are kept in memory instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hepgen.errors import CheckpointError, ConfigError
from hepgen.options import excerpt
from hepgen.train.distributed import DistInfo
from hepgen.train.optimisation import Optimisation
from hepgen.train.protocol import Trainable
from hepgen.train.rundir import RunDir, load_checkpoint, save_checkpoint
from hepgen.train.settings import Settings


def _plain(value: Any) -> Any:
    """Tuples as lists, so that a config read back from YAML compares equal to the live one."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _difference(key: str, run: Any, now: Any, shown: int = 3) -> str:
    """``key: run X, now Y`` with short excerpts; for two mappings (a geometry, a preprocessing spec) the entries that
    differ, the first ``shown`` of them, rather than both whole records."""
    if isinstance(run, dict) and isinstance(now, dict):
        keys = [k for k in [*run, *(k for k in now if k not in run)] if run.get(k) != now.get(k)]
        parts = [f"{key}[{k!r}]: run {excerpt(run.get(k), 40)}, now {excerpt(now.get(k), 40)}" for k in keys[:shown]]
        return "; ".join(parts) + (f"; and {len(keys) - shown} more entries of {key}" if len(keys) > shown else "")
    return f"{key}: run {excerpt(run)}, now {excerpt(now)}"


class Recorder:
    """The run directory of one fit (``run`` is None when ``run_dir`` is None: nothing is written)."""

    def __init__(self, settings: Settings, dist: DistInfo):
        self.settings, self.dist = settings, dist
        self.run = RunDir(settings.run_dir) if settings.run_dir is not None else None
        self.sections: dict[str, Any] = {}  # config.yaml's train and data sections, set before the first epoch
        self._config_written = False
        self._written: set[Path] = set()
        self._best_state: dict[str, torch.Tensor] | None = None
        self._resumable = True
        self._created_dir = False

    @property
    def writes(self) -> bool:
        """Whether this process writes files (a run directory, and the main process)."""
        return self.run is not None and self.dist.is_main

    def check(self, model: Trainable) -> None:
        """Every check on the run directory, before anything is written into it."""
        run = self.run
        if run is None:
            return
        if not self.settings.resume:
            run.check_new()
        else:
            run.check_writable()
            run.clean(older_than_s=0.0)  # temporaries of the killed process this resume continues
            if run.last_checkpoint.is_file():
                self._check_same_run(model)
            elif run.model_path.is_file():
                raise ConfigError(f"{run.path} holds a finished run (model.pt) and no checkpoints/last.pt "
                                  "to resume from; choose a new --out")
        self._resumable = self.settings.resume and run.last_checkpoint.is_file()
        self._created_dir = not run.path.exists()

    def _check_same_run(self, model: Trainable) -> None:
        run = self.run
        config = run.read_config()
        if config.get("model") != model.cli_name:
            raise ConfigError(f"cannot resume {run.path}: it holds a {config.get('model')!r} run, not "
                              f"{model.cli_name!r}")
        ours, theirs = model.get_config(), config.get("params") or {}
        differ = [k for k in sorted(set(ours) | set(theirs)) if _plain(ours.get(k)) != _plain(theirs.get(k))]
        if differ:
            shown = "; ".join(_difference(k, _plain(theirs.get(k)), _plain(ours.get(k))) for k in differ)
            raise ConfigError(f"cannot resume {run.path}: the model differs from the run's ({shown}); "
                              "resume with the same model, data and hyper-parameters")

    def nan_hint(self, epoch: int) -> str:
        """Where a fit stopped by a NaN can continue from (after its first epoch, with a run directory)."""
        if self.run is None or epoch <= 1:
            return ""
        return f"; the last good checkpoint is {self.run.last_checkpoint} (continue with --resume)"

    # -- resume --------------------------------------------------------------------------------------------
    def restore(self, model: Trainable, optimisation: Optimisation, device: torch.device,
                state: dict[str, Any], say: Any) -> tuple[list[dict[str, float]], dict[str, Any]]:
        """Weights, optimisation state, RNG states and history from ``checkpoints/last.pt``: (history, state)."""
        path = self.run.last_checkpoint if self.run is not None else None
        if path is None or not path.exists():
            say("nothing to resume: no checkpoint found, starting from scratch")
            return [], state
        ckpt = load_checkpoint(path, map_location=device)
        if ckpt.get("seed") != self.settings.seed:
            raise ConfigError(f"{path} was written with seed {ckpt.get('seed')}, not {self.settings.seed}; resume "
                              "with the same seed to continue the same run")
        try:
            model.load_state_dict(ckpt["state_dict"])
            for k, o in optimisation.optimisers.items():
                o.load_state_dict(ckpt["optimisers"][k])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"cannot resume from {path}: it does not match this model "
                                  f"({str(exc).splitlines()[0][:200]})") from None
        for k, s in optimisation.schedulers.items():
            s.load_state_dict(ckpt["schedulers"][k])
        for k, s in optimisation.scalers.items():
            s.load_state_dict(ckpt["scalers"][k])
        torch.set_rng_state(ckpt["rng"].cpu())
        if ckpt["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in ckpt["cuda_rng"]])
        self._config_written = True  # the run's config.yaml is already there
        say(f"resuming {self.run.path} after epoch {ckpt['state']['epoch']}")
        return list(ckpt["history"]), dict(ckpt["state"])

    # -- after each epoch and at the end -------------------------------------------------------------------
    def _write_config(self, model: Trainable) -> None:
        if not self.writes or self._config_written:
            return
        self.run.write_config(model=model.cli_name, params=model.get_config(), **self.sections)
        self._config_written = True

    def epoch(self, model: Trainable, optimisation: Optimisation, history: list[dict[str, float]],
              state: dict[str, Any], improved: bool) -> None:
        """After an epoch: the best weights (in memory without a run directory), then last.pt, best.pt and
        metrics.csv (config.yaml with the first), on the main process."""
        if improved and self.run is None:  # no files: keep the best weights in memory
            self._best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if not self.writes:
            return
        run = self.run
        self._written.update({run.config_path, run.last_checkpoint, run.metrics_path})
        self._write_config(model)
        save_checkpoint({"format": "hepgen", "model": model.cli_name, "state_dict": model.state_dict(),
                         **optimisation.state_dict(), "rng": torch.get_rng_state(),
                         "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                         "history": history, "state": dict(state), "seed": self.settings.seed},
                        run.last_checkpoint)
        if improved:
            self._written.add(run.best_checkpoint)
            save_checkpoint({"format": "hepgen", "model": model.cli_name, "state_dict": model.state_dict(),
                             "epoch": history[-1]["epoch"]}, run.best_checkpoint)
        run.write_metrics(history)
        self._resumable = True

    def restore_best(self, model: Trainable, device: torch.device) -> None:
        """The monitored best weights back into ``model`` (from best.pt, or from memory)."""
        best = self.run.best_checkpoint if self.run is not None else None
        if best is not None and best.exists():
            model.load_state_dict(load_checkpoint(best, map_location=device)["state_dict"])
        elif self._best_state is not None:
            model.load_state_dict(self._best_state)

    def finish(self, model: Trainable, history: list[dict[str, float]]) -> None:
        """model.pt, config.yaml and the final metrics.csv (main process)."""
        if not self.writes:
            return
        self._write_config(model)
        self.run.save_model(model)
        self.run.write_metrics(history)

    def discard(self) -> None:
        """After a failure: a fit that had not written a complete checkpoint leaves nothing behind (what it
        wrote goes, and the run directory if this fit created it); a later checkpoint stays, for --resume."""
        if not self.writes or self._resumable:
            return
        self.run.remove(self._written, directory=self._created_dir)
