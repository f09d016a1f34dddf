"""The optimisation of one fit: each player's optimiser, learning-rate schedule and gradient scaler, and
one optimiser step of a player on a batch (mixed precision, the global weighted-mean objective, the
NaN/inf guard, gradient clipping).

A player's objective is the weighted mean of its per-event loss over the *global* batch,

    L = Σ_i w_i ℓ_i / Σ_i w_i,

computed exactly under DDP too: every rank divides its local Σ w ℓ by the all-reduced Σ w and
multiplies by the world size, which DDP's gradient averaging divides back out.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from hepgen.errors import TrainingError
from hepgen.train import distributed
from hepgen.train.distributed import DistInfo
from hepgen.train.protocol import Player
from hepgen.train.settings import PRECISIONS, Settings

#: explain(epoch, step, player, what) -> the message of a NaN/inf stop
Explain = Callable[[int, int, str, str], str]


def _optimiser(p: Player, settings: Settings, device: torch.device) -> torch.optim.Optimizer:
    lr = p.lr if p.lr is not None else settings.lr
    wd = p.weight_decay if p.weight_decay is not None else settings.weight_decay
    if settings.optimizer == "sgd":
        return torch.optim.SGD(p.parameters, lr=lr, momentum=0.9, weight_decay=wd)
    cls = torch.optim.AdamW if settings.optimizer == "adamw" else torch.optim.Adam
    # the fused kernel (one launch for every parameter) on CPU and CUDA; same update rule
    fused = device.type in ("cpu", "cuda") and all(q.is_floating_point() for q in p.parameters)
    return cls(p.parameters, lr=lr, betas=p.betas, weight_decay=wd, fused=fused or None)


def _scheduler(opt: torch.optim.Optimizer, settings: Settings) -> Any:
    """``cosine`` over the epochs, ``exponential`` (γ 0.95), ``step`` (×0.5 every 10 epochs), ``plateau``
    (×0.5 after 3 epochs without improvement of the monitored quantity) or None."""
    lr_scheduler = torch.optim.lr_scheduler
    if settings.scheduler == "cosine":
        return lr_scheduler.CosineAnnealingLR(opt, T_max=settings.epochs)
    if settings.scheduler == "exponential":
        return lr_scheduler.ExponentialLR(opt, gamma=0.95)
    if settings.scheduler == "step":
        return lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    if settings.scheduler == "plateau":
        return lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=3)
    return None


class Optimisation:
    """Optimisers, schedules and gradient scalers of ``players``, and their steps."""

    def __init__(self, players: list[Player], settings: Settings, device: torch.device, dist: DistInfo,
                 explain: Explain):
        self.settings, self.device, self.dist, self.explain = settings, device, dist, explain
        self.optimisers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        for p in players:
            opt = self.optimisers[p.name] = _optimiser(p, settings, device)
            sched = _scheduler(opt, settings)
            if sched is not None:
                self.schedulers[p.name] = sched
            self.scalers[p.name] = torch.amp.GradScaler("cuda", enabled=settings.precision == "fp16")

    def lr(self, player: str) -> float:
        return self.optimisers[player].param_groups[0]["lr"]

    def autocast(self) -> contextlib.AbstractContextManager:
        dtype = PRECISIONS[self.settings.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def step(self, runner: nn.Module, player: Player, batch: dict[str, Tensor], epoch: int,
             step: int) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """One optimiser step of ``player``: (this rank's weighted loss sums by name, Σw, gradient norm)."""
        opt, scaler = self.optimisers[player.name], self.scalers[player.name]
        opt.zero_grad(set_to_none=True)
        with self.autocast():
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
            raise TrainingError(self.explain(epoch, step, player.name, bad[0]))
        if checked[0] == 0:
            raise TrainingError(f"epoch {epoch}, step {step}: the events of this batch have a total weight of 0; "
                                "the weighted mean loss is undefined (check the weights)")
        objective = local * (self.dist.world_size / checked[0])
        scaled = scaler.is_enabled()  # fp16 only: otherwise the scaler's calls are identities, skipped
        if scaled:
            scaler.scale(objective).backward()
            scaler.unscale_(opt)
        else:
            objective.backward()
        params = [q for q in player.parameters if q.grad is not None]
        if not params:
            grad_norm = torch.zeros((), device=self.device)
        elif self.settings.clip_grad is not None:
            grad_norm = nn.utils.clip_grad_norm_(params, self.settings.clip_grad)
        else:  # the same norm, without clip_grad_norm_'s multiply of every gradient by 1
            grad_norm = nn.utils.get_total_norm([q.grad for q in params])
        if not scaled and not torch.isfinite(grad_norm):
            raise TrainingError(self.explain(epoch, step, player.name, "gradient norm"))
        if scaled:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        # this rank's weighted sums (the epoch's row all-reduces them once at the end)
        return dict(zip(names, local_sums.unbind())), w.sum().double(), grad_norm.detach().double()

    def step_schedulers(self, value: float | None) -> None:
        """After an epoch: every schedule steps (``plateau`` on the monitored value, when there is one)."""
        for s in self.schedulers.values():
            if isinstance(s, torch.optim.lr_scheduler.ReduceLROnPlateau):
                if value is not None:
                    s.step(value)
            else:
                s.step()

    # -- checkpoints -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The ``optimisers``, ``schedulers`` and ``scalers`` entries of a checkpoint."""
        return {"optimisers": {k: o.state_dict() for k, o in self.optimisers.items()},
                "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
                "scalers": {k: s.state_dict() for k, s in self.scalers.items()}}

    def load_state_dict(self, checkpoint: dict[str, Any]) -> None:
        for k, o in self.optimisers.items():
            o.load_state_dict(checkpoint["optimisers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(checkpoint["schedulers"][k])
        for k, s in self.scalers.items():
            s.load_state_dict(checkpoint["scalers"][k])
