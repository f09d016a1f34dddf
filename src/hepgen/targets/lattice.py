"""The 2-D lattice φ⁴ target: p̃(φ) = exp(−S[φ]) on an L × L periodic lattice.

    S[φ] = Σ_x [ Σ_μ (φ_{x+μ} − φ_x)² + m² φ_x² + λ φ_x⁴ ]

in the convention of ``hepgen data phi4`` (Albergo, Kanwar & Shanahan 2019): :func:`action` is that of
:func:`hepgen.data.generators.phi4.action` in batched torch (float64 sums, on the caller's device; its
autograd gradient is :func:`~hepgen.data.generators.phi4.force`, which the tests check), so the flow is
trained on exactly the distribution the HMC generator samples. (It replaced an autograd Function around
the NumPy action and force: same numbers, no host copies, and a CUDA field stays on the GPU.)

The free theory (λ = 0, m² > 0) is Gaussian, S = φᵀKφ with K's eigenvalues p̂² + m² (p̂² = Σ_μ 4 sin²(p_μ/2)):
log Z = (V/2) log π − ½ Σ_p log(p̂² + m²), and ⟨φ_x²⟩ = :func:`~hepgen.data.generators.phi4.free_phi_squared`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hepgen.data.generators import phi4
from hepgen.errors import ConfigError
from hepgen.targets.base import Target, check_number


def action(phi: Tensor, m2: float, lam: float) -> Tensor:
    """S[φ] for φ: (batch, *lattice) -> (batch,) on a periodic lattice of 1, 2 or 3 dimensions (the last axes),
    batched torch, differentiable in φ (autograd gives dS/dφ = 2 Σ_μ (2φ_x − φ_{x+μ} − φ_{x−μ}) + 2m²φ + 4λφ³).

    Summed in float64 whatever φ's dtype (S is a sum of V terms of either sign and log w = −S − log q
    needs it to ~1e-6 absolute on lattices of 10⁴ sites), returned in φ's dtype: for L = 2 … 16 in 2-D this is
    the ``hepgen data phi4`` action."""
    x = phi.double()
    density = m2 * x**2 + lam * x**4
    dims = tuple(range(1, x.dim()))
    for axis in dims:
        density = density + (torch.roll(x, -1, dims=axis) - x) ** 2
    return density.sum(dims).to(phi.dtype)


class Phi4(Target):
    """exp(−S[φ]) of 2-D lattice φ⁴ (module doc). Args: L (sites per side), m2 (bare mass²), lam (λ ≥ 0)."""

    name = "phi4"
    domain = "real"

    def __init__(self, L: int = 8, m2: float = -4.0, lam: float = 6.008):
        self.L = check_number(L, "L", "phi4", 2, integer=True)
        self.m2 = check_number(m2, "m2", "phi4")
        self.lam = check_number(lam, "lam", "phi4", 0.0)
        if self.lam == 0.0 and self.m2 <= 0.0:
            raise ConfigError(f"options 'm2'={self.m2} and 'lam'=0 of target 'phi4' give an unbounded action "
                              "(exp(-S) is not normalisable); use m2 > 0 for the free theory or lam > 0")
        self.event_shape = (self.L, self.L)

    def log_prob(self, x: Tensor) -> Tensor:
        return -action(self.check(x), self.m2, self.lam)

    def action(self, x: Tensor) -> Tensor:
        """S[φ]: (batch, L, L) -> (batch,)."""
        return action(self.check(x), self.m2, self.lam)

    @property
    def log_norm(self) -> float | None:
        if self.lam != 0.0:
            return None
        p = 2.0 * np.pi * np.arange(self.L) / self.L
        p_hat2 = 4.0 * np.sin(p / 2.0) ** 2
        eig = p_hat2[:, None] + p_hat2[None, :] + self.m2
        return float(0.5 * self.L**2 * math.log(math.pi) - 0.5 * np.log(eig).sum())

    def free_phi_squared(self) -> float:
        """Exact ⟨φ_x²⟩ of the free theory (λ = 0 only)."""
        if self.lam != 0.0:
            raise ConfigError("free_phi_squared is the free theory's (lam = 0)")
        return phi4.free_phi_squared(self.L, self.m2)

    def get_config(self) -> dict[str, Any]:
        return {"L": self.L, "m2": self.m2, "lam": self.lam}
