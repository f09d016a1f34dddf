"""A normalizing flow for lattice field configurations, trained by reverse KL to exp(−S) without data.

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
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hepgen.errors import ConfigError
from hepgen.export import ExportGraph, GraphModule, Port, event_ports
from hepgen.flows.distributions import StandardNormal
from hepgen.flows.model import FlowModel
from hepgen.flows.transforms import (
    AffineTransformer,
    ConvCoupling,
    SplineTransformer,
    checkerboard_mask,
)
from hepgen.models import register
from hepgen.targets import Phi4

KINDS = ("affine", "spline")
#: float32 values kept per site, coupling layer and event while training, beyond the conditioner's outputs: four
#: per hidden channel (the padded input, convolution and activation outputs, their gradients), measured at
#: L = 64-256 with channels (16, 16) (about 4 kB per site and event at 8 layers), plus a few for the field
FLOATS_PER_CHANNEL = 4
FLOATS_PER_SITE = 16


def training_memory(L: int, batch_size: int, layers: int = 8, channels: Sequence[int] = (16, 16),
                    kind: str = "affine", bins: int = 8) -> int:
    """Bytes a reverse-KL training step of a :class:`Phi4Flow` needs, roughly (computed without building it):
    batch × L² sites × layers × (4 Σ channels + the conditioner's outputs per site + 16) float32 values,
    the activations kept for the backward pass, which dominate (the weights are a few kB)."""
    outputs = 2 if kind == "affine" else 3 * int(bins) + 1
    per_site = int(layers) * (FLOATS_PER_CHANNEL * sum(int(c) for c in channels) + outputs + FLOATS_PER_SITE)
    return 4 * int(batch_size) * int(L) ** 2 * per_site


class _LatticeSampleGraph(GraphModule):
    """z (batch, L, L) standard normal noise -> (φ (batch, L, L), log q(φ) (batch,)): the flow's base is N(0, I)
    on the L² sites in a flat vector, so the noise is flattened before and the field reshaped after the chain."""

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        m = self.model
        flat = z.reshape(z.shape[0], -1)
        phi, ladj_inv = m.transform.inverse(flat, None)
        return phi.reshape(z.shape), m.base.log_prob(flat) - ladj_inv


@register
class Phi4Flow(FlowModel):
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
    """

    cli_name = "phi4-flow"
    data_free = True

    def __init__(self, L: int = 8, m2: float = -4.0, lam: float = 6.008, layers: int = 8,
                 channels: Sequence[int] = (16, 16), kernel_size: int = 3, kind: str = "affine", bins: int = 8,
                 tail_bound: float = 4.0, activation: str = "leaky_relu", z2: bool = True):
        target = Phi4(L, m2, lam)
        if int(layers) < 2 or int(kernel_size) < 1 or int(kernel_size) % 2 == 0:
            raise ConfigError(f"phi4-flow needs layers >= 2 (both colours) and an odd kernel_size, got layers={layers}"
                              f", kernel_size={kernel_size}")
        if kind not in KINDS:
            raise ConfigError(f"phi4-flow: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if not channels or any(int(c) < 1 for c in channels):
            raise ConfigError(f"phi4-flow: channels must be positive channel counts, got {list(channels)}")
        super().__init__((target.L, target.L), 0, "none")
        self.target = target
        self.L, self.m2, self.lam = target.L, target.m2, target.lam
        self.layers, self.channels, self.kernel_size = int(layers), tuple(int(c) for c in channels), int(kernel_size)
        self.kind, self.bins, self.tail_bound, self.activation = kind, int(bins), float(tail_bound), activation
        self.z2 = bool(z2)
        shape = (1, self.L, self.L)
        transforms = []
        for i in range(self.layers):
            transformer = AffineTransformer() if kind == "affine" else SplineTransformer(self.bins, self.tail_bound)
            try:
                transforms.append(ConvCoupling(shape, checkerboard_mask(shape, i % 2), transformer, self.channels,
                                               kernel_size=self.kernel_size, activation=activation,
                                               padding_mode="circular"))
            except ValueError as exc:
                raise ConfigError(f"phi4-flow: {exc}") from None
        self._set_parts(StandardNormal(self.L * self.L), transforms)
        self.reset_parameters()

    def check_fit(self, batch_size: int, device: torch.device | str = "cpu", available: float | None = None) -> None:
        """The engine's call before training: refuse a batch whose training step cannot fit in the memory
        ``available`` (default: what the device has, :func:`hepgen.train.resources.available_memory`)."""
        from hepgen.train.resources import check_memory

        need = training_memory(self.L, batch_size, self.layers, self.channels, self.kind, self.bins)
        check_memory(need, f"phi4-flow training at L={self.L} ({self.L}x{self.L} sites, {self.layers} layers, channels "
                           f"{','.join(map(str, self.channels))}) with batch size {batch_size}",
                     "lower --batch-size or --L (or --layers, --channels)", device, available)

    def export_graph(self, what: str) -> ExportGraph:
        """ONNX graphs on whole configurations: ``sample`` z (batch, L, L) N(0, I) noise -> (φ, log q(φ)), the
        flow's own q (not the Z₂-symmetrised proposal); ``log_prob``/``score`` φ (batch, L, L) -> log q(φ).
        (The generic flow graph took the noise as (batch, L), the first axis of the event shape only.)"""
        if what != "sample":
            return super().export_graph(what)
        ports = event_ports(self)
        noise = Port("z", (self.L, self.L), "standard normal N(0, I) noise, one value per site")
        return ExportGraph(_LatticeSampleGraph(self), [noise], [ports.x, ports.log_prob])

    # -- the density on configurations (L, L) ------------------------------------------------------------
    def log_prob_internal(self, u: Tensor, context: Tensor | None = None) -> Tensor:
        """log q(φ): φ (batch, L, L) -> (batch,)."""
        return super().log_prob_internal(u.reshape(u.shape[0], -1), context)

    def sample_internal(self, n: int, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(φ (n, L, L), log q(φ) (n,)), reparameterised."""
        u, log_q = super().sample_internal(n, context)
        return u.reshape(n, self.L, self.L), log_q

    def training_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Reverse KL per draw: log q(φ) + S(φ) (its mean is KL(q‖p) − log Z); also S and log w = −S − log q."""
        phi, log_q = self.sample_internal(len(batch["w"]))
        s = self.target.action(phi)
        return {"loss": log_q + s, "action": s.detach()}

    # -- exact sampling from the flow's proposals --------------------------------------------------------------
    @torch.no_grad()
    def sample_weighted(self, n: int, batch_size: int = 10_000) -> tuple[Tensor, dict[str, np.ndarray]]:
        """(φ (n, L, L), {"log_weight": log w = −S(φ) − log q(φ) (n,)}): reweight with w (self-normalised);
        q is the proposal density (q_s when ``z2``)."""
        from hepgen.lattice.mcmc import propose

        phi, log_p, log_q = propose(self, n, batch_size)
        return torch.as_tensor(phi), {"log_weight": log_p - log_q}

    def sample_mcmc(self, n: int, seed: int = 0, batch_size: int = 10_000) -> dict[str, Any]:
        """An independence Metropolis–Hastings chain of ``n`` steps with this flow as the proposal:
        configurations, |M|, S, acceptance, τ_int (see :func:`hepgen.lattice.mcmc.flow_mcmc`)."""
        from hepgen.lattice.mcmc import flow_mcmc

        return flow_mcmc(self, n, seed=seed, batch_size=batch_size)

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "target": {"name": "phi4", **self.target.get_config()}}


__all__ = ["Phi4Flow"]
