"""The density base: log_prob = the subclass's internal log-density + the preprocessing log|det J|, score and
score_outputs from it, inference without autograd graphs, and reparameterised rsample gradients that match
the autograd of closed-form expectations."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from hepgen.density import DensityModel
from hepgen.errors import ConfigError
from hepgen.flows import Flow


class Laplace(DensityModel):
    """A 1-D Laplace density with learnable location m and log-scale s, written only in the preprocessed space:
    log p(u) = −|u − m| e^{−s} − s − log 2 (a density the base knows nothing about)."""

    cli_name = "test-laplace"

    def __init__(self, features: int = 1, context: int = 0, preprocess="log"):
        super().__init__((features,), context, preprocess)
        self.features = features
        self.m = torch.nn.Parameter(torch.tensor(0.3))
        self.s = torch.nn.Parameter(torch.tensor(-0.2))

    def log_prob_internal(self, u, context=None):
        return (-(u - self.m).abs() * torch.exp(-self.s) - self.s - math.log(2.0)).sum(-1)

    def sample_internal(self, n, context=None):
        e = torch.distributions.Laplace(0.0, 1.0).sample((n, self.features))
        u = self.m + torch.exp(self.s) * e
        return u, self.log_prob_internal(u)


def _fitted_laplace():
    model = Laplace(preprocess="log").double()
    model.preprocessor.fit(torch.tensor(np.random.default_rng(0).lognormal(0.5, 0.7, (500, 1))))
    return model


def test_log_prob_adds_the_preprocessing_jacobian_and_matches_scipy():
    model = _fitted_laplace()
    x = np.array([[0.2], [1.0], [3.5], [9.0]])
    u = model.to_internal(x).double().numpy()[:, 0]
    # log p(x) = log Laplace(u; m, e^s) + log|du/dx|, with du/dx from a finite difference of the public map
    h = 1e-6
    dudx = (model.to_internal(x + h).double().numpy()[:, 0] - model.to_internal(x - h).double().numpy()[:, 0]) / (2 * h)
    expected = stats.laplace(0.3, math.exp(-0.2)).logpdf(u) + np.log(np.abs(dudx))
    lp = model.log_prob(x)
    np.testing.assert_allclose(lp.double().numpy(), expected, rtol=1e-4)
    np.testing.assert_allclose(model.score(x).double().numpy(), -expected, rtol=1e-4)
    out = model.score_outputs(x)
    assert set(out) == {"log_prob", "score"}
    torch.testing.assert_close(out["score"], -out["log_prob"])


def test_inference_builds_no_graph_and_grad_true_gives_the_score_function():
    model = _fitted_laplace()
    x = torch.tensor([[0.5], [2.0]], dtype=torch.float64, requires_grad=True)
    assert not model.log_prob(x).requires_grad
    assert not model.score(x).requires_grad and not model.sample(4).requires_grad
    assert not any(t.requires_grad for t in model.sample_and_log_prob(3))
    lp = model.log_prob(x, grad=True)
    assert lp.requires_grad
    (dx,) = torch.autograd.grad(lp.sum(), x)
    # d/dx log p(x) by central differences of the no-grad log_prob
    h = 1e-3
    fd = (model.log_prob(x.detach() + h) - model.log_prob(x.detach() - h)) / (2 * h)
    torch.testing.assert_close(dx[:, 0], fd, rtol=2e-3, atol=1e-4)


def test_sample_counts_and_refusals():
    model = _fitted_laplace()
    assert model.sample(0).shape == (0, 1) and model.rsample(7).shape == (7, 1)
    for bad in (-1, 2.5, None, True):
        with pytest.raises(ConfigError, match="non-negative integer"):
            model.sample(bad)
    with pytest.raises(ConfigError, match="without a context"):
        model.sample(3, context=[1.0])
    with pytest.raises(TypeError):
        DensityModel((2,))  # abstract: log_prob_internal and sample_internal are required


def test_flow_rsample_gradients_match_the_closed_form_expectation():
    """A flow with a learnable diagonal Gaussian base and no transforms: x = μ + e^s ⊙ ε, so
    E‖x‖² = Σ μ_i² + e^{2 s_i}, whose gradients are 2μ and 2e^{2s}; the reparameterised Monte Carlo
    gradient of mean ‖x‖² over 200k draws must agree within its statistical error."""
    torch.manual_seed(0)
    flow = Flow("diagonal", [], features=3, preprocess="none").double()
    with torch.no_grad():
        flow.base.loc.copy_(torch.tensor([0.5, -1.0, 2.0]))
        flow.base.log_scale.copy_(torch.tensor([0.1, -0.3, 0.4]))
    x = flow.rsample(200_000)
    assert x.requires_grad
    g_loc, g_scale = torch.autograd.grad(x.square().sum(-1).mean(), (flow.base.loc, flow.base.log_scale))
    loc, s = flow.base.loc.detach(), flow.base.log_scale.detach()
    torch.testing.assert_close(g_loc, 2 * loc, rtol=0, atol=0.03)
    torch.testing.assert_close(g_scale, 2 * torch.exp(2 * s), rtol=0.02, atol=0)
    # rsample_and_log_prob: the log-density of the draws is the flow's log_prob of them
    x, lp = flow.rsample_and_log_prob(5)
    assert lp.requires_grad
    torch.testing.assert_close(lp.detach(), flow.log_prob(x.detach()))


def test_conditional_flow_rsample_passes_gradients_to_the_context():
    from hepgen.flows import NSF

    torch.manual_seed(1)
    flow = NSF(2, context=1, transforms=2, hidden=(8,), preprocess="none")
    for p in flow.parameters():  # leave the identity initialisation, so that x depends on c
        torch.nn.init.normal_(p, std=0.3)
    c = torch.tensor([[0.7]], requires_grad=True)
    torch.manual_seed(2)
    x = flow.rsample(4, c)
    (gc,) = torch.autograd.grad(x.sum(), c)
    h = 1e-3
    with torch.no_grad():
        torch.manual_seed(2)
        up = flow.sample(4, c + h).sum()
        torch.manual_seed(2)
        down = flow.sample(4, c - h).sum()
    torch.testing.assert_close(gc[0, 0], (up - down) / (2 * h), rtol=1e-2, atol=1e-3)
