"""Coupling layers (NICE, RealNVP, coupling neural spline flows).

Split x into the identity part x_a (mask = 1) and the transformed part x_b:

    y_a = x_a,   y_b = τ(x_b; θ(x_a, c)),   log|det J| = Σ log|∂τ/∂x_b|

Both directions take one conditioner pass (in row blocks without gradients, see
:func:`~hepgen.flows.transforms.autoregressive.in_row_blocks`). Masks for vectors: alternating (even/odd features, the
parity flips between layers) and random (half the features, seeded).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from hepgen.flows.transforms.autoregressive import in_row_blocks
from hepgen.flows.transforms.base import Transform
from hepgen.flows.transforms.elementwise import AdditiveTransformer, AffineTransformer
from hepgen.flows.transforms.splines import SplineTransformer
from hepgen.nn.mlp import MLP


def alternating_mask(features: int, parity: int = 0) -> Tensor:
    """(features,) bool: True (kept, conditions the rest) on indices i with i % 2 == parity."""
    return torch.arange(features) % 2 == parity


def random_mask(features: int, generator: torch.Generator | None = None) -> Tensor:
    """(features,) bool with ⌊features/2⌋ True entries at random positions."""
    mask = torch.zeros(features, dtype=torch.bool)
    mask[torch.randperm(features, generator=generator)[: features // 2]] = True
    return mask


class Coupling(Transform):
    """Coupling layer on x: (batch, features).

    Args:
        mask: (features,) bool, True for the features that pass through and condition the others.
        transformer: elementwise map with ``params`` numbers per transformed feature.
        hidden: conditioner MLP hidden sizes.
        context: context size.
    """

    def __init__(self, mask: Tensor, transformer, hidden: Sequence[int] = (128, 128), context: int = 0,
                 activation: str = "relu"):
        super().__init__()
        mask = torch.as_tensor(mask, dtype=torch.bool)
        kept, changed = torch.nonzero(mask).flatten(), torch.nonzero(~mask).flatten()
        if len(kept) == 0 or len(changed) == 0:
            raise ValueError(f"a coupling mask needs features on both sides, got {mask.tolist()}")
        self.register_buffer("kept", kept)
        self.register_buffer("changed", changed)
        self.transformer = transformer
        self.conditioner = MLP(len(kept), len(changed) * transformer.params, hidden, context=context,
                               activation=activation)
        for module in self.conditioner:  # each ReLU follows a linear layer, whose output autograd does not keep
            if isinstance(module, nn.ReLU):
                module.inplace = True
        # splines run along contiguous rows: their parameters come out of the last layer parameter-major
        self._param_major = bool(getattr(transformer, "param_major", False))

    def reset_to_identity(self) -> None:
        with torch.no_grad():
            self.conditioner[-1].weight.zero_()
            self.conditioner[-1].bias.zero_()

    def _params(self, x_a: Tensor, context: Tensor | None) -> Tensor:
        """θ(x_a, c): (batch, changed, P); parameter-major in memory, (P, changed, batch), for splines."""
        mlp = self.conditioner
        if not self._param_major:
            return mlp(x_a, context).view(x_a.shape[0], len(self.changed), self.transformer.params)
        h = x_a
        if mlp.context:
            if context is None:
                raise ValueError("this network was built with a context input; pass context=")
            h = torch.cat([h, context.expand(h.shape[0], -1)], dim=-1)
        last = len(mlp) - 1
        for i, layer in enumerate(mlp):
            if i == last:
                break
            h = layer(h)
        out = torch.addmm(mlp[last].bias.unsqueeze(1), mlp[last].weight, h.t())  # (P·changed, batch)
        return out.view(self.transformer.params, len(self.changed), x_a.shape[0]).permute(2, 1, 0)

    def _couple(self, x: Tensor, context: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        x_a, x_b = x.index_select(1, self.kept), x.index_select(1, self.changed)
        y_b, ladj = self.transformer(x_b, self._params(x_a, context), inverse)
        return x.index_copy(1, self.changed, y_b), ladj

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return in_row_blocks(lambda v, c: self._couple(v, c, False), x, context)

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return in_row_blocks(lambda v, c: self._couple(v, c, True), y, context)

    def invert(self, y: Tensor, context: Tensor | None = None) -> Tensor:
        """``inverse(y, context)[0]`` bit for bit; a spline's without its log-derivative when no gradient is recorded."""
        invert = getattr(self.transformer, "invert", None)
        if invert is None or torch.is_grad_enabled():
            return self.inverse(y, context)[0]

        def step(v: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor]:
            v_a, v_b = v.index_select(1, self.kept), v.index_select(1, self.changed)
            return v.index_copy(1, self.changed, invert(v_b, self._params(v_a, c))), v[:, :0]

        return in_row_blocks(step, y, context)[0]


def affine_coupling(mask: Tensor, hidden: Sequence[int] = (128, 128), context: int = 0) -> Coupling:
    """RealNVP layer: y_b = x_b exp(s(x_a)) + t(x_a)."""
    return Coupling(mask, AffineTransformer(), hidden, context)


def additive_coupling(mask: Tensor, hidden: Sequence[int] = (128, 128), context: int = 0) -> Coupling:
    """NICE layer: y_b = x_b + t(x_a)."""
    return Coupling(mask, AdditiveTransformer(), hidden, context)


def spline_coupling(mask: Tensor, hidden: Sequence[int] = (128, 128), context: int = 0, bins: int = 8,
                    bound: float = 5.0) -> Coupling:
    """Coupling neural spline layer: y_b = RQS(x_b; θ(x_a))."""
    return Coupling(mask, SplineTransformer(bins, bound), hidden, context)
