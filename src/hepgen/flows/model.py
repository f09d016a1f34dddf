"""Flows as hepgen models: a base distribution plus a chain of transforms.

    log p_x(x | c) = log p_z(f(T(x); c)) + log|det ∂f/∂u| + log|det ∂T/∂x|

T is the model's per-feature preprocessing (u = T(x)), f the composed transforms mapping u to the
base variable z. Sampling draws z ~ p_z and returns T⁻¹(f⁻¹(z; c)). Contexts are vectorised: a
context (n, c) gives one sample per row, a single row (c,) or (1, c) broadcasts to all n. The
original-unit API (and its no-grad / differentiable split) is :class:`hepgen.density.DensityModel`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from hepgen.data.preprocess import PreprocessSpec
from hepgen.density import DensityModel
from hepgen.errors import ConfigError
from hepgen.export import GraphModule, refusal
from hepgen.flows.distributions import BASES, DiagonalGaussian, StandardNormal
from hepgen.flows.transforms.base import Compose, Transform


class _SampleGraph(GraphModule):
    """ε (batch, D) standard normal [, c] -> (x (batch, D), log p(x|c) (batch,)), original units."""

    def forward(self, eps: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        m = self.model
        base = m.base
        z = base.loc + torch.exp(base.log_scale) * eps if isinstance(base, DiagonalGaussian) else eps  # z = μ + σ ε
        u, ladj_inv = m.transform.inverse(z, self.ctx(c))
        x = m.preprocessor.inverse(u)
        return x, base.log_prob(z) - ladj_inv + m.preprocessor.log_abs_det_jacobian(x)


class FlowModel(DensityModel):
    """What every flow model shares: ``self.base`` (a distribution) and ``self.transform`` (a Compose).

    :class:`~hepgen.density.DensityModel` gives ``log_prob`` (``grad=True``: differentiable), ``score``,
    ``sample``, ``rsample`` and ``sample_and_log_prob`` / ``rsample_and_log_prob`` in the original units.
    """

    base: nn.Module
    transform: Compose

    def _set_parts(self, base: nn.Module, transforms: Sequence[Transform]) -> None:
        self.base = base
        self.transform = transforms if isinstance(transforms, Compose) else Compose(transforms)

    def reset_parameters(self) -> None:
        """Re-draw every weight, then make the conditioners' output layers zero (the flow starts as identity)."""
        super().reset_parameters()
        for module in self.modules():
            if isinstance(module, Transform):
                module.reset_to_identity()

    # -- the density in the preprocessed space (DensityModel derives log_prob, score, sample ...) ------
    def log_prob_internal(self, u: Tensor, context: Tensor | None = None) -> Tensor:
        """log p_u(u | c) = log p_z(f(u; c)) + log|det ∂f/∂u|: u (batch, features) -> (batch,)."""
        z, ladj = self.transform(u, context)
        return self.base.log_prob(z) + ladj

    def sample_internal(self, n: int, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(u (n, features), log p_u(u | c) (n,)) drawn in one pass through the inverse chain (reparameterised)."""
        z, log_pz = self.base.sample_and_log_prob(n)
        u, ladj_inv = self.transform.inverse(z, context)
        return u, log_pz - ladj_inv

    def _sample_graph(self) -> nn.Module:
        """The ONNX sampler (see :meth:`DensityModel.export_graph`): z = μ + σ ε through the inverse chain."""
        if not isinstance(self.base, StandardNormal):  # DiagonalGaussian derives from it
            raise refusal(self, "sample", f"its base distribution {type(self.base).__name__} is not a known function "
                                          "of N(0, I) noise (StandardNormal and DiagonalGaussian are)")
        return _SampleGraph(self)


class Flow(FlowModel):
    """A custom flow: ``base`` (a module with ``log_prob``/``sample_and_log_prob``, or "normal" / "diagonal")
    and ``transforms`` (a list of :class:`~hepgen.flows.transforms.Transform`, data -> base direction).

    Args:
        base: the base distribution; its ``features`` attribute sets the event size.
        transforms: the chain, applied in order from data to base.
        context: size of the context vector the transforms take.
        preprocess: per-feature preprocessing.

    Custom flows hold modules, which config.yaml cannot describe: fit them without ``run_dir`` and save
    their ``state_dict`` yourself, or use a ready-made model (:class:`~hepgen.flows.zoo.NSF` ...).
    """

    cli_name = "flow"

    def __init__(self, base: nn.Module | str, transforms: Sequence[Transform], features: int | None = None,
                 context: int = 0, preprocess: PreprocessSpec = "standard"):
        if isinstance(base, str):
            if base not in BASES or features is None:
                raise ConfigError(f"base {base!r}: give a module or one of {', '.join(BASES)} with features=")
            base = BASES[base](features)
        features = int(getattr(base, "features", features or 0))
        if features < 1:
            raise ConfigError("Flow needs the event size: a base with a 'features' attribute or features=")
        super().__init__((features,), context, preprocess)
        self.features = features
        self._set_parts(base, list(transforms))

    @classmethod
    def from_data(cls, event_shape: tuple[int, ...], context: int, **params: Any) -> Flow:
        raise ConfigError("a custom Flow is composed in Python (Flow(base, transforms)); from the command line "
                          "use one of the ready-made flows: realnvp, maf, iaf, nsf")

    def get_config(self) -> dict[str, Any]:
        raise ConfigError("a custom Flow holds its base and transforms as modules, which config.yaml cannot "
                          "describe; save its state_dict with torch.save and rebuild it in code, or use one "
                          "of the ready-made flows (realnvp, maf, iaf, nsf)")


__all__ = ["Flow", "FlowModel", "StandardNormal"]
