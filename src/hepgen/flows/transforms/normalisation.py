"""Normalising layers as flows: ActNorm (Kingma & Dhariwal 2018) and batch normalisation (Dinh et al. 2017).

    ActNorm     y = (x - μ) · exp(-s)                 log|det J| = -Σ s
    BatchNorm   y = (x - m) / sqrt(v + ε) · e^γ + β    log|det J| = Σ (γ - ½ log(v + ε))

ActNorm's μ, s are learnable and initialised from the first training batch so that y has zero mean and
unit variance per feature. BatchNorm uses the batch's mean and variance m, v in training mode and running
averages otherwise; its inverse always uses the running averages (it is a bijection only at fixed m, v).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hepgen.flows.transforms.base import Transform


class ActNorm(Transform):
    """Per-feature affine normalisation with data-dependent initialisation; x: (batch, features)."""

    def __init__(self, features: int):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(features))
        self.log_scale = nn.Parameter(torch.zeros(features))
        self.register_buffer("initialised", torch.tensor(False))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.loc.zero_()
            self.log_scale.zero_()
            self.initialised.fill_(False)

    @torch.no_grad()
    def _initialise(self, x: Tensor) -> None:
        if x.shape[0] > 1:
            self.loc.copy_(x.mean(0))
            self.log_scale.copy_(torch.log(x.std(0).clamp_min(1e-6)))
        self.initialised.fill_(True)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.training and not bool(self.initialised):
            self._initialise(x)
        return (x - self.loc) * torch.exp(-self.log_scale), (-self.log_scale.sum()).expand(x.shape[0])

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return y * torch.exp(self.log_scale) + self.loc, self.log_scale.sum().expand(y.shape[0])


class BatchNormFlow(Transform):
    """Batch normalisation as a bijection; x: (batch, features)."""

    def __init__(self, features: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.log_gamma = nn.Parameter(torch.zeros(features))
        self.beta = nn.Parameter(torch.zeros(features))
        self.register_buffer("running_mean", torch.zeros(features))
        self.register_buffer("running_var", torch.ones(features))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.log_gamma.zero_()
            self.beta.zero_()
            self.running_mean.zero_()
            self.running_var.fill_(1.0)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.training and x.shape[0] > 1:
            mean, var = x.mean(0), x.var(0, unbiased=False)
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var, self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        log_std = 0.5 * torch.log(var + self.eps)
        y = (x - mean) * torch.exp(self.log_gamma - log_std) + self.beta
        return y, (self.log_gamma - log_std).sum().expand(x.shape[0])

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        log_std = 0.5 * torch.log(self.running_var + self.eps)
        x = (y - self.beta) * torch.exp(log_std - self.log_gamma) + self.running_mean
        return x, (log_std - self.log_gamma).sum().expand(y.shape[0])
