"""A tagger's or an anomaly score's figures of merit with bootstrap errors, per named signal.

Built on :mod:`hepgen.metrics.classification` (weighted ROC, AUC, SIC, rejection) and
:func:`hepgen.metrics.bootstrap.bootstrap`: background and each signal are resampled independently
(each with its weights), so the errors are the statistical uncertainty of the scored samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hepgen.metrics.bootstrap import MIN_EVENTS, bootstrap
from hepgen.metrics.classification import classifier_metrics, roc_curve, significance_improvement

__all__ = ["roc_summary", "sic_curve"]


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def roc_summary(signal_scores: np.ndarray, background_scores: np.ndarray, *,
                signal_weights: np.ndarray | None = None, background_weights: np.ndarray | None = None,
                signal_efficiencies: Sequence[float] = (0.3, 0.5), n_bootstrap: int = 100, seed: int = 0
                ) -> dict[str, float | None]:
    """AUC, max SIC ε_S/√ε_B, the ε_S of that maximum and 1/ε_B at each ε_S, each with ``KEY_err``.

    The SIC maximum is taken where ≥ 10 effective background events pass (as
    :func:`~hepgen.metrics.classification.classifier_metrics`). ``KEY_err`` is the standard deviation
    over ``n_bootstrap`` resamples of the finite replicas (a rejection is inf where no background passes;
    such a value or error is written as None). ``n_bootstrap=0`` gives no errors; with fewer than
    :data:`~hepgen.metrics.bootstrap.MIN_EVENTS` signal or background events the errors are None
    (undefined: a bootstrap of one event never varies).
    """
    effs = tuple(signal_efficiencies)

    def metric(s, b, ws, wb):
        m = classifier_metrics(s, b, signal_weights=ws, background_weights=wb, signal_efficiencies=effs)
        return np.array(list(m.values()), dtype=float)

    central = classifier_metrics(signal_scores, background_scores, signal_weights=signal_weights,
                                 background_weights=background_weights, signal_efficiencies=effs)
    keys = list(central)
    out: dict[str, float | None] = {k: _finite_or_none(v) for k, v in central.items()}
    out["n_signal"] = int(len(np.ravel(signal_scores)))
    out["n_background"] = int(len(np.ravel(background_scores)))
    if n_bootstrap and min(out["n_signal"], out["n_background"]) < MIN_EVENTS:
        out.update({f"{key}_err": None for key in keys})
    elif n_bootstrap:
        replicas: list[np.ndarray] = []

        def collect(*arrays):
            value = metric(*arrays)
            replicas.append(value)
            return value

        # bootstrap's own std (unused: inf rejections are dropped below) is NaN over inf replicas; numpy's
        # "invalid value" warning reached the user's stderr, under -q too
        with np.errstate(invalid="ignore"):
            bootstrap(collect, np.ravel(signal_scores), np.ravel(background_scores), signal_weights,
                      background_weights, n=int(n_bootstrap), seed=seed, groups=(0, 1, 0, 1))
        stacked = np.stack(replicas[1:])  # the first call is the central value
        for j, key in enumerate(keys):
            finite = stacked[:, j][np.isfinite(stacked[:, j])]
            out[f"{key}_err"] = float(np.std(finite, ddof=1)) if len(finite) >= 2 else None
    return out


def sic_curve(signal_scores: np.ndarray, background_scores: np.ndarray, signal_weights: np.ndarray | None = None,
              background_weights: np.ndarray | None = None, min_background_efficiency: float | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """``(eps_s, sic)`` on the ROC points with ε_B above ``min_background_efficiency`` (default 10 / N_eff,B)."""
    eps_b, eps_s, _ = roc_curve(signal_scores, background_scores, signal_weights, background_weights)
    if min_background_efficiency is None:
        wb = np.ones(len(np.ravel(background_scores))) if background_weights is None else np.asarray(
            background_weights, float)
        min_background_efficiency = 10.0 / (wb.sum() ** 2 / np.sum(wb**2))
    return significance_improvement(eps_b, eps_s, min_background_efficiency)
