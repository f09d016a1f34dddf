"""Classifier and anomaly-detector performance: weighted ROC, AUC, significance improvement, rejection.

Conventions: higher score = more signal-like; ε_S (tpr) and ε_B (fpr) are the weighted fractions of
signal and background with score ≥ threshold. Negative (NLO) weights are allowed; the curves are then
not necessarily monotone, and the totals Σw of each class must be positive.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hepgen.errors import ConfigError, DataError
from hepgen.metrics._checks import as_samples, as_weights


def roc_curve(
    signal_scores: np.ndarray,
    background_scores: np.ndarray,
    signal_weights: np.ndarray | None = None,
    background_weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(eps_b, eps_s, thresholds)``, each (k + 1,), for the k distinct scores in decreasing order.

    Same output as ``sklearn.metrics.roc_curve(y, s, sample_weight=w, drop_intermediate=False)`` with
    labels 1 = signal: the first point is (0, 0) at threshold +inf, the last (1, 1).
    ``signal_scores``: (n_s,), ``background_scores``: (n_b,), weights of the same shapes.
    """
    s, b, ws, wb = _inputs(signal_scores, background_scores, signal_weights, background_weights)
    scores = np.concatenate([s, b])
    order = np.argsort(-scores, kind="mergesort")
    scores = scores[order]
    w_sig = np.concatenate([ws, np.zeros_like(wb)])[order]
    w_bkg = np.concatenate([np.zeros_like(ws), wb])[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # last index of each distinct score
    eps_s = np.cumsum(w_sig)[last] / ws.sum()
    eps_b = np.cumsum(w_bkg)[last] / wb.sum()
    return np.r_[0.0, eps_b], np.r_[0.0, eps_s], np.r_[np.inf, scores[last]]


def roc_auc(
    signal_scores: np.ndarray,
    background_scores: np.ndarray,
    signal_weights: np.ndarray | None = None,
    background_weights: np.ndarray | None = None,
) -> float:
    """AUC = ∫ ε_S dε_B by the trapezoidal rule on :func:`roc_curve` (= P(s_sig > s_bkg) + ½ P(tie))."""
    eps_b, eps_s, _ = roc_curve(signal_scores, background_scores, signal_weights, background_weights)
    return float(np.sum(np.diff(eps_b) * 0.5 * (eps_s[1:] + eps_s[:-1])))



def auc_standard_error(auc: float, n_signal: int, n_background: int) -> float:
    """Standard error of an AUC measured on ``n_signal`` and ``n_background`` independent events
    (Hanley & McNeil 1982, Radiology 143, 29):

        σ² = [A(1 − A) + (n_s − 1)(Q1 − A²) + (n_b − 1)(Q2 − A²)] / (n_s n_b),  Q1 = A/(2 − A), Q2 = 2A²/(1 + A).

    Exact for exponential score distributions and close for most others; at A = ½ it is √((n_s + n_b + 1)
    / (12 n_s n_b)), the Mann–Whitney null standard deviation.
    """
    a = float(auc)
    if not 0.0 <= a <= 1.0:
        raise DataError(f"auc_standard_error: the AUC must be in [0, 1], got {a:g}.")
    if min(n_signal, n_background) < 1:
        raise DataError(f"auc_standard_error: needs events of both classes, got {n_signal} and {n_background}.")
    q1, q2 = a / (2 - a), 2 * a**2 / (1 + a)
    var = (a * (1 - a) + (n_signal - 1) * (q1 - a**2) + (n_background - 1) * (q2 - a**2)) / (n_signal * n_background)
    return float(np.sqrt(max(var, 0.0)))

def significance_improvement(
    eps_b: np.ndarray, eps_s: np.ndarray, min_background_efficiency: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """SIC = ε_S / √ε_B on the ROC points with ε_B > ``min_background_efficiency``: returns ``(eps_s, sic)``."""
    eps_b, eps_s = np.asarray(eps_b, float), np.asarray(eps_s, float)
    keep = eps_b > max(min_background_efficiency, 0.0)
    return eps_s[keep], eps_s[keep] / np.sqrt(eps_b[keep])


def background_rejection(eps_b: np.ndarray, eps_s: np.ndarray, at_signal_efficiency: float) -> float:
    """1/ε_B at ε_S = ``at_signal_efficiency``, with ε_B linearly interpolated in ε_S (inf if ε_B = 0 there).

    Uses the lowest ε_B reaching the target: the segment ending at the first point with ε_S ≥ target.
    """
    eps_b, eps_s = np.asarray(eps_b, float), np.maximum.accumulate(np.asarray(eps_s, float))
    target = float(at_signal_efficiency)
    if not 0.0 < target <= 1.0:
        raise ConfigError(f"background_rejection: signal efficiency must be in (0, 1], got {target}.")
    k = int(np.searchsorted(eps_s, target, side="left"))
    if k == 0:
        value = eps_b[0]
    elif k >= len(eps_s):
        value = eps_b[-1]
    else:
        frac = (target - eps_s[k - 1]) / (eps_s[k] - eps_s[k - 1])
        value = eps_b[k - 1] + frac * (eps_b[k] - eps_b[k - 1])
    return float(np.inf) if value <= 0 else float(1.0 / value)


def classifier_metrics(
    signal_scores: np.ndarray | None = None,
    background_scores: np.ndarray | None = None,
    *,
    signal_weights: np.ndarray | None = None,
    background_weights: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    signal_efficiencies: Sequence[float] = (0.3, 0.5),
    min_background_efficiency: float | None = None,
) -> dict[str, float]:
    """AUC, max SIC (and the ε_S where it is reached) and 1/ε_B at each ε_S in ``signal_efficiencies``.

    Give either per-class scores (+ weights) or ``labels`` (1 = signal, 0 = background), ``scores`` and
    ``weights``, all (n,). The SIC maximum is taken over points with ε_B > ``min_background_efficiency``;
    by default that is 10 / N_eff,B (Kish effective background count), so that ≥ 10 effective
    background events pass and statistical spikes at tiny ε_B are ignored. Keys: ``auc``, ``max_sic``,
    ``eps_s_at_max_sic``, ``rejection_at_eps_s_0.3``, ... (rejection may be inf).
    """
    if labels is not None or scores is not None:
        if signal_scores is not None or background_scores is not None:
            raise DataError("classifier_metrics: give either signal/background scores or labels+scores, not both.")
        signal_scores, background_scores, signal_weights, background_weights = split_by_label(labels, scores, weights)
    elif signal_scores is None or background_scores is None:
        raise DataError("classifier_metrics: signal_scores and background_scores (or labels and scores) are needed.")
    eps_b, eps_s, _ = roc_curve(signal_scores, background_scores, signal_weights, background_weights)
    if min_background_efficiency is None:
        wb = np.ones(len(np.ravel(background_scores)))
        if background_weights is not None:
            wb = np.asarray(background_weights, float)
        n_eff = wb.sum() ** 2 / np.sum(wb**2)
        min_background_efficiency = 10.0 / n_eff
    sic_eps_s, sic = significance_improvement(eps_b, eps_s, min_background_efficiency)
    if len(sic) == 0:
        raise DataError(
            f"classifier_metrics: no ROC point has background efficiency above {min_background_efficiency:g}; "
            "the background sample is too small for a significance-improvement maximum."
        )
    best = int(np.argmax(sic))
    out = {
        "auc": float(np.sum(np.diff(eps_b) * 0.5 * (eps_s[1:] + eps_s[:-1]))),
        "max_sic": float(sic[best]),
        "eps_s_at_max_sic": float(sic_eps_s[best]),
    }
    for eff in signal_efficiencies:
        out[f"rejection_at_eps_s_{eff:g}"] = background_rejection(eps_b, eps_s, eff)
    return out


def split_by_label(
    labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Split (n,) labels (1 = signal, 0 = background), scores and weights into per-class arrays."""
    if labels is None or scores is None:
        raise DataError("split_by_label: both labels and scores are needed.")
    y = np.ravel(np.asarray(labels))
    s = as_samples(np.ravel(scores), "scores", ndim=1)
    if y.shape != s.shape:
        raise DataError(f"labels have shape {y.shape} but scores have shape {s.shape}.")
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"labels must be 0 (background) or 1 (signal); row {row} has {y[row]!r}.")
    w = as_weights(weights, len(s), "weights")
    sig = y == 1
    return s[sig], s[~sig], None if w is None else w[sig], None if w is None else w[~sig]


def _inputs(s, b, ws, wb):
    s = as_samples(np.ravel(s), "signal_scores", ndim=1)
    b = as_samples(np.ravel(b), "background_scores", ndim=1)
    ws = as_weights(ws, len(s), "signal_weights")
    wb = as_weights(wb, len(b), "background_weights")
    ws = np.ones(len(s)) if ws is None else ws
    wb = np.ones(len(b)) if wb is None else wb
    for name, w in (("signal", ws), ("background", wb)):
        if not w.sum() > 0:
            raise DataError(f"ROC: the total {name} weight is {w.sum():g}; it must be positive to define efficiencies.")
    return s, b, ws, wb
