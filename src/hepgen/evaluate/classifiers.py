"""The one classifier factory of hepgen: every judgement made by a trained classifier gets it here.

    make_classifier("hgb", seed=s, **settings)   gradient-boosted trees (scikit-learn's
                                                 HistGradientBoostingClassifier, no early stopping)
    make_classifier("dnn", seed=s, **settings)   a neural network: the :class:`hepgen.classifier.Classifier`
                                                 family, trained by the engine (train.Engine via Model.fit)

Both have scikit-learn's habits: ``fit(x, y, sample_weight=None, *, val=None)`` returns ``self`` and
``predict_proba(x)`` gives (n, 2) probabilities of the classes 0 and 1; ``x``: (n, d), ``y``: (n,) of 0/1.
``val=(x_val, y_val[, w_val])`` is the validation set of the network, whose epoch with the lowest
validation loss is kept (the engine's monitor; without ``val`` the engine holds out a seeded
``val_fraction`` of the training events); the trees have no epochs and ignore it. Users: the classifier
two-sample tests (:mod:`hepgen.evaluate.two_sample`, the CaloChallenge protocol) and OmniFold and the
posterior unfolding (likelihood ratios p / (1 − p)).

Trees run on one OpenMP thread for fewer than 50 000 training events: their threads spin-wait, which
costs far more than it saves on a few thousand events (measured: 5x the CPU time of a C2ST on a busy
machine). The thread count does not change the trees (HistGradientBoosting sums in a fixed order).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from hepgen.errors import ConfigError
from hepgen.options import Option, check_options, excerpt

__all__ = ["CLASSIFIERS", "GradientBoosting", "NeuralNetwork", "make_classifier"]

#: fewer training events than this: trees on one OpenMP thread
ONE_THREAD_BELOW = 50_000


class GradientBoosting:
    """Gradient-boosted trees of ``max_iter`` rounds, no early stopping, seeded by ``seed``.

    Settings (scikit-learn's names and defaults): ``max_iter``, ``learning_rate``, ``max_leaf_nodes``,
    ``min_samples_leaf``, ``l2_regularization``.
    """

    SETTINGS = {
        "max_iter": Option(100, low=1),
        "learning_rate": Option(0.1, low=0, low_open=True),
        "max_leaf_nodes": Option(31, low=2),
        "min_samples_leaf": Option(20, low=1),
        "l2_regularization": Option(0.0, low=0),
    }

    def __init__(self, seed: int = 0, **settings: Any):
        self.seed = int(seed)
        self.settings = check_options(settings, self.SETTINGS, owner="classifier 'hgb'")

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None, *,
            val: tuple | None = None) -> GradientBoosting:
        """Train on ``x`` (n, d) with labels ``y`` (n,); ``val`` is not used (trees have no epochs)."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        self.n_train_ = len(x)
        self.model_ = HistGradientBoostingClassifier(**self.settings, early_stopping=False, random_state=self.seed)
        with _threads_for(self.n_train_):
            self.model_.fit(x, y, sample_weight=sample_weight)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, 2): P(y = 0 | x), P(y = 1 | x)."""
        with _threads_for(self.n_train_):
            return self.model_.predict_proba(x)


class NeuralNetwork:
    """A :class:`hepgen.classifier.Classifier` (an MLP, sigmoid output, weighted binary cross-entropy) trained
    by the engine with Adam; the epoch with the lowest validation loss is kept.

    Settings: ``hidden`` layer sizes, ``dropout``, ``epochs``, ``batch_size``, ``lr``, ``val_fraction``
    (the share of the training events held out when ``fit`` gets no ``val``), ``device`` (the engine's:
    ``auto``, ``cpu``, ``cuda`` ...). Training runs on a seeded fork of torch's RNG (:func:`hepgen.nn.rng.seeded`):
    the caller's is left as it was.
    Fitted: ``model_`` (the Classifier), ``best_epoch_``, ``val_loss_`` (its validation loss), ``history_``.
    """

    SETTINGS = {
        "hidden": Option((64, 64), item=int),
        "dropout": Option(0.0, low=0, high=1, high_open=True),
        "epochs": Option(20, low=1),
        "batch_size": Option(256, low=1),
        "lr": Option(1e-3, low=0, low_open=True),
        "val_fraction": Option(0.2, low=0, high=1, low_open=True, high_open=True),
        "device": Option("auto"),
    }

    def __init__(self, seed: int = 0, **settings: Any):
        self.seed = int(seed)
        self.settings = check_options(settings, self.SETTINGS, owner="classifier 'dnn'")
        if any(h < 1 for h in self.settings["hidden"]):
            raise ConfigError(f"option 'hidden' of classifier 'dnn' must be positive layer sizes, got "
                              f"{excerpt(self.settings['hidden'])}")

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None, *,
            val: tuple | None = None) -> NeuralNetwork:
        """Train on ``x`` (n, d) with labels ``y`` (n,) (weights ``sample_weight`` (n,)); ``val`` =
        ``(x_val, y_val)`` or ``(x_val, y_val, w_val)`` picks the best epoch."""
        from hepgen.classifier import Classifier
        from hepgen.nn.rng import seeded

        s = self.settings
        options: dict[str, Any] = {"val_fraction": s["val_fraction"]}
        if val is not None:
            x_val, y_val, *w_val = val
            options.update(val=np.asarray(x_val, dtype=np.float32), val_labels=np.asarray(y_val)[:, None],
                           val_weights=w_val[0] if w_val else None)
        with seeded(self.seed):  # building and training draw from torch's generators: on a fork of them
            model = Classifier(np.shape(x)[1], hidden=s["hidden"], dropout=s["dropout"])
            model.fit(np.asarray(x, dtype=np.float32), labels=np.asarray(y), weights=sample_weight,
                      epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"], seed=self.seed,
                      device=s["device"], quiet=True, monitor="val_loss", **options)
        self.model_, self.history_ = model, model.history_
        best = min(self.history_, key=lambda row: row["monitor"])
        self.best_epoch_, self.val_loss_ = int(best["epoch"]), float(best["monitor"])
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, 2): P(y = 0 | x), P(y = 1 | x) (float64)."""
        p = self.model_.score(np.asarray(x, dtype=np.float32)).double().cpu().numpy()
        return np.column_stack([1.0 - p, p])


#: name -> class: the kinds :func:`make_classifier` builds
CLASSIFIERS: dict[str, type] = {"hgb": GradientBoosting, "dnn": NeuralNetwork}
#: old spellings -> the kind they now build
_RENAMED = {"mlp": "dnn"}


def make_classifier(kind: str = "hgb", *, seed: int = 0, **settings: Any) -> GradientBoosting | NeuralNetwork:
    """A fresh, unfitted classifier of ``kind`` (``hgb`` or ``dnn``) with ``settings`` (see the classes),
    seeded by ``seed``; unknown kinds and settings raise a ConfigError naming them."""
    if kind in _RENAMED:
        warnings.warn(f"classifier {kind!r} is now {_RENAMED[kind]!r} (a hepgen Classifier trained by the engine; "
                      f"scikit-learn's MLPClassifier is no longer used)", DeprecationWarning, stacklevel=2)
        kind = _RENAMED[kind]
    if kind not in CLASSIFIERS:
        raise ConfigError(f"unknown classifier {excerpt(kind)}; use {' or '.join(map(repr, CLASSIFIERS))}")
    return CLASSIFIERS[kind](seed, **settings)


def _threads_for(n: int):
    """One OpenMP thread below :data:`ONE_THREAD_BELOW` training events, the machine's default above."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1 if n < ONE_THREAD_BELOW else None)
