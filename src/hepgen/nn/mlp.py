"""The multilayer perceptron every family builds on.

    h_0 = [x, c],   h_{k+1} = act(W_k h_k + b_k),   y = W_L h_L + b_L

x: (batch, in_features), optional context c: (batch, context) is concatenated to the input.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


def activation(name: str) -> nn.Module:
    """An activation module by name (``relu``, ``leaky_relu``, ``elu``, ``gelu``, ``silu``, ``tanh``)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}") from None


class MLP(nn.Sequential):
    """Dense network ``in_features (+ context) -> hidden... -> out_features``.

    Args:
        in_features: input size.
        out_features: output size.
        hidden: sizes of the hidden layers.
        context: size of an optional context vector concatenated to the input.
        activation: name of the hidden activation.
        dropout: dropout probability after each hidden activation.
        norm: ``"layer"`` or ``"batch"`` normalisation after each hidden linear layer, or None.
        spectral_norm: wrap every linear layer in spectral normalisation (GAN critics).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (64, 64),
        *,
        context: int = 0,
        activation: str = "relu",
        dropout: float = 0.0,
        norm: str | None = None,
        spectral_norm: bool = False,
    ):
        layers: list[nn.Module] = []
        sizes = [in_features + context, *hidden]
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers.append(self._linear(a, b, spectral_norm))
            if norm == "layer":
                layers.append(nn.LayerNorm(b))
            elif norm == "batch":
                layers.append(nn.BatchNorm1d(b))
            elif norm is not None:
                raise ValueError(f"unknown norm {norm!r}; choose 'layer', 'batch' or None")
            layers.append(globals()["activation"](activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        layers.append(self._linear(sizes[-1], out_features, spectral_norm))
        super().__init__(*layers)
        self.in_features, self.out_features, self.context = in_features, out_features, context

    @staticmethod
    def _linear(a: int, b: int, spectral: bool) -> nn.Module:
        layer = nn.Linear(a, b)
        return nn.utils.parametrizations.spectral_norm(layer) if spectral else layer

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """x: (batch, in_features), context: (batch, context) -> (batch, out_features)."""
        if self.context:
            if context is None:
                raise ValueError("this network was built with a context input; pass context=")
            x = torch.cat([x, context.expand(x.shape[0], -1)], dim=-1)
        return super().forward(x)
