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


def to_base(model, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The whole map of a flow model from original units to the base, preprocessing included:
    x (batch, D) -> (z (batch, D), log|det ∂z/∂x| (batch,)) from the model's parts, not its log_prob."""
    c = model.context_to_internal(context, x.shape[0])
    z, ladj = model.transform(model.to_internal(x), c)
    return z, ladj + model.preprocessor.log_abs_det_jacobian(x)


def from_base(model, z: Tensor, context: Tensor | None = None) -> Tensor:
    """Inverse of :func:`to_base`: z (batch, D) -> x (batch, D) in original units."""
    c = model.context_to_internal(context, z.shape[0])
    u, _ = model.transform.inverse(z, c)
    return model.to_external(u)


def autograd_log_prob(model, x: Tensor, context: Tensor | None = None) -> Tensor:
    """log p(x | c) = log p_z(z) + log|det ∂z/∂x| with the determinant from torch.linalg.slogdet of the
    autograd Jacobian of the whole map x -> z (preprocessing included): (batch,)."""
    z, _ = to_base(model, x, context)
    f = lambda row, c: (to_base(model, row, c)[0], None)  # noqa: E731
    return model.base.log_prob(z) + autograd_ladj(f, x, context)
