"""The classifier two-sample test (C2ST): can a classifier tell a reference sample (label 1) from a candidate
(label 0)? The AUC of its held-out scores is ≈ 0.5 when the two are drawn from one distribution and → 1
when they are separable (the CaloChallenge convention); for two Gaussians a distance d apart (unit
covariance) the best classifier reaches Φ(d/√2).

One procedure, with two ways of holding events out:

* ``n_folds=k`` (the default, k = 5): stratified k-fold cross-fitting, every event scored by the
  classifier trained on the other k − 1 folds, so every event has a held-out score;
* ``split=(train, val, test)``: one seeded split per class; the classifier trains on the first part, a
  network keeps its epoch of lowest loss on the second, and the third is scored (the CaloChallenge 2022
  protocol, 60/20/20: :func:`hepgen.evaluate.calochallenge.classifier_auc`).

Each sample is first cut to ``max_per_class`` events by a seeded subsample. Every training (and
validation) set is balanced to the same number of events per class: the larger class subsampled, or, with
weights, both classes resampled ∝ |w| with replacement, so the classifier needs no sample weights; the
held-out scores keep their signed weights for the AUC. Inputs are standardised on the training part (unless
``standardise=False``).
The classifier is one of :func:`hepgen.evaluate.classifiers.make_classifier`'s (``hgb``: boosted trees,
``dnn``: a hepgen Classifier trained by the engine). Bootstrapping the held-out scores
(:func:`hepgen.metrics.bootstrap.bootstrap`) gives the AUC's statistical error for the trained classifiers;
:func:`hepgen.metrics.classification.auc_standard_error` the Hanley–McNeil one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hepgen.errors import ConfigError, DataError
from hepgen.evaluate.classifiers import make_classifier
from hepgen.metrics._checks import as_samples, as_weights
from hepgen.metrics.classification import roc_auc

__all__ = ["HeldOutScores", "c2st_auc", "c2st_scores", "held_out_scores"]


@dataclass
class HeldOutScores:
    """The held-out classifier scores of a two-sample test: ``real`` (n',) and ``generated`` (m',) with their
    weights (None when not given), the fitted ``classifiers`` (one per fold, or one for a split) and the
    number of events each was trained on (``n_train``, per classifier)."""

    real: np.ndarray
    generated: np.ndarray
    real_weights: np.ndarray | None
    generated_weights: np.ndarray | None
    classifiers: list = field(default_factory=list)
    n_train: list[int] = field(default_factory=list)

    def auc(self) -> float:
        """AUC of the held-out scores, with the signed weights."""
        return roc_auc(self.real, self.generated, self.real_weights, self.generated_weights)


def held_out_scores(
    real: np.ndarray,
    generated: np.ndarray,
    *,
    real_weights: np.ndarray | None = None,
    generated_weights: np.ndarray | None = None,
    classifier: str = "hgb",
    n_folds: int = 5,
    split: Sequence[float] | None = None,
    max_per_class: int | None = None,
    seed: int = 0,
    settings: Mapping[str, Any] | None = None,
    standardise: bool = True,
) -> HeldOutScores:
    """The classifier two-sample test (module doc): held-out scores of ``real`` (n, d) against ``generated``
    (m, d). ``split`` (three positive fractions) replaces the ``n_folds`` folds by one train / validation /
    test split; ``settings`` go to the classifier (:func:`~hepgen.evaluate.classifiers.make_classifier`).
    ``standardise=False`` gives the classifier the inputs as they are (the CaloChallenge's evaluate.py does
    not scale them). Every option and input is checked before any training starts."""
    x1, x0 = as_samples(real, "real", ndim=2), as_samples(generated, "generated", ndim=2)
    if x1.shape[1] != x0.shape[1]:
        raise DataError(f"c2st: real has {x1.shape[1]} features but generated has {x0.shape[1]}.")
    w1 = as_weights(real_weights, len(x1), "real_weights")
    w0 = as_weights(generated_weights, len(x0), "generated_weights")
    if split is None and (isinstance(n_folds, bool) or int(n_folds) != n_folds or n_folds < 2):
        raise ConfigError(f"c2st: n_folds must be an integer of at least 2, got {n_folds!r}.")
    fractions = None if split is None else _fractions(split)
    if max_per_class is not None and (isinstance(max_per_class, bool) or int(max_per_class) != max_per_class
                                      or max_per_class < 1):
        raise ConfigError(f"c2st: max_per_class must be a positive integer or None, got {max_per_class!r}.")
    unfitted = make_classifier(classifier, seed=seed, **(settings or {}))  # bad kinds and settings fail before work
    rng = np.random.default_rng(seed)
    x1, w1 = _subsample(x1, w1, max_per_class, rng)
    x0, w0 = _subsample(x0, w0, max_per_class, rng)
    x = np.concatenate([x1, x0])
    y = np.concatenate([np.ones(len(x1)), np.zeros(len(x0))])
    weighted = w1 is not None or w0 is not None
    w = np.concatenate([np.ones(len(x1)) if w1 is None else w1, np.ones(len(x0)) if w0 is None else w0])
    for label in (0, 1):
        if not np.abs(w[y == label]).sum() > 0:
            raise DataError("c2st: one sample has zero total |weight|.")
    abs_w = np.abs(w) if weighted else None
    if fractions is None:
        if min(len(x1), len(x0)) < n_folds:
            raise DataError(f"c2st: need at least n_folds={n_folds} events per sample, got {len(x1)} and {len(x0)}.")
        from sklearn.model_selection import StratifiedKFold

        parts = [(train, None, test) for train, test in
                 StratifiedKFold(int(n_folds), shuffle=True, random_state=seed).split(x, y)]
    else:
        parts = [_split(y, fractions, rng)]

    scores = np.full(len(y), np.nan)
    fitted, n_train = [], []
    for train, val, test in parts:
        train = _balanced_training_set(train, y, abs_w, rng)
        mean, std = x[train].mean(axis=0), x[train].std(axis=0)
        std[std == 0] = 1.0
        if not standardise:
            mean, std = np.zeros_like(mean), np.ones_like(std)
        held = None
        if val is not None:
            val = _balanced_training_set(val, y, abs_w, rng)
            held = ((x[val] - mean) / std, y[val])
        model = copy.deepcopy(unfitted)
        model.fit((x[train] - mean) / std, y[train], val=held)
        scores[test] = model.predict_proba((x[test] - mean) / std)[:, 1]
        fitted.append(model)
        n_train.append(len(train))
    tested = ~np.isnan(scores)
    s1, s0 = scores[tested & (y == 1)], scores[tested & (y == 0)]
    if not weighted:
        return HeldOutScores(s1, s0, None, None, fitted, n_train)
    return HeldOutScores(s1, s0, w[tested & (y == 1)], w[tested & (y == 0)], fitted, n_train)


def c2st_scores(
    real: np.ndarray,
    generated: np.ndarray,
    *,
    real_weights: np.ndarray | None = None,
    generated_weights: np.ndarray | None = None,
    classifier: str = "hgb",
    n_folds: int = 5,
    split: Sequence[float] | None = None,
    max_per_class: int | None = None,
    seed: int = 0,
    settings: Mapping[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Held-out classifier scores ``(s_real, s_generated, w_real, w_generated)`` of the C2ST (module doc;
    options as :func:`held_out_scores`): (n',), (m',) and their weights (None when not given), ready for
    :func:`~hepgen.metrics.classification.roc_auc` or a bootstrap of it."""
    held = held_out_scores(real, generated, real_weights=real_weights, generated_weights=generated_weights,
                           classifier=classifier, n_folds=n_folds, split=split, max_per_class=max_per_class,
                           seed=seed, settings=settings)
    return held.real, held.generated, held.real_weights, held.generated_weights


def c2st_auc(
    real: np.ndarray,
    generated: np.ndarray,
    *,
    real_weights: np.ndarray | None = None,
    generated_weights: np.ndarray | None = None,
    classifier: str = "hgb",
    n_folds: int = 5,
    split: Sequence[float] | None = None,
    max_per_class: int | None = None,
    seed: int = 0,
    settings: Mapping[str, Any] | None = None,
) -> float:
    """AUC of the C2ST's held-out scores (signed weights): ≈ 0.5 for one distribution, → 1 when separable."""
    return roc_auc(*c2st_scores(real, generated, real_weights=real_weights, generated_weights=generated_weights,
                                classifier=classifier, n_folds=n_folds, split=split, max_per_class=max_per_class,
                                seed=seed, settings=settings))


def _fractions(split: Sequence[float]) -> np.ndarray:
    try:
        values = np.asarray(split, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        values = np.zeros(0)
    if len(values) != 3 or not np.all(np.isfinite(values) & (values > 0)):
        raise ConfigError(f"c2st: split takes three positive fractions (train, validation, test), got {split!r}")
    return values / values.sum()


def _split(y: np.ndarray, fractions: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """(train, val, test) indices: each class shuffled and cut at the cumulative fractions."""
    parts: list[list[np.ndarray]] = [[], [], []]
    for label, name in ((1, "real"), (0, "generated")):
        idx = rng.permutation(np.flatnonzero(y == label))
        cuts = np.floor(np.cumsum(fractions)[:2] * len(idx)).astype(int)
        pieces = np.split(idx, cuts)
        if min(len(p) for p in pieces) < 1:
            raise DataError(f"c2st: the {name} sample has {len(idx)} events, too few for a train / validation / "
                            f"test split of {np.round(fractions, 3).tolist()}.")
        for part, piece in zip(parts, pieces):
            part.append(piece)
    return tuple(np.sort(np.concatenate(p)) for p in parts)


def _balanced_training_set(train: np.ndarray, y: np.ndarray, abs_w: np.ndarray | None,
                           rng: np.random.Generator) -> np.ndarray:
    """Indices with m = min(class counts) events per class: drawn without replacement, or ∝ |w| with replacement."""
    per_class = [train[y[train] == label] for label in (0, 1)]
    m = min(len(idx) for idx in per_class)
    picked = []
    for idx in per_class:
        if abs_w is not None:
            total = abs_w[idx].sum()
            if not total > 0:
                raise DataError("c2st: a training part of one sample has zero total |weight|.")
            picked.append(rng.choice(idx, size=m, replace=True, p=abs_w[idx] / total))
        else:
            picked.append(idx if len(idx) == m else rng.choice(idx, size=m, replace=False))
    return np.concatenate(picked)


def _subsample(x: np.ndarray, w: np.ndarray | None, cap: int | None, rng: np.random.Generator):
    if cap is None or len(x) <= cap:
        return x, w
    idx = np.sort(rng.choice(len(x), size=cap, replace=False))
    return x[idx], None if w is None else w[idx]
