"""The 2-D lattice φ⁴ target: p̃(φ) = exp(−S[φ]) on an L × L periodic lattice.

    S[φ] = Σ_x [ Σ_μ (φ_{x+μ} − φ_x)² + m² φ_x² + λ φ_x⁴ ]

in the convention of ``hepgen data phi4`` (Albergo, Kanwar & Shanahan 2019): the action and its
gradient are :func:`hepgen.data.generators.phi4.action` and :func:`~hepgen.data.generators.phi4.force`
themselves, wrapped in one autograd function (float64 NumPy inside, the caller's dtype and device
outside), so the flow is trained on exactly the distribution the HMC generator samples.

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


class _Action(torch.autograd.Function):
    """S[φ] by phi4.action; its gradient dS/dφ by phi4.force (both float64 NumPy)."""

    @staticmethod
    def forward(ctx, phi: Tensor, m2: float, lam: float) -> Tensor:
        ctx.save_for_backward(phi)
        ctx.m2, ctx.lam = m2, lam
        s = phi4.action(phi.detach().cpu().double().numpy(), m2, lam)
        return torch.as_tensor(s, dtype=phi.dtype, device=phi.device)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (phi,) = ctx.saved_tensors
        f = phi4.force(phi.detach().cpu().double().numpy(), ctx.m2, ctx.lam)
        f = torch.as_tensor(f, dtype=phi.dtype, device=phi.device)
        return grad.reshape(*grad.shape, 1, 1) * f, None, None


def action(phi: Tensor, m2: float, lam: float) -> Tensor:
    """S[φ] for φ: (batch, L, L) -> (batch,), differentiable in φ (the ``hepgen data phi4`` action)."""
    return _Action.apply(phi, float(m2), float(lam))


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
