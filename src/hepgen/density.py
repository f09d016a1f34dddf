"""The base of every model with an exact density: the Gaussian baseline and the normalizing flows.

A subclass defines the density in the preprocessed space u = T(x) the networks work in; this base
turns it into the public, original-unit API once:

    log p(x | c) = log p_u(T(x) | c) + log|det ∂T/∂x|          (log_prob; score = −log_prob)
    x = T⁻¹(u),  (u, log p_u(u | c)) = sample_internal(n, c)    (sample, rsample, sample_and_log_prob)

Inference does not build autograd graphs: ``log_prob``, ``score``, ``score_outputs``, ``sample`` and
``sample_and_log_prob`` run under ``torch.no_grad`` and return plain tensors (``.numpy()`` works).
The differentiable path is explicit: ``log_prob(x, grad=True)`` (gradients to ``x``, the context and
the weights, e.g. ∇ₓ log p or a loss on the density) and ``rsample`` / ``rsample_and_log_prob``
(reparameterised samples, gradients to the weights and the context, e.g. reverse-KL training).
Contexts are vectorised: a context (n, c) gives one sample per row, a single row (c,) or (1, c)
broadcasts to all n.
"""

from __future__ import annotations

import contextlib
from abc import ABCMeta, abstractmethod
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepgen.errors import ConfigError
from hepgen.export import ExportGraph, GraphModule, Port, event_ports, refusal
from hepgen.models import Model

__all__ = ["DensityModel"]


class _LogProbGraph(GraphModule):
    """x (batch, D) [, c] -> log p(x|c) (batch,) [, score = −log p(x|c)] in original units (preprocessing
    Jacobian included)."""

    def __init__(self, model: DensityModel, with_score: bool):
        super().__init__(model)
        self.with_score = with_score

    def forward(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, ...]:
        m = self.model
        lp = m.log_prob_internal(m.preprocessor(x), self.ctx(c)) + m.preprocessor.log_abs_det_jacobian(x)
        return (lp, -lp) if self.with_score else (lp,)


def _autograd(grad: bool) -> contextlib.AbstractContextManager:
    """``grad=True``: the caller's autograd mode; ``False``: ``torch.no_grad()``."""
    return contextlib.nullcontext() if grad else torch.no_grad()


class DensityModel(Model, metaclass=ABCMeta):
    """A model with an exact log-density; subclasses implement it in the preprocessed space.

    Subclasses implement :meth:`log_prob_internal` (u (batch, *event_shape) -> (batch,)) and
    :meth:`sample_internal` (n -> (u (n, *event_shape), log p_u(u) (n,)), differentiable with
    respect to the parameters); training minimises −log p_u per event.
    """

    # -- what a subclass defines (preprocessed space) -----------------------------------------------
    @abstractmethod
    def log_prob_internal(self, u: Tensor, context: Tensor | None = None) -> Tensor:
        """log p_u(u | c) in the preprocessed space: u (batch, *event_shape) -> (batch,)."""

    @abstractmethod
    def sample_internal(self, n: int, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(u (n, *event_shape), log p_u(u | c) (n,)), reparameterised (differentiable in the parameters)."""

    def training_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Negative log-likelihood per event in the preprocessed space: (batch,)."""
        return {"loss": -self.log_prob_internal(batch["x"], batch.get("context"))}

    # -- densities in the original units --------------------------------------------------------------
    def log_prob(self, x: Tensor | np.ndarray, context: Any = None, *, grad: bool = False) -> Tensor:
        """log p(x | c) in the original units (preprocessing Jacobian included): x (batch, *event_shape) -> (batch,).

        ``grad=True`` keeps the autograd graph (to ``x`` when it requires grad, the context and the
        weights); by default the result is a plain tensor computed under ``torch.no_grad``.
        """
        with _autograd(grad):
            x = self._as_tensor(x)
            c = self.context_to_internal(context, x.shape[0] if x.dim() else None)
            return self.log_prob_internal(self.to_internal(x), c) + self.preprocessor.log_abs_det_jacobian(x)

    def score(self, x: Tensor | np.ndarray, context: Any = None) -> Tensor:
        """Anomaly score −log p(x | c): (batch,)."""
        return -self.log_prob(x, context)

    def score_outputs(self, x: Tensor | np.ndarray, context: Any = None) -> dict[str, Tensor]:
        """``log_prob`` (original units, preprocessing Jacobian included) and ``score`` = −log_prob: (batch,) each."""
        lp = self.log_prob(x, context)
        return {"log_prob": lp, "score": -lp}

    # -- sampling ----------------------------------------------------------------------------------------
    def _sample_count(self, n: int | None, context: Any) -> tuple[int, Tensor | None]:
        """The number of samples (``None``: one per context row) and the preprocessed context broadcast to it."""
        if n is None and context is not None and self.context:
            shape = tuple(torch.as_tensor(context).shape)
            n = shape[0] if len(shape) == 2 else 1  # (n, c): one sample per row; (c,): one sample
        if n is None or isinstance(n, bool) or int(n) != n or n < 0:
            raise ConfigError(f"the number of samples must be a non-negative integer, got {n!r}"
                              + (" (or give one context row per sample)" if self.context else ""))
        return int(n), self.context_to_internal(context, int(n))

    def rsample_and_log_prob(self, n: int | None, context: Any = None) -> tuple[Tensor, Tensor]:
        """Differentiable (x (n, *event_shape), log p(x | c) (n,)) in the original units, from one pass."""
        n, c = self._sample_count(n, context)
        u, log_pu = self.sample_internal(n, c)
        x = self.to_external(u)
        return x, log_pu + self.preprocessor.log_abs_det_jacobian(x)

    def rsample(self, n: int | None, context: Any = None) -> Tensor:
        """Differentiable samples x = T⁻¹(u) in the original units: (n, *event_shape).

        Gradients flow to the weights and to ``context`` (a tensor that requires grad); context (n, c)
        gives one sample per row, a single row broadcasts.
        """
        n, c = self._sample_count(n, context)
        return self.to_external(self.sample_internal(n, c)[0])

    @torch.no_grad()
    def sample(self, n: int | None, context: Any = None) -> Tensor:
        """n events in the original units: (n, *event_shape); context (n, c) gives one per row, one row broadcasts."""
        return self.rsample(n, context)

    @torch.no_grad()
    def sample_and_log_prob(self, n: int | None, context: Any = None) -> tuple[Tensor, Tensor]:
        """(x (n, *event_shape), log p(x | c) (n,)) in the original units, from one pass (no autograd graph)."""
        return self.rsample_and_log_prob(n, context)

    # -- ONNX export -----------------------------------------------------------------------------------
    def export_graph(self, what: str) -> ExportGraph:
        """What :func:`hepgen.export.export` traces: ``sample`` z (batch, D) standard normal [, c] -> (x, log p(x|c));
        ``log_prob`` x [, c] -> log p(x|c); ``score`` x [, c] -> (log p(x|c), −log p(x|c)); original units."""
        ports = event_ports(self)
        if what == "sample":
            noise = Port("z", (int(self.event_shape[0]),), "standard normal N(0, I) noise")
            return ExportGraph(self._sample_graph(), [noise, *ports.context], [ports.x, ports.log_prob])
        with_score = what == "score"
        return ExportGraph(self._log_prob_graph(with_score), [ports.x, *ports.context],
                           [ports.log_prob, Port("score", (), "−log p(x)")] if with_score else [ports.log_prob])

    def _sample_graph(self) -> nn.Module:
        """z (batch, D) standard normal [, c] -> (x, log p(x|c)) in original units; a subclass that can sample
        as a function of N(0, I) noise overrides it."""
        raise refusal(self, "sample", "its sampler is not a known function of N(0, I) noise")

    def _log_prob_graph(self, with_score: bool) -> nn.Module:
        """x [, c] -> log p(x|c) [, −log p(x|c)] through :meth:`log_prob_internal`."""
        return _LogProbGraph(self, with_score)
