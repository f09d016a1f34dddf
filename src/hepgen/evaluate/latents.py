"""Disentangled latents of a (β-)VAE: which latents are used, what each one draws, what physics each tracks.

For a VAE with posterior q(z|x) = N(μ(x), diag σ(x)²) and events x₁ … x_n:

    KL_l       = (1/n) Σ_i ½ (μ_l(x_i)² + σ_l(x_i)² − 1 − log σ_l(x_i)²)     activity of latent l (nats)
    z̄_l        = (1/n) Σ_i μ_l(x_i)                                           the mean latent
    s_l        = √(Var_i μ_l(x_i) + (1/n) Σ_i σ_l(x_i)²)                     σ of the aggregate posterior q(z_l)
    traversal  x̂_l(t) = g(z̄ + t s_l e_l),  t ∈ [−span, span]                 (decoder mean, original units)

The ``top_k`` latents with the largest KL are traversed (a latent the β-VAE leaves at the prior has
KL ≈ 0 and draws nothing). The posterior means μ(x_i) are then matched against physical quantities
(jet mass, τ21, shower depth ...) with :func:`hepgen.evaluate.disentanglement.latent_quantity_matrices`:
mutual information, Pearson and Spearman correlations, and a MIG-like gap per quantity. β is the VAE's
own hyper-parameter (``VAE(beta=4)``, ``hepgen fit vae DATA --beta 4``). A conditional VAE is traversed
at the mean of the given context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hepgen.errors import ConfigError, DataError
from hepgen.evaluate.disentanglement import LatentMatrices, latent_quantity_matrices

if TYPE_CHECKING:
    from hepgen.models import Model

__all__ = ["LatentAnalysis", "disentanglement", "latent_kl", "latent_traversals"]


def _check_vae(model: Model) -> Any:
    from hepgen.autoencoders.vae import _Variational  # loaded when a model is judged, not with the layer

    if not isinstance(model, _Variational):
        raise ConfigError(f"latent traversals and the KL ranking of latents need a VAE (vae or conv-vae), whose "
                          f"posterior q(z|x) has a KL to the prior; this is a {getattr(model, 'cli_name', type(model).__name__)}")
    return model


@dataclass
class LatentAnalysis:
    """What :func:`disentanglement` finds (module docstring for the formulas).

    ``kl`` (L,), ``mean`` z̄ (L,), ``scale`` s (L,); ``order`` every latent by falling KL; ``traversed`` the
    top-k; ``values`` (k, steps) the latent values of each traversal and ``traversals`` (k, steps, *event_shape)
    the decoded events; ``codes`` (n, L) the posterior means; ``matrices`` the latent × quantity matrices
    (None without quantities).
    """

    beta: float
    kl: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    order: list[int]
    traversed: list[int]
    values: np.ndarray
    traversals: np.ndarray
    codes: np.ndarray
    matrices: LatentMatrices | None
    span: float = 3.0

    def metrics(self) -> dict[str, Any]:
        """Plain numbers for metrics.json: β, the KL per latent, the traversal, the matrices and summary."""
        out: dict[str, Any] = {
            "beta": self.beta, "latent": int(len(self.kl)), "events": int(len(self.codes)),
            "kl_per_latent": {f"z{l}": float(v) for l, v in enumerate(self.kl)},
            "kl_total": float(self.kl.sum()),
            "active_latents": int((self.kl > 0.01).sum()),
            "latents_by_kl": [f"z{l}" for l in self.order],
            "traversal": {"latents": [f"z{l}" for l in self.traversed], "span_sigma": self.span,
                          "steps": int(self.values.shape[1]), "mean_latent": self.mean.tolist(),
                          "sigma": self.scale.tolist()},
        }
        m = self.matrices
        if m is not None:
            out["quantities"] = list(m.quantity_names)
            for key in ("mi", "pearson", "spearman"):
                matrix = getattr(m, key)
                out[key] = {lat: {q: float(matrix[l, j]) for j, q in enumerate(m.quantity_names)}
                            for l, lat in enumerate(m.latent_names)}
            out["summary"] = m.summary
            out["method"] = m.method
        return out


def _context_rows(model: Model, context: Any, n: int) -> Any:
    if context is None:
        return None
    c = np.asarray(context.detach().cpu() if isinstance(context, torch.Tensor) else context, dtype=np.float64)
    c = c.reshape(1, -1) if c.ndim == 1 else c
    if c.shape[0] not in (1, n):
        raise DataError(f"the context has {c.shape[0]} rows for {n} events; give one row or one per event")
    return c


@torch.no_grad()
def latent_kl(model: Model, x: Any, context: Any = None) -> np.ndarray:
    """KL_l: the mean over events of KL(q(z_l|x) ‖ N(0, 1)) per latent, (L,) in nats."""
    mu, sigma = _check_vae(model).posterior(x, context)
    kl = 0.5 * (mu**2 + sigma**2 - 1.0 - 2.0 * torch.log(sigma))
    return kl.mean(dim=0).double().cpu().numpy()


@torch.no_grad()
def latent_traversals(model: Model, latents: Sequence[int], mean: np.ndarray, scale: np.ndarray, *, steps: int = 7,
                      span: float = 3.0, context: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """(values (k, steps), decoded events (k, steps, *event_shape)): g(z̄ + t s_l e_l) for t in [−span, span].

    ``context``: one row (the condition every traversal is drawn at), for a conditional VAE.
    """
    vae = _check_vae(model)
    if int(steps) < 2:
        raise ConfigError(f"a traversal needs steps >= 2, got {steps}")
    if not float(span) > 0:
        raise ConfigError(f"span must be positive (in units of σ), got {span}")
    bad = [int(l) for l in latents if not 0 <= int(l) < vae.latent]
    if bad:
        raise ConfigError(f"latent {bad[0]} does not exist; the model has latents 0 .. {vae.latent - 1}")
    t = np.linspace(-float(span), float(span), int(steps))
    mean, scale = np.asarray(mean, dtype=np.float64), np.asarray(scale, dtype=np.float64)
    values, codes = [], []
    for l in latents:
        z = np.repeat(mean[None], len(t), axis=0)
        z[:, int(l)] = mean[int(l)] + t * scale[int(l)]
        values.append(z[:, int(l)])
        codes.append(z)
    if not codes:
        return np.zeros((0, len(t))), np.zeros((0, len(t), *vae.event_shape))
    z = torch.as_tensor(np.concatenate(codes), device=vae.device, dtype=vae.dtype)
    c = None if context is None else np.asarray(context, dtype=np.float64).reshape(1, -1)
    decoded = vae.decode(z, c).double().cpu().numpy()
    return np.stack(values), decoded.reshape(len(codes), len(t), *vae.event_shape)


def disentanglement(model: Model, x: Any, quantities: Any = None, quantity_names: Sequence[str] | None = None, *,
                    context: Any = None, top_k: int = 4, steps: int = 7, span: float = 3.0, n_neighbors: int = 3,
                    bins: int = 20, seed: int = 0) -> LatentAnalysis:
    """Latent activity, traversals and the latent × quantity matrices of a VAE on events ``x``.

    ``x``: (n, *event_shape) events in the original units; ``quantities``: (n, Q) physical quantities per
    event (or a dict name -> (n,)), None for traversals only; ``context``: (n, c) or one row for a conditional
    VAE. Returns a :class:`LatentAnalysis`; ``analysis.matrices.mi`` / ``.pearson`` / ``.spearman`` are the
    (L, Q) matrices and ``analysis.matrices.summary`` the per-quantity best latent and gap.
    """
    vae = _check_vae(model)
    if int(top_k) < 1:
        raise ConfigError(f"top_k must be a positive number of latents, got {top_k}")
    x = x if isinstance(x, torch.Tensor) else np.asarray(x)
    n = len(x)
    if n < 2:
        raise DataError(f"{n} events: the latent statistics need at least 2")
    c = _context_rows(vae, context, n)
    mu, sigma = vae.posterior(x, c)
    mu64, sigma64 = mu.double().cpu().numpy(), sigma.double().cpu().numpy()
    kl = (0.5 * (mu64**2 + sigma64**2 - 1.0 - 2.0 * np.log(sigma64))).mean(axis=0)
    mean = mu64.mean(axis=0)
    scale = np.sqrt(mu64.var(axis=0) + (sigma64**2).mean(axis=0))
    order = [int(l) for l in np.argsort(-kl, kind="stable")]
    traversed = order[:min(int(top_k), vae.latent)]
    c_row = None if c is None else c.mean(axis=0)
    values, decoded = latent_traversals(vae, traversed, mean, scale, steps=steps, span=span, context=c_row)

    matrices = None
    if quantities is not None:
        if isinstance(quantities, dict):
            quantity_names = list(quantities) if quantity_names is None else quantity_names
            quantities = np.column_stack([np.asarray(v, dtype=np.float64).reshape(-1) for v in quantities.values()])
        q = np.asarray(quantities, dtype=np.float64)
        q = q[:, None] if q.ndim == 1 else q
        if len(q) != n:
            raise DataError(f"{len(q)} rows of quantities for {n} events; one row per event")
        matrices = latent_quantity_matrices(mu64, q, [f"z{l}" for l in range(vae.latent)], quantity_names,
                                            n_neighbors=n_neighbors, bins=bins, seed=seed)
    return LatentAnalysis(float(vae.beta), kl, mean, scale, order, traversed, values, decoded, mu64, matrices,
                          float(span))
