"""Decoder likelihoods p(x | z) of the VAEs, and the closed-form Gaussian KL.

The decoder network outputs ``params_per_value`` numbers per event value (pixel or feature),
stacked on a leading axis after the batch: ``out`` has shape (B, P, *event_shape). Log-densities
are summed over the event dimensions and return (B,):

    gaussian        log N(x; μ(z), σ(z)²)   with a learned σ(z) per value (P = 2: μ, log σ)
    gaussian-fixed  log N(x; μ(z), σ²)      with a fixed σ (P = 1)
    bernoulli       x log p + (1 − x) log(1 − p),  p = sigmoid(logit(z))  (P = 1, x in [0, 1])

The Bernoulli form is the usual choice for grey-level images in [0, 1]; for non-binary x it is
not a normalised density (the continuous Bernoulli would be), so its "log p(x)" is a score.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
import math

import torch
import torch.nn.functional as F
from torch import Tensor

DECODERS = ("gaussian", "gaussian-fixed", "bernoulli")

#: learned log σ is bounded softly from below: log σ = LOG_SIGMA_MIN + softplus(raw − LOG_SIGMA_MIN)
LOG_SIGMA_MIN = math.log(1e-3)


def gaussian_kl(mu: Tensor, log_sigma: Tensor) -> Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ (μ² + σ² − 1 − 2 log σ); mu, log_sigma: (B, L) -> (B,)."""
    return 0.5 * (mu.square() + torch.exp(2 * log_sigma) - 1 - 2 * log_sigma).sum(dim=-1)


def normal_log_prob(x: Tensor, mu: Tensor, log_sigma: Tensor) -> Tensor:
    """Elementwise log N(x; μ, σ²) = −½ ((x − μ)/σ)² − log σ − ½ log 2π (same shape as x)."""
    return -0.5 * ((x - mu) * torch.exp(-log_sigma)).square() - log_sigma - 0.5 * math.log(2 * math.pi)


class Likelihood(ABC):
    """p(x | z) given the decoder output ``out``: (B, P, *event_shape)."""

    name = ""
    params_per_value = 1

    @abstractmethod
    def log_prob_elements(self, x: Tensor, out: Tensor) -> Tensor:
        """log p(x_d | z) per value (the likelihood factorises): x (B, *event_shape) -> (B, *event_shape)."""

    def log_prob(self, x: Tensor, out: Tensor) -> Tensor:
        """Σ over the event of log p(x | z): x (B, *event_shape), out (B, P, *event_shape) -> (B,)."""
        return _sum_event(self.log_prob_elements(x, out))

    @abstractmethod
    def mean(self, out: Tensor) -> Tensor:
        """E[x | z]: (B, *event_shape)."""

    @abstractmethod
    def sample(self, out: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """x ~ p(x | z): (B, *event_shape)."""


def _sum_event(values: Tensor) -> Tensor:
    return values.reshape(values.shape[0], -1).sum(dim=1)


class GaussianLikelihood(Likelihood):
    """Gaussian with mean μ(z) and a learned σ(z) per value (P = 2)."""

    name, params_per_value = "gaussian", 2

    @staticmethod
    def log_sigma(out: Tensor) -> Tensor:
        return LOG_SIGMA_MIN + F.softplus(out[:, 1] - LOG_SIGMA_MIN)

    def log_prob_elements(self, x: Tensor, out: Tensor) -> Tensor:
        return normal_log_prob(x, out[:, 0], self.log_sigma(out))

    def mean(self, out: Tensor) -> Tensor:
        return out[:, 0]

    def sample(self, out: Tensor, generator: torch.Generator | None = None) -> Tensor:
        eps = torch.randn(out[:, 0].shape, generator=generator, device=out.device, dtype=out.dtype)
        return out[:, 0] + torch.exp(self.log_sigma(out)) * eps


class FixedGaussianLikelihood(Likelihood):
    """Gaussian with mean μ(z) and a fixed σ (P = 1): −log p = ‖x − μ‖² / (2σ²) + const."""

    name, params_per_value = "gaussian-fixed", 1

    def __init__(self, sigma: float):
        if not sigma > 0:
            raise ValueError(f"the fixed decoder σ must be positive, got {sigma}")
        self.sigma = float(sigma)

    def log_prob_elements(self, x: Tensor, out: Tensor) -> Tensor:
        # normal_log_prob with a scalar σ: four tensor operations instead of a σ tensor and nine
        return ((x - out[:, 0]) * (1.0 / self.sigma)).square().mul(-0.5) - (
            math.log(self.sigma) + 0.5 * math.log(2 * math.pi))

    def mean(self, out: Tensor) -> Tensor:
        return out[:, 0]

    def sample(self, out: Tensor, generator: torch.Generator | None = None) -> Tensor:
        eps = torch.randn(out[:, 0].shape, generator=generator, device=out.device, dtype=out.dtype)
        return out[:, 0] + self.sigma * eps


class BernoulliLikelihood(Likelihood):
    """Bernoulli with logits ℓ(z) (P = 1) for values in [0, 1]: log p = −BCE(ℓ, x)."""

    name, params_per_value = "bernoulli", 1

    def log_prob_elements(self, x: Tensor, out: Tensor) -> Tensor:
        return -F.binary_cross_entropy_with_logits(out[:, 0], x, reduction="none")

    def mean(self, out: Tensor) -> Tensor:
        return torch.sigmoid(out[:, 0])

    def sample(self, out: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return torch.bernoulli(torch.sigmoid(out[:, 0]), generator=generator)


def make_likelihood(name: str, sigma: float = 1.0) -> Likelihood:
    """The likelihood called ``name`` (see :data:`DECODERS`); ``sigma`` is the fixed Gaussian's σ."""
    if name == "gaussian":
        return GaussianLikelihood()
    if name == "gaussian-fixed":
        return FixedGaussianLikelihood(sigma)
    if name == "bernoulli":
        return BernoulliLikelihood()
    raise ValueError(f"unknown decoder {name!r}; choose one of {', '.join(DECODERS)}")
