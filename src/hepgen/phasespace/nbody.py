"""Massless n-body phase space at fixed √s from the unit hypercube, cuts, and a matrix element as a target.

Conventions (used by every output of :class:`~hepgen.phasespace.PhaseSpaceFlow`):

    dΦ_n = Π_i d³p_i/(2E_i) δ⁴(P − Σ_i p_i)         (no 2π factors), P = (√s, 0, 0, 0)
    Φ_n  = ∫ dΦ_n = (π/2)^(n−1) s^(n−2) / ((n−1)! (n−2)!)              (:func:`phase_space_volume`)
    integral = ∫ |M|²(p) Θ_cuts(p) dΦ_n                                 (the HDF5 output's ``integral``)
    σ = integral × (2π)^(4−3n) / (2s) × 0.3894e9 pb GeV²               (:func:`cross_section_pb`, the LHE header)

The mapping (:func:`massless_momenta`) uses 3n − 4 numbers, as "RAMBO on diet" (Plätzer 2013): the n-body
phase space factorises, dΦ_n(Q₁) = dM₂² dΦ₂(Q₁; p₁, Q₂) dΦ_{n−1}(Q₂; p₂ … p_n), with massless
dΦ₂(M; 0, m) = (1 − m²/M²)/8 dΩ. So for i = 1 … n−2 the mass of the remaining system, t = M_{i+1}²/M_i², is
drawn from its density ∝ (1 − t) t^(n−i−2) (a Beta(n−i−1, 2), inverted from its CDF
(n−i) t^(n−i−1) − (n−i−1) t^(n−i) = u by bisection), and each two-body decay's direction from two more numbers
(cos θ = 2u − 1, φ = 2πu), the daughter boosted from the parent's rest frame into the lab. Every factor is
exactly flat in the numbers used, so the Jacobian is constant:

    ∫ f dΦ_n = Φ_n ∫_[0,1]^(3n−4) f(p(x)) dx,     p(x) = massless_momenta(x, √s)

and the map is one-to-one onto phase space (up to measure zero). The last particle is P minus the others, so
momentum is conserved to rounding; masslessness holds to float64 precision.

Cuts (zero weights, :class:`Cuts`): ``ptmin`` (GeV, each particle's momentum transverse to the beam axis z),
``drmin`` (ΔR = √(Δy² + Δφ²) of every pair, rapidities y), ``ymin`` (y_ij = (p_i + p_j)²/s of every pair).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from hepgen.errors import ConfigError
from hepgen.options import Option, check_options, parse_options
from hepgen.targets.base import Target, check_number
from hepgen.targets.user import UserFunction, describe

GEV2_PB = 0.3894e9  # (ħc)² in pb GeV²
#: the cuts a user may set (``--cut KEY=VALUE``), read by :mod:`hepgen.options`
CUTS = {"ptmin": Option(0.0, low=0.0, help="minimum transverse momentum of every particle (GeV)"),
        "drmin": Option(0.0, low=0.0, help="minimum ΔR = √(Δy² + Δφ²) of every pair"),
        "ymin": Option(0.0, low=0.0, high=1.0, high_open=True, help="minimum y_ij = (p_i + p_j)²/s of every pair")}


def phase_space_dims(n: int) -> int:
    """The hypercube dimension 3n − 4 of the massless n-body mapping."""
    return 3 * int(n) - 4


def phase_space_volume(n: int, s: float) -> float:
    """Φ_n = ∫ dΦ_n = (π/2)^(n−1) s^(n−2) / ((n−1)! (n−2)!) for n >= 2 massless particles (module doc)."""
    n = int(n)
    return (math.pi / 2.0) ** (n - 1) * float(s) ** (n - 2) / (math.factorial(n - 1) * math.factorial(n - 2))


def cross_section_pb(integral: float, n: int, s: float) -> float:
    """σ (pb) from ∫|M|² dΦ_n (no 2π factors): × (2π)^(4−3n) / (2s) × 0.3894e9 pb GeV² (flux of massless beams)."""
    return float(integral) * (2.0 * math.pi) ** (4 - 3 * int(n)) / (2.0 * float(s)) * GEV2_PB


def _beta_inverse(u: Tensor, k: int) -> Tensor:
    """t in [0, 1] with (k + 1) t^k − k t^(k+1) = u (the CDF of Beta(k, 2)), by 60 bisections (float64)."""
    lo, hi = torch.zeros_like(u), torch.ones_like(u)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = (k + 1) * mid**k - k * mid ** (k + 1) < u
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return 0.5 * (lo + hi)


def _boost(p: Tensor, q: Tensor, m: Tensor) -> Tensor:
    """p (batch, 4) from the rest frame of q (batch, 4) of mass m (batch,) > 0 into q's frame (m is passed, not
    recomputed from q, where q² cancels for a light, fast system)."""
    qp = (q[:, 1:] * p[:, 1:]).sum(-1)
    e = (q[:, 0] * p[:, 0] + qp) / m
    factor = qp / (m * (q[:, 0] + m)) + p[:, 0] / m
    return torch.cat([e[:, None], p[:, 1:] + q[:, 1:] * factor[:, None]], -1)


def massless_momenta(x: Tensor, sqrt_s: float) -> Tensor:
    """The mapping of the module doc: x (batch, 3n − 4) in [0, 1] -> momenta (batch, n, 4) as (E, px, py, pz)
    in GeV, Σ p_i = (√s, 0, 0, 0), p_i² = 0; Jacobian constant, ∫ f dΦ_n = Φ_n ∫ f(p(x)) dx."""
    x = x.double()
    dims = x.shape[-1]
    if (dims + 4) % 3 or dims < 2:
        raise ConfigError(f"the massless n-body mapping takes 3n - 4 numbers (n >= 2), got {dims}")
    n = (dims + 4) // 3
    batch = x.shape[0]
    q = torch.zeros(batch, 4, dtype=x.dtype, device=x.device)
    q[:, 0] = float(sqrt_s)
    m2 = torch.full((batch,), float(sqrt_s) ** 2, dtype=x.dtype, device=x.device)
    col = 0
    out = []
    for i in range(n - 1):
        if i < n - 2:  # the mass of particles i+1 .. n-1 together: t = M'^2/M^2 ~ Beta(n - i - 2, 2)
            t = _beta_inverse(x[:, col], n - i - 2).clamp(min=1e-10)  # t = 0 (an edge): a massless rest, no frame
            col += 1
        else:
            t = torch.zeros_like(m2)
        cos_t = 2.0 * x[:, col] - 1.0
        phi = 2.0 * math.pi * x[:, col + 1]
        col += 2
        sin_t = torch.sqrt(torch.clamp(1.0 - cos_t**2, min=0.0))
        m = torch.sqrt(m2)
        k = 0.5 * m * (1.0 - t)  # |p| = (M^2 - M'^2) / 2M in the rest frame of q
        p_rest = torch.stack([k, k * sin_t * torch.cos(phi), k * sin_t * torch.sin(phi), k * cos_t], -1)
        p = _boost(p_rest, q, m)
        out.append(p)
        q = q - p
        m2 = m2 * t
    last = q.clone()
    last[:, 0] = torch.linalg.vector_norm(q[:, 1:], dim=-1)  # massless: |p|, equal to q's energy up to rounding
    out.append(last)
    return torch.stack(out, 1)


def _rapidity_phi(p: Tensor) -> tuple[Tensor, Tensor]:
    e, pz = p[..., 0], p[..., 3]
    y = 0.5 * torch.log(torch.clamp(e + pz, min=1e-300) / torch.clamp(e - pz, min=1e-300))
    return y, torch.atan2(p[..., 2], p[..., 1])


class Cuts:
    """Phase-space cuts as a mask: ``ptmin`` (GeV), ``drmin``, ``ymin`` (module doc); 0 switches one off.

    ``Cuts.parse(["ptmin=20", "drmin=0.4"])`` reads ``--cut KEY=VALUE`` items with :mod:`hepgen.options`."""

    def __init__(self, ptmin: float = 0.0, drmin: float = 0.0, ymin: float = 0.0):
        values = check_options({"ptmin": ptmin, "drmin": drmin, "ymin": ymin}, CUTS, owner="--cut")
        self.ptmin, self.drmin, self.ymin = (float(values[k]) for k in ("ptmin", "drmin", "ymin"))

    @classmethod
    def parse(cls, items: Sequence[str]) -> Cuts:
        return cls(**parse_options(list(items), CUTS, owner="--cut", flag="--cut"))

    def items(self) -> list[str]:
        """The cuts that are on, as ``KEY=VALUE`` (what ``parse`` reads)."""
        return [f"{k}={v:g}" for k, v in (("ptmin", self.ptmin), ("drmin", self.drmin), ("ymin", self.ymin)) if v > 0]

    def passed(self, p: Tensor, s: float) -> Tensor:
        """p (batch, n, 4) -> (batch,) True where every cut holds."""
        keep = torch.ones(p.shape[0], dtype=torch.bool, device=p.device)
        if self.ptmin > 0:
            keep &= (torch.linalg.vector_norm(p[..., 1:3], dim=-1) > self.ptmin).all(-1)
        n = p.shape[1]
        i, j = torch.triu_indices(n, n, 1, device=p.device)
        if self.ymin > 0:
            pair = p[:, i] + p[:, j]
            m2 = pair[..., 0] ** 2 - (pair[..., 1:] ** 2).sum(-1)
            keep &= (m2 / float(s) > self.ymin).all(-1)
        if self.drmin > 0:
            y, phi = _rapidity_phi(p)
            dphi = torch.remainder(phi[:, i] - phi[:, j] + math.pi, 2.0 * math.pi) - math.pi
            keep &= (torch.sqrt((y[:, i] - y[:, j]) ** 2 + dphi**2) > self.drmin).all(-1)
        return keep


class MatrixElementTarget(Target):
    """f(x) = Φ_n |M|²(p(x)) Θ_cuts(p(x)) on [0, 1]^(3n−4): its integral is ∫|M|² dΦ_n over the cuts (module doc).

    Args:
        matrix_element: |M|²(p), momenta (batch, n, 4) as (E, px, py, pz) in GeV -> (batch,) values >= 0.
        sqrt_s: the collision energy √s (GeV). particles: n >= 2 massless final-state particles.
        cuts: a :class:`Cuts` (default: none). source: the file it came from (:func:`hepgen.targets.user.load_function`).
    """

    name = "matrix-element"
    domain = "unit-hypercube"

    def __init__(self, matrix_element: Callable[..., Any], sqrt_s: float, particles: int, cuts: Cuts | None = None,
                 source: dict[str, str] | None = None):
        self.sqrt_s = check_number(sqrt_s, "sqrt_s", self.name, 0.0, low_open=True)
        self.particles = check_number(particles, "particles", self.name, 2, integer=True)
        self.cuts = cuts if cuts is not None else Cuts()
        self.s = self.sqrt_s**2
        self.dims = phase_space_dims(self.particles)
        self.event_shape = (self.dims,)
        self.volume = phase_space_volume(self.particles, self.s)
        self.call = UserFunction(matrix_element, source, "matrix element")
        self.source = source

    def momenta(self, x: Tensor) -> Tensor:
        """x (batch, 3n − 4) -> momenta (batch, n, 4) in GeV (:func:`massless_momenta`)."""
        return massless_momenta(x, self.sqrt_s)

    def log_prob(self, x: Tensor) -> Tensor:
        x = self.check(x)
        inside = ((x >= 0.0) & (x <= 1.0)).all(-1)
        p = self.momenta(x.clamp(0.0, 1.0))
        keep = inside & self.cuts.passed(p, self.s)
        value = torch.zeros(len(x), dtype=torch.float64, device=x.device)
        if bool(keep.any()):
            value[keep] = self.call(p[keep])
        return torch.where(keep, torch.log(value) + math.log(self.volume), -torch.inf).to(x.dtype)

    def cross_section_pb(self, integral: float) -> float:
        """σ in pb of ``integral`` = ∫|M|² dΦ_n (:func:`cross_section_pb`)."""
        return cross_section_pb(integral, self.particles, self.s)

    def get_config(self) -> dict[str, Any]:
        return {"matrix_element": describe(self.call.function, self.source), "sqrt_s": self.sqrt_s,
                "particles": self.particles, "cuts": self.cuts.items()}


__all__ = ["CUTS", "Cuts", "MatrixElementTarget", "cross_section_pb", "massless_momenta", "phase_space_dims",
           "phase_space_volume"]
