"""Histogram-based comparisons: weighted histograms with sumw2 errors, per-bin chi², KL and JS divergences.

Conventions: divergences are in nats (natural log); ``eps`` is added to every bin of both densities
before they are normalised, so empty bins never produce inf or NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hepgen.errors import DataError
from hepgen.metrics._checks import as_samples, as_weights

Bins = int | Sequence[int] | np.ndarray | Sequence[np.ndarray]


def weighted_histogram(
    x: np.ndarray,
    bins: Bins = 50,
    range: Sequence[tuple[float, float]] | tuple[float, float] | None = None,  # noqa: A002
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Weighted histogram with its per-bin variance: h_b = Σ_{i∈b} w_i, σ²_b = Σ_{i∈b} w_i².

    ``x``: (n,) or (n, d). Returns ``(h, sumw2, edges)`` with ``h`` and ``sumw2`` of shape
    (bins,)*d and ``edges`` a list of d edge arrays. Negative weights are allowed (bins may be negative).
    Events outside ``range`` are dropped (no under/overflow).
    """
    x = as_samples(x, "x")
    sample = x[:, None] if x.ndim == 1 else x
    w = as_weights(weights, x.shape[0], "weights")
    if w is None:
        w = np.ones(sample.shape[0])
    if sample.shape[1] == 1:
        if range is not None and np.ndim(range) == 1:
            range = [range]  # noqa: A001
        if np.ndim(bins) == 1:
            bins = [np.asarray(bins, float)]  # one array of edges
    if sample.shape[1] == 1 and np.ndim(bins[0] if isinstance(bins, list) else bins) == 1:
        # one feature on given edges: np.histogram bins exactly like histogramdd (last edge closed),
        # 10-30x faster, which the bootstrap of the compare report relies on
        edges = np.asarray(bins[0] if isinstance(bins, list) else bins, dtype=float)
        h, _ = np.histogram(sample[:, 0], bins=edges, weights=w)
        sumw2, _ = np.histogram(sample[:, 0], bins=edges, weights=w * w)
        return h, sumw2, [edges]
    h, edges = np.histogramdd(sample, bins=bins, range=range, weights=w)
    sumw2, _ = np.histogramdd(sample, bins=edges, weights=w * w)
    return h, sumw2, list(edges)


def density_histogram(
    x: np.ndarray, edges: np.ndarray, weights: np.ndarray | None = None, *, overflow: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Unit-area density of a 1-D weighted sample on ``edges`` and its sumw2 variance:

        d_b = h_b / (H Δ_b),   σ²_b = sumw2_b / (H Δ_b)²,   H = Σ_b h_b   (H = 0: both zero)

    ``x``: (n,); ``edges``: (bins + 1,). ``overflow``: values beyond the outer edges count in the first/last
    bin (else they are dropped, as in :func:`weighted_histogram`). Returns ``(density, variance)``, (bins,) each.
    """
    edges = np.asarray(edges, dtype=float)
    x = as_samples(x, "x", ndim=1)
    if overflow:
        x = np.clip(x, edges[0], edges[-1])
    if weights is not None and not np.any(np.asarray(weights)):  # an empty (all-zero) replica: no shape
        return np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    h, sumw2, _ = weighted_histogram(x, edges, weights=weights)
    total = h.sum()
    scale = (total if total != 0 else 1.0) * np.diff(edges)
    return h / scale, sumw2 / scale**2


def common_edges(
    x: np.ndarray, y: np.ndarray, bins: int = 50, quantile: float = 0.0
) -> np.ndarray:
    """Equal-width bin edges, shape (bins + 1,), spanning both 1-D samples ``x`` and ``y``.

    ``quantile`` > 0 trims that fraction from each tail (taken over both samples) to keep outliers
    from squashing the binning. A constant sample gets a unit-wide range around its value.
    """
    both = np.concatenate([np.ravel(x), np.ravel(y)])
    lo, hi = (np.quantile(both, [quantile, 1 - quantile]) if quantile > 0 else (both.min(), both.max()))
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def chi2_from_histograms(
    h1: np.ndarray, sumw2_1: np.ndarray, h2: np.ndarray, sumw2_2: np.ndarray
) -> tuple[float, int]:
    """χ² = Σ_b (h1_b − h2_b)² / (σ²1_b + σ²2_b) over bins with σ²1_b + σ²2_b > 0; ndf = number of such bins.

    All inputs share one shape (any number of dimensions). Returns ``(chi2, ndf)``.
    """
    h1, h2 = np.asarray(h1, float), np.asarray(h2, float)
    var = np.asarray(sumw2_1, float) + np.asarray(sumw2_2, float)
    if not (h1.shape == h2.shape == var.shape):
        raise DataError(f"chi2: histogram shapes differ: {h1.shape}, {h2.shape}, {var.shape}.")
    used = var > 0
    chi2 = float(np.sum((h1[used] - h2[used]) ** 2 / var[used]))
    return chi2, int(used.sum())


def chi2_histograms(
    x: np.ndarray,
    y: np.ndarray,
    *,
    bins: Bins = 50,
    range: Sequence[tuple[float, float]] | tuple[float, float] | None = None,  # noqa: A002
    x_weights: np.ndarray | None = None,
    y_weights: np.ndarray | None = None,
    normalize: bool = True,
) -> tuple[float, int]:
    """Per-bin χ² between the weighted histograms of two samples, with sumw2 errors.

    ``x``: (n,) or (n, d), ``y``: (m,) or (m, d), histogrammed on common edges (from ``bins``/``range``,
    or spanning both samples). With ``normalize`` each histogram and its errors are scaled to unit total
    weight (a shape comparison), which costs one degree of freedom: ndf = used bins − 1.
    Returns ``(chi2, ndf)``; χ²/ndf ≈ 1 for two samples of one distribution.
    """
    x, y = as_samples(x, "x"), as_samples(y, "y")
    edges = _shared_edges(x, y, bins, range)
    h1, s1, _ = weighted_histogram(x, edges, weights=x_weights)
    h2, s2, _ = weighted_histogram(y, edges, weights=y_weights)
    if normalize:
        t1, t2 = _total(h1, "x"), _total(h2, "y")
        h1, s1, h2, s2 = h1 / t1, s1 / t1**2, h2 / t2, s2 / t2**2
    chi2, ndf = chi2_from_histograms(h1, s1, h2, s2)
    return chi2, max(ndf - int(normalize), 1)


def separation_power(h1: np.ndarray, h2: np.ndarray) -> float:
    """Separation power (triangular discrimination) of two histograms on the same bins:

        S = ½ Σ_b (p_b − q_b)² / (p_b + q_b),      p = h1 / Σ h1,  q = h2 / Σ h2,

    0 for identical shapes, 1 for histograms without a common bin (eq. 15 of arXiv:2009.03796, as the
    CaloChallenge's evaluate_plotting_helper computes it; bins empty in both count 0). ``h1``, ``h2``: counts
    or densities of one shape; with densities on unequal bins multiply by the widths first.
    """
    p, q = np.asarray(h1, dtype=np.float64), np.asarray(h2, dtype=np.float64)
    if p.shape != q.shape:
        raise DataError(f"separation power: the histograms have shapes {p.shape} and {q.shape}; they need the same "
                        "bins.")
    p, q = p / _total(p, "h1"), q / _total(q, "h2")
    both = p + q
    used = both > 0
    return float(0.5 * np.sum((p[used] - q[used]) ** 2 / both[used]))


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-10) -> float:
    """KL(p‖q) = Σ p log(p/q) of two non-negative grids of one shape (any ndim), each normalised after adding eps."""
    p, q = _normalised_pair(p, q, eps)
    return float(np.sum(p * (np.log(p) - np.log(q))))


def js_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-10) -> float:
    """JS(p, q) = ½ KL(p‖m) + ½ KL(q‖m), m = (p+q)/2; symmetric, 0 ≤ JS ≤ ln 2 (nats)."""
    p, q = _normalised_pair(p, q, eps)
    m = 0.5 * (p + q)
    js = 0.5 * np.sum(p * (np.log(p) - np.log(m))) + 0.5 * np.sum(q * (np.log(q) - np.log(m)))
    return float(min(max(js, 0.0), np.log(2.0)))


def kl_js_on_grid(
    p_density_grid: np.ndarray, q_density_grid: np.ndarray, eps: float = 1e-10
) -> tuple[float, float]:
    """``(KL(p‖q), JS(p, q))`` of two densities evaluated on one regular grid, e.g. (H, W) for 2-D GAN diagnostics.

    Grids need not be normalised (cell volume cancels); negative entries raise a DataError.
    """
    return kl_divergence(p_density_grid, q_density_grid, eps), js_divergence(p_density_grid, q_density_grid, eps)


def kl_js_from_samples(
    x: np.ndarray,
    y: np.ndarray,
    *,
    bins: Bins = 50,
    range: Sequence[tuple[float, float]] | tuple[float, float] | None = None,  # noqa: A002
    x_weights: np.ndarray | None = None,
    y_weights: np.ndarray | None = None,
    eps: float = 1e-10,
) -> tuple[float, float]:
    """``(KL(p‖q), JS(p, q))`` of the histograms of samples ``x`` ~ p and ``y`` ~ q on common edges.

    ``x``: (n,) or (n, d), ``y``: (m,) or (m, d) — d = 2 gives the 2-D version. Bins whose weighted
    content is negative (NLO weights) are set to zero before normalising.
    """
    x, y = as_samples(x, "x"), as_samples(y, "y")
    edges = _shared_edges(x, y, bins, range)
    h1, _, _ = weighted_histogram(x, edges, weights=x_weights)
    h2, _, _ = weighted_histogram(y, edges, weights=y_weights)
    return kl_js_on_grid(np.clip(h1, 0, None), np.clip(h2, 0, None), eps)


def _shared_edges(x: np.ndarray, y: np.ndarray, bins: Bins, range) -> list[np.ndarray]:  # noqa: A002
    """Common edges for both samples: explicit arrays are kept, counts get edges spanning x ∪ y (or ``range``)."""
    d = 1 if x.ndim == 1 else x.shape[1]
    dy = 1 if y.ndim == 1 else y.shape[1]
    if d != dy:
        raise DataError(f"x has {d} feature(s) but y has {dy}; both samples need the same features.")
    xs, ys = x.reshape(len(x), d), y.reshape(len(y), d)
    if isinstance(bins, int | np.integer):
        per_dim = [bins] * d
    elif d == 1 and np.ndim(bins) == 1:
        per_dim = [bins]  # one array of edges
    else:
        per_dim = list(bins)
    if len(per_dim) != d:
        raise DataError(f"bins: got {len(per_dim)} entries for {d} feature(s).")
    ranges = [range] * d if (range is not None and np.ndim(range) == 1) else (range or [None] * d)
    edges = []
    for k, (b, r) in enumerate(zip(per_dim, ranges, strict=True)):
        if np.ndim(b) == 1:
            edges.append(np.asarray(b, float))
        elif r is not None:
            edges.append(np.linspace(r[0], r[1], int(b) + 1))
        else:
            edges.append(common_edges(xs[:, k], ys[:, k], int(b)))
    return edges


def _total(h: np.ndarray, name: str) -> float:
    total = float(h.sum())
    if not total > 0:
        raise DataError(f"{name}: the histogram has total weight {total:g} inside the range; cannot normalise.")
    return total


def _normalised_pair(p: np.ndarray, q: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    p, q = np.asarray(p, float), np.asarray(q, float)
    if p.shape != q.shape:
        raise DataError(f"KL/JS: the two grids have different shapes {p.shape} and {q.shape}.")
    for name, g in (("p", p), ("q", q)):
        if not np.isfinite(g).all() or (g < 0).any():
            raise DataError(f"KL/JS: grid {name} must be finite and non-negative.")
    p, q = p + eps, q + eps
    return p / p.sum(), q / q.sum()
