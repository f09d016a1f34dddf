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


@register(name="test-reverse-kl")
class ReverseKL(Model):
    """Data-free: q = N(loc, exp(log_scale)²) per feature trained by reverse KL to p = N(target_mean, target_std²).

    loss per draw x = loc + exp(log_scale) z:  log q(x) − log p(x)  (its mean is KL(q‖p) ≥ 0, 0 at the optimum
    loc = target_mean, log_scale = log target_std).
    """

    data_free = True

    def __init__(self, features: int = 2, context: int = 0, target_mean: float = 2.0, target_std: float = 0.5,
                 sleep: float = 0.0, preprocess: str = "none"):
        super().__init__((features,), context, preprocess)
        self.features, self.target_mean, self.target_std, self.sleep = features, target_mean, target_std, sleep
        self.loc = nn.Parameter(torch.zeros(features))
        self.log_scale = nn.Parameter(torch.zeros(features))

    def reset_parameters(self):
        with torch.no_grad():
            self.loc.normal_(0.0, 0.1)
            self.log_scale.zero_()

    def training_losses(self, batch):
        if self.sleep:
            time.sleep(self.sleep)
        n = len(batch["w"])
        z = torch.randn(n, self.features)
        x = self.loc + self.log_scale.exp() * z
        normal = torch.distributions.Normal(0.0, 1.0)
        log_q = normal.log_prob(z).sum(1) - self.log_scale.sum()
        log_p = torch.distributions.Normal(self.target_mean, self.target_std, validate_args=False).log_prob(x).sum(1)
        return {"loss": log_q - log_p}


@register(name="test-translator")
class Translator(Model):
    """Two streams: learns the shift between domain A (the main events) and domain B (stream "b") by matching
    weighted means: loss = ‖mean_w(a) + shift − b‖² per pair, minimised at shift = E_w[b] − E_w[a]."""

    def __init__(self, features: int = 2, context: int = 0, domain_b: object = None, preprocess: str = "none"):
        super().__init__((features,), context, preprocess)
        self.features, self.domain_b = features, domain_b
        self.shift = nn.Parameter(torch.zeros(features))
        self.seen_b = []  # the first B batch of every step (tests look at which events were paired)

    def reset_parameters(self):
        with torch.no_grad():
            self.shift.zero_()

    def streams(self):
        from hepgen.models import Stream

        return {"b": Stream(data=self.domain_b, event_shape=(self.features,))}

    def training_losses(self, batch):
        a, b = batch["x"], batch["streams"]["b"]["x"]
        wb = batch["streams"]["b"]["w"]
        if self.training:
            self.seen_b.append(b.detach().clone())
        m = min(len(a), len(b))
        # per event of A: (a + shift − b)² with B's relative weight, pairs cut to the shorter batch
        per = ((a[:m] + self.shift - b[:m]) ** 2).sum(1) * (wb[:m] / wb[:m].mean())
        return {"loss": torch.cat([per, per.new_zeros(len(a) - m)])}


@register(name="test-three-arrays")
class ThreeArrays(Model):
    """Events of three arrays of different shapes; an independent Gaussian per value (after preprocessing).

    log p(x) = Σ_arrays Σ_cells log N(u; m, s²) + log|det ∂u/∂x| ; sample draws u and maps back per array.
    """

    def __init__(self, shapes: dict | None = None, context: int = 0, preprocess: object = "standard"):
        self.shapes = {k: list(v) for k, v in (shapes or {"layer0": (3, 4), "layer1": (2, 2), "energy": (1,)}).items()}
        super().__init__(self.shapes, context, preprocess)
        self.means = nn.ParameterDict({k: nn.Parameter(torch.zeros(*v)) for k, v in self.shapes.items()})
        self.log_stds = nn.ParameterDict({k: nn.Parameter(torch.zeros(*v)) for k, v in self.shapes.items()})

    def reset_parameters(self):
        with torch.no_grad():
            for p in list(self.means.values()) + list(self.log_stds.values()):
                p.zero_()

    def _log_prob_u(self, u):
        return sum(torch.distributions.Normal(self.means[k], self.log_stds[k].exp()).log_prob(u[k])
                   .reshape(len(u[k]), -1).sum(1) for k in self.shapes)

    def training_losses(self, batch):
        return {"loss": -self._log_prob_u(batch["x"])}

    @torch.no_grad()
    def log_prob(self, x, context=None):
        x = {k: self._as_tensor(v) for k, v in x.items()}
        return self._log_prob_u(self.to_internal(x)) + self.preprocessor.log_abs_det_jacobian(x)

    @torch.no_grad()
    def sample(self, n, context=None):
        u = {k: self.means[k] + self.log_stds[k].exp() * torch.randn(n, *self.shapes[k]) for k in self.shapes}
        return self.to_external(u)

    def score_outputs(self, x, context=None):
        lp = self.log_prob(x)
        return {"log_prob": lp, "score": -lp}


def _three_arrays_from_data(cls, event_shape, context, **params):
    """The arrays of one event come from the data (an HDF5 group), like a calorimeter's layers."""
    return cls(shapes=event_shape, context=context, **params)


ThreeArrays.from_data = classmethod(_three_arrays_from_data)


@register(name="test-label-regressor")
class LabelRegressor(Model):
    """A linear fit of a training-only label column t from the features: per-event (a·u + b − t)²,
    u the preprocessed features; ``record=True`` keeps every training batch's raw rows for checks."""

    label_keywords = ("t",)

    def __init__(self, features: int, label: str = "t", record: bool = False, preprocess: str = "standard"):
        super().__init__((features,), 0, preprocess)
        self.features, self.label, self.record = features, label, record
        self.linear = nn.Linear(features, 1)
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def label_columns(self):
        return [self.label]

    @classmethod
    def from_data(cls, event_shape, context, **params):
        return cls(event_shape[0], **params)

    @classmethod
    def label_columns_for(cls, params):
        return [params.get("label", "t")]

    def training_losses(self, batch):
        if self.record and self.training:
            self.seen.append((self.to_external(batch["x"]).detach().clone(), batch["labels"].clone()))
        return {"loss": (self.linear(batch["x"])[:, 0] - batch["labels"][:, 0]) ** 2}
