"""The one classifier factory of hepgen: every judgement made by a trained classifier gets it here.

    make_classifier("hgb", seed=s, **settings)   gradient-boosted trees (scikit-learn's
                                                 HistGradientBoostingClassifier, no early stopping)
    make_classifier("dnn", seed=s, **settings)   a neural network: the :class:`hepgen.classifier.Classifier`
                                                 family, trained by the engine (train.Engine via Model.fit)

Both have scikit-learn's habits: ``fit(x, y, sample_weight=None, *, val=None)`` returns ``self`` and
``predict_proba(x)`` gives (n, 2) probabilities of the classes 0 and 1; ``x``: (n, d), ``y``: (n,) of 0/1.
``val=(x_val, y_val[, w_val])`` is the validation set of the network, whose epoch with the lowest
validation loss (or, with ``select="accuracy"``, the highest accuracy) is kept (the engine's monitor;
without ``val`` the engine holds out a seeded ``val_fraction`` of the training events) and on which an
isotonic calibration is fitted with ``calibrate="isotonic"``; the trees have no epochs and ignore it.
Users: the classifier two-sample tests (:mod:`hepgen.evaluate.two_sample`, the CaloChallenge protocol) and
OmniFold and the posterior unfolding (likelihood ratios p / (1 − p)).

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
    by the engine with Adam; the best validation epoch is kept.

    Settings: ``hidden`` layer sizes, ``activation`` (the MLP's names: ``relu``, ``leaky_relu`` ...),
    ``dropout``, ``epochs``, ``batch_size``, ``lr``, ``val_fraction`` (the share of the training events held
    out when ``fit`` gets no ``val``), ``preprocess`` (the Classifier's: ``standard`` or ``none``), ``select``
    (``loss``: the epoch of lowest validation loss; ``accuracy``: the first epoch of highest validation
    accuracy, as the CaloChallenge's evaluate.py keeps it), ``calibrate`` (``none``, or ``isotonic``: the
    output is mapped by scikit-learn's IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1 − 1e-6)
    fitted on the validation events' scores at the kept epoch, evaluate.py's calibration; it needs ``val``)
    and ``device`` (the engine's: ``auto``, ``cpu``, ``cuda`` ...). Training runs on a seeded fork of torch's
    RNG (:func:`hepgen.nn.rng.seeded`): the caller's is left as it was.
    Fitted: ``model_`` (the Classifier), ``best_epoch_``, ``val_loss_`` and ``val_accuracy_`` (at the kept
    epoch), ``history_``, ``calibrator_`` (None unless calibrated).
    """

    SETTINGS = {
        "hidden": Option((64, 64), item=int),
        "activation": Option("relu", choices=("relu", "leaky_relu", "elu", "gelu", "silu", "tanh")),
        "dropout": Option(0.0, low=0, high=1, high_open=True),
        "epochs": Option(20, low=1),
        "batch_size": Option(256, low=1),
        "lr": Option(1e-3, low=0, low_open=True),
        "val_fraction": Option(0.2, low=0, high=1, low_open=True, high_open=True),
        "preprocess": Option("standard", choices=("standard", "none")),
        "select": Option("loss", choices=("loss", "accuracy")),
        "calibrate": Option("none", choices=("none", "isotonic")),
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
        ``(x_val, y_val)`` or ``(x_val, y_val, w_val)`` picks the best epoch (and fits the calibration)."""
        from hepgen.classifier import Classifier
        from hepgen.nn.rng import seeded

        s = self.settings
        if s["calibrate"] != "none" and val is None:
            raise ConfigError("classifier 'dnn' with calibrate='isotonic' needs validation events (val=) to fit the "
                              "calibration on")
        options: dict[str, Any] = {"val_fraction": s["val_fraction"], "monitor": "val_loss"}
        if val is not None:
            x_val, y_val, *w_val = val
            x_val, y_val = np.asarray(x_val, dtype=np.float32), np.asarray(y_val, dtype=np.float64)
            options.update(val=x_val, val_labels=y_val[:, None], val_weights=w_val[0] if w_val else None)
            w_acc = np.ones(len(y_val)) if not w_val or w_val[0] is None else np.asarray(w_val[0], dtype=np.float64)

            def accuracy(model: Classifier) -> dict[str, float]:
                """evaluate.py's accuracy: the rounded sigmoid against the label (weighted when weights are given)."""
                hit = np.round(model.score(x_val).double().cpu().numpy()) == y_val
                return {"error": float(1.0 - np.sum(w_acc * hit) / np.sum(w_acc))}

            if s["select"] == "accuracy":
                options.update(diagnostics=[accuracy], monitor="val_error")
        elif s["select"] == "accuracy":
            raise ConfigError("classifier 'dnn' with select='accuracy' needs validation events (val=)")
        with seeded(self.seed):  # building and training draw from torch's generators: on a fork of them
            model = Classifier(np.shape(x)[1], hidden=s["hidden"], dropout=s["dropout"], preprocess=s["preprocess"],
                               activation=s["activation"])
            model.fit(np.asarray(x, dtype=np.float32), labels=np.asarray(y), weights=sample_weight,
                      epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"], seed=self.seed,
                      device=s["device"], quiet=True, **options)
        self.model_, self.history_ = model, model.history_
        best = min(self.history_, key=lambda row: row["monitor"])  # the engine's choice: the first of the lowest
        self.best_epoch_ = int(best["epoch"])
        self.val_loss_ = float(best.get("val_loss", best.get("train_loss", np.nan)))
        self.val_accuracy_ = 1.0 - float(best["val_error"]) if "val_error" in best else None
        self.calibrator_ = None
        if s["calibrate"] == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            p_val = self._raw_proba(val[0])
            self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1.0 - 1e-6).fit(
                p_val, np.asarray(val[1], dtype=np.float64))
        return self

    def _raw_proba(self, x: np.ndarray) -> np.ndarray:
        """(n,) the network's P(y = 1 | x) before any calibration (float64)."""
        return self.model_.score(np.asarray(x, dtype=np.float32)).double().cpu().numpy()

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, 2): P(y = 0 | x), P(y = 1 | x) (float64), calibrated when ``calibrate`` says so."""
        p = self._raw_proba(x)
        if self.calibrator_ is not None:
            p = np.asarray(self.calibrator_.predict(p), dtype=np.float64)
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
