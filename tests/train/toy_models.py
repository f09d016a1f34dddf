"""Small models for engine tests, importable by subprocesses (resume and DDP tests)."""

from __future__ import annotations

import time

import torch
from torch import nn

from hepgen.models import Model, Player, register
from hepgen.nn import MLP


@register(name="test-regressor")
class Regressor(Model):
    """Predicts the last feature from the others with an MLP: per-event squared error (random init)."""

    def __init__(self, features: int, context: int = 0, hidden: tuple = (16,), sleep: float = 0.0,
                 nan_at: tuple = (), preprocess: str = "standard"):
        super().__init__((features,), context, preprocess)
        self.features, self.hidden, self.sleep, self.nan_at = features, tuple(hidden), sleep, tuple(nan_at)
        self.net = MLP(features - 1, 1, self.hidden, context=context)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def training_losses(self, batch):
        if self.sleep:
            time.sleep(self.sleep)
        if self.training:
            self.steps += 1
        x = batch["x"]
        pred = self.net(x[:, :-1], batch.get("context"))[:, 0]
        loss = (pred - x[:, -1]) ** 2 + 0.01 * torch.randn(len(x))  # a random draw: tests the RNG restore
        if self.nan_at and self.training and int(self.steps) == self.nan_at[0]:
            loss = loss * float("nan")
        return {"loss": loss, "abs_error": (pred - x[:, -1]).abs()}


@register(name="test-duel")
class Duel(Model):
    """Two players, the second stepping every ``k`` batches (the GAN schedule)."""

    def __init__(self, features: int, context: int = 0, k: int = 3, preprocess: str = "standard"):
        super().__init__((features,), context, preprocess)
        self.features, self.k = features, k
        self.a = nn.Linear(features, 1)
        self.b = nn.Linear(features, 1)

    def players(self):
        return [Player("first", list(self.a.parameters())), Player("second", list(self.b.parameters()), every=self.k)]

    def player_step(self, player, batch):
        net = self.a if player == "first" else self.b
        return {"loss": net(batch["x"])[:, 0] ** 2}
