"""How much a tagger's score depends on a nuisance: distance correlation and mass sculpting.

* Distance correlation (Székely, Rizzo & Bakirov 2007) with per-event weights p_i = w_i / Σ w:
  a_ij = |x_i − x_j|, ā_i = Σ_j p_j a_ij, ā = Σ_i p_i ā_i, A_ij = a_ij − ā_i − ā_j + ā (B likewise
  for y), dCov²(x, y) = Σ_ij p_i p_j A_ij B_ij and dCor² = dCov²(x, y) / √(dCov²(x, x) dCov²(y, y)).
  With unit weights this is the V-statistic of ``dcor.distance_correlation_sqr``; an integer weight k
  equals k copies of the event. It is 0 if and only if x and y are independent (for n → ∞).
* Mass sculpting (Kasieczka & Shih 2020, the DisCo paper): cut the background at a fixed background
  efficiency ε_B; the Jensen–Shannon divergence between the mass histograms of the passing and the
  failing background, in bits (log base 2, so 0 ≤ JSD ≤ 1), is quoted as 1/JSD (higher = less sculpted).
  The histograms' edges are :func:`sculpting_edges` (the ones the report's figure draws, so the JSD in
  its legend is that of the bins shown).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hepgen.errors import ConfigError, DataError
from hepgen.metrics._checks import as_samples, as_weights
from hepgen.metrics.histograms import js_divergence

__all__ = ["distance_correlation", "efficiency_threshold", "mass_sculpting", "passing_fraction", "sculpting_edges"]

#: mass bins of the sculpting histograms (metric and figure)
SCULPTING_BINS = 40


def _probabilities(w: np.ndarray | None, n: int, name: str) -> np.ndarray:
    w = as_weights(w, n, name)
    if w is None:
        return np.full(n, 1.0 / n)
    if not w.sum() > 0:
        raise DataError(f"{name}: the total weight is {w.sum():g}; it must be positive.")
    return w / w.sum()


def _centred_row_means(x: np.ndarray, p: np.ndarray, chunk: int) -> tuple[np.ndarray, float]:
    """ā_i = Σ_j p_j |x_i − x_j| (n,), and ā = Σ_i p_i ā_i."""
    rows = np.empty(len(x))
    for start in range(0, len(x), chunk):
        rows[start:start + chunk] = np.abs(x[start:start + chunk, None] - x[None, :]) @ p
    return rows, float(rows @ p)


def distance_correlation(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, *,
                         squared: bool = True, chunk: int = 2048) -> float:
    """Weighted distance correlation of two 1-D samples (n,) — dCor² by default, dCor with ``squared=False``.

    Exact O(n²) time in blocks of ``chunk`` rows (O(n · chunk) memory). Negative weights are refused
    (the weighted distance covariance is then not a covariance).
    """
    x = as_samples(np.ravel(x), "x", ndim=1)
    y = as_samples(np.ravel(y), "y", ndim=1)
    if len(x) != len(y):
        raise DataError(f"distance_correlation: x has {len(x)} events but y has {len(y)}.")
    if weights is not None:
        as_weights(weights, len(x), "weights", allow_negative=False)
    p = _probabilities(weights, len(x), "weights")
    ra, ga = _centred_row_means(x, p, chunk)
    rb, gb = _centred_row_means(y, p, chunk)
    sums = np.zeros(3)  # Σ p p A B, Σ p p A A, Σ p p B B
    for start in range(0, len(x), chunk):
        sl = slice(start, start + chunk)
        a = np.abs(x[sl, None] - x[None, :]) - ra[sl, None] - ra[None, :] + ga
        b = np.abs(y[sl, None] - y[None, :]) - rb[sl, None] - rb[None, :] + gb
        pp = p[sl, None] * p[None, :]
        sums += [(pp * a * b).sum(), (pp * a * a).sum(), (pp * b * b).sum()]
    denominator = np.sqrt(sums[1] * sums[2])
    if not denominator > 0:
        return 0.0  # a constant sample is independent of everything
    value = max(float(sums[0] / denominator), 0.0)
    return value if squared else float(np.sqrt(value))


def efficiency_threshold(scores: np.ndarray, efficiency: float, weights: np.ndarray | None = None) -> float:
    """The threshold t whose cut ``score >= t`` keeps the weighted fraction ``efficiency`` of ``scores``.

    The lowest of the sorted scores at which the cumulative weight from the top reaches ``efficiency``
    (ties pass together, so the kept fraction can exceed it by the weight of one tied group).
    """
    eff = float(efficiency)
    if not 0.0 < eff <= 1.0:
        raise ConfigError(f"efficiency must be in (0, 1], got {efficiency}")
    s = as_samples(np.ravel(scores), "scores", ndim=1)
    p = _probabilities(weights, len(s), "weights")
    order = np.argsort(-s, kind="mergesort")
    cumulative = np.cumsum(p[order])
    k = min(int(np.searchsorted(cumulative, eff - 1e-12, side="left")), len(s) - 1)
    return float(s[order][k])


def passing_fraction(scores: np.ndarray, threshold: float, weights: np.ndarray | None = None) -> float:
    """Weighted fraction of ``scores`` with ``score >= threshold``."""
    s = np.asarray(scores, float).ravel()
    p = _probabilities(weights, len(s), "weights")
    return float(p[s >= threshold].sum())


def sculpting_edges(mass: np.ndarray, bins: int = SCULPTING_BINS, quantile: float = 0.001) -> np.ndarray:
    """``bins + 1`` equal-width mass edges over the central ``1 − 2 quantile`` of the background's ``mass``.

    The range leaves out the outermost 0.1 % each side (a long tail would squeeze the bulk into a few bins);
    a constant mass gets a unit-wide range around it.
    """
    m = as_samples(np.ravel(mass), "mass", ndim=1)
    if int(bins) < 1:
        raise ConfigError(f"mass sculpting needs at least 1 bin, got {bins}")
    lo, hi = (float(v) for v in np.quantile(m, [quantile, 1.0 - quantile]))
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi + 1e-9 * (1.0 + abs(hi)), int(bins) + 1)


def mass_sculpting(scores: np.ndarray, mass: np.ndarray, weights: np.ndarray | None = None, *,
                   efficiencies: Sequence[float] = (0.5, 0.1, 0.01), bins: int | np.ndarray = SCULPTING_BINS
                   ) -> dict[str, dict[str, float]]:
    """Per background efficiency ε_B: the cut, the kept fraction and JSD (bits) of passing vs failing mass.

    ``scores``, ``mass``, ``weights``: the background's (n,). ``bins``: a count (:func:`sculpting_edges` of
    the mass) or the edges themselves (pass the same edges to the figure). Returns ``{"0.5": {"threshold",
    "efficiency", "jsd", "inverse_jsd"}, ...}``; negative bin contents (NLO weights) are set to 0 before
    normalising; the JSD is NaN when the passing or the failing histogram is empty.
    """
    s = as_samples(np.ravel(scores), "scores", ndim=1)
    m = as_samples(np.ravel(mass), "mass", ndim=1)
    if len(s) != len(m):
        raise DataError(f"mass sculpting: {len(s)} background scores but {len(m)} mass values; one per event is "
                        "needed")
    w = as_weights(weights, len(s), "weights")
    w = np.ones(len(s)) if w is None else w
    edges = np.asarray(bins, float) if np.ndim(bins) else sculpting_edges(m, int(bins))
    out = {}
    for eff in efficiencies:
        t = efficiency_threshold(s, eff, w)
        passed = s >= t
        h_pass = np.clip(np.histogram(m[passed], edges, weights=w[passed])[0], 0, None)
        h_fail = np.clip(np.histogram(m[~passed], edges, weights=w[~passed])[0], 0, None)
        if not h_pass.sum() > 0 or not h_fail.sum() > 0:
            jsd = float("nan")
        else:
            jsd = js_divergence(h_pass, h_fail, eps=1e-12) / np.log(2.0)
        out[f"{eff:g}"] = {"threshold": t, "efficiency": passing_fraction(s, t, w), "jsd": jsd,
                           "inverse_jsd": float(1.0 / jsd) if jsd > 0 else float("inf")}
    return out
