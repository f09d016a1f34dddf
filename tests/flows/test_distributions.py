"""Base distributions against torch.distributions: log densities, sample moments, reparametrised gradients,
dtype/device following the module, and the name table the Flow constructor reads."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal

from hepgen.flows import DiagonalGaussian, StandardNormal
from hepgen.flows.distributions import BASES


def test_standard_normal_log_prob_matches_torch():
    z = torch.randn(50, 4, dtype=torch.float64) * 3
    ref = MultivariateNormal(torch.zeros(4, dtype=torch.float64), torch.eye(4, dtype=torch.float64)).log_prob(z)
    torch.testing.assert_close(StandardNormal(4).double().log_prob(z), ref, rtol=0, atol=1e-12)


def test_diagonal_gaussian_log_prob_matches_torch():
    base = DiagonalGaussian(3).double()
    with torch.no_grad():
        base.loc.copy_(torch.tensor([1.0, -2.0, 0.5]))
        base.log_scale.copy_(torch.tensor([0.3, -1.0, 2.0]))
    z = torch.randn(40, 3, dtype=torch.float64) * 4
    ref = Independent(Normal(base.loc, base.log_scale.exp()), 1).log_prob(z)
    torch.testing.assert_close(base.log_prob(z), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls", [StandardNormal, DiagonalGaussian])
def test_samples_have_the_right_moments_and_log_prob(cls):
    base = cls(3).double()
    if cls is DiagonalGaussian:
        with torch.no_grad():
            base.loc.copy_(torch.tensor([2.0, 0.0, -1.0]))
            base.log_scale.copy_(torch.tensor([0.0, math.log(3.0), math.log(0.1)]))
    torch.manual_seed(0)
    n = 200_000
    z, lp = base.sample_and_log_prob(n)
    assert z.shape == (n, 3) and z.dtype == torch.float64 and lp.shape == (n,)
    torch.testing.assert_close(lp, base.log_prob(z))
    std = torch.ones(3, dtype=torch.float64) if cls is StandardNormal else base.log_scale.exp().detach()
    mean = torch.zeros(3, dtype=torch.float64) if cls is StandardNormal else base.loc.detach()
    assert ((z.mean(0) - mean).abs() < 5 * std / math.sqrt(n)).all()
    assert ((z.std(0) / std - 1).abs() < 5 / math.sqrt(2 * n)).all()
    # mean -log p of own samples is the entropy: D/2 log(2πe) + Σ log σ (sd sqrt(D/2/n))
    entropy = 1.5 * math.log(2 * math.pi * math.e) + float(torch.log(std).sum())
    assert abs(-lp.mean().item() - entropy) < 5 * math.sqrt(1.5 / n)


def test_rsample_is_reparametrised_and_sample_is_not_differentiable():
    base = DiagonalGaussian(2)
    z = base.rsample(1000)
    z.sum().backward()
    torch.testing.assert_close(base.loc.grad, torch.full((2,), 1000.0))
    torch.testing.assert_close(base.log_scale.grad, (z - base.loc).detach().sum(0))
    assert not base.sample(5).requires_grad
    assert base.sample(0).shape == (0, 2)


def test_dtype_and_reset():
    base = DiagonalGaussian(2)
    assert base.sample(3).dtype == torch.float32 and base.double().sample(3).dtype == torch.float64
    with torch.no_grad():
        base.loc.fill_(3.0)
        base.log_scale.fill_(1.0)
    base.reset_parameters()
    assert torch.equal(base.loc, torch.zeros(2, dtype=torch.float64))
    assert torch.equal(base.log_scale, torch.zeros(2, dtype=torch.float64))
    assert StandardNormal(5).features == 5 and not list(StandardNormal(5).parameters())
    assert BASES == {"normal": StandardNormal, "diagonal": DiagonalGaussian}
