"""Shared checks for flow tests: the autograd Jacobian's log-determinant and parameter randomisation."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def randomise(module: nn.Module, std: float = 0.1, seed: int = 0) -> nn.Module:
    """Give every parameter random values (flows start as the identity, which would make checks trivial)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return module


def autograd_ladj(f, x: Tensor, context: Tensor | None = None) -> Tensor:
    """log|det ∂f/∂x| per row from torch.autograd.functional.jacobian and torch.linalg.slogdet: (batch,)."""
    out = []
    for i in range(x.shape[0]):
        c = None if context is None else context[i:i + 1]
        jac = torch.autograd.functional.jacobian(lambda row: f(row.unsqueeze(0), c)[0].squeeze(0), x[i])
        out.append(torch.linalg.slogdet(jac)[1])
    return torch.stack(out)
