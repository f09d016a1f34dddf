"""Diagnostics for sampling with a flow: importance-weight ESS, independence Metropolis–Hastings, autocorrelation.

Conventions: log-weights log w = log p_target − log q (unnormalised p is fine); chains are (n_steps,)
or (n_steps, n_chains).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from hepgen.errors import DataError
from hepgen.metrics._checks import as_samples, as_weights


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish ESS = (Σ w)² / Σ w² of importance weights ``weights``: (n,); between 1 and n for w ≥ 0."""
    w = as_weights(weights, len(np.ravel(weights)), "weights")
    return float(w.sum() ** 2 / np.sum(w**2))


def effective_sample_size_from_log_weights(log_weights: np.ndarray, normalized: bool = True) -> float:
    """Kish ESS from log-weights, stably: exp(2 logsumexp(lw) − logsumexp(2 lw)); divided by n if ``normalized``.

    ``log_weights``: (n,); entries of −inf (zero weight) are allowed, NaN and +inf are not.
    """
    lw = np.ravel(np.asarray(log_weights, dtype=float))
    _check_log(lw, "log_weights")
    ess = float(np.exp(2.0 * logsumexp(lw) - logsumexp(2.0 * lw)))
    return ess / len(lw) if normalized else ess


def independence_metropolis(
    log_p: np.ndarray, log_q: np.ndarray, seed: int = 0
) -> tuple[float, np.ndarray]:
    """Independence Metropolis–Hastings over pre-drawn proposals x_i ~ q: returns ``(acceptance_rate, indices)``.

    The chain starts at proposal 0; at step i it moves to x_i with probability min(1, w_i / w_cur),
    w = p/q, i.e. accepts if log u < log w_i − log w_cur. ``log_p`` (target, unnormalised) and ``log_q``:
    (n,). ``indices``: (n,) proposal index of the chain state at each step (use ``x[indices]``);
    the acceptance rate is taken over the n − 1 transitions.
    """
    lp, lq = np.ravel(np.asarray(log_p, float)), np.ravel(np.asarray(log_q, float))
    if lp.shape != lq.shape or len(lp) < 2:
        raise DataError(f"independence_metropolis: log_p {lp.shape} and log_q {lq.shape} must be (n,) with n ≥ 2.")
    _check_log(lp, "log_p")
    if not np.isfinite(lq).all():
        row = int(np.flatnonzero(~np.isfinite(lq))[0])
        raise DataError(f"independence_metropolis: log_q must be finite for every proposal; row {row} is {lq[row]}.")
    log_w = lp - lq
    log_u = np.log(np.random.default_rng(seed).random(len(lp)))
    indices = np.empty(len(lp), dtype=np.int64)
    current, accepted = 0, 0
    start = 0
    if not np.isfinite(log_w[0]):  # begin at the first proposal with positive target density
        finite = np.flatnonzero(np.isfinite(log_w))
        if len(finite) == 0:
            raise DataError("independence_metropolis: every proposal has zero target density (log_p = -inf).")
        current = start = int(finite[0])
    indices[: start + 1] = current
    lw_list, lu_list = log_w.tolist(), log_u.tolist()
    lw_cur = lw_list[current]
    for i in range(start + 1, len(lp)):
        if lu_list[i] < lw_list[i] - lw_cur:
            current, lw_cur = i, lw_list[i]
            accepted += 1
        indices[i] = current
    return accepted / max(len(lp) - 1 - start, 1), indices


def autocorrelation(x: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation ρ(t) = C(t)/C(0), t = 0..n−1, by FFT.

    ``x``: (n,) or (n, chains); the autocovariance C is averaged over chains. Returns (n,).
    """
    x = as_samples(x, "chain")
    x = x[:, None] if x.ndim == 1 else x.reshape(len(x), -1)
    n = len(x)
    centred = x - x.mean(axis=0)
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(centred, n=size, axis=0)
    acov = np.fft.irfft(f * np.conj(f), n=size, axis=0)[:n].mean(axis=1)
    if not acov[0] > 0:
        raise DataError("autocorrelation: the chain is constant; its autocorrelation is undefined.")
    return acov / acov[0]


def integrated_autocorrelation_time(x: np.ndarray, c: float = 5.0) -> float:
    """τ_int = 1 + 2 Σ_{t=1}^{M} ρ(t) with Sokal's automatic window: the smallest M with M ≥ c·τ_int(M).

    ``x``: (n,) or (n, chains). For AR(1) with coefficient φ, τ_int = (1 + φ)/(1 − φ). If no window
    satisfies the criterion (chain too short, n ≲ c·τ), the largest window is used.
    """
    rho = autocorrelation(x)
    taus = 2.0 * np.cumsum(rho) - 1.0  # taus[M] = 1 + 2 Σ_{t=1}^{M} ρ(t)
    windows = np.arange(len(taus))
    ok = windows >= c * taus
    m = int(np.argmax(ok)) if ok.any() else len(taus) - 1
    return float(taus[m])


def _check_log(lw: np.ndarray, name: str) -> None:
    if len(lw) == 0:
        raise DataError(f"{name}: the array is empty.")
    bad = np.isnan(lw) | (lw == np.inf)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{name}: NaN or +inf at row {row}.")
    if np.all(lw == -np.inf):
        raise DataError(f"{name}: every entry is -inf (all weights zero).")
