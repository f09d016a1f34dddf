"""The transform interface every flow layer implements, and composition of transforms.

A transform is a bijection y = f(x; c) with an optional context c:

    forward(x, context) -> (y, log|det ∂f/∂x|),   inverse(y, context) -> (x, log|det ∂f⁻¹/∂y|)

x, y: (batch, features); context: (batch, c) or None; log-determinants: (batch,). In a flow the forward
direction maps data to the base (normalising) direction, so log p(x) = log p_z(f(x)) + log|det ∂f/∂x|.
A chain f = f_K ∘ ... ∘ f_1 runs forward in order, inverse in reverse order, log-determinants add.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from collections.abc import Iterable

from torch import Tensor, nn


class Transform(nn.Module, ABC):
    """Base of every invertible layer: subclasses implement ``forward`` and ``inverse``."""

    @abstractmethod
    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x: (batch, features) -> (y (batch, features), log|det J| (batch,))."""

    @abstractmethod
    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """y: (batch, features) -> (x (batch, features), log|det J⁻¹| (batch,))."""

    def invert(self, y: Tensor, context: Tensor | None = None) -> Tensor:
        """x = f⁻¹(y) without log|det J⁻¹|, what sampling needs: ``inverse(y, context)[0]`` bit for bit; layers that
        can skip the log-determinant's work override it."""
        return self.inverse(y, context)[0]

    def reset_to_identity(self) -> None:
        """Make the layer (close to) the identity; default: leave the drawn parameters alone."""


class Compose(Transform):
    """f = f_K ∘ ... ∘ f_1: forward in order, inverse in reverse, log|det J| = Σ_k log|det J_k|."""

    def __init__(self, transforms: Iterable[Transform]):
        super().__init__()
        self.transforms = nn.ModuleList(transforms)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        total = x.new_zeros(x.shape[0])
        for t in self.transforms:
            x, ladj = t(x, context)
            total = total + ladj
        return x, total

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        total = y.new_zeros(y.shape[0])
        for t in reversed(self.transforms):
            y, ladj = t.inverse(y, context)
            total = total + ladj
        return y, total

    def invert(self, y: Tensor, context: Tensor | None = None) -> Tensor:
        for t in reversed(self.transforms):
            y = t.invert(y, context)
        return y

    def __len__(self) -> int:
        return len(self.transforms)


class Inverse(Transform):
    """g = f⁻¹: swaps the directions of ``transform`` (turns a MAF layer into an IAF layer)."""

    def __init__(self, transform: Transform):
        super().__init__()
        self.transform = transform

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.transform.inverse(x, context)

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.transform(y, context)

    def reset_to_identity(self) -> None:
        self.transform.reset_to_identity()
