"""Base distributions of flows: the standard normal and a learnable diagonal Gaussian.

    log N(z; μ, diag σ²) = -½ Σ_i ((z_i - μ_i)/σ_i)² - Σ_i log σ_i - (D/2) log 2π

z: (batch, features); ``log_prob`` -> (batch,); ``sample(n)`` -> (n, features).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class StandardNormal(nn.Module):
    """N(0, I) on ``features`` dimensions (no parameters)."""

    def __init__(self, features: int):
        super().__init__()
        self.features = int(features)
        self.register_buffer("_anchor", torch.zeros(()))  # carries device and dtype

    def log_prob(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        return -0.5 * (z * z).sum(-1) - 0.5 * self.features * math.log(2.0 * math.pi)

    def rsample(self, n: int, context: Tensor | None = None) -> Tensor:
        return torch.randn(int(n), self.features, dtype=self._anchor.dtype, device=self._anchor.device)

    def sample(self, n: int, context: Tensor | None = None) -> Tensor:
        with torch.no_grad():
            return self.rsample(n, context)

    def sample_and_log_prob(self, n: int, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z = self.rsample(n, context)
        return z, self.log_prob(z)


class DiagonalGaussian(StandardNormal):
    """N(μ, diag exp(2 s)) with learnable μ, s: (features,)."""

    def __init__(self, features: int):
        super().__init__(features)
        self.loc = nn.Parameter(torch.zeros(self.features))
        self.log_scale = nn.Parameter(torch.zeros(self.features))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.loc.zero_()
            self.log_scale.zero_()

    def log_prob(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        u = (z - self.loc) * torch.exp(-self.log_scale)
        return super().log_prob(u) - self.log_scale.sum()

    def rsample(self, n: int, context: Tensor | None = None) -> Tensor:
        return self.loc + torch.exp(self.log_scale) * super().rsample(n)


BASES = {"normal": StandardNormal, "diagonal": DiagonalGaussian}
