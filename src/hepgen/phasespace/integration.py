"""Monte Carlo integration from weighted events, and unweighting by accept–reject.

From n weighted events (x_i ~ q, w_i = f(x_i)/q(x_i)):

    I ≈ w̄ = (1/n) Σ w_i,   σ_I = s_w / √n,   variance per call s_w²,   ε_unw = w̄ / max w,   ESS = (Σw)²/Σw²

Unweighting keeps x_i with probability min(1, w_i / w_max). With w_max the true supremum of w the kept
events are distributed exactly as f/I, with efficiency ε = I / w_max. Here w_max is estimated from a
calibration sample: its ``quantile`` (1.0: the maximum). **Caveat:** the maximum of a finite sample
underestimates the supremum, and a quantile < 1 does so on purpose (higher efficiency): events with
w > w_max ("overweights") are then kept with probability 1 instead of w/w_max, which biases the
unweighted sample where q undersamples f. The fraction of overweight events and their excess weight
Σ(w − w_max)₊ / Σw are reported so the bias can be judged; with quantile 1 and a large calibration they
are small, not zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hepgen.errors import ConfigError, DataError


def summarise(w: np.ndarray) -> dict[str, float]:
    """integral, error, variance_per_call, calls, unweighting_efficiency and ess of weights w (n,)."""
    w = np.asarray(w, dtype=float)
    if w.ndim != 1 or len(w) < 2 or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise DataError(f"weights must be (n,) with n >= 2, finite and >= 0; got shape {w.shape}")
    mean, var = float(w.mean()), float(w.var(ddof=1))
    top = float(w.max())
    return {"integral": mean, "error": float(np.sqrt(var / len(w))), "variance_per_call": var, "calls": len(w),
            "unweighting_efficiency": mean / top if top > 0 else 0.0,
            "ess": float(w.sum() ** 2 / np.sum(w**2)) if top > 0 else 0.0}


def unweighting_efficiency(w: np.ndarray, quantile: float = 1.0) -> float:
    """w̄ / w_max with w_max the ``quantile`` of the weights (1.0: their maximum)."""
    w = np.asarray(w, dtype=float)
    top = float(np.quantile(w, quantile)) if quantile < 1.0 else float(w.max())
    return float(w.mean() / top) if top > 0 else 0.0


def unweight(draw: Callable[[int], tuple[np.ndarray, np.ndarray]], n: int, seed: int = 0,
             calibration: int = 100_000, quantile: float = 1.0, batch_size: int = 100_000,
             max_calls: int | None = None) -> dict[str, Any]:
    """``n`` unweighted events from a weighted sampler ``draw(k) -> (x (k, d), w (k,))`` (module doc).

    Returns ``samples: (n, d)`` and 0-d arrays ``efficiency`` (kept / drawn after calibration),
    ``max_weight``, ``overweight_fraction`` (of kept events), ``overweight_excess`` (Σ(w − w_max)₊/Σw of the
    drawn events), ``calls`` (every call, calibration included), ``integral`` and ``integral_error`` (from
    all calls). ``max_calls`` (default 1000 n / the calibration efficiency) guards against a hopeless run.
    """
    if int(n) != n or n < 1:
        raise ConfigError(f"the number of unweighted events must be a positive integer, got {n!r}")
    if int(calibration) != calibration or calibration < 2:
        raise ConfigError(f"calibration must be an integer >= 2, got {calibration!r}")
    if not 0.0 < float(quantile) <= 1.0:
        raise ConfigError(f"the max-weight quantile must be in (0, 1], got {quantile!r}")
    rng = np.random.default_rng(seed)
    _, w_cal = draw(int(calibration))
    w_max = float(np.quantile(w_cal, quantile)) if quantile < 1.0 else float(w_cal.max())
    if not w_max > 0:
        raise DataError(f"every one of the {calibration} calibration weights is 0: the sampler never hits the "
                        "integrand's support")
    expected = max(float(w_cal.mean()) / w_max, 1e-12)
    limit = int(max_calls) if max_calls is not None else int(min(1000 * n / expected, 1e12))
    kept: list[np.ndarray] = []
    have, calls, over, w_sum, w_sq, excess = 0, 0, 0, float(w_cal.sum()), float((w_cal**2).sum()), 0.0
    drawn = 0.0  # Σ w of the events drawn after calibration
    while have < n:
        if calls >= limit:
            raise DataError(f"unweighting stopped after {calls} calls with {have} of {n} events (efficiency "
                            f"{have / max(calls, 1):.2e}); train the sampler longer or lower the max-weight quantile")
        x, w = draw(int(batch_size))
        calls += len(w)
        w_sum, w_sq = w_sum + float(w.sum()), w_sq + float((w**2).sum())
        excess += float(np.clip(w - w_max, 0.0, None).sum())
        drawn += float(w.sum())
        keep = rng.random(len(w)) * w_max < w
        over += int(np.count_nonzero(w[keep] > w_max))
        kept.append(x[keep])
        have += int(keep.sum())
    samples = np.concatenate(kept)[:n]
    total = calls + len(w_cal)
    mean = w_sum / total
    var = max(w_sq / total - mean**2, 0.0) * total / (total - 1)
    return {"samples": samples, "efficiency": np.asarray(have / calls), "max_weight": np.asarray(w_max),
            "overweight_fraction": np.asarray(over / have), "overweight_excess": np.asarray(excess / max(drawn, 1e-300)),
            "calls": np.asarray(total), "integral": np.asarray(mean), "integral_error": np.asarray(np.sqrt(var / total))}


__all__ = ["summarise", "unweight", "unweighting_efficiency"]
