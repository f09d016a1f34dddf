"""Fidelity and diversity of a generated sample from k-nearest-neighbour balls around each point.

With real points x_1..x_N, generated points y_1..y_M and r_k(p) the distance from p to its k-th nearest
neighbour in its own sample (itself not counted):

    precision = 1/M Σ_j 1[∃ i: ‖y_j − x_i‖ ≤ r_k(x_i)]          (Kynkäänniemi et al. 2019: fidelity)
    recall    = 1/N Σ_i 1[∃ j: ‖x_i − y_j‖ ≤ r_k(y_j)]          (diversity)
    density   = 1/(kM) Σ_j Σ_i 1[‖y_j − x_i‖ ≤ r_k(x_i)]        (Naeem et al. 2020: fidelity, robust to outliers)
    coverage  = 1/N Σ_i 1[min_j ‖x_i − y_j‖ ≤ r_k(x_i)]          (diversity, robust to outliers)

A truncated GAN trades recall and coverage for precision and density. Distances are Euclidean in the given
features: standardise them first when their scales differ (:func:`precision_recall_coverage` does so with the
real sample's mean and standard deviation unless told not to).
"""

from __future__ import annotations

import numpy as np

from hepgen.errors import DataError
from hepgen.metrics._checks import as_samples

_CHUNK = 1024  # rows of a distance block: 1024 × M float64 at a time


def _pairwise_min_and_count(a: np.ndarray, b: np.ndarray, radii_b: np.ndarray | None,
                            radii_a: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row of ``a``: (any b_i with ‖a − b_i‖ ≤ radii_b[i], how many such b_i, any ‖a − b_i‖ ≤ radii_a)."""
    inside_any = np.zeros(len(a), dtype=bool)
    count = np.zeros(len(a), dtype=np.int64)
    own = np.zeros(len(a), dtype=bool)
    b2 = (b * b).sum(1)
    for start in range(0, len(a), _CHUNK):
        block = a[start:start + _CHUNK]
        d2 = np.maximum((block * block).sum(1)[:, None] - 2.0 * block @ b.T + b2[None], 0.0)
        d = np.sqrt(d2)
        if radii_b is not None:
            hit = d <= radii_b[None]
            inside_any[start:start + len(block)] = hit.any(1)
            count[start:start + len(block)] = hit.sum(1)
        if radii_a is not None:
            own[start:start + len(block)] = d.min(1) <= radii_a[start:start + len(block)]
    return inside_any, count, own


def knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """r_k(x_i): the distance from each row to its k-th nearest other row of ``x``: (n,)."""
    x = np.asarray(x, dtype=np.float64)
    if not 1 <= k < len(x):
        raise DataError(f"k-NN radii: k = {k} needs at least k + 1 = {k + 1} points, got {len(x)}")
    out = np.empty(len(x))
    x2 = (x * x).sum(1)
    for start in range(0, len(x), _CHUNK):
        block = x[start:start + _CHUNK]
        d2 = np.maximum(x2[start:start + len(block), None] - 2.0 * block @ x.T + x2[None], 0.0)
        d2[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf  # not itself
        out[start:start + len(block)] = np.sqrt(np.partition(d2, k - 1, axis=1)[:, k - 1])
    return out


def precision_recall_coverage(real: np.ndarray, generated: np.ndarray, k: int = 5,
                              standardise: bool = True) -> dict[str, float]:
    """``{"precision", "recall", "density", "coverage"}`` of ``generated`` (m, d) against ``real`` (n, d) with
    k-NN balls (module doc). ``standardise``: both samples scaled by the real sample's per-feature mean and
    standard deviation first (a constant real feature is left unscaled)."""
    x = as_samples(real, "precision/recall: real", ndim=2)
    y = as_samples(generated, "precision/recall: generated", ndim=2)
    if x.shape[1] != y.shape[1]:
        raise DataError(f"precision/recall: real events have {x.shape[1]} features, generated {y.shape[1]}")
    k = int(k)
    if k < 1 or len(x) <= k or len(y) <= k:
        raise DataError(f"precision/recall: k = {k} needs more than k events in each sample, got {len(x)} real "
                        f"and {len(y)} generated")
    if standardise:
        mean, std = x.mean(0), x.std(0)
        std = np.where(std > 0, std, 1.0)
        x, y = (x - mean) / std, (y - mean) / std
    r_real, r_fake = knn_radii(x, k), knn_radii(y, k)
    precise, count, _ = _pairwise_min_and_count(y, x, r_real, None)
    recalled, _, covered = _pairwise_min_and_count(x, y, r_fake, r_real)
    return {"precision": float(precise.mean()), "recall": float(recalled.mean()),
            "density": float(count.sum() / (k * len(y))), "coverage": float(covered.mean())}


__all__ = ["knn_radii", "precision_recall_coverage"]
