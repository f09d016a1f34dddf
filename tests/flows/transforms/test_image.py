"""The convolutional coupling's inference path for checkerboards on periodic 2-D lattices of even sides (the
last convolution at the changed sites only, as two stride-2 convolutions): the same numbers, bit for bit, as
the full convolution followed by the selection of the changed sites, and taken nowhere else (odd sides,
gradients, zero padding, context, channel masks, 1-D/3-D, Z2-odd layers)."""

from __future__ import annotations

import pytest
import torch

from hepgen.flows.transforms import (AdditiveTransformer, AffineTransformer, ConvCoupling, SplineTransformer,
                                     channel_mask, checkerboard_mask)
from tests.flows._helpers import randomise

TRANSFORMERS = {"spline": lambda: SplineTransformer(5, 3.0), "affine": AffineTransformer,
                "additive": AdditiveTransformer}


def _layer(shape, parity=0, kind="spline", kernel_size=3, dims=2, dtype=torch.float32, **kw):
    mask = kw.pop("mask", None)
    if mask is None:
        mask = checkerboard_mask(shape, parity, dims)
    layer = ConvCoupling(shape, mask, TRANSFORMERS[kind](), (6, 5), kernel_size=kernel_size,
                         padding_mode=kw.pop("padding_mode", "circular"), spatial_dims=dims, **kw)
    return randomise(layer, std=0.4, seed=parity + 3 * kernel_size).to(dtype).eval()


def _x(layer, n=37, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, layer.mask.numel(), generator=g, dtype=torch.float64) * 2).to(dtype)


def _both_ways(layer, x):
    with torch.no_grad():
        return layer(x), layer.inverse(x)


@pytest.mark.parametrize("kind", sorted(TRANSFORMERS))
@pytest.mark.parametrize("shape,parity,kernel_size", [((1, 6, 6), 0, 3), ((1, 6, 6), 1, 3), ((1, 8, 8), 1, 3),
                                                      ((2, 4, 8), 0, 3), ((1, 12, 12), 0, 5), ((1, 16, 16), 1, 3)])
@pytest.mark.parametrize("n", [2, 37, 128])
def test_board_path_equals_the_full_convolution_bit_for_bit(kind, shape, parity, kernel_size, n, monkeypatch):
    layer = _layer(shape, parity, kind, kernel_size, dtype=torch.float32)
    assert layer.board_parity == parity
    x = _x(layer, n=n, dtype=torch.float32, seed=n)
    calls = []
    board = ConvCoupling._board_params
    monkeypatch.setattr(ConvCoupling, "_board_params", lambda *a: calls.append(1) or board(*a))
    with torch.no_grad():
        fast_theta = layer._board_params(x)
        fast = _both_ways(layer, x)
        layer.board_parity = None  # the general path: every site's parameters, then the changed ones
        theta = layer._params(x, None)
        ref = _both_ways(layer, x)
    assert torch.equal(fast_theta, theta) and len(calls) == 3
    # (P, batch, changed) memory: what the spline flattens without a copy
    assert fast_theta.permute(2, 0, 1).is_contiguous()
    for (y, ladj), (y_ref, ladj_ref) in zip(fast, ref):
        assert torch.equal(y, y_ref) and torch.equal(ladj, ladj_ref)
    # and the general path is right: the parameters of changed site k are the conditioner's output there
    with torch.no_grad():
        c = layer.shape[0]
        full = layer.conditioner(x.reshape(-1, *layer.shape) * layer.mask)
        full = full.reshape(x.shape[0], c, -1, *layer.sites).movedim(2, -1).reshape(x.shape[0], -1, full.shape[1] // c)
    torch.testing.assert_close(fast_theta, full[:, layer.changed], rtol=0, atol=0)


@pytest.mark.parametrize("dtype,n", [(torch.float32, 1), (torch.float64, 37)])
def test_one_event_and_float64_take_the_general_path(dtype, n, monkeypatch):
    """There the stride-2 convolution is not bitwise the full one (torch's im2col convolution)."""
    layer = _layer((1, 6, 6), 1, dtype=dtype)
    assert layer.board_parity == 1
    monkeypatch.setattr(ConvCoupling, "_board_params", lambda *a: pytest.fail("board path taken"))
    _both_ways(layer, _x(layer, n=n, dtype=dtype))


@pytest.mark.parametrize("build", [
    lambda: _layer((1, 7, 7)), lambda: _layer((1, 6, 7)), lambda: _layer((1, 5, 8), 1),  # odd sides
    lambda: _layer((1, 6, 6), padding_mode="zeros"),  # images
    lambda: _layer((1, 6, 6), context=2),
    lambda: _layer((2, 4, 4), mask=channel_mask((2, 4, 4), 0)),
    lambda: _layer((1, 6, 6), mask=~checkerboard_mask((1, 6, 6), 0) & (torch.arange(36) > 3)),  # not a board
    lambda: _layer((1, 6, 6), kind="affine", odd=True),  # Z2-odd conditioner
    lambda: _layer((8,), dims=1), lambda: _layer((4, 4, 4), dims=3)])
def test_everything_else_takes_the_general_path(build, monkeypatch):
    layer = build()
    assert layer.board_parity is None
    monkeypatch.setattr(ConvCoupling, "_board_params", lambda *a: pytest.fail("board path taken"))
    c = torch.randn(5, layer.context) if layer.context else None
    with torch.no_grad():
        y, _ = layer(_x(layer, n=5), c)
    assert torch.isfinite(y).all()


def test_with_gradients_the_general_path_runs_and_trains_the_same(monkeypatch):
    layer = _layer((1, 8, 8), 0)
    x = _x(layer, n=9)
    grads = []
    for board in (0, None):  # the board layer with gradients, then with the fast path switched off
        layer.board_parity = board
        layer.zero_grad()
        with monkeypatch.context() as m:
            m.setattr(ConvCoupling, "_board_params", lambda *a: pytest.fail("board path taken with gradients"))
            y, ladj = layer(x)
            (y.square().sum() + ladj.sum()).backward()
        grads.append([p.grad.clone() for p in layer.parameters()] + [y.detach(), ladj.detach()])
    for a, b in zip(*grads):
        assert torch.equal(a, b)
