"""The rational-quadratic spline: identity at zero parameters, closed-form checks at the knots, monotone,
exact inverse and derivative (hypothesis over shapes, parameters and inputs deep in the tails), and no
NaN or infinity for extreme float32 inputs, also through gradients; the fused backward pass against finite
differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck

from hepgen.flows.transforms.splines import MIN_DERIVATIVE, SplineTransformer, rational_quadratic_spline

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


def _params(seed: int, shape: tuple[int, ...], bins: int, scale: float, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, 3 * bins - 1, generator=g, dtype=torch.float64) * scale).to(dtype)


def test_zero_parameters_give_the_identity():
    x = torch.linspace(-7, 7, 101, dtype=torch.float64)
    y, ladj = rational_quadratic_spline(x, torch.zeros(101, 3 * 6 - 1, dtype=torch.float64), bound=4.0)
    torch.testing.assert_close(y, x, rtol=0, atol=1e-12)
    torch.testing.assert_close(ladj, torch.zeros_like(x), rtol=0, atol=1e-12)


def test_knots_map_to_knots_with_the_stated_derivatives():
    """At knot k the spline passes through (x_k, y_k) with slope δ_k (from softmax / softplus by hand)."""
    bins, bound = 4, 2.0
    p = _params(0, (1,), bins, 1.0)[0]
    w = 1e-3 + (1 - 1e-3 * bins) * torch.softmax(p[:bins], 0)
    h = 1e-3 + (1 - 1e-3 * bins) * torch.softmax(p[bins:2 * bins], 0)
    xk = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(w, 0)]) * 2 * bound - bound
    yk = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(h, 0)]) * 2 * bound - bound
    shift = np.log(np.expm1(1 - MIN_DERIVATIVE))
    d = torch.cat([torch.ones(1, dtype=torch.float64), MIN_DERIVATIVE + torch.nn.functional.softplus(p[2 * bins:] + shift),
                   torch.ones(1, dtype=torch.float64)])
    y, ladj = rational_quadratic_spline(xk, p.expand(len(xk), -1), bound)
    torch.testing.assert_close(y, yk, rtol=0, atol=1e-12)
    torch.testing.assert_close(ladj, torch.log(d), rtol=0, atol=1e-9)


@SETTINGS
@given(batch=st.integers(1, 5), features=st.integers(1, 4), bins=st.integers(1, 10),
       bound=st.floats(0.5, 8.0), scale=st.floats(0.0, 3.0), spread=st.floats(0.1, 1e3), seed=st.integers(0, 10**6))
def test_round_trip_and_derivative_property(batch, features, bins, bound, scale, spread, seed):
    p = _params(seed, (batch, features), bins, scale)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, features, generator=g, dtype=torch.float64) * spread
    x.requires_grad_(True)
    y, ladj = rational_quadratic_spline(x, p, bound)
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(ladj, torch.log(grad), rtol=0, atol=1e-6)
    back, ladj_inv = rational_quadratic_spline(y.detach(), p, bound, inverse=True)
    torch.testing.assert_close(back, x.detach(), rtol=0, atol=1e-6 * max(1.0, spread / 100))
    torch.testing.assert_close(ladj_inv, -ladj.detach(), rtol=0, atol=1e-6)
    outside = x.detach().abs() > bound
    torch.testing.assert_close(y.detach()[outside], x.detach()[outside], rtol=0, atol=0)


@SETTINGS
@given(bins=st.integers(1, 12), scale=st.floats(0.0, 5.0), seed=st.integers(0, 10**6))
def test_monotone_and_maps_the_box_onto_itself(bins, scale, seed):
    p = _params(seed, (1,), bins, scale).expand(2001, -1)
    x = torch.linspace(-3.0, 3.0, 2001, dtype=torch.float64)
    y, _ = rational_quadratic_spline(x, p, 3.0)
    assert (torch.diff(y) > 0).all()
    torch.testing.assert_close(y[[0, -1]], x[[0, -1]], rtol=0, atol=1e-12)


def test_extreme_float32_inputs_give_no_nan():
    x = torch.tensor([-1e4, -1e3, -5.0, -5.0 + 1e-6, 0.0, 4.999999, 5.0, 1e3, 1e4], dtype=torch.float32)
    p = _params(1, (len(x),), 8, 3.0, torch.float32).requires_grad_(True)
    xr = x.clone().requires_grad_(True)
    y, ladj = rational_quadratic_spline(xr, p, 5.0)
    back, ladj_inv = rational_quadratic_spline(y, p, 5.0, inverse=True)
    assert torch.isfinite(y).all() and torch.isfinite(ladj).all() and torch.isfinite(back).all()
    (back.sum() + ladj.sum() + ladj_inv.sum()).backward()
    assert torch.isfinite(xr.grad).all() and torch.isfinite(p.grad).all()
    torch.testing.assert_close(back.detach(), x, rtol=1e-5, atol=1e-4)


def test_batch_entirely_in_the_tails_is_finite_with_zero_parameter_gradient():
    """All inputs outside [-B, B]: identity, ladj 0, finite gradients and none flowing to the spline."""
    x = torch.cat([torch.linspace(-1e4, -5.01, 50), torch.linspace(5.01, 1e4, 50)]).reshape(50, 2)
    p = _params(2, (50, 2), 8, 2.0, torch.float32).requires_grad_(True)
    xr = x.clone().requires_grad_(True)
    y, ladj = SplineTransformer(8, 5.0)(xr, p)
    back, ladj_inv = SplineTransformer(8, 5.0)(y, p, inverse=True)
    (y.sum() + ladj.sum() + back.sum() + ladj_inv.sum()).backward()
    assert torch.equal(y.detach(), x) and torch.equal(back.detach(), x)
    assert torch.equal(ladj.detach(), torch.zeros(50))
    assert torch.isfinite(xr.grad).all() and torch.equal(p.grad, torch.zeros_like(p))


@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("bins", [1, 2, 7])
def test_fused_backward_matches_finite_differences(inverse, bins):
    """The hand-written backward pass (parameters and inputs, both directions) against torch.autograd.gradcheck's
    finite differences in float64; inputs cover every bin and both tails."""
    g = torch.Generator().manual_seed(bins)
    p = torch.randn(60, 3 * bins - 1, generator=g, dtype=torch.float64).requires_grad_(True)
    x = (torch.randn(60, generator=g, dtype=torch.float64) * 3.0).requires_grad_(True)
    assert gradcheck(lambda a, b: rational_quadratic_spline(a, b, 4.0, inverse), (x, p), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("inverse", [False, True])
def test_parameter_major_layout_gives_the_same_values_and_gradients(inverse):
    """Conditioners hand over parameters as a (batch, d, P) view of (P, d, batch) memory; the result and its
    gradients equal those of a contiguous copy."""
    g = torch.Generator().manual_seed(5)
    mem = torch.randn(3 * 5 - 1, 3, 7, generator=g, dtype=torch.float64).requires_grad_(True)
    x = (torch.randn(7, 3, generator=g, dtype=torch.float64) * 3.0).requires_grad_(True)
    y, ladj = rational_quadratic_spline(x, mem.permute(2, 1, 0), 4.0, inverse)
    y2, ladj2 = rational_quadratic_spline(x, mem.permute(2, 1, 0).contiguous(), 4.0, inverse)
    torch.testing.assert_close(y, y2, rtol=1e-12, atol=1e-12)  # not bitwise: SIMD and scalar tails may differ
    torch.testing.assert_close(ladj, ladj2, rtol=1e-12, atol=1e-12)
    grads = torch.autograd.grad((y * y).sum() + ladj.sum(), (x, mem))
    grads2 = torch.autograd.grad((y2 * y2).sum() + ladj2.sum(), (x, mem))
    for a, b in zip(grads, grads2):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda a, b: rational_quadratic_spline(a, b.permute(2, 1, 0), 4.0, inverse), (x, mem),
                     eps=1e-6, atol=1e-6)


def test_parameters_laid_out_param_batch_feature_flatten_without_a_copy():
    """(P, batch, d) memory (a convolutional coupling's inference path) is flattened as a view and gives the
    same numbers, bit for bit, as contiguous (batch, d, P) parameters."""
    from hepgen.flows.transforms.splines import _flatten

    g = torch.Generator().manual_seed(4)
    x = torch.randn(7, 5, generator=g, dtype=torch.float64) * 3
    memory = torch.randn(3 * 4 - 1, 7, 5, generator=g, dtype=torch.float64)
    params = memory.permute(1, 2, 0)  # (batch, d, P) view
    flat_x, pt, feature_major = _flatten(x, params)
    assert pt.data_ptr() == memory.data_ptr() and not feature_major
    assert torch.equal(pt, params.reshape(-1, 11).t())
    for inverse in (False, True):
        y, ladj = rational_quadratic_spline(x, params, 2.5, inverse)
        y_ref, ladj_ref = rational_quadratic_spline(x, params.contiguous(), 2.5, inverse)
        assert torch.equal(y, y_ref) and torch.equal(ladj, ladj_ref)


@pytest.mark.parametrize("inverse", [False, True])
def test_without_the_log_derivative_the_output_is_the_same_bit_for_bit(inverse):
    g = torch.Generator().manual_seed(2)
    p = torch.randn(3 * 6 - 1, 4, 300, generator=g).permute(2, 1, 0)  # the conditioners' layout, and a copy
    x = torch.randn(300, 4, generator=g) * 3.0  # every bin and both tails
    for params in (p, p.contiguous()):
        y, ladj = rational_quadratic_spline(x, params, 4.0, inverse)
        with torch.no_grad():
            y2, none = rational_quadratic_spline(x, params, 4.0, inverse, log_det=False)
        assert none is None and torch.equal(y, y2)
    assert torch.equal(SplineTransformer(6, 4.0).invert(x, p), rational_quadratic_spline(x, p, 4.0, True)[0])
