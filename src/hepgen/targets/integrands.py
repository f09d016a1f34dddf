"""Test integrands on the unit hypercube [0, 1]^d with exact integrals (the i-flow / VEGAS test suite).

    gaussian  f(x) = Π_i N(x_i; ½, σ²)                                        σ = width (0.05)
    camel     f(x) = ½ Π_i N(x_i; ⅓, σ²) + ½ Π_i N(x_i; ⅔, σ²)                σ = width (0.1)
    ring      f(x) = exp(−(|x − ½| − r₀)² / (2w²)) / N_d                      w = width (0.02), r₀ = radius (0.3)
    breit-wigner  f(x) = ρ BW(s)/N_BW Π_{i≥3} ¾(1 + (2x_i − 1)²) + (1 − ρ) Π_i λe^{−λx_i}/(1 − e^{−λ}),  d ≥ 3,
              s = (x₁ + x₂)/2, BW(s) = (1/π) MΓ / ((s − M²)² + M²Γ²)    M = mass (0.7), Γ = width (0.02)

Exact integrals over the cube: gaussian Π_i [Φ((1 − ½)/σ) − Φ(−½/σ)] (truncation at the faces), camel the
same per peak (erf), ring 1 − (its mass outside the cube): N_d = S_{d−1} ∫₀^∞ r^{d−1} e^{−(r−r₀)²/2w²} dr is the
integral over ℝ^d (radial quadrature to 1e-13), and the shell must lie inside the cube's inscribed ball
up to 8 widths (r₀ + 8w ≤ ½), so the part outside is below e⁻³² of the total: the stated integral 1 is
exact to that level. breit-wigner is a resonance on a diagonal of the cube (s depends on two coordinates,
so no product of one-dimensional grids follows it) with a decay-angle factor in the other dimensions, on top of
a falling continuum: its integral is 1 by construction, with N_BW = ∫₀¹ BW(s) p(s) ds in closed form for the
triangular density p(s) of s (arctan and log terms, :func:`breit_wigner_mass`). Values are computed in float64; ``log_prob`` is −inf outside the cube.
"""

from __future__ import annotations

from abc import abstractmethod

import math
from typing import Any

import torch
from scipy import integrate
from scipy.special import gammaln, ndtr
from torch import Tensor

from hepgen.errors import ConfigError
from hepgen.targets.base import Target, check_number


def _inside(x: Tensor) -> Tensor:
    return ((x >= 0.0) & (x <= 1.0)).all(-1)


def _log_gauss(x: Tensor, mu: float, sigma: float) -> Tensor:
    """Σ_i log N(x_i; μ, σ²): (batch, d) -> (batch,)."""
    d = x.shape[-1]
    return -0.5 * (((x - mu) / sigma) ** 2).sum(-1) - d * (math.log(sigma) + 0.5 * math.log(2.0 * math.pi))


def _box_mass(mu: float, sigma: float) -> float:
    """∫₀¹ N(t; μ, σ²) dt."""
    return float(ndtr((1.0 - mu) / sigma) - ndtr(-mu / sigma))


class _Integrand(Target):
    domain = "unit-hypercube"
    default_width = 0.1

    def __init__(self, dims: int = 2, width: float | None = None):
        self.dims = check_number(dims, "dims", self.name, 1, integer=True)
        self.width = check_number(self.default_width if width is None else width, "width", self.name, 0.0,
                                  low_open=True, high=1.0)
        self.event_shape = (self.dims,)

    def log_prob(self, x: Tensor) -> Tensor:
        x = self.check(x)
        v = self._log_f(x.double())
        return torch.where(_inside(x), v, -math.inf).to(x.dtype)

    @abstractmethod
    def _log_f(self, x: Tensor) -> Tensor:
        """log f on points inside the cube: x (batch, dims) float64 -> (batch,)."""

    def get_config(self) -> dict[str, Any]:
        return {"dims": self.dims, "width": self.width}


class Gaussian(_Integrand):
    """A narrow Gaussian peak at the centre of the cube (module doc)."""

    name = "gaussian"
    default_width = 0.05

    def _log_f(self, x: Tensor) -> Tensor:
        return _log_gauss(x, 0.5, self.width)

    @property
    def log_norm(self) -> float:
        return self.dims * math.log(_box_mass(0.5, self.width))


class Camel(_Integrand):
    """Two Gaussian peaks of width σ on the diagonal at ⅓ and ⅔, half the weight each (module doc)."""

    name = "camel"
    default_width = 0.1

    def _log_f(self, x: Tensor) -> Tensor:
        a = _log_gauss(x, 1.0 / 3.0, self.width)
        b = _log_gauss(x, 2.0 / 3.0, self.width)
        return torch.logaddexp(a, b) - math.log(2.0)

    @property
    def log_norm(self) -> float:
        # the two peaks are mirror images: each holds the same box mass, (∫₀¹ N(t; ⅓, σ²) dt)^d
        return self.dims * math.log(_box_mass(1.0 / 3.0, self.width))


class Ring(_Integrand):
    """A spherical shell of radius r₀ and Gaussian width w around the centre (module doc), normalised to 1."""

    name = "ring"
    default_width = 0.02

    def __init__(self, dims: int = 2, width: float | None = None, radius: float = 0.3):
        super().__init__(dims, width)
        if self.dims < 2:
            raise ConfigError(f"target 'ring' needs dims >= 2, got {self.dims}")
        self.radius = check_number(radius, "radius", "ring", 0.0, low_open=True)
        if self.radius + 8.0 * self.width > 0.5:
            raise ConfigError(f"target 'ring': radius + 8 width = {self.radius + 8 * self.width:g} must be <= 0.5 "
                              "(the shell inside the cube, so that its integral is exact); lower 'radius' or 'width'")
        d, r0, w = self.dims, self.radius, self.width
        # the radial density r^{d-1} exp(−(r − r0)²/2w²) peaks at r* > r0 (the volume factor pushes it out,
        # by ~ w²(d − 1)/r0): the shell's mass must lie inside the cube there too, or the integral is not 1
        # (its local width there 1/√(1/w² + (d − 1)/r*²), from the second derivative of the log density)
        peak = 0.5 * (r0 + math.sqrt(r0 * r0 + 4.0 * w * w * (d - 1)))
        if peak + 8.0 / math.sqrt(1.0 / w**2 + (d - 1) / peak**2) > 0.5:
            raise ConfigError(f"target 'ring' with dims={d}, width={w:g}, radius={r0:g}: in {d} dimensions the "
                              f"shell's mass sits at r = {peak:.3g} (the volume factor r^(d-1) pushes it outward), "
                              "and 8 of its widths beyond it leave the cube, so part of the shell is outside and its "
                              "integral is not 1; lower dims, width or radius")

        def log_g(r: float) -> float:  # log of the radial density over (r0)^{d-1}
            return (d - 1) * math.log(r / r0) - 0.5 * ((r - r0) / w) ** 2

        # log S_{d-1} = log 2 + (d/2) log π − log Γ(d/2); the radial integral, scaled by its peak for range
        log_area = math.log(2.0) + 0.5 * d * math.log(math.pi) - gammaln(0.5 * d)
        top = log_g(peak)
        radial, _ = integrate.quad(lambda r: math.exp(log_g(r) - top) if r > 0 else 0.0, 0.0, peak + 40.0 * w,
                                   points=[peak], epsabs=0.0, epsrel=1e-13, limit=200)
        self._log_n = log_area + (d - 1) * math.log(r0) + top + math.log(radial)

    def _log_f(self, x: Tensor) -> Tensor:
        r = torch.linalg.vector_norm(x - 0.5, dim=-1)
        return -0.5 * ((r - self.radius) / self.width) ** 2 - self._log_n

    @property
    def log_norm(self) -> float:
        return 0.0

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "radius": self.radius}


def breit_wigner_mass(mass: float, width: float) -> float:
    """N_BW = ∫_[0,1]² BW((x₁ + x₂)/2) dx₁dx₂ = ∫₀¹ BW(s) p(s) ds with p(s) = 4 min(s, 1 − s), in closed form.

    With t = s − M², γ = MΓ: ∫ BW ds = arctan(t/γ)/π =: A(s), ∫ s BW ds = γ log(t² + γ²)/(2π) + M² A(s) =: B(s),
    so N_BW = 4 [B]₀^½ + 4 [A]_½^1 − 4 [B]_½^1."""
    s0, g = mass * mass, mass * width

    def a(s: float) -> float:
        return math.atan((s - s0) / g) / math.pi

    def b(s: float) -> float:
        return g * math.log((s - s0) ** 2 + g * g) / (2.0 * math.pi) + s0 * a(s)

    return 4.0 * (b(0.5) - b(0.0)) + 4.0 * (a(1.0) - a(0.5)) - 4.0 * (b(1.0) - b(0.5))


class BreitWigner(_Integrand):
    """A Breit–Wigner resonance in s = (x₁ + x₂)/2 with a decay-angle factor in x₃…x_d, on a falling continuum
    (module doc); its integral over the cube is 1.

    Args:
        dims: d >= 3. mass: M, the peak at s = M² (0 < M² < 1). width: Γ (the peak's width in s is MΓ).
        fraction: ρ, the resonance's share of the integral. slope: λ > 0 of the continuum e^{−λ Σx}.
    """

    name = "breit-wigner"
    default_width = 0.02

    def __init__(self, dims: int = 3, width: float | None = None, mass: float = 0.7, fraction: float = 0.5,
                 slope: float = 2.0):
        super().__init__(dims, width)
        if self.dims < 3:
            raise ConfigError(f"target 'breit-wigner' needs dims >= 3, got {self.dims}")
        self.mass = check_number(mass, "mass", self.name, 0.0, low_open=True, high=1.0, high_open=True)
        self.fraction = check_number(fraction, "fraction", self.name, 0.0, high=1.0)
        self.slope = check_number(slope, "slope", self.name, 0.0, low_open=True)
        self.norm_bw = breit_wigner_mass(self.mass, self.width)

    def _log_f(self, x: Tensor) -> Tensor:
        s0, g = self.mass**2, self.mass * self.width
        s = 0.5 * (x[:, 0] + x[:, 1])
        log_bw = math.log(g / math.pi / self.norm_bw) - torch.log((s - s0) ** 2 + g * g)
        log_angle = torch.log(0.75 * (1.0 + (2.0 * x[:, 2:] - 1.0) ** 2)).sum(-1)
        lam = self.slope
        log_cont = self.dims * math.log(lam / -math.expm1(-lam)) - lam * x.sum(-1)
        parts = [log_bw + log_angle + math.log(self.fraction) if self.fraction > 0 else None,
                 log_cont + math.log1p(-self.fraction) if self.fraction < 1 else None]
        parts = [p for p in parts if p is not None]
        return parts[0] if len(parts) == 1 else torch.logaddexp(parts[0], parts[1])

    @property
    def log_norm(self) -> float:
        return 0.0

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mass": self.mass, "fraction": self.fraction, "slope": self.slope}
