"""Masked layers and MADE (Germain et al. 2015): one network whose output for feature i depends only
on the features before i in a chosen order (and on an unmasked context).

    h = act((W ⊙ M) [x, c] + b)   (one masked matmul per layer)

Degrees: input feature at order position k has degree k + 1 (1..D); hidden units get degrees
cycling through 1..D-1 (0..D-1 with a context: degree 0 sees only the context); a hidden unit sees inputs of degree <= its own, an output of feature degree
d sees hidden units of degree < d. Context inputs are connected to every first-layer hidden unit.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hepgen.nn.mlp import activation as make_activation


class MaskedLinear(nn.Linear):
    """y = x (W ⊙ M)ᵀ + b with a fixed binary mask M: (out_features, in_features)."""

    def __init__(self, mask: Tensor, bias: bool = True):
        out_features, in_features = mask.shape
        super().__init__(in_features, out_features, bias=bias)
        self.register_buffer("mask", mask.to(torch.get_default_dtype()))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """Masked autoencoder for distribution estimation: x (batch, D) [+ context (batch, c)] -> (batch, D, P).

    Args:
        features: D.
        params: P, numbers per feature the output parametrises.
        hidden: sizes of the hidden layers (each should be >= D - 1 to keep every connection).
        context: size of the context vector.
        order: the autoregressive order, a permutation of range(D) (default 0, 1, ..., D-1).
        activation: hidden activation name (see :func:`hepgen.nn.mlp.activation`).
    """

    def __init__(self, features: int, params: int, hidden: Sequence[int] = (128, 128), *, context: int = 0,
                 order: Sequence[int] | None = None, activation: str = "relu"):
        super().__init__()
        self.features, self.params, self.context = int(features), int(params), int(context)
        order_t = torch.arange(features) if order is None else torch.as_tensor(list(order), dtype=torch.long)
        if sorted(order_t.tolist()) != list(range(features)):
            raise ValueError(f"order must be a permutation of range({features}), got {order_t.tolist()}")
        degrees_in = torch.empty(features, dtype=torch.long)
        degrees_in[order_t] = torch.arange(1, features + 1)
        self.register_buffer("degrees", degrees_in)
        # degree-0 hidden units see only the context; they carry it to the first feature's outputs
        low = 0 if context else min(1, features - 1)
        span = max(features - low, 1)
        layers: list[nn.Module] = []
        previous = torch.cat([degrees_in, torch.zeros(context, dtype=torch.long)])
        for i, size in enumerate(hidden):
            degrees_h = torch.arange(size) % span + low
            mask = degrees_h[:, None] >= previous[None, :]
            if i == 0 and context:
                mask[:, features:] = True
            layers += [MaskedLinear(mask), make_activation(activation)]
            previous = degrees_h
        degrees_out = degrees_in.repeat_interleave(self.params)
        layers.append(MaskedLinear(degrees_out[:, None] > previous[None, :]))
        self.net = nn.Sequential(*layers)

    @property
    def last(self) -> MaskedLinear:
        return self.net[-1]

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """x: (batch, D), context: (batch, c) -> (batch, D, P)."""
        if self.context:
            if context is None:
                raise ValueError("this MADE was built with a context input; pass context=")
            x = torch.cat([x, context.expand(x.shape[0], -1)], dim=-1)
        return self.net(x).view(x.shape[0], self.features, self.params)
