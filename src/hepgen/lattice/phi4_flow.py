"""The lattice flow for 2-D φ⁴ (``phi4-flow``): :class:`hepgen.lattice.flow.LatticeFlow` with the action built in.

Albergo, Kanwar & Shanahan, PRD 100 (2019) 034515: φ = f⁻¹(z), z ~ N(0, I) on the L × L sites, f⁻¹ a chain of
``layers`` coupling layers with checkerboard masks of alternating parity, each transforming the sites of one
colour given the other colour through a convolutional conditioner with periodic (circular) padding
(:class:`hepgen.flows.transforms.ConvCoupling`), affine (y = x e^s + t) or rational-quadratic spline.
Training minimises

    KL(q ‖ p) = E_{φ~q}[log q(φ) + S(φ)] + log Z       (per-event loss log q(φ) + S(φ), reparameterised)

where S is the ``hepgen data phi4`` action (:class:`hepgen.targets.Phi4`). Its exactness comes afterwards:
the flow is the proposal of an independence Metropolis–Hastings chain, or its samples are reweighted by
w = exp(−S)/q (:mod:`hepgen.lattice.mcmc`).
"""

from __future__ import annotations

from collections.abc import Sequence

from hepgen.lattice.flow import (
    FLOATS_PER_CHANNEL,
    FLOATS_PER_SITE,
    KINDS,
    LatticeFlow,
    training_memory_sites,
)
from hepgen.models import register
from hepgen.targets import Phi4


def training_memory(L: int, batch_size: int, layers: int = 8, channels: Sequence[int] = (16, 16),
                    kind: str = "affine", bins: int = 8) -> int:
    """Bytes a reverse-KL training step of a :class:`Phi4Flow` needs, roughly (computed without building it):
    :func:`~hepgen.lattice.flow.training_memory_sites` on the L² sites."""
    return training_memory_sites(int(L) ** 2, batch_size, layers, channels, kind, bins)


@register
class Phi4Flow(LatticeFlow):
    """Flow on 2-D φ⁴ configurations (L, L), data-free (module doc).

    Args:
        L: lattice extent (L × L sites, periodic). m2: bare mass². lam: quartic coupling λ ≥ 0
            (the target's action: that of ``hepgen data phi4``).
        layers: coupling layers (checkerboard parity alternating).
        channels: hidden channels of each conditioner's convolutions.
        kernel_size: odd kernel side of the convolutions (circular padding).
        kind: "affine" or "spline" couplings.
        bins: spline bins. tail_bound: spline box [-B, B] (identity outside).
        activation: hidden activation of the conditioners.
        z2: propose from the Z₂-symmetrised q_s(φ) = ½[q(φ) + q(−φ)] (a random global sign flip of each
            draw; exact for MH and reweighting since S(−φ) = S(φ)): a flow that has dropped or
            under-weighted one sign of the magnetisation still proposes both equally. Costs one density
            evaluation per proposal; training (reverse KL of q) is unchanged.
        equivariant: Z₂-equivariant affine couplings (odd shifts, even scales, tanh conditioners): q(−φ) = q(φ)
            by construction, so both signs are proposed equally at the cost of one pass (``z2`` then costs nothing).
        ess_draws: proposals drawn after every epoch for the Kish ESS per draw (``val_ess``, monitorable:
            ``--monitor val_ess`` keeps the epoch with the highest); 0: none.
        init_from: a run directory or ``pretrained:NAME`` of a phi4-flow (or lattice-flow) with the same layers,
            channels, kernel and kind, at any L, whose weights start the training (a flow trained at L = 8
            starts L = 12: the conditioners are convolutions, independent of L).
    """

    cli_name = "phi4-flow"

    def __init__(self, L: int = 8, m2: float = -4.0, lam: float = 6.008, layers: int = 8,
                 channels: Sequence[int] = (16, 16), kernel_size: int = 3, kind: str = "affine", bins: int = 8,
                 tail_bound: float = 4.0, activation: str = "leaky_relu", z2: bool = True, equivariant: bool = False,
                 ess_draws: int = 1024, init_from: str | None = None):
        target = Phi4(L, m2, lam)
        self.user_code_ = None
        self._build(target, layers, channels, kernel_size, kind, bins, tail_bound, activation, z2, ess_draws,
                    init_from, equivariant)
        self.L, self.m2, self.lam = target.L, target.m2, target.lam

    def _memory_words(self) -> tuple[str, str]:
        return (f"phi4-flow training at L={self.L} ({self.L}x{self.L} sites", "lower --batch-size or --L (or --layers, "
                "--channels)")

    def get_config(self):
        return super(LatticeFlow, self).get_config()  # the constructor's own parameters (no user code to hide)


__all__ = ["FLOATS_PER_CHANNEL", "FLOATS_PER_SITE", "KINDS", "Phi4Flow", "training_memory"]
