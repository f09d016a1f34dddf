"""Exact sampling with a flow proposal: independence Metropolis–Hastings and importance reweighting.

Proposals φ' ~ q are independent; the chain moves from φ to φ' with probability

    min(1, w(φ') / w(φ)),   w = p̃ / q = exp(−S − log q)

(:func:`hepgen.metrics.sampling.independence_metropolis`), which leaves p = exp(−S)/Z invariant for any q
that covers p, so the chain's averages are exact whatever the flow's quality; a poor flow shows up as a low
acceptance and a long τ_int. Reweighting uses the same w: ⟨O⟩ = Σ w O / Σ w (self-normalised, bias
O(1/n)), with Kish's effective sample size (Σw)²/Σw².

τ_int (Sokal's automatic window, ``tau = 1 + 2 Σ ρ(t)``, as ``hepgen data phi4``) is in units of proposals
here and of HMC trajectories there; N chain steps are worth N/τ_int independent configurations.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from hepgen.errors import DataError
from hepgen.metrics.sampling import (
    effective_sample_size_from_log_weights,
    independence_metropolis,
    integrated_autocorrelation_time,
)
from hepgen.memory import warm_heap
from hepgen.nn.rng import seeded


@torch.no_grad()
def propose(model: Any, n: int, batch_size: int = 10_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n proposals of ``model`` (a flow with a ``target``): (φ (n, *shape), log p̃(φ) (n,), log q(φ) (n,)),
    float64 NumPy, drawn in blocks of ``batch_size`` from the current torch RNG (a lattice flow runs each block
    through its layers in pieces of a bounded size, so on a CPU the block size hardly matters: one thread, 8 spline
    layers of (16, 16) channels, about 5 µs per site and Z₂-symmetrised proposal at L = 8-16, see
    :mod:`hepgen.memory`).

    A model with ``z2 = True`` (a Z₂-even target) proposes from q_s(φ) = ½[q(φ) + q(−φ)]: each draw's
    sign flipped with probability ½, log q_s = logaddexp(log q(φ), log q(−φ)) − log 2 (the same for ±φ); a
    model with ``equivariant = True`` has q(−φ) = q(φ) = q_s(φ), and the second pass is skipped.
    """
    if torch.device(getattr(model, "device", "cpu")).type == "cpu":
        warm_heap()  # without it the flow's temporaries of a few MB are mapped and faulted in at every layer
    xs, lps, lqs = [], [], []
    for start in range(0, int(n), int(batch_size)):
        k = min(int(batch_size), int(n) - start)
        x, log_q = model.sample_internal(k)
        if getattr(model, "z2", False) and not getattr(model, "equivariant", False):  # an equivariant q is even already
            log_q = torch.logaddexp(log_q, model.log_prob_internal(-x)) - math.log(2.0)
            sign = torch.randint(0, 2, (k,), device=x.device).to(x.dtype) * 2 - 1
            x = x * sign.reshape(k, *([1] * (x.dim() - 1)))
        xs.append(x.cpu().double().numpy())
        lqs.append(log_q.cpu().double().numpy())
        lps.append(model.target.log_prob(x.double()).cpu().double().numpy())  # the action summed in float64
    return np.concatenate(xs), np.concatenate(lps), np.concatenate(lqs)


def tau_int(series: np.ndarray) -> float:
    """τ_int of a chain series (n,); infinite when the chain never moved."""
    try:
        return integrated_autocorrelation_time(np.asarray(series, dtype=float))
    except DataError:
        return float("inf")


def metropolis_chain(log_p: np.ndarray, log_q: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """Independence MH over pre-drawn proposals: (indices of the state per step (n,), accepted (n,) bool,
    acceptance over the n − 1 transitions)."""
    acceptance, indices = independence_metropolis(log_p, log_q, seed=seed)
    accepted = np.zeros(len(indices), dtype=bool)
    accepted[1:] = indices[1:] != indices[:-1]
    return indices, accepted, float(acceptance)


def flow_mcmc(model: Any, n: int, seed: int = 0, batch_size: int = 10_000) -> dict[str, Any]:
    """A chain of ``n`` steps (n proposals) with ``model`` (a :class:`~hepgen.lattice.LatticeFlow`) as proposal.

    Returns ``configs: (n, *shape)`` (the chain's state at every step, float32), ``magnetisation: (n,)`` (the
    site average M), ``action: (n,)``, ``accepted: (n,)`` bool, and 0-d arrays ``acceptance``, ``tau_int`` (of |M|,
    in proposals), ``tau_int_magnetisation`` (of the signed M: tunnelling), ``tau_int_action`` and ``ess_reweighting`` (Kish ESS of the proposals' weights per
    proposal). Proposals are drawn on torch's RNG seeded with ``seed`` (:func:`hepgen.nn.rng.seeded`: the caller's RNG state
    is left as it was), the accept draws from a NumPy generator seeded with ``seed`` too.
    """
    if int(n) != n or n < 2:
        raise DataError(f"an MCMC chain needs at least 2 steps, got n={n!r}")
    with seeded(seed, getattr(model, "device", "cpu")):
        phi, log_p, log_q = propose(model, int(n), batch_size)
    indices, accepted, acceptance = metropolis_chain(log_p, log_q, seed=seed)
    configs = phi[indices]
    mag = configs.reshape(len(configs), -1).mean(-1)
    act = -log_p[indices]
    return {
        "configs": configs.astype(np.float32),
        "magnetisation": mag,
        "action": act,
        "accepted": accepted,
        "acceptance": np.asarray(acceptance),
        "tau_int": np.asarray(tau_int(np.abs(mag))),
        "tau_int_magnetisation": np.asarray(tau_int(mag)),
        "tau_int_action": np.asarray(tau_int(act)),
        "ess_reweighting": np.asarray(effective_sample_size_from_log_weights(log_p - log_q)),
    }


def self_normalised_weights(log_p: np.ndarray, log_q: np.ndarray) -> np.ndarray:
    """w_i / Σ w (n,) from log w = log p̃ − log q, computed stably."""
    lw = np.asarray(log_p, float) - np.asarray(log_q, float)
    w = np.exp(lw - lw.max())
    return w / w.sum()


__all__ = ["flow_mcmc", "metropolis_chain", "propose", "self_normalised_weights", "tau_int"]
