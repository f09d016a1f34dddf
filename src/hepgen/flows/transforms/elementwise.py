"""Elementwise bijections: the affine/additive maps conditioners parametrise, and fixed or learnable
per-feature layers (affine, logit/sigmoid, softplus).

Transformers (used by coupling and autoregressive layers) take x: (batch, d) and
params: (batch, d, P) and return (y (batch, d), log|det J| (batch,)):

    affine     y = x · exp(s) + t,   s = S tanh(ŝ / S)   (P = 2: t, ŝ; soft-clamped log-scale)
    additive   y = x + t            (P = 1, volume preserving: NICE)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from hepgen.flows.transforms.base import Transform


class _SoftClampedAffine(torch.autograd.Function):
    """y = x·exp(s) + t (or its inverse), s = S tanh(ŝ/S), with the backward pass written out: one node instead
    of a dozen recorded ops (and no zero-filled select gradients) per layer."""

    @staticmethod
    def forward(ctx, x: Tensor, params: Tensor, bound: float, inverse: bool) -> tuple[Tensor, Tensor]:
        y, ladj, th, e = _affine(x, params, bound, inverse)
        ctx.save_for_backward(y if inverse else x, th, e)
        ctx.bound, ctx.inverse = bound, inverse
        return y, ladj

    @staticmethod
    @once_differentiable
    def backward(ctx, g_y: Tensor, g_ladj: Tensor):
        v, th, e = ctx.saved_tensors  # v: the input x (forward) or the output x (inverse)
        g_l = g_ladj.unsqueeze(-1)
        g_in = g_y * e
        if ctx.inverse:  # x = (y - t) exp(-s): ∂x/∂t = -exp(-s), ∂x/∂s = -x; log|det| = -Σ s
            g_shift, g_s = -g_in, -(g_y * v) - g_l
        else:  # ∂y/∂t = 1, ∂y/∂s = x exp(s); log|det| = Σ s
            g_shift, g_s = g_y, g_in * v + g_l
        g_raw = g_s * (1.0 - th * th)
        return g_in, torch.stack([g_shift, g_raw], dim=-1), None, None


def _affine(x: Tensor, params: Tensor, bound: float, inverse: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    shift, raw = params.unbind(-1)
    th = torch.tanh(raw * (1.0 / bound))
    s = th * bound
    if inverse:
        e = torch.exp(-s)
        return (x - shift).mul_(e), -s.sum(-1), th, e
    e = torch.exp(s)
    return torch.addcmul(shift, x, e), s.sum(-1), th, e


class AffineTransformer:
    """y = x · exp(s) + t with the log-scale soft-clamped to (-S, S) (keeps exp finite in float32)."""

    params = 2

    def __init__(self, scale_bound: float = 3.0):
        self.scale_bound = float(scale_bound)

    def __call__(self, x: Tensor, params: Tensor, inverse: bool = False) -> tuple[Tensor, Tensor]:
        if torch.is_grad_enabled() and (x.requires_grad or params.requires_grad):
            return _SoftClampedAffine.apply(x, params, self.scale_bound, bool(inverse))
        y, ladj, _, _ = _affine(x, params, self.scale_bound, bool(inverse))
        return y, ladj


class AdditiveTransformer:
    """y = x + t (unit Jacobian)."""

    params = 1

    def __call__(self, x: Tensor, params: Tensor, inverse: bool = False) -> tuple[Tensor, Tensor]:
        shift = params[..., 0]
        zero = x.new_zeros(x.shape[0])
        return (x - shift, zero) if inverse else (x + shift, zero)


class ElementwiseAffine(Transform):
    """Learnable y = x · exp(s) + t per feature; log|det J| = Σ s. x: (batch, features)."""

    def __init__(self, features: int):
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(features))
        self.log_scale = nn.Parameter(torch.zeros(features))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.shift.normal_(0.0, 0.01)
            self.log_scale.normal_(0.0, 0.01)

    def reset_to_identity(self) -> None:
        with torch.no_grad():
            self.shift.zero_()
            self.log_scale.zero_()

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return x * torch.exp(self.log_scale) + self.shift, self.log_scale.sum().expand(x.shape[0])

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return (y - self.shift) * torch.exp(-self.log_scale), (-self.log_scale.sum()).expand(y.shape[0])


def _log_sigmoid_jacobian(x: Tensor) -> Tensor:
    """log σ'(x) = log σ(x) + log σ(-x) = -softplus(-x) - softplus(x), summed over features."""
    return -(F.softplus(-x) + F.softplus(x)).sum(-1)


class Sigmoid(Transform):
    """y = σ(x) = 1 / (1 + e^{-x}): ℝ -> (0, 1); log|det J| = Σ log σ(x) σ(-x)."""

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return torch.sigmoid(x), _log_sigmoid_jacobian(x)

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        eps = torch.finfo(y.dtype).eps
        x = torch.logit(y.clamp(eps, 1.0 - eps))
        return x, -_log_sigmoid_jacobian(x)


class Logit(Transform):
    """y = logit(x) = log x - log(1 - x): (0, 1) -> ℝ, the inverse of :class:`Sigmoid`."""

    def __init__(self):
        super().__init__()
        self._sigmoid = Sigmoid()

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._sigmoid.inverse(x)

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._sigmoid(y)


class Softplus(Transform):
    """y = log(1 + e^x): ℝ -> (0, ∞); log|det J| = Σ log σ(x) = -Σ softplus(-x)."""

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return F.softplus(x), -F.softplus(-x).sum(-1)

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        tiny = torch.finfo(y.dtype).tiny
        y = y.clamp_min(tiny)
        x = y + torch.log(-torch.expm1(-y))  # log(e^y - 1), stable for small and large y
        return x, F.softplus(-x).sum(-1)


__all__ = ["AdditiveTransformer", "AffineTransformer", "ElementwiseAffine", "Logit", "Sigmoid", "Softplus"]
