"""A player's step schedule may follow the epoch: the engine reads ``every`` again from ``players()`` after
``on_epoch_start`` (a pivot's classifier steps on every batch while it is pretrained alone)."""

import numpy as np
import pytest
import torch
from torch import nn

import hepgen
from hepgen.errors import TrainingError
from hepgen.models import Model, Player


class Phased(Model):
    """Two players; ``second`` steps on every batch in odd epochs and on every 3rd in even ones."""

    cli_name = "test-phased"

    def __init__(self, features: int, rename: bool = False):
        super().__init__((features,), 0, "none")
        self.features, self.rename = features, rename
        self.a, self.b = nn.Linear(features, 1), nn.Linear(features, 1)
        self.epoch, self.steps = 0, {}

    def on_epoch_start(self, epoch):
        self.epoch = epoch

    def players(self):
        every = 1 if self.epoch % 2 else 3
        second = "third" if self.rename and self.epoch > 1 else "second"
        return [Player("first", list(self.a.parameters())), Player(second, list(self.b.parameters()), every=every)]

    def player_step(self, player, batch):
        if self.training:
            key = (self.epoch, player)
            self.steps[key] = self.steps.get(key, 0) + 1
        net = self.a if player == "first" else self.b
        return {"loss": net(batch["x"])[:, 0] ** 2}


def test_every_is_read_again_each_epoch():
    x = np.random.default_rng(0).normal(size=(600, 2)).astype(np.float32)
    model = Phased(2).fit(x, epochs=3, batch_size=100, val_fraction=0, quiet=True, monitor=None)
    assert [model.steps[(e, "first")] for e in (1, 2, 3)] == [6, 6, 6]
    assert [model.steps[(e, "second")] for e in (1, 2, 3)] == [6, 2, 6]


def test_players_may_not_change_names_during_fit():
    x = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
    with pytest.raises(TrainingError, match="only a player's 'every' may change"):
        Phased(2, rename=True).fit(x, epochs=2, batch_size=100, val_fraction=0, quiet=True, monitor=None)


def test_pivot_pretrains_its_classifier_on_every_batch_then_steps_it_every_k():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400).astype(float)
    x = (rng.normal(size=(400, 2)) + y[:, None]).astype(np.float32)
    z = rng.normal(size=400)
    model = hepgen.Pivot(2, lam=1.0, adversary_steps=4, pretrain_classifier=1, pretrain_adversary=1, hidden=(8,),
                         adversary_hidden=(8,))
    counts = {}
    original = model.player_step

    def counting(player, batch):
        if model.training:
            counts[(int(model.epoch_), player)] = counts.get((int(model.epoch_), player), 0) + 1
        return original(player, batch)

    model.player_step = counting
    torch.manual_seed(0)
    model.fit(x, labels=y, nuisance=z, epochs=3, batch_size=50, val_fraction=0, quiet=True, monitor=None)
    assert [counts[(e, "classifier")] for e in (1, 2, 3)] == [8, 2, 2]  # 8 batches: all, then every 4th
    assert [counts[(e, "adversary")] for e in (1, 2, 3)] == [8, 8, 8]


class Staged(Phased):
    """``second`` sits out (every=0) until epoch 3, as a StackGAN's stage II waits for stage I."""

    cli_name = "test-staged"

    def players(self):
        return [Player("first", list(self.a.parameters())),
                Player("second", list(self.b.parameters()), every=0 if self.epoch < 3 else 2)]


def test_every_zero_sits_the_epoch_out_without_touching_the_weights(recwarn):
    x = np.random.default_rng(0).normal(size=(600, 2)).astype(np.float32)
    model = Staged(2)
    seen = {}

    def record(m, val):  # the monitor runs after each epoch: copy the second player's weights then
        seen[m.epoch] = m.b.weight.detach().clone()
        return 0.0

    model.fit(x, epochs=3, batch_size=100, val_fraction=0, quiet=True, monitor=record)
    assert (2, "second") not in model.steps and (1, "second") not in model.steps and model.steps[(3, "second")] == 3
    assert torch.equal(seen[1], seen[2]) and not torch.equal(seen[2], seen[3])
    assert not [w for w in recwarn if "will not be trained" in str(w.message)]
    assert "train_second_loss" not in model.history_[0] and "train_second_loss" in model.history_[2]
