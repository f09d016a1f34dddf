"""Custom flows ``Flow(base, transforms)``: tabular chains of every layer kind and multi-scale image flows
(checkerboard/channel masks, squeeze, split), with and without context — round trips, log_prob against the
autograd Jacobian, sampling — plus the image layers' structure checked against torch's pixel_unshuffle and a
custom flow trained through the engine converging to the maximum-likelihood Gaussian from above."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hepgen.errors import ConfigError
from hepgen.flows import DiagonalGaussian, Flow, StandardNormal
from hepgen.flows.transforms import (ActNorm, BatchNormFlow, Compose, ConvCoupling, ElementwiseAffine, Inverse,
                                     LULinear, Permutation, Split, Squeeze, additive_coupling,
                                     affine_autoregressive, alternating_mask, channel_mask, checkerboard_mask,
                                     conv_coupling, multiscale_image_transforms, spline_autoregressive,
                                     spline_coupling)
from tests.flows._helpers import autograd_ladj, autograd_log_prob, from_base, randomise, to_base

D = 5


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


def _tabular(c: int) -> Flow:
    layers = [LULinear(D, _g()), spline_coupling(alternating_mask(D, 0), (16, 16), c, bins=4, bound=2.0),
              affine_autoregressive(D, (16, 16), c), Permutation.random(D, _g(1)),
              additive_coupling(alternating_mask(D, 1), (16,), c), ActNorm(D), BatchNormFlow(D),
              Inverse(spline_autoregressive(D, (16, 16), c, bins=3, bound=2.0)), ElementwiseAffine(D)]
    return Flow("diagonal", layers, features=D, context=c)


def _image_multiscale(c: int) -> Flow:
    # (2, 2, 2): checkerboard, squeeze to (8, 1, 1), channel coupling, split half, channel couplings on (4, 1, 1)
    return Flow("normal", multiscale_image_transforms((2, 2, 2), scales=2, steps=1, channels=(8,), context=c),
                features=8, context=c)


def _image_mixed(c: int) -> Flow:
    # (1, 2, 4): NICE and spline couplings on a checkerboard, squeeze to (4, 1, 2), channel couplings
    layers = [conv_coupling((1, 2, 4), checkerboard_mask((1, 2, 4), 0), "additive", (6,), c),
              conv_coupling((1, 2, 4), checkerboard_mask((1, 2, 4), 1), "spline", (6,), c, bins=4, bound=2.0),
              Squeeze((1, 2, 4)), conv_coupling((4, 1, 2), channel_mask((4, 1, 2), 0), "affine", (6, 6), c),
              conv_coupling((4, 1, 2), channel_mask((4, 1, 2), 1), "spline", (6,), c, bins=3, bound=2.0)]
    return Flow(StandardNormal(8), layers, context=c)


FLOWS = {"tabular": _tabular, "image_multiscale": _image_multiscale, "image_mixed": _image_mixed}
CASES = [(k, c) for k in FLOWS for c in (0, 3)]


def _build(name: str, context: int, dtype=torch.float64, std: float = 0.3) -> Flow:
    flow = randomise(FLOWS[name](context), std=std, seed=2)
    for m in flow.modules():
        if isinstance(m, BatchNormFlow):
            m.running_mean.uniform_(-1, 1, generator=_g(3))
            m.running_var.uniform_(0.5, 2.0, generator=_g(4))
    return flow.to(dtype).eval()


def _inputs(flow: Flow, n: int, context: int, dtype=torch.float64, seed: int = 0):
    g = _g(seed)
    x = (torch.randn(n, flow.features, generator=g, dtype=torch.float64) * 1.5).to(dtype)
    c = torch.randn(n, context, generator=g, dtype=torch.float64).to(dtype) if context else None
    return x, c


@pytest.mark.parametrize("name,context", CASES)
def test_round_trips_float64_and_float32(name, context):
    """float32 with milder weights: an inverse is only as accurate as ε·|y| / (dy/dx), and std 0.3 gives spline
    slopes down to e^-10 (float64 still inverts those to 1e-6)."""
    flow = _build(name, context)
    x, c = _inputs(flow, 64, context)
    z, _ = to_base(flow, x, c)
    assert (z - x).abs().max() > 1e-2
    torch.testing.assert_close(from_base(flow, z, c), x, rtol=0, atol=1e-6)
    flow32 = _build(name, context, torch.float32, std=0.15)
    x32, c32 = _inputs(flow32, 256, context, torch.float32, seed=1)
    torch.testing.assert_close(from_base(flow32, to_base(flow32, x32, c32)[0], c32), x32, rtol=0, atol=1e-4)


@pytest.mark.parametrize("name,context", CASES)
def test_log_prob_matches_autograd_jacobian(name, context):
    flow = _build(name, context)
    x, c = _inputs(flow, 4, context, seed=2)
    torch.testing.assert_close(flow.log_prob(x, c), autograd_log_prob(flow, x, c), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name,context", CASES)
def test_sampling_per_event_contexts_and_log_prob(name, context):
    flow = _build(name, context)
    _, c = _inputs(flow, 100, context, seed=3)
    torch.manual_seed(0)
    x, lp = flow.sample_and_log_prob(100, c)
    torch.testing.assert_close(lp, flow.log_prob(x, c), rtol=0, atol=1e-6)
    if context:  # row i maps back with context i to the i-th base draw
        torch.manual_seed(0)
        z = flow.base.sample(100)
        torch.testing.assert_close(to_base(flow, x, c)[0], z, rtol=0, atol=1e-6)


def test_diagonal_gaussian_base_enters_log_prob():
    flow = _build("tabular", 0)
    x, _ = _inputs(flow, 6, 0)
    z, ladj = to_base(flow, x)
    base = torch.distributions.Independent(torch.distributions.Normal(flow.base.loc, flow.base.log_scale.exp()), 1)
    torch.testing.assert_close(flow.log_prob(x), base.log_prob(z) + ladj)


# -- image layers ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 4, 6), (3, 2, 2), (2, 6, 4)])
def test_squeeze_is_pixel_unshuffle(shape):
    x = torch.randn(7, int(np.prod(shape)), dtype=torch.float64)
    sq = Squeeze(shape)
    y, ladj = sq(x)
    c, h, w = shape
    torch.testing.assert_close(y, F.pixel_unshuffle(x.view(7, c, h, w), 2).reshape(7, -1), rtol=0, atol=0)
    assert sq.out_shape == (4 * c, h // 2, w // 2) and torch.equal(ladj, torch.zeros(7, dtype=torch.float64))
    back, _ = sq.inverse(y)
    assert torch.equal(back, x)
    with pytest.raises(ValueError, match="even"):
        Squeeze((1, 3, 4))


def test_masks():
    board = checkerboard_mask((2, 2, 3), 0).view(2, 2, 3)
    expected = torch.tensor([[True, False, True], [False, True, False]])
    assert torch.equal(board[0], expected) and torch.equal(board[1], expected)
    assert torch.equal(checkerboard_mask((1, 2, 3), 1), ~checkerboard_mask((1, 2, 3), 0))
    ch = channel_mask((4, 1, 2), 0).view(4, 1, 2)
    assert ch[:2].all() and not ch[2:].any()
    assert torch.equal(channel_mask((4, 1, 2), 1), ~channel_mask((4, 1, 2), 0))
    with pytest.raises(ValueError, match="2 channels"):
        channel_mask((1, 4, 4))
    with pytest.raises(ValueError, match="both sides"):
        conv_coupling((1, 1, 1), checkerboard_mask((1, 1, 1)))


@pytest.mark.parametrize("mask", ["checkerboard", "channel"])
def test_conv_coupling_keeps_masked_pixels_and_is_elementwise_on_the_others(mask):
    shape = (2, 2, 2)
    m = checkerboard_mask(shape, 1) if mask == "checkerboard" else channel_mask(shape, 0)
    layer = randomise(ConvCoupling(shape, m, conv_coupling(shape, m).transformer, (8,), context=2), 0.5).double()
    x, c = torch.randn(8, dtype=torch.float64), torch.randn(1, 2, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: layer(v.unsqueeze(0), c)[0][0], x)
    kept, changed = m.nonzero().flatten(), (~m).nonzero().flatten()
    torch.testing.assert_close(jac[kept], torch.eye(8, dtype=torch.float64)[kept], rtol=0, atol=0)
    block = jac[changed][:, changed]
    torch.testing.assert_close(block, torch.diag(torch.diagonal(block)), rtol=0, atol=0)
    assert (jac[changed][:, kept].abs() > 0).any()  # the kept pixels condition the others


def test_split_transforms_the_head_and_passes_the_tail():
    inner = randomise(LULinear(3, _g()), 0.3).double()
    x = torch.randn(4, 7, dtype=torch.float64)
    y, ladj = Split(3, inner)(x)
    yi, li = inner(x[:, :3])
    assert torch.equal(y[:, 3:], x[:, 3:])
    torch.testing.assert_close(y[:, :3], yi)
    torch.testing.assert_close(ladj, li)
    torch.testing.assert_close(autograd_ladj(Split(3, inner), x), ladj)


def test_multiscale_architecture():
    layers = multiscale_image_transforms((1, 4, 4), scales=2, steps=2, channels=(8,))
    assert [type(t).__name__ for t in layers] == ["ConvCoupling"] * 2 + ["Squeeze"] + ["ConvCoupling"] * 2 + ["Split"]
    split = layers[-1]
    assert split.features == 2 * 2 * 2 and len(split.transform) == 3
    assert all(t.shape == (2, 2, 2) for t in split.transform.transforms)
    one_scale = multiscale_image_transforms((1, 4, 4), scales=1, steps=2, channels=(8,))
    assert [type(t).__name__ for t in one_scale] == ["ConvCoupling"] * 3


def test_a_fresh_image_flow_only_rearranges_pixels():
    """After reset every coupling is the identity: the chain is the squeezes' permutation, log|det J| = 0."""
    flow = Flow("normal", multiscale_image_transforms((1, 4, 4), scales=2, steps=1, channels=(8,)), features=16)
    flow.reset_parameters()
    x = torch.randn(10, 16)
    z, ladj = flow.transform(x)
    expected = F.pixel_unshuffle(x.view(10, 1, 4, 4), 2).reshape(10, -1)  # the inner scale cannot squeeze 2x2 again
    torch.testing.assert_close(z, expected, rtol=0, atol=0)
    assert torch.equal(ladj, torch.zeros(10))


# -- training and errors ----------------------------------------------------------------------------------------
def test_custom_flow_trains_to_the_maximum_likelihood_gaussian_from_above():
    """Diagonal base + LU layer holds every Gaussian: its training NLL must approach the ML Gaussian's NLL (the
    smallest any Gaussian reaches on these events) from above; going below would mean a wrong log-determinant."""
    rng = np.random.default_rng(0)
    cov = np.array([[4.0, 1.2, 0.0], [1.2, 1.0, -0.3], [0.0, -0.3, 0.25]])
    x = rng.multivariate_normal([3.0, -1.0, 10.0], cov, size=20_000)
    flow = Flow("diagonal", [LULinear(3, _g())], features=3)
    flow.fit(x, epochs=20, batch_size=1000, lr=5e-2, val_fraction=0.0, scheduler="cosine", seed=0, quiet=True)
    mean, emp = x.mean(0), np.cov(x.T, bias=True)
    diff = x - mean
    ml = 0.5 * np.mean(np.einsum("ni,ij,nj->n", diff, np.linalg.inv(emp), diff)) + 0.5 * np.linalg.slogdet(
        2 * np.pi * emp)[1]
    with torch.no_grad():
        nll = -flow.log_prob(x).double().mean().item()
    assert -1e-4 < nll - ml < 1e-3, (nll, ml)


def test_flow_errors():
    with pytest.raises(ConfigError, match="features"):
        Flow("normal", [])
    with pytest.raises(ConfigError, match="base"):
        Flow("uniform", [], features=2)
    with pytest.raises(ConfigError, match="ready-made"):
        Flow.from_data((3,), 0)
    flow = Flow(DiagonalGaussian(2), [])
    with pytest.raises(ConfigError, match="state_dict"):
        flow.get_config()
    x = torch.randn(5, 2)
    torch.testing.assert_close(flow.score(x), -flow.log_prob(x))
    out = flow.score_outputs(x)
    torch.testing.assert_close(out["score"], -out["log_prob"])
    assert isinstance(flow.transform, Compose) and len(flow.transform) == 0
