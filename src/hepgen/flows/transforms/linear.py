"""Linear bijections: fixed permutations and an LU-decomposed invertible linear layer.

    permutation   y = x[:, π]                          log|det J| = 0
    LU linear     y = x Wᵀ + b,  W = P L U              log|det J| = Σ_i log|U_ii|

P is a fixed random permutation, L unit lower triangular, U upper triangular with diagonal
exp(u_i) (kept positive, so W is always invertible); inversion is two triangular solves.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hepgen.flows.transforms.base import Transform


class Permutation(Transform):
    """y = x[:, π] for a fixed permutation π of range(features)."""

    def __init__(self, permutation: Tensor):
        super().__init__()
        permutation = torch.as_tensor(permutation, dtype=torch.long)
        if sorted(permutation.tolist()) != list(range(len(permutation))):
            raise ValueError(f"not a permutation: {permutation.tolist()}")
        self.register_buffer("permutation", permutation)
        self.register_buffer("inverse_permutation", torch.argsort(permutation))

    @classmethod
    def reverse(cls, features: int) -> Permutation:
        """π = (D-1, ..., 0)."""
        return cls(torch.arange(features - 1, -1, -1))

    @classmethod
    def random(cls, features: int, generator: torch.Generator | None = None) -> Permutation:
        """A uniformly random π (seed it with ``generator``)."""
        return cls(torch.randperm(features, generator=generator))

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return x.index_select(1, self.permutation), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return y.index_select(1, self.inverse_permutation), y.new_zeros(y.shape[0])


class LULinear(Transform):
    """y = x (P L U)ᵀ + b on x: (batch, features); starts as the identity up to P."""

    def __init__(self, features: int, generator: torch.Generator | None = None):
        super().__init__()
        self.features = int(features)
        self.register_buffer("permutation", torch.randperm(features, generator=generator))
        self.lower = nn.Parameter(torch.zeros(features, features))
        self.upper = nn.Parameter(torch.zeros(features, features))
        self.log_diagonal = nn.Parameter(torch.zeros(features))
        self.bias = nn.Parameter(torch.zeros(features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / self.features**0.5
        with torch.no_grad():
            for p in (self.lower, self.upper):
                p.uniform_(-bound, bound)
            self.log_diagonal.uniform_(-0.1, 0.1)
            self.bias.zero_()

    def reset_to_identity(self) -> None:
        with torch.no_grad():
            for p in (self.lower, self.upper, self.log_diagonal, self.bias):
                p.zero_()

    def _factors(self) -> tuple[Tensor, Tensor]:
        eye = torch.eye(self.features, dtype=self.lower.dtype, device=self.lower.device)
        lower = torch.tril(self.lower, -1) + eye
        upper = torch.triu(self.upper, 1) + torch.diag_embed(torch.exp(self.log_diagonal))
        return lower, upper

    def weight(self) -> Tensor:
        """W = P L U: (features, features)."""
        lower, upper = self._factors()
        return (lower @ upper)[self.permutation]

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y = torch.addmm(self.bias, x, self.weight().T)
        return y, self.log_diagonal.sum().expand(x.shape[0])

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        # x Uᵀ Lᵀ Pᵀ = y - b  ->  solve (P L U) xᵀ = (y - b)ᵀ
        lower, upper = self._factors()
        rhs = (y - self.bias).T[torch.argsort(self.permutation)]
        z = torch.linalg.solve_triangular(lower, rhs, upper=False, unitriangular=True)
        x = torch.linalg.solve_triangular(upper, z, upper=True).T
        return x, (-self.log_diagonal.sum()).expand(y.shape[0])
