"""e⁺e⁻ → q q̄ g at leading order over three-body phase space, with a resolution cut y_ij > y_cut.

Variables: the energy fractions x₁ = 2E_q/√s, x₂ = 2E_q̄/√s (x₃ = 2 − x₁ − x₂ the gluon's), massless partons.
The pair invariants are y₁₃ = 1 − x₂, y₂₃ = 1 − x₁, y₁₂ = 1 − x₃, and the LO cross section, normalised to
the Born σ₀ = 4πα² N_c Σ_q e_q² / (3s), is (Ellis, Stirling & Webber, eq. 3.19)

    (1/σ₀) dσ/dx₁dx₂ = (C_F α_s / 2π) (x₁² + x₂²) / ((1 − x₁)(1 − x₂))

on the unit square (x₁, x₂) ∈ [0, 1]² (Jacobian 1), zero outside the physical region x₁ + x₂ ≥ 1 and
outside the cut y_ij > y_cut for all three pairs (x₁, x₂ < 1 − y, x₁ + x₂ > 1 + y). Its integral, the
three-jet rate R₃ = σ₃/σ₀, is (ESW eq. 3.31, checked against scipy's dblquad in the tests)

    R₃ = (C_F α_s/2π) [ (3 − 6y) ln(y/(1−2y)) + 2 ln²(y/(1−y)) + 5/2 − 6y − 9/2 y² + 4 Li₂(y/(1−y)) − π²/3 ]

for 0 < y < ⅓. With ``sqrt_s`` (GeV) the integrand is in picobarns: times σ₀ for five light flavours
(Σ e_q² = 11/9, N_c = 3, α = 1/137.036, ħ²c² = 0.3894 mb GeV²).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from scipy.special import spence
from torch import Tensor

from hepgen.targets.base import Target, check_number

C_F = 4.0 / 3.0
ALPHA_EM = 1.0 / 137.036
GEV2_PB = 0.3894e9  # (ħc)² in pb GeV²


def born_cross_section_pb(sqrt_s: float) -> float:
    """σ₀(e⁺e⁻ → q q̄) for u, d, s, c, b at √s (GeV), in pb."""
    return 4.0 * math.pi * ALPHA_EM**2 * 3.0 * (11.0 / 9.0) / (3.0 * sqrt_s**2) * GEV2_PB


def three_jet_rate(ycut: float, alpha_s: float = 0.118) -> float:
    """R₃(y_cut) = σ₃/σ₀ at LO (module doc), 0 < y_cut < ⅓."""
    y = float(ycut)
    li2 = float(spence(1.0 - y / (1.0 - y)))  # scipy's spence(1 - z) is Li₂(z)
    bracket = ((3.0 - 6.0 * y) * math.log(y / (1.0 - 2.0 * y)) + 2.0 * math.log(y / (1.0 - y)) ** 2 + 2.5
               - 6.0 * y - 4.5 * y * y + 4.0 * li2 - math.pi**2 / 3.0)
    return C_F * alpha_s / (2.0 * math.pi) * bracket


class EEToQQG(Target):
    """(1/σ₀) dσ/dx₁dx₂ of e⁺e⁻ → q q̄ g with y_ij > ycut (module doc); in pb with ``sqrt_s``."""

    name = "eeqqg"
    domain = "unit-hypercube"

    def __init__(self, ycut: float = 0.01, alpha_s: float = 0.118, sqrt_s: float | None = None):
        self.ycut = check_number(ycut, "ycut", "eeqqg", 0.0, low_open=True, high=1.0 / 3.0, high_open=True)
        self.alpha_s = check_number(alpha_s, "alpha_s", "eeqqg", 0.0, low_open=True)
        self.sqrt_s = None if sqrt_s is None else check_number(sqrt_s, "sqrt_s", "eeqqg", 0.0, low_open=True)
        self.scale = 1.0 if self.sqrt_s is None else born_cross_section_pb(self.sqrt_s)
        self.event_shape = (2,)
        self.dims = 2

    def log_prob(self, x: Tensor) -> Tensor:
        x = self.check(x)
        x64 = x.double()
        x1, x2 = x64[:, 0], x64[:, 1]
        y = self.ycut
        inside = (x1 < 1.0 - y) & (x2 < 1.0 - y) & (x1 + x2 > 1.0 + y) & (x1 >= 0.0) & (x2 >= 0.0)
        one = torch.ones_like(x1)
        d1, d2 = torch.where(inside, 1.0 - x1, one), torch.where(inside, 1.0 - x2, one)
        value = (math.log(C_F * self.alpha_s / (2.0 * math.pi) * self.scale) + torch.log(x1 * x1 + x2 * x2)
                 - torch.log(d1) - torch.log(d2))
        return torch.where(inside, value, -math.inf).to(x.dtype)

    @property
    def log_norm(self) -> float:
        return math.log(three_jet_rate(self.ycut, self.alpha_s) * self.scale)

    def get_config(self) -> dict[str, Any]:
        return {"ycut": self.ycut, "alpha_s": self.alpha_s, "sqrt_s": self.sqrt_s}
