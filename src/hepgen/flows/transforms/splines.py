"""Monotonic rational-quadratic splines (Durkan et al. 2019) with linear (identity) tails.

On [-B, B] the map is piecewise rational-quadratic through K + 1 knots (x_k, y_k) with positive
derivatives δ_k; in bin k with θ = (x - x_k)/w_k and s_k = h_k/w_k:

    y = y_k + h_k (s_k θ² + δ_k θ(1-θ)) / (s_k + (δ_{k+1} + δ_k - 2 s_k) θ(1-θ))

Outside [-B, B] it is the identity (boundary derivatives are 1, so the map is C¹). Knot spacings are
``m + (1 - mK) softmax(u)`` (m the minimum bin size), interior derivatives ``m + softplus(u + c)``
(c makes zero parameters the identity).

The spline is one fused autograd function built for speed on CPU, where a spline flow's time goes into
many small elementwise kernels rather than the conditioner's matrix products:

* parameters are laid out parameter-major, (3K-1, N) for N = batch·features elements (conditioners hand
  them over that way, see :func:`_flatten`), so every operation runs along contiguous rows of N; torch's
  softmax and reductions over a trailing dimension of a few bins are an order of magnitude slower;
* the softmax is ``exp(u - max u)`` and all K+1 cumulative knot sums (with the leading zero and the total)
  come from one matmul with a triangular matrix; only the searched row's interior knots are normalised;
* bins are found by comparing with those knots (``searchsorted(right=True)``), the bin's cumulative sums
  and the two derivatives are gathered, and softplus runs on the two gathered derivatives only;
* the backward pass is written out: with G_k, G_{k+1} the gradients of the two knots an element touches,
  ∂/∂u_j = p_j (1 - mK)([j < k] G_k + [j ≤ k] G_{k+1} - q_{k-1} G_k - q_k G_{k+1}) (p the softmax, q its
  cumulative sum), a reverse cumulative sum of a two-entry vector: one scatter and one triangular matmul.

Inputs in the tails are computed on clamped values and selected with ``torch.where``, so no branch can
produce NaN or infinite gradients. Gradients are first order (``once_differentiable``); they are checked
against finite differences in the tests.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

MIN_WIDTH = 1e-3
MIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3
# softplus(u + _SHIFT) + MIN_DERIVATIVE = 1 at u = 0: all-zero parameters give the identity map
_SHIFT = math.log(math.expm1(1.0 - MIN_DERIVATIVE))
# the fused implementation uses one floor for widths and heights
assert MIN_WIDTH == MIN_HEIGHT


@functools.lru_cache(maxsize=64)
def _constants(k: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Constant matrices: (K+1, K) [i < j] (padded cumulative sums as one matmul), the interior knot ramp
    m·(1..K-1) as a column (K-1, 1) and (K, K+2) [j < i] with a last column of ones (the backward pass's
    reverse cumulative sum plus a constant)."""
    lower = torch.tril(torch.ones(k + 1, k, dtype=dtype, device=device), -1)
    ramp = (torch.arange(1, k, dtype=dtype, device=device) * MIN_WIDTH).unsqueeze(1)
    upper = torch.triu(torch.ones(k, k + 2, dtype=dtype, device=device), 1)
    upper[:, -1] = 1.0
    return lower, ramp, upper


def _spline_forward(x: Tensor, pt: Tensor, bound: float, inverse: bool, keep: bool, log_det: bool = True):
    """y, elementwise log|dy/dx| (None unless ``log_det``) and (if ``keep``) what the backward pass needs.
    Without ``log_det`` the inverse skips the derivative's ~17 operations (sampling); y is the same, bit for bit.

    x: (N,); pt: (3K-1, N) parameter-major (every operation runs along the contiguous N axis).
    """
    p, n = pt.shape
    k = (p + 1) // 3
    m = MIN_WIDTH
    scale = 2.0 * bound
    lower, ramp, _ = _constants(k, pt.dtype, pt.device)
    # widths and heights together, (2, K, N). Unit knots: knot_j = m j + (1 - mK) cum_j / total
    uwh = pt[: 2 * k].view(2, k, n)
    e = (uwh - uwh.amax(1, keepdim=True)).exp_()
    cum = torch.matmul(lower, e)  # (2, K+1, N), row j: Σ_{i<j} e_i; row K: the total
    norm = cum[:, k].reciprocal() * (1.0 - m * k)  # (2, N): what `(1 - mK) / cum` runs, without its Python wrapper

    xc = x.clamp(-bound, bound)
    inside = xc == x
    row = 1 if inverse else 0
    interior = torch.addcmul(ramp, cum[row, 1:k], norm[row])  # (K-1, N) interior knots of the searched row
    idx = (interior <= (xc + bound) / scale).sum(0)  # (N,): the bin, as searchsorted(right=True)
    pair = torch.stack([idx, idx + 1])  # (2, N)
    ramp_pair = pair.to(pt.dtype) * m  # (2, N): m k, m (k + 1)
    kn = torch.addcmul(ramp_pair, cum.gather(1, pair.expand(2, 2, n)), norm.unsqueeze(1))  # (2, 2, N) unit knots
    ud = F.pad(pt[2 * k:], (0, 0, 1, 1)).gather(0, pair) + _SHIFT  # zero padding -> boundary slope 1
    d = F.softplus(ud) + MIN_DERIVATIVE  # (2, N): δ_k, δ_k1
    # the bin in the original box: left knots (x_k, y_k) and sizes (w, h), the latter from differences
    # in the unit box (no cancellation)
    lo = kn[:, 0] * scale - bound
    wh = (kn[:, 1] - kn[:, 0]) * scale
    xk, yk, w, h = lo[0], lo[1], wh[0], wh[1]
    dk, dk1 = d[0], d[1]
    s = h / w
    slope_sum = dk + dk1 - 2.0 * s

    if inverse:
        dy = xc - yk
        a = h * (s - dk) + dy * slope_sum
        b = h * dk - dy * slope_sum
        c = -s * dy
        disc = (b * b - 4.0 * a * c).clamp_min(0.0)
        theta = (2.0 * c / (-b - torch.sqrt(disc))).clamp(0.0, 1.0)
        out = xk + w * theta
        if not log_det and not keep:
            return torch.where(inside, out, x), None, ()
    else:
        theta = ((xc - xk) / w).clamp(0.0, 1.0)
    om = 1.0 - theta
    t = theta * om
    den = s + slope_sum * t
    dnum = dk1 * theta * theta + 2.0 * s * t + dk * om * om
    r = s / den
    log_deriv = torch.log(dnum * r * r)
    if inverse:
        log_deriv = -log_deriv
    else:
        out = yk + h * (s * theta * theta + dk * t) / den
    out = torch.where(inside, out, x)
    ladj = torch.where(inside, log_deriv, 0.0)
    saved = (inside, pair, kn, ramp_pair, norm, ud, d, e, theta, s, w, h, den, dnum) if keep else ()
    return out, ladj, saved


def _spline_backward(saved, bound: float, inverse: bool, g_out: Tensor, g_ladj: Tensor) -> tuple[Tensor, Tensor]:
    """Gradients (input (N,), parameters (3K-1, N)) from those of the output and of log|dy/dx|."""
    inside, pair, kn, ramp_pair, norm, ud, d, e, theta, s, w, h, den, dnum = saved
    _, k, n = e.shape
    m = MIN_WIDTH
    scale = 2.0 * bound
    dk, dk1 = d[0], d[1]
    om = 1.0 - theta
    t = theta * om
    slope_sum = dk + dk1 - 2.0 * s
    inv_den, inv_dnum = 1.0 / den, 1.0 / dnum
    # partials of L = log dy/dx (forward direction) with respect to θ, s, δ_k, δ_k1
    two_t_over_den = 2.0 * t * inv_den
    l_theta = 2.0 * (dk1 * theta + s * (1.0 - 2.0 * theta) - dk * om) * inv_dnum \
        - 2.0 * slope_sum * (1.0 - 2.0 * theta) * inv_den
    l_s = 2.0 / s + 2.0 * t * inv_dnum - 2.0 * (1.0 - 2.0 * t) * inv_den
    l_dk = om * om * inv_dnum - two_t_over_den
    l_dk1 = theta * theta * inv_dnum - two_t_over_den
    gl = torch.where(inside, g_ladj, 0.0)
    if inverse:
        # x = F⁻¹(y): dx/dy = 1/F', and the parameter gradients are the forward ones with
        # upstream (-A, -g_L), A = (g_x - g_L L_x)/F' the gradient with respect to the input y
        fx = s * s * dnum * inv_den * inv_den
        a_in = (torch.where(inside, g_out, 0.0) - gl * l_theta / w) / fx
        g_input = torch.where(inside, a_in, g_out)
        gy, gl = -a_in, -gl
    else:
        gy = torch.where(inside, g_out, 0.0)
    # the forward map: y = y_k + h R(θ, s, δ_k, δ_k1), θ = (x - x_k)/w, s = h/w
    rr = (s * theta * theta + dk * t) * inv_den
    gyh = gy * h * inv_den
    g_theta = gyh * s * dnum * inv_den + gl * l_theta
    g_s = gyh * (theta * theta - rr * (1.0 - 2.0 * t)) + gl * l_s
    g_dk = gyh * t * (1.0 - rr) + gl * l_dk
    g_dk1 = -gyh * rr * t + gl * l_dk1
    if not inverse:
        g_input = torch.where(inside, g_theta / w, g_out)
    # knot gradients, widths row from θ and s, heights row from y_k, h and s; times 2B for the unit box
    g_x1 = -(g_theta * theta + g_s * s) / w
    g_x0 = (g_s * s - g_theta * om) / w
    g_h = gy * rr + g_s / w
    g_k = torch.stack([g_x0, gy - g_h]) * scale  # (2, N): knot k of widths, heights
    g_k1 = torch.stack([g_x1, g_h]) * scale  # knot k + 1
    # through the softmax and the cumulative sum, knot_i = m i + (1 - mK) q_{i-1}, q = cumsum(p):
    # ∂/∂u_j = p_j ((1 - mK)([j < k] G_k + [j <= k] G_k1) - (1 - mK)(q_{k-1} G_k + q_k G_k1)).
    # The bracket is a reverse cumulative sum of a vector that is G_k at k, G_k1 at k+1 and the constant
    # in an extra last slot: one scatter and one matmul with [j < i] (no per-bin masks).
    c = norm * (1.0 / (1.0 - m * k))  # 1 / total, (2, N)
    q = kn - ramp_pair.unsqueeze(0)  # (2, 2, N): (1 - mK) q_{k-1}, (1 - mK) q_k
    sparse = torch.zeros(2, k + 2, n, dtype=e.dtype, device=e.device)
    sparse[:, k + 1] = -(q[:, 0] * g_k + q[:, 1] * g_k1) * c
    sparse.scatter_(1, pair.expand(2, 2, n), torch.stack([g_k, g_k1], 1) * (c * (1.0 - m * k)).unsqueeze(1))
    g_u = torch.matmul(_constants(k, e.dtype, e.device)[2], sparse).mul_(e)  # (2, K, N)
    # derivatives: δ = m + softplus(u + c) at the two gathered positions (the padded ends are constant)
    g_d = torch.stack([g_dk, g_dk1]) * torch.sigmoid(ud)
    g_pad = torch.zeros(k + 1, n, dtype=g_d.dtype, device=g_d.device).scatter_(0, pair, g_d)
    return g_input, torch.cat([g_u.view(2 * k, n), g_pad[1:k]])


class _RationalQuadraticSpline(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, params: Tensor, bound: float, inverse: bool):
        out, ladj, saved = _spline_forward(x, params, bound, inverse, keep=True)
        ctx.save_for_backward(*saved)
        ctx.bound, ctx.inverse = bound, inverse
        return out, ladj

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out: Tensor, g_ladj: Tensor):
        g_input, g_params = _spline_backward(ctx.saved_tensors, ctx.bound, ctx.inverse, g_out, g_ladj)
        return g_input, g_params, None, None


def _flatten(x: Tensor, params: Tensor) -> tuple[Tensor, Tensor, bool]:
    """(x (N,), parameters (3K-1, N), feature_major): x (batch, d) with parameters laid out (P, d, batch) in
    memory (as the masked conditioners produce them) or (P, batch, d) (the convolutional couplings without
    gradients) flatten without a copy of the parameters."""
    p = params.shape[-1]
    if x.dim() == 2 and params.dim() == 3 and params.permute(2, 1, 0).is_contiguous():
        return x.t().reshape(-1), params.permute(2, 1, 0).reshape(p, -1), True
    if x.dim() == 2 and params.dim() == 3 and params.permute(2, 0, 1).is_contiguous():
        return x.reshape(-1), params.permute(2, 0, 1).reshape(p, -1), False
    return x.reshape(-1), params.reshape(-1, p).t().contiguous(), False


def rational_quadratic_spline(x: Tensor, params: Tensor, bound: float = 5.0,
                              inverse: bool = False, log_det: bool = True) -> tuple[Tensor, Tensor | None]:
    """Apply the spline elementwise.

    Args:
        x: (...,) inputs (outputs of the spline when ``inverse``).
        params: (..., 3K - 1) unnormalised widths (K), heights (K) and interior derivatives (K - 1);
            all zeros give the identity.
        bound: B, the half-width of the spline's box [-B, B]².
        inverse: evaluate the inverse map.
        log_det: False: skip log|dy/dx| where that saves work (the inverse without gradients) and return None
            for it; y is the same, bit for bit.

    Returns:
        y: (...,) and log|dy/dx| (...,) elementwise (None without ``log_det``).
    """
    flat_x, pt, feature_major = _flatten(x, params)
    if torch.is_grad_enabled() and (x.requires_grad or params.requires_grad):
        y, ladj = _RationalQuadraticSpline.apply(flat_x, pt, float(bound), bool(inverse))
    else:
        y, ladj, _ = _spline_forward(flat_x, pt, float(bound), bool(inverse), keep=False, log_det=log_det)
    if not log_det:
        return (y.view(x.shape[1], x.shape[0]).t() if feature_major else y.view(x.shape)), None
    if feature_major:
        return y.view(x.shape[1], x.shape[0]).t(), ladj.view(x.shape[1], x.shape[0]).t()
    return y.view(x.shape), ladj.view(x.shape)


class SplineTransformer:
    """The elementwise spline a conditioner parametrises: 3K - 1 numbers per feature.

    ``transformer(x, params, inverse)`` with x: (batch, d), params: (batch, d, 3K - 1) returns
    (y (batch, d), log|det J| (batch,)).
    """

    #: conditioners should hand over parameters as a view of (P, d, batch) memory (see :func:`_flatten`)
    param_major = True

    def __init__(self, bins: int = 8, bound: float = 5.0):
        if bins < 1:
            raise ValueError(f"a spline needs at least one bin, got bins={bins}")
        self.bins, self.bound = int(bins), float(bound)
        self.params = 3 * self.bins - 1

    def __call__(self, x: Tensor, params: Tensor, inverse: bool = False) -> tuple[Tensor, Tensor]:
        y, ladj = rational_quadratic_spline(x, params, self.bound, inverse)
        return y, ladj.sum(-1)

    def invert(self, y: Tensor, params: Tensor) -> Tensor:
        """The inverse map alone: ``self(y, params, inverse=True)[0]``, bit for bit, without the log-determinant."""
        return rational_quadratic_spline(y, params, self.bound, inverse=True, log_det=False)[0]
