"""The plain binary classifier family: an MLP f(x) ∈ [0, 1] trained by weighted binary cross-entropy,

    L_f = −Σ w [y log f + (1 − y) log(1 − f)] / Σ w,      ``score`` = f(x).

A family beside :mod:`hepgen.gaussian` and :mod:`hepgen.density`, trained by the engine like every other
model: the evaluation layer's neural two-sample test (:mod:`hepgen.evaluate`) and the jet taggers
(:mod:`hepgen.jets.taggers`: :class:`~hepgen.jets.taggers.Pivot`, :class:`~hepgen.jets.taggers.DisCo`,
which extend it) stand on it.

The label (0 = background, 1 = signal) is a column of the training data named by the ``label``
hyper-parameter (subclasses add their own columns, e.g. a nuisance). These are the model's training
*labels* (:meth:`hepgen.models.Model.label_columns`): the engine removes them from the features and
hands them over as ``batch["labels"]`` (batch, k), so a fitted classifier scores events that have only
the features (``hepgen score RUN DATA`` picks its features by name from a file with more).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hepgen.data.preprocess import PreprocessSpec
from hepgen.errors import ConfigError, DataError
from hepgen.models import Model, register
from hepgen.nn import MLP
from hepgen.nn.mlp import ACTIVATIONS
from hepgen.options import excerpt

__all__ = ["Classifier"]


def _default(cls: type, name: str) -> Any:
    return inspect.signature(cls.__init__).parameters[name].default


@register
class Classifier(Model):
    """Binary classifier: an MLP on the features, sigmoid output, weighted binary cross-entropy.

    Args:
        features: number of input features (the label and nuisance columns are not features).
        label: name of the column of DATA holding the class, 0 (background) or 1 (signal).
        hidden: sizes of the hidden layers.
        dropout: dropout probability after each hidden layer.
        preprocess: preprocessing of the features (default: standard).
        activation: the hidden activation (relu, leaky_relu, elu, gelu, silu, tanh).

    ``fit(x, labels=y)`` with arrays, or ``fit("file.h5:key")`` whose column ``label`` holds the class.
    """

    cli_name = "classifier"
    label_keywords = ("labels",)

    def __init__(self, features: int, label: str = "label", hidden: Sequence[int] = (64, 64),
                 dropout: float = 0.0, preprocess: PreprocessSpec = "standard", activation: str = "relu"):
        super().__init__((features,), 0, preprocess)
        self.features, self.label, self.hidden, self.dropout = int(features), str(label), tuple(hidden), dropout
        if activation not in ACTIVATIONS:
            raise ConfigError(f"{self.cli_name}: unknown activation {excerpt(activation)}; choose one of "
                              f"{', '.join(ACTIVATIONS)}")
        self.activation = str(activation)
        self.net = MLP(self.features, 1, self.hidden, dropout=dropout, activation=self.activation)

    # -- the label and nuisance columns: the training labels ---------------------------------------
    @classmethod
    def label_columns_for(cls, params: Any) -> list[str]:
        """The label, then any nuisance/decorrelated column, as named by ``params`` (or the defaults)."""
        signature = inspect.signature(cls.__init__).parameters
        return [str(params.get(k, _default(cls, k))) for k in ("label", "nuisance", "decorrelate") if k in signature]

    def label_columns(self) -> list[str]:
        return type(self).label_columns_for(vars(self))

    @classmethod
    def from_data(cls, event_shape: tuple[int, ...], context: int, **params: Any) -> Classifier:
        """From the CLI: DATA's features (the label/nuisance columns are already set apart as labels)."""
        if len(event_shape) != 1:
            raise ConfigError(f"{cls.cli_name} takes tabular events (batch, features); this data has events of "
                              f"shape {event_shape}")
        if context:
            raise ConfigError(f"{cls.cli_name} takes no --context: every column it should see is a feature")
        if event_shape[0] < 1:
            raise DataError(f"{cls.cli_name}: the data have no feature columns beside "
                            f"{', '.join(cls.label_columns_for(params))}")
        return cls(event_shape[0], **params)

    def check_labels(self, labels: np.ndarray, where: str) -> None:
        """DataError unless the label is 0/1 with both classes present and the nuisance columns are finite."""
        values = np.asarray(labels, dtype=np.float64).reshape(len(labels), -1)
        y = values[:, 0]
        bad = ~np.isin(y, (0.0, 1.0))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{where}: label column '{self.label}' must be 0 (background) or 1 (signal); row {row} "
                            f"has {y[row]:g}")
        for value, what in ((0.0, "background (label 0)"), (1.0, "signal (label 1)")):
            if not (y == value).any():
                raise DataError(f"{where}: label column '{self.label}' has no {what} events; a classifier needs both "
                                "classes")
        for j, name in enumerate(self.label_columns()[1:], start=1):
            bad = ~np.isfinite(values[:, j])
            if bad.any():
                raise DataError(f"{where}: column '{name}' is NaN or infinite at row {int(np.flatnonzero(bad)[0])}")

    # -- the networks ------------------------------------------------------------------------------
    def logits(self, u: Tensor) -> Tensor:
        """(batch,) logit of the preprocessed features ``u`` (batch, features)."""
        return self.net(u)[:, 0]

    def _labels(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The label (batch,) and the further label columns (batch, k − 1) of a training batch."""
        t = batch["labels"]
        return t[:, 0], t[:, 1:]

    def classification_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        y, _ = self._labels(batch)
        logit = self.logits(batch["x"])
        return {"loss": F.binary_cross_entropy_with_logits(logit, y, reduction="none"), "logit": logit}

    def training_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        out = self.classification_losses(batch)
        out.pop("logit")
        return out

    @torch.no_grad()
    def score_outputs(self, x: Tensor | np.ndarray, context: Any = None) -> dict[str, Tensor]:
        """``score`` = f(x) ∈ [0, 1] (signal probability) and its ``logit``, per event (batch,)."""
        was = self.training
        self.eval()
        try:
            logit = torch.cat([self.logits(self.to_internal(x[i:i + 65536])) for i in range(0, len(x), 65536)]) \
                if len(x) else torch.zeros(0)
        finally:
            self.train(was)
        return {"score": torch.sigmoid(logit), "logit": logit}

    def score(self, x: Tensor | np.ndarray, context: Any = None) -> Tensor:
        """f(x) ∈ [0, 1] per event (batch,): higher = more signal-like."""
        return self.score_outputs(x)["score"]

    def predict_proba(self, x: Tensor | np.ndarray) -> Tensor:
        """The same as :meth:`score`, by scikit-learn's name."""
        return self.score(x)
