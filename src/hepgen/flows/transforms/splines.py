"""Monotonic rational-quadratic splines (Durkan et al. 2019) with linear (identity) tails.

On [-B, B] the map is piecewise rational-quadratic through K + 1 knots (x_k, y_k) with positive
derivatives δ_k; in bin k with θ = (x - x_k)/w_k and s_k = h_k/w_k:

    y = y_k + h_k (s_k θ² + δ_k θ(1-θ)) / (s_k + (δ_{k+1} + δ_k - 2 s_k) θ(1-θ))

Outside [-B, B] it is the identity (boundary derivatives are 1, so the map is C¹). Everything is
vectorised: bins are found with one ``torch.searchsorted`` over the interior knots and parameters are
gathered per element; no Python loop over bins, and inputs in the tails are computed on clamped values
and selected with ``torch.where`` so that no branch can produce NaN or infinite gradients.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

MIN_WIDTH = 1e-3
MIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3
# softplus(u + _SHIFT) + MIN_DERIVATIVE = 1 at u = 0: all-zero parameters give the identity map
_SHIFT = math.log(math.expm1(1.0 - MIN_DERIVATIVE))


def _knots(unnormalised: Tensor, bound: float, minimum: float) -> tuple[Tensor, Tensor]:
    """Softmax bin sizes with a floor -> (all knots (..., K+1), interior knots (..., K-1))."""
    k = unnormalised.shape[-1]
    sizes = minimum + (1.0 - minimum * k) * torch.softmax(unnormalised, dim=-1)
    cum = torch.cumsum(sizes, dim=-1) * (2.0 * bound) - bound
    knots = F.pad(cum, (1, 0), value=-bound)
    return knots, knots[..., 1:-1].contiguous()


def rational_quadratic_spline(x: Tensor, params: Tensor, bound: float = 5.0,
                              inverse: bool = False) -> tuple[Tensor, Tensor]:
    """Apply the spline elementwise.

    Args:
        x: (...,) inputs (outputs of the spline when ``inverse``).
        params: (..., 3K - 1) unnormalised widths (K), heights (K) and interior derivatives (K - 1);
            all zeros give the identity.
        bound: B, the half-width of the spline's box [-B, B]².
        inverse: evaluate the inverse map.

    Returns:
        y: (...,) and log|dy/dx| (...,) elementwise.
    """
    k = (params.shape[-1] + 1) // 3
    cw, inner_w = _knots(params[..., :k], bound, MIN_WIDTH)
    ch, inner_h = _knots(params[..., k:2 * k], bound, MIN_HEIGHT)
    d = F.pad(MIN_DERIVATIVE + F.softplus(params[..., 2 * k:] + _SHIFT), (1, 1), value=1.0)

    inside = (x >= -bound) & (x <= bound)
    xc = x.clamp(-bound, bound)
    idx = torch.searchsorted(inner_h if inverse else inner_w, xc.unsqueeze(-1), right=True)
    x_k = cw.gather(-1, idx).squeeze(-1)
    w_k = cw.gather(-1, idx + 1).squeeze(-1) - x_k
    y_k = ch.gather(-1, idx).squeeze(-1)
    h_k = ch.gather(-1, idx + 1).squeeze(-1) - y_k
    d_k = d.gather(-1, idx).squeeze(-1)
    d_k1 = d.gather(-1, idx + 1).squeeze(-1)
    s = h_k / w_k
    slope_sum = d_k1 + d_k - 2.0 * s

    if inverse:
        dy = xc - y_k
        a = h_k * (s - d_k) + dy * slope_sum
        b = h_k * d_k - dy * slope_sum
        c = -s * dy
        disc = (b * b - 4.0 * a * c).clamp_min(0.0)
        theta = (2.0 * c / (-b - torch.sqrt(disc))).clamp(0.0, 1.0)
        out = theta * w_k + x_k
    else:
        theta = ((xc - x_k) / w_k).clamp(0.0, 1.0)
    one_minus = 1.0 - theta
    tt = theta * one_minus
    denom = s + slope_sum * tt
    if not inverse:
        out = y_k + h_k * (s * theta * theta + d_k * tt) / denom
    log_deriv = (2.0 * torch.log(s) + torch.log(d_k1 * theta * theta + 2.0 * s * tt + d_k * one_minus * one_minus)
                 - 2.0 * torch.log(denom))
    if inverse:
        log_deriv = -log_deriv
    return torch.where(inside, out, x), torch.where(inside, log_deriv, torch.zeros_like(log_deriv))


class SplineTransformer:
    """The elementwise spline a conditioner parametrises: 3K - 1 numbers per feature.

    ``transformer(x, params, inverse)`` with x: (batch, d), params: (batch, d, 3K - 1) returns
    (y (batch, d), log|det J| (batch,)).
    """

    def __init__(self, bins: int = 8, bound: float = 5.0):
        if bins < 1:
            raise ValueError(f"a spline needs at least one bin, got bins={bins}")
        self.bins, self.bound = int(bins), float(bound)
        self.params = 3 * self.bins - 1

    def __call__(self, x: Tensor, params: Tensor, inverse: bool = False) -> tuple[Tensor, Tensor]:
        y, ladj = rational_quadratic_spline(x, params, self.bound, inverse)
        return y, ladj.sum(-1)
