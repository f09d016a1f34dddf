"""Autoencoders as anomaly detectors: train on background only, score everything, read off a ROC.

    score s(x) = reconstruction error (AE) or −ELBO (VAE);  higher = less like the training data
    ε_S(t) = P_signal(s ≥ t),  ε_B(t) = P_background(s ≥ t),  SIC = ε_S / √ε_B

Scores come from the model's own batched ``score`` / ``score_outputs`` (chunked, no autograd), the
ROC, AUC, significance improvement and background rejection from :mod:`hepgen.metrics`. The jet
image representation used by the figures and benchmarks (pT fractions, optionally pooled) is here
too, so that the demo, the benchmark and a user's script feed the models the same inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from hepgen.errors import ConfigError, DataError
from hepgen.metrics import classifier_metrics, roc_curve
from hepgen.models import Model

INTENSITIES = ("linear", "sqrt")


def jet_images(images: np.ndarray, pool: int = 1, intensity: str = "linear") -> np.ndarray:
    """pT fraction per pixel, I / Σ I, summed over ``pool`` × ``pool`` blocks: (n, H, W) -> (n, H/pool, W/pool).

    ``intensity="sqrt"`` returns √(I / Σ I), which compresses the hard core against soft radiation.
    Images with zero total pT are refused (they have no fractions).
    """
    img = np.asarray(images, dtype=np.float64)
    if img.ndim != 3:
        raise DataError(f"jet images must have shape (n, H, W), got {img.shape}")
    if intensity not in INTENSITIES:
        raise ConfigError(f"unknown intensity {intensity!r}; choose one of {', '.join(INTENSITIES)}")
    pool = int(pool)
    n, h, w = img.shape
    if pool < 1 or h % pool or w % pool:
        raise ConfigError(f"pool must be a positive divisor of the image sides {h}x{w}, got {pool}")
    total = img.sum(axis=(1, 2), keepdims=True)
    if np.any(total <= 0):
        raise DataError(f"jet image {int(np.flatnonzero(total.ravel() <= 0)[0])} has no positive pT; "
                        "it cannot be normalised")
    img = img / total
    if pool > 1:
        img = img.reshape(n, h // pool, pool, w // pool, pool).sum(axis=(2, 4))
    if intensity == "sqrt":
        img = np.sqrt(img)
    return img.astype(np.float32)


@dataclass
class AnomalyResult:
    """Scores and ROC figures of merit of one detector against one background and named signals.

    ``metrics[name]`` holds ``auc``, ``max_sic``, ``eps_s_at_max_sic`` and ``rejection_at_eps_s_E``
    (from :func:`hepgen.metrics.classifier_metrics`); ``curves[name]`` = ``(eps_b, eps_s)``.
    """

    background_scores: np.ndarray
    signal_scores: dict[str, np.ndarray]
    metrics: dict[str, dict[str, float]]
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False)


def anomaly_metrics(background_scores: np.ndarray, signal_scores: Mapping[str, np.ndarray], *,
                    background_weights: np.ndarray | None = None,
                    signal_weights: Mapping[str, np.ndarray | None] | None = None,
                    signal_efficiencies: Sequence[float] = (0.3, 0.5), bootstrap: int = 0) -> AnomalyResult:
    """ROC, AUC, max SIC and 1/ε_B at each ε_S in ``signal_efficiencies`` for every named signal.

    ``background_scores``: (n_b,); ``signal_scores``: name -> (n_s,); weights of the same shapes.
    ``bootstrap=n`` (>= 2) adds ``auc_std`` and ``max_sic_std``: the spread over n resamples of the
    scored events (the statistical uncertainty of the test samples, not of the training).
    """
    if not signal_scores:
        raise ConfigError("anomaly_metrics needs at least one named signal sample")
    bg = np.asarray(background_scores, dtype=np.float64).ravel()
    sw = dict(signal_weights or {})
    metrics, curves, sig = {}, {}, {}
    for name, scores in signal_scores.items():
        s = np.asarray(scores, dtype=np.float64).ravel()
        metrics[name] = classifier_metrics(s, bg, signal_weights=sw.get(name), background_weights=background_weights,
                                           signal_efficiencies=signal_efficiencies)
        if bootstrap:
            metrics[name].update(_bootstrap_std(s, bg, sw.get(name), background_weights, int(bootstrap)))
        eps_b, eps_s, _ = roc_curve(s, bg, sw.get(name), background_weights)
        curves[name], sig[name] = (eps_b, eps_s), s
    return AnomalyResult(bg, sig, metrics, curves)


def _bootstrap_std(s: np.ndarray, bg: np.ndarray, ws: np.ndarray | None, wb: np.ndarray | None,
                   n: int) -> dict[str, float]:
    from hepgen.metrics import bootstrap

    def auc_sic(s_, bg_, ws_, wb_):
        m = classifier_metrics(s_, bg_, signal_weights=ws_, background_weights=wb_, signal_efficiencies=())
        return np.array([m["auc"], m["max_sic"]])

    _, std = bootstrap(auc_sic, s, bg, ws, wb, n=n, seed=0, groups=(0, 1, 0, 1))
    return {"auc_std": float(std[0]), "max_sic_std": float(std[1])}


def evaluate_detector(model: Model, background: Any, signals: Mapping[str, Any], *,
                      background_weights: np.ndarray | None = None,
                      signal_weights: Mapping[str, np.ndarray | None] | None = None,
                      signal_efficiencies: Sequence[float] = (0.3, 0.5), bootstrap: int = 0) -> AnomalyResult:
    """Score background and signal events with ``model.score`` and compute :func:`anomaly_metrics`.

    ``background``: (n_b, *event_shape); ``signals``: name -> (n_s, *event_shape), original units.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            bg = model.score(background).double().cpu().numpy()
            sig = {name: model.score(x).double().cpu().numpy() for name, x in signals.items()}
    finally:
        model.train(was_training)
    return anomaly_metrics(bg, sig, background_weights=background_weights, signal_weights=signal_weights,
                           signal_efficiencies=signal_efficiencies, bootstrap=bootstrap)


def feature_breakdown(model: Model, x: Any, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted mean over events of the per-feature score (``score_per_feature``): (*event_shape,).

    For autoencoders this is the mean squared error of each feature (pixel) in the preprocessed space.
    """
    with torch.inference_mode():
        outputs = model.score_outputs(x)
    if "score_per_feature" not in outputs:
        raise ConfigError(f"{model.cli_name} has no per-feature score breakdown")
    per = outputs["score_per_feature"].double().cpu().numpy()
    w = np.ones(len(per)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(per),) or not w.sum() > 0:
        raise DataError(f"weights must have shape ({len(per)},) and a positive sum")
    return np.tensordot(w, per, axes=(0, 0)) / w.sum()
