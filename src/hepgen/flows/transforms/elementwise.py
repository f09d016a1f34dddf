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

from hepgen.flows.transforms.base import Transform


class AffineTransformer:
    """y = x · exp(s) + t with the log-scale soft-clamped to (-S, S) (keeps exp finite in float32)."""

    params = 2

    def __init__(self, scale_bound: float = 3.0):
        self.scale_bound = float(scale_bound)

    def __call__(self, x: Tensor, params: Tensor, inverse: bool = False) -> tuple[Tensor, Tensor]:
        shift = params[..., 0]
        s = self.scale_bound * torch.tanh(params[..., 1] / self.scale_bound)
        if inverse:
            return (x - shift) * torch.exp(-s), -s.sum(-1)
        return x * torch.exp(s) + shift, s.sum(-1)


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
