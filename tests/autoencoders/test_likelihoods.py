"""Decoder likelihoods and the closed-form KL against torch.distributions and Monte Carlo."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from hepgen.autoencoders.likelihoods import (
    LOG_SIGMA_MIN, BernoulliLikelihood, FixedGaussianLikelihood, GaussianLikelihood, gaussian_kl, make_likelihood,
)

torch.set_num_threads(1)


def test_closed_form_kl_equals_torch_and_a_monte_carlo_estimate():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(4, 3, generator=g, dtype=torch.float64)
    log_sigma = 0.5 * torch.randn(4, 3, generator=g, dtype=torch.float64)
    kl = gaussian_kl(mu, log_sigma)
    q = Independent(Normal(mu, log_sigma.exp()), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    torch.testing.assert_close(kl, kl_divergence(q, p))
    z = q.sample((200_000,))
    terms = q.log_prob(z) - p.log_prob(z)  # (samples, 4)
    mc, se = terms.mean(0), terms.std(0) / math.sqrt(len(terms))
    assert torch.all((mc - kl).abs() < 4 * se), (mc, kl, se)


def test_gaussian_likelihoods_equal_torch_normals_summed_over_the_event():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 2, 3, generator=g, dtype=torch.float64)
    out = torch.randn(5, 2, 2, 3, generator=g, dtype=torch.float64)  # (B, P=2, *event)
    learned = GaussianLikelihood()
    log_sigma = LOG_SIGMA_MIN + torch.nn.functional.softplus(out[:, 1] - LOG_SIGMA_MIN)
    expected = Normal(out[:, 0], log_sigma.exp()).log_prob(x).sum((1, 2))
    torch.testing.assert_close(learned.log_prob(x, out), expected)
    assert torch.all(log_sigma > LOG_SIGMA_MIN)
    fixed = FixedGaussianLikelihood(0.3)
    torch.testing.assert_close(fixed.log_prob(x, out[:, :1]), Normal(out[:, 0], 0.3).log_prob(x).sum((1, 2)))
    torch.testing.assert_close(fixed.mean(out[:, :1]), out[:, 0])


def test_bernoulli_likelihood_equals_torch_bernoulli_and_samples_have_its_mean():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(6, 1, 4, generator=g, dtype=torch.float64)
    x = torch.randint(0, 2, (6, 4), generator=g).double()
    lik = BernoulliLikelihood()
    torch.testing.assert_close(lik.log_prob(x, logits), Bernoulli(logits=logits[:, 0]).log_prob(x).sum(1))
    big = logits.expand(6, 1, 4).repeat(4000, 1, 1)
    draws = lik.sample(big, generator=g).reshape(4000, 6, 4).mean(0)
    assert torch.allclose(draws, torch.sigmoid(logits[:, 0]), atol=0.04)


def test_gaussian_samples_have_the_stated_mean_and_sigma():
    g = torch.Generator().manual_seed(3)
    out = torch.tensor([[[1.0], [math.log(0.5)]]], dtype=torch.float64).repeat(100_000, 1, 1)
    s = GaussianLikelihood().sample(out, generator=g)
    assert abs(float(s.mean()) - 1.0) < 0.01 and abs(float(s.std()) - 0.5) < 0.01
    s = make_likelihood("gaussian-fixed", 2.0).sample(out[:, :1], generator=g)
    assert abs(float(s.std()) - 2.0) < 0.03


def test_unknown_decoder_and_bad_sigma_are_refused():
    with pytest.raises(ValueError, match="unknown decoder"):
        make_likelihood("poisson")
    with pytest.raises(ValueError, match="positive"):
        make_likelihood("gaussian-fixed", 0.0)


def test_likelihood_and_latent_model_bases_are_abstract():
    from hepgen.autoencoders.base import LatentModel
    from hepgen.autoencoders.likelihoods import Likelihood

    with pytest.raises(TypeError, match="abstract"):
        Likelihood()
    with pytest.raises(TypeError, match="abstract"):
        LatentModel((3,))
