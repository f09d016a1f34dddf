"""How well each latent of an encoder tracks a physical quantity: pure functions on arrays.

Latents ``z: (n, L)`` (e.g. a VAE's posterior means) against quantities ``q: (n, Q)`` (jet mass, τ21,
shower depth ...), one row per event:

    mi[l, j]        = I(z_l; q_j)  in nats, the Kraskov–Stögbauer–Grassberger k-nearest-neighbour estimate
                      of scikit-learn's ``mutual_info_regression`` (k = ``n_neighbors``, seeded)
    pearson[l, j]   = corr(z_l, q_j);   spearman[l, j] = corr(rank z_l, rank q_j)   (average ranks for ties)

and per quantity j, with latents sorted by their mutual information with q_j (I₁ ≥ I₂ ≥ ...):

    best_latent     = argmax_l mi[l, j];   mi_gap = I₁ − I₂  (nats)
    mig             = (Î₁ − Î₂) / Ĥ(q_j)  ∈ [0, 1]                 (the mutual information gap of Chen et al. 2018)

where Î and Ĥ are computed on the values binned into ``bins`` equal-frequency bins (the discretised
estimator of Locatello et al. 2019, but with quantile bins, robust to tails), so that the gap is a
share of the quantity's entropy: 1 when one latent alone determines the binned quantity and no other
latent carries information about it, 0 when two latents carry the same information. Event weights are
not used. A constant latent or quantity has correlation 0 and mutual information 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hepgen.errors import DataError
from hepgen.nn.rng import python_random_kept

__all__ = ["LatentMatrices", "binned", "latent_quantity_matrices", "rank_correlation"]


@dataclass
class LatentMatrices:
    """Latents × quantities: ``mi``, ``pearson``, ``spearman`` (L, Q) and the per-quantity ``summary``."""

    latent_names: list[str]
    quantity_names: list[str]
    mi: np.ndarray
    pearson: np.ndarray
    spearman: np.ndarray
    summary: dict[str, dict[str, float | int | str]] = field(default_factory=dict)
    #: how the numbers were estimated (for metrics.json)
    method: dict[str, object] = field(default_factory=dict)


def _check(z: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(z, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    z = z[:, None] if z.ndim == 1 else z
    q = q[:, None] if q.ndim == 1 else q
    if z.ndim != 2 or q.ndim != 2:
        raise DataError(f"latents and quantities must be (events, L) and (events, Q) arrays, got shapes {z.shape} "
                        f"and {q.shape}")
    if len(z) != len(q):
        raise DataError(f"{len(z)} events of latents but {len(q)} of quantities; one row per event in both")
    if len(z) < 10:
        raise DataError(f"{len(z)} events are too few to estimate mutual information; give at least 10")
    for what, a in (("latents", z), ("quantities", q)):
        bad = ~np.isfinite(a)
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"the {what} are NaN or infinite at row {row}, column {col}")
    return z, q


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """corr(a_l, b_j) for every column pair: (n, L), (n, Q) -> (L, Q); 0 where a column is constant."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    na, nb = np.sqrt((a**2).sum(axis=0)), np.sqrt((b**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a.T @ b) / np.outer(na, nb)
    return np.clip(np.where(np.isfinite(r), r, 0.0), -1.0, 1.0)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's ρ for every column pair: the Pearson correlation of average ranks, (n, L), (n, Q) -> (L, Q)."""
    from scipy.stats import rankdata

    return _pearson(rankdata(a, axis=0), rankdata(b, axis=0))


def binned(values: np.ndarray, bins: int) -> np.ndarray:
    """Bin index (n,) of each value in ``bins`` equal-frequency bins (ties stay in one bin, so there may be fewer)."""
    edges = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return np.searchsorted(np.unique(edges), values, side="right")


def latent_quantity_matrices(z: np.ndarray, q: np.ndarray, latent_names: Sequence[str] | None = None,
                             quantity_names: Sequence[str] | None = None, *, n_neighbors: int = 3, bins: int = 20,
                             seed: int = 0) -> LatentMatrices:
    """The module's matrices and per-quantity summary of latents ``z`` (n, L) against quantities ``q`` (n, Q)."""
    with python_random_kept():  # its first import draws from Python's random (hepgen.nn.rng)
        from sklearn.feature_selection import mutual_info_regression
    from sklearn.metrics import mutual_info_score

    z, q = _check(z, q)
    n_latent, n_quantity = z.shape[1], q.shape[1]
    latent_names = [f"z{l}" for l in range(n_latent)] if latent_names is None else [str(s) for s in latent_names]
    quantity_names = [f"q{j}" for j in range(n_quantity)] if quantity_names is None else [str(s) for s in quantity_names]
    if len(latent_names) != n_latent or len(quantity_names) != n_quantity:
        raise DataError(f"{len(latent_names)} latent names for {n_latent} latents or {len(quantity_names)} quantity "
                        f"names for {n_quantity} quantities")
    if int(n_neighbors) < 1 or int(n_neighbors) >= len(z):
        raise DataError(f"n_neighbors must be between 1 and the number of events - 1 ({len(z) - 1}), got {n_neighbors}")
    if int(bins) < 2:
        raise DataError(f"bins must be at least 2, got {bins}")
    constant_z = np.ptp(z, axis=0) == 0
    mi = np.zeros((n_latent, n_quantity))
    for j in range(n_quantity):
        if np.ptp(q[:, j]) == 0:
            continue
        mi[:, j] = mutual_info_regression(z, q[:, j], n_neighbors=int(n_neighbors), random_state=int(seed))
    mi[constant_z] = 0.0
    pearson, spearman = _pearson(z, q), rank_correlation(z, q)

    zb = [binned(z[:, l], bins) for l in range(n_latent)]
    summary: dict[str, dict[str, float | int | str]] = {}
    for j, name in enumerate(quantity_names):
        qb = binned(q[:, j], bins)
        entropy = mutual_info_score(qb, qb)
        order = np.argsort(-mi[:, j], kind="stable")
        discrete = np.sort([mutual_info_score(zb[l], qb) for l in range(n_latent)])[::-1]
        second = float(mi[order[1], j]) if n_latent > 1 else 0.0
        gap = (discrete[0] - (discrete[1] if n_latent > 1 else 0.0)) / entropy if entropy > 0 else 0.0
        best = int(order[0])
        summary[name] = {"best_latent": latent_names[best], "best_latent_index": best,
                         "mi_max": float(mi[best, j]), "mi_second": second, "mi_gap": float(mi[best, j]) - second,
                         "mig": float(gap), "pearson_best": float(pearson[best, j]),
                         "spearman_best": float(spearman[best, j])}
    method = {"mi": f"sklearn.feature_selection.mutual_info_regression (KSG k-NN estimator, n_neighbors={int(n_neighbors)}, "
                    f"random_state={int(seed)}), nats",
              "mig": f"(I1 - I2) / H(q) on {int(bins)} equal-frequency bins per variable "
                     "(sklearn.metrics.mutual_info_score), latents ordered by the binned MI",
              "events": int(len(z))}
    return LatentMatrices(latent_names, quantity_names, mi, pearson, spearman, summary, method)
