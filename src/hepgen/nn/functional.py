"""Elementwise functions faster than torch's on CPU, same values and gradients.

    asinh(x) = sign(x) · log1p(|x| + x² / (1 + √(1 + x²)))      d/dx asinh(x) = 1 / √(1 + x²)

torch's CPU ``asinh`` is not vectorised: on a (128, 507) float32 batch it took 0.92 ms against 0.19 ms for the
expression above (one thread), and the calo-gan's critic view applies it to every cell of the real and the
generated batch on every step (43 % of a critic step before). The expression is exact in float32 to within
a few ulp over |x| ≤ 10⁵ (the cancellation-free form of log(x + √(x² + 1))); the backward pass is the
closed-form derivative, not the expression's graph.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["asinh"]


class _Asinh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        a = x.abs()
        s = torch.sqrt(a * a + 1.0)
        ctx.save_for_backward(s)
        return torch.copysign(torch.log1p(a + a * a / (s + 1.0)), x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (s,) = ctx.saved_tensors
        return grad / s


def asinh(x: Tensor) -> Tensor:
    """asinh(x), elementwise (module doc); differentiable."""
    if x.device.type != "cpu":
        return torch.asinh(x)
    return _Asinh.apply(x)
