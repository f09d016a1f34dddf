"""Observables of 2-D lattice φ⁴ ensembles (Albergo, Kanwar & Shanahan 2019, section IV), optionally weighted.

On configurations φ: (n, L, L) with weights w (n,) (1 for a Markov chain, importance weights for reweighting):

    G_c(x)  = (1/V) Σ_y [⟨φ(y) φ(y+x)⟩ − ⟨φ(y)⟩⟨φ(y+x)⟩]      connected two-point function (FFT over y)
    χ₂      = Σ_x G_c(x)                                       two-point susceptibility
    E       = (1/d) Σ_μ G_c(μ̂)                                 Ising energy density (d = 2)
    G̃(t)    = Σ_{x₁} G_c(x₁, t)                                zero-momentum correlator
    m_p(t)  = arccosh((G̃(t−1) + G̃(t+1)) / (2 G̃(t)))           effective pole mass; ``pole_mass`` averages t = 1 … L/2 − 1
    ⟨|M|⟩   with M = (1/V) Σ_x φ(x)

Errors: :func:`jackknife` over ``blocks`` contiguous blocks (blocks longer than τ_int absorb the
autocorrelation of a chain).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hepgen.errors import DataError


def _weights(n: int, weights: np.ndarray | None) -> np.ndarray:
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise DataError(f"weights must be (n,) = ({n},), finite, >= 0 and not all 0; got shape {w.shape}")
    return w / w.sum()


def _configs(phi: np.ndarray) -> np.ndarray:
    phi = np.asarray(phi, dtype=float)
    if phi.ndim != 3 or phi.shape[1] != phi.shape[2]:
        raise DataError(f"configurations must be (n, L, L), got shape {phi.shape}")
    return phi


def two_point(phi: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Connected G_c(x): (L, L), x = (x₁, x₂) the separation (module doc)."""
    phi = _configs(phi)
    w = _weights(len(phi), weights)
    v = phi.shape[1] * phi.shape[2]
    f = np.fft.fft2(phi)
    full = np.fft.ifft2(np.tensordot(w, np.abs(f) ** 2, axes=1)).real / v
    mean = np.tensordot(w, phi, axes=1)
    fm = np.fft.fft2(mean)
    return full - np.fft.ifft2(np.abs(fm) ** 2).real / v


def susceptibility(g: np.ndarray) -> float:
    """χ₂ = Σ_x G_c(x)."""
    return float(np.sum(g))


def ising_energy(g: np.ndarray) -> float:
    """E = (G_c(1, 0) + G_c(0, 1)) / 2."""
    return float(0.5 * (g[1, 0] + g[0, 1]))


def effective_mass(g: np.ndarray) -> np.ndarray:
    """m_p(t) for t = 1 … L − 2 from the zero-momentum correlator (NaN where the arccosh is undefined)."""
    gt = g.sum(axis=0)  # Σ over x₁: G̃ as a function of the second coordinate t
    ratio = (gt[:-2] + gt[2:]) / (2.0 * gt[1:-1])
    with np.errstate(invalid="ignore"):
        return np.arccosh(np.where(ratio >= 1.0, ratio, np.nan))


def pole_mass(g: np.ndarray) -> float:
    """The effective pole mass averaged over t = 1 … L/2 − 1 (at least t = 1)."""
    m = effective_mass(g)[: max(1, g.shape[0] // 2 - 1)]
    return float(np.mean(m[np.isfinite(m)])) if np.isfinite(m).any() else float("nan")


def observables(phi: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    """⟨|M|⟩, χ₂, E, m_p and ⟨φ²⟩ of configurations (n, L, L) with optional weights (n,)."""
    phi = _configs(phi)
    w = _weights(len(phi), weights)
    g = two_point(phi, w)
    mag = phi.reshape(len(phi), -1).mean(-1)
    return {"abs_magnetisation": float(np.dot(w, np.abs(mag))), "chi2": susceptibility(g),
            "ising_energy": ising_energy(g), "pole_mass": pole_mass(g),
            "phi2": float(np.dot(w, (phi**2).reshape(len(phi), -1).mean(-1)))}


def jackknife(estimator: Callable[[np.ndarray, np.ndarray | None], dict[str, float]], phi: np.ndarray,
              weights: np.ndarray | None = None, blocks: int = 20) -> dict[str, tuple[float, float]]:
    """{name: (value, error)}: ``estimator(phi, weights)`` on all configurations and its delete-one-block
    jackknife error over ``blocks`` contiguous blocks."""
    n = len(phi)
    if blocks < 2 or n < blocks:
        raise DataError(f"jackknife needs 2 <= blocks <= n, got blocks={blocks}, n={n}")
    full = estimator(phi, weights)
    edges = np.linspace(0, n, blocks + 1).astype(int)
    reps: dict[str, list[float]] = {k: [] for k in full}
    for b in range(blocks):
        keep = np.r_[0:edges[b], edges[b + 1]:n]
        est = estimator(phi[keep], None if weights is None else np.asarray(weights)[keep])
        for k in full:
            reps[k].append(est[k])
    out = {}
    for k, value in full.items():
        r = np.asarray(reps[k])
        out[k] = (value, float(np.sqrt((blocks - 1) / blocks * np.sum((r - r.mean()) ** 2))))
    return out


__all__ = ["effective_mass", "ising_energy", "jackknife", "observables", "pole_mass", "susceptibility",
           "two_point"]
