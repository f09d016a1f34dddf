"""Flows as hepgen models: a base distribution plus a chain of transforms.

    log p_x(x | c) = log p_z(f(T(x); c)) + log|det ∂f/∂u| + log|det ∂T/∂x|

T is the model's per-feature preprocessing (u = T(x)), f the composed transforms mapping u to the
base variable z. Sampling draws z ~ p_z and returns T⁻¹(f⁻¹(z; c)). Contexts are vectorised: a
context (n, c) gives one sample per row, a single row (c,) or (1, c) broadcasts to all n.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepgen.data.preprocess import PreprocessSpec
from hepgen.errors import ConfigError
from hepgen.flows.distributions import BASES, StandardNormal
from hepgen.flows.transforms.base import Compose, Transform
from hepgen.models import Model


class FlowModel(Model):
    """What every flow model shares: ``self.base`` (a distribution) and ``self.transform`` (a Compose)."""

    score_kind = "log_prob"
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

    # -- preprocessed space ----------------------------------------------------------------------
    def log_prob_internal(self, u: Tensor, context: Tensor | None = None) -> Tensor:
        """log p_u(u | c) in the preprocessed space: u (batch, features) -> (batch,)."""
        z, ladj = self.transform(u, context)
        return self.base.log_prob(z) + ladj

    def sample_internal(self, n: int, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(u (n, features), log p_u(u | c) (n,)) drawn in one pass through the inverse chain."""
        z, log_pz = self.base.sample_and_log_prob(n)
        u, ladj_inv = self.transform.inverse(z, context)
        return u, log_pz - ladj_inv

    def training_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Negative log-likelihood per event (preprocessed space): (batch,)."""
        return {"loss": -self.log_prob_internal(batch["x"], batch.get("context"))}

    # -- original units --------------------------------------------------------------------------
    def log_prob(self, x: Tensor | np.ndarray, context: Any = None) -> Tensor:
        """log p(x | c) in the original units (preprocessing Jacobian included): x (batch, features) -> (batch,)."""
        x = self._as_tensor(x)
        c = self.context_to_internal(context, x.shape[0])
        return self.log_prob_internal(self.to_internal(x), c) + self.preprocessor.log_abs_det_jacobian(x)

    def _sample_count(self, n: int | None, context: Any) -> tuple[int, Tensor | None]:
        if n is None and context is not None and self.context:
            shape = tuple(torch.as_tensor(context).shape)
            n = shape[0] if len(shape) == 2 else 1  # (n, c): one sample per row; (c,): one sample
        if n is None or int(n) != n or n < 0:
            raise ConfigError(f"the number of samples must be a non-negative integer, got {n!r}"
                              + (" (or give one context row per sample)" if self.context else ""))
        return int(n), self.context_to_internal(context, int(n))

    @torch.no_grad()
    def sample(self, n: int | None, context: Any = None) -> Tensor:
        """n events in the original units: (n, features); context (n, c) gives one per row, one row broadcasts."""
        n, c = self._sample_count(n, context)
        u, _ = self.sample_internal(n, c)
        return self.to_external(u)

    def sample_and_log_prob(self, n: int | None, context: Any = None) -> tuple[Tensor, Tensor]:
        """(x (n, features), log p(x | c) (n,)) in the original units, from one pass."""
        n, c = self._sample_count(n, context)
        u, log_pu = self.sample_internal(n, c)
        x = self.to_external(u)
        return x, log_pu + self.preprocessor.log_abs_det_jacobian(x)

    def score(self, x: Tensor | np.ndarray, context: Any = None) -> Tensor:
        """Anomaly score −log p(x | c): (batch,)."""
        return -self.log_prob(x, context)

    @torch.no_grad()
    def score_outputs(self, x: Tensor | np.ndarray, context: Any = None) -> dict[str, Tensor]:
        """``log_prob`` (original units, preprocessing Jacobian included) and ``score`` = −log_prob."""
        lp = self.log_prob(x, context)
        return {"log_prob": lp, "score": -lp}


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
