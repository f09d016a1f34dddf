"""Supervised taggers on tabular events, plain and decorrelated from a nuisance.

* :class:`Classifier` — the plain family, defined in :mod:`hepgen.classifier` (an MLP f(x) ∈ [0, 1]
  trained by weighted binary cross-entropy L_f = −Σ w [y log f + (1 − y) log(1 − f)] / Σ w; ``score``
  is f(x)) and re-exported here; the two below extend it.
* :class:`Pivot` — Louppe, Kagan & Cranmer (2017), "Learning to pivot with adversarial networks":
  an adversary r predicts the nuisance Z from f(X) (a Gaussian mixture density network for a
  continuous Z, a softmax for a categorical one) with L_r = −log p_r(Z | f(X)); f minimises
  L_f − λ L_r. Schedule: ``pretrain_classifier`` epochs of f alone, ``pretrain_adversary`` epochs of
  r alone, then both, r taking ``adversary_steps`` steps per step of f (the engine's ``every=k``).
* :class:`DisCo` — Kasieczka & Shih (2020): L_f + α dCor²_w(f(X), M) with the weighted distance
  correlation computed per batch on the background events (y = 0).

The label (0 = background, 1 = signal) and the nuisance are columns of the training data named by
the ``label`` / ``nuisance`` / ``decorrelate`` hyper-parameters. They are the model's training
*labels* (:meth:`hepgen.models.Model.label_columns`): the engine removes them from the features
and hands them over as ``batch["labels"]`` (batch, k), so a fitted tagger scores events that have
only the features (``hepgen score RUN DATA`` picks its features by name from a file with more).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hepgen.classifier import Classifier
from hepgen.data.loader import Events
from hepgen.data.preprocess import PreprocessSpec
from hepgen.errors import ConfigError, DataError
from hepgen.models import Player, register
from hepgen.nn import MLP

__all__ = ["Classifier", "DisCo", "Pivot", "distance_correlation_sqr"]

ADVERSARY_ON = ("all", "background")


def distance_correlation_sqr(x: Tensor, y: Tensor, weights: Tensor | None = None) -> Tensor:
    """Differentiable weighted dCor²(x, y) of two (n,) tensors (as :func:`hepgen.metrics.decorrelation.
    distance_correlation`): p = w/Σw, A_ij = a_ij − ā_i − ā_j + ā with a_ij = |x_i − x_j|, ā_i = Σ_j p_j a_ij,
    dCor² = Σ p_i p_j A_ij B_ij / √(Σ p p A² · Σ p p B²). O(n²) memory: one batch at a time."""
    p = torch.ones_like(x) if weights is None else weights.to(x.dtype)
    p = p / p.sum()

    def centred(v: Tensor) -> Tensor:
        a = (v[:, None] - v[None, :]).abs()
        row = a @ p
        return a - row[:, None] - row[None, :] + row @ p

    a, b = centred(x), centred(y)
    pp = p[:, None] * p[None, :]
    ab, aa, bb = (pp * a * b).sum(), (pp * a * a).sum(), (pp * b * b).sum()
    return ab / torch.sqrt(aa * bb).clamp_min(1e-20)


@register
class DisCo(Classifier):
    """Classifier + α · weighted distance correlation² between f(x) and a variable, on background events.

    Args:
        features: as :class:`Classifier`.
        label: as :class:`Classifier`.
        decorrelate: name of the column of DATA to decorrelate the output from (e.g. the jet mass).
        alpha: strength α of the distance-correlation term.
        hidden: as :class:`Classifier`.
        dropout: as :class:`Classifier`.
        preprocess: as :class:`Classifier`.
    """

    cli_name = "disco"
    label_keywords = ("labels", "nuisance")

    def __init__(self, features: int, label: str = "label", decorrelate: str = "mass",
                 alpha: float = 10.0, hidden: Sequence[int] = (64, 64), dropout: float = 0.0,
                 preprocess: PreprocessSpec = "standard"):
        self.decorrelate = str(decorrelate)
        if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha >= 0):
            raise ConfigError(f"disco: alpha must be a finite number >= 0, got {alpha!r}")
        self.alpha = float(alpha)
        super().__init__(features, label, hidden, dropout, preprocess)

    def training_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        out = self.classification_losses(batch)
        y, m = batch["labels"][:, 0], batch["labels"][:, 1]
        bkg = y == 0
        if int(bkg.sum()) >= 2:
            dcorr = distance_correlation_sqr(torch.sigmoid(out.pop("logit"))[bkg], m[bkg], batch["w"][bkg])
        else:
            out.pop("logit")
            dcorr = out["loss"].new_zeros(())
        bce = out["loss"]
        return {"loss": bce + self.alpha * dcorr, "bce": bce, "dcorr2": dcorr.detach()}


@register
class Pivot(Classifier):
    """Classifier f against an adversary r that predicts the nuisance Z from f(X); f minimises L_f − λ L_r.

    Args:
        features: as :class:`Classifier`.
        label: as :class:`Classifier`.
        nuisance: name of the column of DATA holding the nuisance Z.
        lam: λ, the weight of the adversary's loss in the classifier's objective.
        nuisance_classes: 0 for a continuous Z (a Gaussian mixture density network), K > 1 for a
            categorical Z with values 0 .. K−1 (a softmax).
        components: Gaussians of the mixture density network.
        adversary_hidden: hidden layer sizes of the adversary.
        adversary_steps: adversary steps per classifier step (the classifier steps every k-th batch).
        pretrain_classifier: epochs training f alone first.
        pretrain_adversary: epochs then training r alone (on the frozen f).
        adversary_on: ``all`` events, or ``background`` only (mass decorrelation of a tagger).
        adversary_lr: learning rate of the adversary (null: the fit lr).
        hidden: as :class:`Classifier`.
        dropout: as :class:`Classifier`.
        preprocess: as :class:`Classifier`.
    """

    cli_name = "pivot"
    #: the validation loss of the epochs before the adversarial phase is offset by this, so that the best epoch
    #: (early stopping, the restored weights) is always one of the adversarial phase
    PRETRAINING_OFFSET = 1e6

    label_keywords = ("labels", "nuisance")

    def __init__(self, features: int, label: str = "label", nuisance: str = "z", lam: float = 1.0,
                 nuisance_classes: int = 0, components: int = 5, adversary_hidden: Sequence[int] = (32, 32),
                 adversary_steps: int = 5, pretrain_classifier: int = 2, pretrain_adversary: int = 2,
                 adversary_on: str = "all", adversary_lr: float | None = None, hidden: Sequence[int] = (64, 64),
                 dropout: float = 0.0, preprocess: PreprocessSpec = "standard"):
        if adversary_on not in ADVERSARY_ON:
            raise ConfigError(f"pivot: adversary_on must be one of {', '.join(ADVERSARY_ON)}, got {adversary_on!r}")
        for name, value, low in (("nuisance_classes", nuisance_classes, 0), ("components", components, 1),
                                 ("adversary_steps", adversary_steps, 1), ("pretrain_classifier", pretrain_classifier, 0),
                                 ("pretrain_adversary", pretrain_adversary, 0)):
            if isinstance(value, bool) or int(value) != value or value < low:
                raise ConfigError(f"pivot: {name} must be an integer >= {low}, got {value!r}")
        if nuisance_classes == 1:
            raise ConfigError("pivot: nuisance_classes must be 0 (continuous) or at least 2")
        if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
            raise ConfigError(f"pivot: lam must be a finite number >= 0, got {lam!r}")
        self.nuisance, self.lam, self.nuisance_classes = str(nuisance), float(lam), int(nuisance_classes)
        self.components, self.adversary_hidden = int(components), tuple(adversary_hidden)
        self.adversary_steps, self.pretrain_classifier = int(adversary_steps), int(pretrain_classifier)
        self.pretrain_adversary, self.adversary_on, self.adversary_lr = int(pretrain_adversary), adversary_on, adversary_lr
        super().__init__(features, label, hidden, dropout, preprocess)
        outputs = self.nuisance_classes if self.nuisance_classes else 3 * self.components
        self.adversary = MLP(1, outputs, self.adversary_hidden)
        self.register_buffer("epoch_", torch.zeros((), dtype=torch.long))
        #: a continuous nuisance is standardised for the mixture density network: (z − loc) / scale
        self.register_buffer("nuisance_loc_", torch.zeros(()))
        self.register_buffer("nuisance_scale_", torch.ones(()))

    def on_fit_start(self, events: Events) -> None:
        """Fit the standardisation of a continuous nuisance on the training events (weighted)."""
        if self.nuisance_classes or events is None or events.labels is None:
            return
        t = events.labels
        z = np.asarray(t.read_rows(0, len(t)) if hasattr(t, "read_rows") else t, dtype=np.float64)
        z = z.reshape(len(z), -1)[:, 1]
        w = np.ones_like(z) if events.w is None else np.abs(np.asarray(
            events.w.read_rows(0, len(events.w)) if hasattr(events.w, "read_rows") else events.w, dtype=np.float64))
        loc = float(np.average(z, weights=w))
        scale = float(np.sqrt(np.average((z - loc) ** 2, weights=w)))
        self.nuisance_loc_.fill_(loc)
        self.nuisance_scale_.fill_(scale if scale > 0 else 1.0)

    def check_labels(self, labels: np.ndarray, where: str) -> None:
        super().check_labels(labels, where)
        values = labels
        if self.nuisance_classes:
            z = np.asarray(values, dtype=np.float64).reshape(len(values), -1)[:, 1]
            bad = (z != np.round(z)) | (z < 0) | (z >= self.nuisance_classes)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataError(f"{where}: nuisance column '{self.nuisance}' must hold classes 0 .. "
                                f"{self.nuisance_classes - 1} (nuisance_classes={self.nuisance_classes}); row {row} "
                                f"has {z[row]:g}")

    # -- the schedule ------------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        """The engine's hook before every training epoch (1-based, a resume included): the schedule's clock."""
        self.epoch_.fill_(epoch)

    def phase(self) -> str:
        """``classifier`` (pretraining f), ``adversary`` (pretraining r) or ``adversarial`` in the current epoch."""
        epoch = int(self.epoch_)
        if epoch <= self.pretrain_classifier:
            return "classifier"
        if epoch <= self.pretrain_classifier + self.pretrain_adversary:
            return "adversary"
        return "adversarial"

    def players(self) -> list[Player]:
        """r steps on every batch; f on every ``adversary_steps``-th, except while f is pretrained alone
        (the engine reads ``every`` again after each ``on_epoch_start``)."""
        every = 1 if self.phase() == "classifier" else self.adversary_steps
        return [Player("adversary", list(self.adversary.parameters()), lr=self.adversary_lr),
                Player("classifier", list(self.net.parameters()), every=every)]

    # -- losses ------------------------------------------------------------------------------------
    def adversary_nll(self, f: Tensor, z: Tensor) -> Tensor:
        """−log p_r(z | f) per event (batch,): the mixture density (continuous z) or the softmax (classes)."""
        out = self.adversary(f[:, None])
        if self.nuisance_classes:
            return F.cross_entropy(out, z.long(), reduction="none")
        k = self.components
        log_pi = torch.log_softmax(out[:, :k], dim=1)
        mu, log_sigma = out[:, k:2 * k], out[:, 2 * k:].clamp(-7.0, 5.0)
        log_n = -0.5 * ((z[:, None] - mu) / log_sigma.exp()) ** 2 - log_sigma - 0.5 * math.log(2 * math.pi)
        return -torch.logsumexp(log_pi + log_n, dim=1)

    def _label_and_nuisance(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """y (batch,) and Z (batch,): the class index, or the standardised continuous nuisance."""
        y, z = batch["labels"][:, 0], batch["labels"][:, 1]
        return y, z if self.nuisance_classes else (z - self.nuisance_loc_) / self.nuisance_scale_

    def _adversary_mask(self, batch: dict[str, Tensor]) -> Tensor:
        """Per-event factor of L_r: 1, or (background only) 1[y = 0] · Σw / Σ_bkg w so its weighted mean is the
        background's."""
        if self.adversary_on == "all":
            return torch.ones_like(batch["w"])
        bkg = (batch["labels"][:, 0] == 0).to(batch["w"].dtype)
        total = (batch["w"] * bkg).sum()
        return bkg * (batch["w"].sum() / total) if float(total) > 0 else bkg

    @staticmethod
    def _frozen(value: Tensor) -> Tensor:
        """A loss that shows ``value`` but moves no parameter (the player sits this phase out)."""
        return value.detach() + torch.zeros((), device=value.device, requires_grad=True)

    def player_step(self, player: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        phase = self.phase()
        y, z = self._label_and_nuisance(batch)
        mask = self._adversary_mask(batch)
        if player == "adversary":
            f = torch.sigmoid(self.logits(batch["x"])).detach()
            nll = self.adversary_nll(f, z) * mask
            return {"loss": self._frozen(nll) if phase == "classifier" else nll}
        logit = self.logits(batch["x"])
        bce = F.binary_cross_entropy_with_logits(logit, y, reduction="none")
        if phase == "adversary":
            return {"loss": self._frozen(bce), "bce": bce.detach()}
        if phase == "classifier" or self.lam == 0:
            return {"loss": bce, "bce": bce.detach()}
        nll = self.adversary_nll(torch.sigmoid(logit), z) * mask
        return {"loss": bce - self.lam * nll, "bce": bce.detach(), "adversary_nll": nll.detach()}

    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """``loss`` = L_f − λ L_r (offset by :data:`PRETRAINING_OFFSET` before the adversarial phase), ``bce``,
        ``adversary_nll``."""
        y, z = self._label_and_nuisance(batch)
        logit = self.logits(batch["x"])
        bce = F.binary_cross_entropy_with_logits(logit, y, reduction="none")
        nll = self.adversary_nll(torch.sigmoid(logit), z) * self._adversary_mask(batch)
        loss = bce - self.lam * nll
        if self.phase() != "adversarial":
            loss = loss + self.PRETRAINING_OFFSET
        return {"loss": loss, "bce": bce, "adversary_nll": nll}
