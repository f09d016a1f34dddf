"""MADE: output i depends only on inputs earlier in the order (checked on the autograd Jacobian), the
context reaches every output, and each layer is a single masked matmul equal to a dense one with W ⊙ M."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from hepgen.nn.masked import MADE, MaskedLinear


def randomise(module: torch.nn.Module, std: float = 0.1, seed: int = 0) -> torch.nn.Module:
    """Random values for every parameter (MADEs in flows start with zero output layers: checks would be trivial)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return module


@pytest.mark.parametrize("features,hidden,order", [(1, (4,), None), (4, (8, 8), None), (5, (3, 7), [2, 0, 4, 1, 3]),
                                                   (6, (32, 32, 32), [5, 4, 3, 2, 1, 0])])
def test_autoregressive_dependency_structure(features, hidden, order):
    """tanh so that no path is switched off by a dead ReLU: zeros in the Jacobian then come from masks only."""
    made = randomise(MADE(features, 3, hidden, order=order, activation="tanh"), std=0.5).double()
    x = torch.randn(features, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: made(v.unsqueeze(0))[0], x)  # (D, P, D)
    position = torch.empty(features, dtype=torch.long)
    position[torch.tensor(order or list(range(features)))] = torch.arange(features)
    allowed = position[None, :] < position[:, None]  # output i may see input j iff j is earlier
    depends = jac.abs().sum(1) > 0
    assert not (depends & ~allowed).any()
    if min(hidden) >= features - 1:  # wide enough: every allowed connection exists
        assert torch.equal(depends, allowed)


def test_context_reaches_every_output():
    made = randomise(MADE(3, 2, (8, 8), context=2, activation="tanh"), std=0.5).double()
    x, c = torch.randn(1, 3, dtype=torch.float64), torch.randn(2, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: made(x, v.unsqueeze(0))[0], c)  # (3, 2, 2)
    assert (jac.abs().sum(-1) > 0).all()


def test_masked_linear_is_dense_linear_with_masked_weights():
    mask = torch.tensor([[1, 0, 1], [0, 1, 1]], dtype=torch.bool)
    layer = MaskedLinear(mask).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    expected = x @ (layer.weight * mask).T + layer.bias
    torch.testing.assert_close(layer(x), expected)


def test_bad_order_is_refused():
    with pytest.raises(ValueError):
        MADE(3, 2, (4,), order=[0, 0, 1])


@pytest.mark.parametrize("features,hidden,context,order", [(1, (4,), 0, None), (5, (8, 8), 0, None),
                                                           (6, (32, 32, 32), 2, [5, 4, 3, 2, 1, 0]),
                                                           (4, (3,), 1, [2, 0, 3, 1])])
def test_feature_params_equal_the_full_pass(features, hidden, context, order):
    """The prefix evaluation the sequential inverse uses gives exactly the full pass's column for each feature,
    and the full pass is parameter-major in memory."""
    made = randomise(MADE(features, 3, hidden, context=context, order=order, activation="tanh"), std=0.5).double()
    x = torch.randn(7, features, dtype=torch.float64)
    c = torch.randn(7, context, dtype=torch.float64) if context else None
    full = made(x, c)
    assert full.shape == (7, features, 3) and full.permute(2, 1, 0).is_contiguous()
    for position, feature in enumerate(made.order):
        torch.testing.assert_close(made.feature_params(x, c, position), full[:, feature], rtol=0, atol=1e-12)


@pytest.mark.parametrize("param_major", [True, False])
@pytest.mark.parametrize("context", [0, 2])
def test_fused_relu_network_gradients(param_major, context):
    """With ReLU the MADE runs as one autograd node with a hand-written backward pass: its gradients (inputs,
    context, every weight and bias) against finite differences, and its output against the layer-by-layer
    evaluation of the same modules."""
    made = randomise(MADE(4, 3, (9, 7), context=context, param_major=param_major), std=0.5).double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    c = torch.randn(6, context, generator=g, dtype=torch.float64, requires_grad=True) if context else None
    h = made._input(x, c)
    for layer in list(made.net)[:-1]:
        h = layer(h)
    expected = made.last(h).view(6, *((3, 4) if param_major else (4, 3)))
    out = made(x, c)
    torch.testing.assert_close(out, expected.transpose(1, 2) if param_major else expected, rtol=0, atol=1e-12)
    params = tuple(made.parameters())
    inputs = (x,) + ((c,) if context else ())
    assert gradcheck(lambda *a: made(a[0], a[1] if context else None).pow(2).sum(), inputs, eps=1e-6, atol=1e-6)
    for p in params:
        p.requires_grad_(True)
    analytic = torch.autograd.grad(made(x, c).pow(2).sum(), params)
    for p, a in zip(params, analytic):
        numeric = torch.zeros_like(p)
        flat = p.data.view(-1)
        for i in range(flat.numel()):
            old = flat[i].item()
            flat[i] = old + 1e-6
            up = made(x, c).pow(2).sum().item()
            flat[i] = old - 1e-6
            down = made(x, c).pow(2).sum().item()
            flat[i] = old
            numeric.view(-1)[i] = (up - down) / 2e-6
        torch.testing.assert_close(a, numeric, rtol=1e-5, atol=1e-6)
