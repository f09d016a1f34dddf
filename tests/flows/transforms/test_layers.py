"""Every transform: inverse(forward(x)) = x and log|det J| = slogdet of the autograd Jacobian (float64),
float32 round trips, with and without context, composition and Inverse."""

from __future__ import annotations

import pytest
import torch

from hepgen.flows.transforms import (ActNorm, BatchNormFlow, Compose, ElementwiseAffine, Inverse, LULinear, Logit,
                                     Permutation, Sigmoid, Softplus, additive_coupling, affine_autoregressive,
                                     affine_coupling, alternating_mask, random_mask, spline_autoregressive,
                                     spline_coupling)
from tests.flows._helpers import autograd_ladj, randomise

D = 5
HIDDEN = (16, 16)


def _g():
    return torch.Generator().manual_seed(3)


# name -> (factory(context), domain) ; domain "real" or "unit" (0, 1) or "positive"
FACTORIES = {
    "affine_coupling_alternating": lambda c: affine_coupling(alternating_mask(D, 0), HIDDEN, c),
    "affine_coupling_random": lambda c: affine_coupling(random_mask(D, _g()), HIDDEN, c),
    "additive_coupling": lambda c: additive_coupling(alternating_mask(D, 1), HIDDEN, c),
    "spline_coupling": lambda c: spline_coupling(alternating_mask(D, 1), HIDDEN, c, bins=6, bound=3.0),
    "affine_autoregressive": lambda c: affine_autoregressive(D, HIDDEN, c),
    "affine_autoregressive_reversed": lambda c: affine_autoregressive(D, HIDDEN, c, order=[4, 2, 0, 1, 3]),
    "spline_autoregressive": lambda c: spline_autoregressive(D, HIDDEN, c, bins=5, bound=3.0),
    "iaf_layer": lambda c: Inverse(affine_autoregressive(D, HIDDEN, c)),
    "inverse_spline_autoregressive": lambda c: Inverse(spline_autoregressive(D, HIDDEN, c, bins=4, bound=3.0)),
    "reverse_permutation": lambda c: Permutation.reverse(D),
    "random_permutation": lambda c: Permutation.random(D, _g()),
    "lu_linear": lambda c: LULinear(D, _g()),
    "actnorm": lambda c: ActNorm(D),
    "batchnorm": lambda c: BatchNormFlow(D),
    "elementwise_affine": lambda c: ElementwiseAffine(D),
    "softplus": lambda c: Softplus(),
    "compose": lambda c: Compose([affine_coupling(alternating_mask(D, 0), HIDDEN, c), LULinear(D, _g()),
                                  spline_autoregressive(D, HIDDEN, c, bins=4, bound=3.0), Permutation.reverse(D)]),
}
CONDITIONAL = {k for k in FACTORIES if "coupling" in k or "autoregressive" in k or k in ("iaf_layer", "compose")}
CASES = [(k, 0) for k in FACTORIES] + [(k, 3) for k in sorted(CONDITIONAL)]


def _build(name: str, context: int, dtype=torch.float64):
    t = randomise(FACTORIES[name](context), std=0.2, seed=1).to(dtype)
    if name == "batchnorm":
        with torch.no_grad():
            t.running_mean.uniform_(-1, 1)
            t.running_var.uniform_(0.5, 2.0)
    t.eval()
    return t


def _inputs(n: int, context: int, dtype=torch.float64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(n, D, generator=g, dtype=torch.float64) * 1.5).to(dtype)
    c = torch.randn(n, context, generator=g, dtype=torch.float64).to(dtype) if context else None
    return x, c


@pytest.mark.parametrize("name,context", CASES)
def test_round_trip_float64(name, context):
    t = _build(name, context)
    x, c = _inputs(64, context)
    y, ladj = t(x, c)
    back, ladj_inv = t.inverse(y, c)
    torch.testing.assert_close(back, x, rtol=0, atol=1e-6)
    torch.testing.assert_close(ladj + ladj_inv, torch.zeros_like(ladj), rtol=0, atol=1e-6)
    assert not torch.allclose(y, x), "the randomised transform should not be the identity"


@pytest.mark.parametrize("name,context", CASES)
def test_ladj_matches_autograd_jacobian(name, context):
    t = _build(name, context)
    x, c = _inputs(6, context, seed=1)
    _, ladj = t(x, c)
    torch.testing.assert_close(ladj, autograd_ladj(t, x, c), rtol=0, atol=1e-6)
    y, _ = t(x, c)
    _, ladj_inv = t.inverse(y, c)
    torch.testing.assert_close(ladj_inv, autograd_ladj(t.inverse, y, c), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name,context", CASES)
def test_round_trip_float32(name, context):
    t = _build(name, context, torch.float32)
    x, c = _inputs(256, context, torch.float32, seed=2)
    y, ladj = t(x, c)
    back, ladj_inv = t.inverse(y, c)
    torch.testing.assert_close(back, x, rtol=0, atol=1e-4)
    torch.testing.assert_close(ladj + ladj_inv, torch.zeros_like(ladj), rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", sorted(CONDITIONAL))
def test_context_changes_the_map(name):
    t = _build(name, 3)
    x, c = _inputs(8, 3)
    y1, _ = t(x, c)
    y2, _ = t(x, c + 1.0)
    assert (y1 - y2).abs().max() > 1e-3


def test_sigmoid_and_logit_against_closed_forms():
    x = torch.linspace(-8, 8, 33, dtype=torch.float64).reshape(-1, 1).repeat(1, 2)
    y, ladj = Sigmoid()(x)
    s = 1 / (1 + torch.exp(-x))
    torch.testing.assert_close(y, s)
    torch.testing.assert_close(ladj, torch.log(s * (1 - s)).sum(-1))
    torch.testing.assert_close(autograd_ladj(Sigmoid(), x[:5]), ladj[:5])
    back, ladj_inv = Logit()(y)
    torch.testing.assert_close(back, x, rtol=0, atol=1e-9)
    torch.testing.assert_close(ladj_inv, -ladj)


def test_softplus_inverse_is_stable_for_small_and_large_values():
    y = torch.tensor([[1e-30, 1e-8], [30.0, 500.0]], dtype=torch.float64)
    x, _ = Softplus().inverse(y)
    torch.testing.assert_close(torch.nn.functional.softplus(x), y, rtol=1e-12, atol=0)


def test_actnorm_initialises_from_the_first_training_batch():
    t = ActNorm(3).double()
    x = torch.randn(1000, 3, dtype=torch.float64) * torch.tensor([1.0, 5.0, 0.1]) + 7
    y, ladj = t(x)
    torch.testing.assert_close(y.mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(y.std(0), torch.ones(3, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(ladj[0], -torch.log(x.std(0)).sum())


def test_batchnorm_training_mode_normalises_with_batch_statistics():
    t = BatchNormFlow(2).double().train()
    x = torch.randn(500, 2, dtype=torch.float64) * 3 + 1
    y, ladj = t(x)
    torch.testing.assert_close(y.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-9, rtol=0)
    var = x.var(0, unbiased=False)
    torch.testing.assert_close(ladj[0], -0.5 * torch.log(var + t.eps).sum())
    torch.testing.assert_close(t.running_mean, 0.1 * x.mean(0))


def test_compose_adds_log_determinants_and_inverts_in_reverse_order():
    a, b = _build("lu_linear", 0), _build("elementwise_affine", 0)
    x, _ = _inputs(10, 0)
    y, ladj = Compose([a, b])(x)
    ya, la = a(x)
    yb, lb = b(ya)
    torch.testing.assert_close(y, yb)
    torch.testing.assert_close(ladj, la + lb)
    back, _ = Compose([a, b]).inverse(y)
    torch.testing.assert_close(back, x)


def test_masks():
    assert alternating_mask(5, 0).tolist() == [True, False, True, False, True]
    assert alternating_mask(4, 1).tolist() == [False, True, False, True]
    m = random_mask(7, torch.Generator().manual_seed(0))
    assert int(m.sum()) == 3
    with pytest.raises(ValueError):
        affine_coupling(torch.ones(3, dtype=torch.bool))


@pytest.mark.parametrize("name,context", [("spline_autoregressive", 3), ("affine_autoregressive", 0),
                                          ("spline_coupling", 3), ("affine_coupling_alternating", 0),
                                          ("iaf_layer", 3)])
def test_inference_in_row_blocks_equals_one_pass(name, context, monkeypatch):
    """Without gradients, conditioner layers run in row blocks (CHUNK_ROWS); the result equals the one-pass,
    gradient-recording evaluation, also with a single broadcast context row."""
    from hepgen.flows.transforms import autoregressive

    t = _build(name, context)
    x, c = _inputs(50, context)
    expected = t(x, c), t.inverse(x, c)
    monkeypatch.setattr(autoregressive, "CHUNK_ROWS", 7)
    with torch.no_grad():
        got = t(x, c), t.inverse(x, c)
    for (a, la), (b, lb) in zip(expected, got):
        torch.testing.assert_close(b, a.detach(), rtol=0, atol=1e-12)
        torch.testing.assert_close(lb, la.detach(), rtol=0, atol=1e-12)
    if context:
        one = c[:1]
        with torch.no_grad():
            blocks = t(x, one)
        monkeypatch.setattr(autoregressive, "CHUNK_ROWS", 8192)
        with torch.no_grad():
            whole = t(x, one.expand(50, -1))
        torch.testing.assert_close(blocks[0], whole[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("inverse", [False, True])
def test_affine_transformer_gradients(inverse):
    """The affine transformer's hand-written backward pass (inputs and both parameters, with the soft clamp)
    against finite differences; values against the closed form."""
    from torch.autograd import gradcheck

    from hepgen.flows.transforms import AffineTransformer

    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    p = (torch.randn(5, 3, 2, generator=g, dtype=torch.float64) * 3).requires_grad_(True)
    t = AffineTransformer(2.0)
    y, ladj = t(x, p, inverse)
    s = 2.0 * torch.tanh(p[..., 1] / 2.0)
    expected = (x - p[..., 0]) * torch.exp(-s) if inverse else x * torch.exp(s) + p[..., 0]
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(ladj, (-s if inverse else s).sum(-1))
    assert gradcheck(lambda a, b: t(a, b, inverse), (x, p), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("name,context", CASES + [("spline_compose", 3)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_invert_is_the_inverse_without_its_log_determinant_bit_for_bit(name, context, dtype, monkeypatch):
    """``invert`` (what sampling calls; spline couplings skip their log-derivatives without gradients) gives
    ``inverse(y)[0]`` exactly, with and without gradients, in one pass and in row blocks."""
    from hepgen.flows.transforms import autoregressive

    if name == "spline_compose":
        t = randomise(Compose([spline_coupling(alternating_mask(D, i % 2), HIDDEN, context, bins=5, bound=3.0)
                               for i in range(3)]), std=0.2, seed=1).to(dtype).eval()
    else:
        t = _build(name, context, dtype)
    y, c = _inputs(50, context, dtype)
    y = y.sigmoid() if name == "softplus" else y
    expected = t.inverse(y, c)[0]
    assert torch.equal(t.invert(y, c), expected)
    with torch.inference_mode():
        assert torch.equal(t.invert(y, c), expected)
        monkeypatch.setattr(autoregressive, "CHUNK_ROWS", 7)
        assert torch.equal(t.invert(y, c), t.inverse(y, c)[0])
