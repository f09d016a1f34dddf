"""Masked autoregressive transforms (MAF, Papamakarios et al. 2017; IAF = their inverse).

    y_i = τ(x_i; θ_i(x_<i, c)),   θ = MADE(x, c),   log|det J| = Σ_i log|∂τ/∂x_i|

The forward (density) direction needs one MADE pass; the inverse is sequential, D steps, each fixing
one more coordinate from the MADE units that coordinate sees (:meth:`MADE.feature_params`).
:class:`~hepgen.flows.transforms.base.Inverse` of this layer is an IAF layer: one-pass sampling,
sequential density. Without gradients, large batches run in blocks of :data:`CHUNK_ROWS` rows, so the
hidden activations stay cache-sized (10⁶ rows would otherwise stream 0.5 GB per hidden layer and step).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from hepgen.flows.transforms.base import Transform
from hepgen.flows.transforms.elementwise import AffineTransformer
from hepgen.flows.transforms.splines import SplineTransformer
from hepgen.nn.masked import MADE

#: rows per block when transforms run without gradients (inference): hidden activations of 8192 × 128 floats
CHUNK_ROWS = 8192


def in_row_blocks(step, x: Tensor, context: Tensor | None, rows: int | None = None) -> tuple[Tensor, Tensor]:
    """``step(x, context) -> (y, log|det J|)`` on blocks of ``rows`` (default :data:`CHUNK_ROWS`) rows when no
    gradient is recorded (the result is the same; memory traffic and allocations stay small); in one call
    otherwise."""
    rows = CHUNK_ROWS if rows is None else rows
    n = x.shape[0]
    if torch.is_grad_enabled() or n <= 2 * rows:
        return step(x, context)
    ys, ladjs = [], []
    for start in range(0, n, rows):
        c = context if context is None or context.shape[0] == 1 else context[start:start + rows]
        y, ladj = step(x[start:start + rows], c)
        ys.append(y)
        ladjs.append(ladj)
    return torch.cat(ys), torch.cat(ladjs)


class MaskedAutoregressive(Transform):
    """Autoregressive layer on x: (batch, features) with an elementwise ``transformer``.

    Args:
        features: D.
        transformer: an elementwise map with ``params`` numbers per feature
            (:class:`AffineTransformer`, :class:`SplineTransformer`).
        hidden: MADE hidden sizes.
        context: context size.
        order: autoregressive order (default 0..D-1; ``reversed`` flips it between layers).
    """

    def __init__(self, features: int, transformer, hidden: Sequence[int] = (128, 128), context: int = 0,
                 order: Sequence[int] | None = None, activation: str = "relu"):
        super().__init__()
        self.features = int(features)
        self.transformer = transformer
        self.made = MADE(features, transformer.params, hidden, context=context, order=order, activation=activation,
                         param_major=bool(getattr(transformer, "param_major", False)))

    def reset_to_identity(self) -> None:
        with torch.no_grad():
            self.made.last.weight.zero_()
            self.made.last.bias.zero_()

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return in_row_blocks(self._forward, x, context)

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Sequential: feature by feature in the autoregressive order, each from the MADE prefixes it sees."""
        return in_row_blocks(self._inverse, y, context)

    def _forward(self, x: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        return self.transformer(x, self.made(x, context))

    def _inverse(self, y: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        made = self.made
        weights = made.masked_weights()
        x = torch.zeros_like(y)
        ladj = y.new_zeros(y.shape[0])
        for position, feature in enumerate(made.order):
            params = made.feature_params(x, context, position, weights)  # (batch, P)
            column = y[:, feature:feature + 1]
            x_f, ladj_f = self.transformer(column, params.unsqueeze(1), inverse=True)
            x = x.index_copy(1, torch.tensor([feature], device=y.device), x_f) if torch.is_grad_enabled() \
                else x.index_copy_(1, torch.tensor([feature], device=y.device), x_f)
            ladj = ladj + ladj_f
        return x, ladj


def affine_autoregressive(features: int, hidden: Sequence[int] = (128, 128), context: int = 0,
                          order: Sequence[int] | None = None) -> MaskedAutoregressive:
    """MAF layer: y_i = x_i exp(s_i(x_<i)) + t_i(x_<i)."""
    return MaskedAutoregressive(features, AffineTransformer(), hidden, context, order)


def spline_autoregressive(features: int, hidden: Sequence[int] = (128, 128), context: int = 0,
                          order: Sequence[int] | None = None, bins: int = 8,
                          bound: float = 5.0) -> MaskedAutoregressive:
    """Autoregressive neural spline layer: y_i = RQS(x_i; θ_i(x_<i))."""
    return MaskedAutoregressive(features, SplineTransformer(bins, bound), hidden, context, order)
