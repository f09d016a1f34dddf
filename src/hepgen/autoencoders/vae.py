"""Variational autoencoders: a Gaussian encoder q(z|x), a decoder likelihood p(x|z), prior N(0, I).

    q(z|x) = N(μ(x), diag σ(x)²),   z = μ + σ ⊙ ε,  ε ~ N(0, I)          (reparameterisation)
    −ELBO(x) = −E_q[log p(x|z)] + KL(q(z|x) ‖ N(0, I))                   (KL in closed form)
    loss per event = −log p(x|z₁) + β KL                                  (one z per event, logged as recon, kl)
    log p(x) ≥ IWAE_K(x) = E log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x)

IWAE_1 = ELBO and IWAE_K → log p(x) as K grows (Burda et al. 2015). Densities are reported in the
original units: the preprocessing's log |det ∂u/∂x| is added to every log-density. Decoders:
``gaussian`` (learned σ(z) per value), ``gaussian-fixed`` (σ = ``decoder_sigma``), ``bernoulli``
(for values in [0, 1], e.g. minmax-preprocessed images).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hepgen.autoencoders.base import (
    LatentModel,
    check_common,
    conv_from_data,
    conv_networks,
    dense_networks,
    log_mean_exp,
)
from hepgen.autoencoders.likelihoods import (
    DECODERS,
    gaussian_kl,
    make_likelihood,
    normal_log_prob,
)
from hepgen.data.preprocess import PreprocessSpec
from hepgen.errors import ConfigError, DataError
from hepgen.export import ExportGraph, GraphModule, Port, event_ports, refusal
from hepgen.models import Model, register


class _DecoderGraph(GraphModule):
    """z (batch, latent) ~ N(0, I) [, c] -> the decoder mean x = T⁻¹(E[u | z]) (``model.sample(n, mean=True)``)."""

    def forward(self, z: Tensor, c: Tensor | None = None) -> tuple[Tensor]:
        m = self.model
        return (m.preprocessor.inverse(m._decoded(z, self.ctx(c))),)


class _Variational(LatentModel):
    """Shared by the VAEs: posterior, ELBO, IWAE, prior sampling."""

    def _init_variational(self, decoder: str, beta: float, decoder_sigma: float) -> None:
        if decoder not in DECODERS:
            raise ConfigError(f"unknown decoder {decoder!r} for {self.cli_name}; choose one of {', '.join(DECODERS)}")
        if not beta >= 0:
            raise ConfigError(f"{self.cli_name}: beta must be >= 0, got {beta}")
        if not decoder_sigma > 0:
            raise ConfigError(f"{self.cli_name}: decoder_sigma must be positive, got {decoder_sigma}")
        self.decoder = decoder
        self.beta, self.decoder_sigma = float(beta), float(decoder_sigma)
        self.likelihood = make_likelihood(decoder, self.decoder_sigma)

    # -- networks ------------------------------------------------------------------------------------
    def _posterior(self, u: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor]:
        """μ, log σ of q(z|x): u (B, *event_shape) -> 2 × (B, latent)."""
        mu, log_sigma = self.encoder_net(u, c).chunk(2, dim=-1)
        return mu, log_sigma

    def _code(self, u: Tensor, c: Tensor | None) -> Tensor:
        return self._posterior(u, c)[0]

    def _decoded(self, z: Tensor, c: Tensor | None) -> Tensor:
        return self.likelihood.mean(self.decoder_net(z, c))

    def _target(self, u: Tensor, training: bool) -> Tensor:
        """Bernoulli targets must lie in [0, 1]: training data are checked, scored data clamped."""
        if self.decoder != "bernoulli":
            return u
        if training:
            lo, hi = torch.aminmax(u.detach())
            if lo < -1e-6 or hi > 1 + 1e-6:
                raise DataError(
                    f"the bernoulli decoder needs values in [0, 1] after preprocessing, but a training batch spans "
                    f"[{float(lo):.4g}, {float(hi):.4g}]; use preprocess='minmax' (maps the training range to [0, 1]) "
                    "or a gaussian decoder")
            return u
        return u.clamp(0.0, 1.0)

    # -- training ------------------------------------------------------------------------------------
    def _losses(self, u: Tensor, c: Tensor | None, training: bool) -> dict[str, Tensor]:
        target = self._target(u, training)
        mu, log_sigma = self._posterior(u, c)
        z = mu + torch.exp(log_sigma) * torch.randn_like(mu)
        recon = -self.likelihood.log_prob(target, self.decoder_net(z, c))
        kl = gaussian_kl(mu, log_sigma)
        return {"loss": recon + kl if self.beta == 1.0 else recon + self.beta * kl, "recon": recon, "kl": kl}

    def training_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """−log p(x|z) + β KL per event (batch,), with ``recon`` and ``kl`` logged."""
        return self._losses(batch["x"], batch.get("context"), training=True)

    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return self._losses(batch["x"], batch.get("context"), training=False)

    # -- likelihood bounds ---------------------------------------------------------------------------
    def _terms(self, u: Tensor, c: Tensor | None, k: int, generator: torch.Generator | None,
               per_feature: bool = False) -> dict[str, Tensor]:
        """ELBO, IWAE_K and KL per event (B,) in the preprocessed space from the same K posterior samples.

        ELBO = mean_k log p(u|z_k) − KL (closed form); IWAE_K = log mean_k exp(log w_k),
        log w_k = log p(u|z_k) + log N(z_k; 0, I) − log q(z_k|u). With ``per_feature``, also
        ``recon_per_feature`` = −mean_k log p(u_d|z_k): (B, *event_shape), summing to −ELBO − KL.
        """
        target = self._target(u, training=False)
        mu, log_sigma = self._posterior(u, c)
        b = u.shape[0]
        eps = torch.randn((k, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(log_sigma) * eps  # (k, B, L)
        cc = None if c is None else c.repeat(k, 1)
        out = self.decoder_net(z.reshape(k * b, -1), cc)
        elements = self.likelihood.log_prob_elements(target.repeat(k, *([1] * (u.dim() - 1))), out)
        log_px = elements.reshape(k, b, -1).sum(-1)
        zero = torch.zeros((), device=mu.device, dtype=mu.dtype)
        log_pz = normal_log_prob(z, zero, zero).sum(-1)
        log_qz = normal_log_prob(z, mu, log_sigma).sum(-1)
        kl = gaussian_kl(mu, log_sigma)
        terms = {"elbo": log_px.mean(dim=0) - kl, "iwae": log_mean_exp(log_px + log_pz - log_qz, dim=0), "kl": kl}
        if per_feature:
            terms["recon_per_feature"] = -elements.reshape(k, *u.shape).mean(dim=0)
        return terms

    def _bounds(self, u: Tensor, c: Tensor | None, k: int, generator: torch.Generator | None
                ) -> tuple[Tensor, Tensor]:
        """(ELBO, IWAE_K) per event in the preprocessed space from the same K posterior samples: 2 × (B,)."""
        terms = self._terms(u, c, k, generator)
        return terms["elbo"], terms["iwae"]

    def _terms_all(self, x: Tensor | np.ndarray, context: Any, k: int, seed: int | None,
                   per_feature: bool = False) -> dict[str, Tensor]:
        """:meth:`_terms` over every event in chunks; ``elbo`` and ``iwae`` in the original units."""
        if int(k) < 1:
            raise ConfigError(f"the number of importance samples k must be >= 1, got {k}")
        generator = None
        if seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(int(seed))
        parts: dict[str, list[Tensor]] = {}
        rows = max(1, self.rows_per_pass // int(k))
        for xs, u, c in self._chunks(x, context, rows):
            terms = self._terms(u, c, int(k), generator, per_feature)
            ladj = self.preprocessor.log_abs_det_jacobian(xs)
            terms["elbo"], terms["iwae"] = terms["elbo"] + ladj, terms["iwae"] + ladj
            for key, value in terms.items():
                parts.setdefault(key, []).append(value)
        return {key: torch.cat(values) for key, values in parts.items()}

    def _bounds_all(self, x: Tensor | np.ndarray, context: Any, k: int, seed: int | None) -> tuple[Tensor, Tensor]:
        terms = self._terms_all(x, context, k, seed)
        return terms["elbo"], terms["iwae"]

    @torch.no_grad()
    def elbo(self, x: Tensor | np.ndarray, context: Any = None, k: int = 16, seed: int | None = 0) -> Tensor:
        """ELBO per event in the original units, E_q[log p(x|z)] estimated with k samples: (B,)."""
        return self._bounds_all(x, context, k, seed)[0]

    @torch.no_grad()
    def log_prob_iwae(self, x: Tensor | np.ndarray, context: Any = None, k: int = 128,
                      seed: int | None = 0) -> Tensor:
        """Importance-weighted estimate IWAE_K of log p(x) in the original units: (B,) (a lower bound on average)."""
        return self._bounds_all(x, context, k, seed)[1]

    def log_prob(self, x: Tensor | np.ndarray, context: Any = None, k: int = 128, *, grad: bool = False) -> Tensor:
        """log p(x) estimated by :meth:`log_prob_iwae` with k samples (seeded): (B,).

        ``grad=True`` keeps the autograd graph (reparameterised posterior samples: gradients to ``x``,
        the context and the weights); by default the result is computed under ``torch.no_grad``.
        """
        if not grad:
            return self.log_prob_iwae(x, context, k=k)
        return self._bounds_all(x, context, k, 0)[1]

    @torch.no_grad()
    def score(self, x: Tensor | np.ndarray, context: Any = None) -> Tensor:
        """Anomaly score −ELBO(x) (original units, k = 16 posterior samples, seeded): (B,)."""
        return -self.elbo(x, context)

    @torch.no_grad()
    def score_outputs(self, x: Tensor | np.ndarray, context: Any = None, k: int = 128) -> dict[str, Tensor]:
        """What ``hepgen score`` writes, all from the same k posterior samples per event (seeded):

        ``score`` = −ELBO, ``elbo``, ``log_prob_iwae`` (original units), ``kl`` = KL(q(z|x) ‖ N(0, I))
        (each (B,)) and ``score_per_feature`` = −E_q log p(u_d|z) in the preprocessed space u
        (B, *event_shape): score = Σ_d score_per_feature_d + kl − log|det ∂u/∂x|.
        """
        terms = self._terms_all(x, context, k, 0, per_feature=True)
        return {"score": -terms["elbo"], "elbo": terms["elbo"], "log_prob_iwae": terms["iwae"], "kl": terms["kl"],
                "score_per_feature": terms["recon_per_feature"]}

    # -- generation ------------------------------------------------------------------------------------
    @torch.no_grad()
    def posterior(self, x: Tensor | np.ndarray, context: Any = None) -> tuple[Tensor, Tensor]:
        """μ(x) and σ(x) of q(z|x): 2 × (B, latent)."""
        out = self._map(lambda _, u, c: torch.cat(self._posterior(u, c), dim=-1), x, context)
        mu, log_sigma = out.chunk(2, dim=-1)
        return mu, torch.exp(log_sigma)

    def rsample(self, n: int, context: Any = None, z: Tensor | None = None) -> Tensor:
        """Differentiable decoder means x = T⁻¹(E[u | z]), z ~ N(0, I): (n, *event_shape), original units.

        Gradients flow to the decoder weights and to ``context`` (a tensor that requires grad);
        ``z``: an optional (n, latent) batch of latents (default: fresh N(0, I) draws).
        """
        z = torch.randn(int(n), self.latent, device=self.device, dtype=self.dtype) if z is None else self._as_tensor(z)
        if z.dim() != 2 or z.shape[1] != self.latent:
            raise ConfigError(f"latent codes must have shape (batch, {self.latent}), got {tuple(z.shape)}")
        c = self.context_to_internal(context, z.shape[0])
        return self.to_external(self._decoded(z, c))

    @torch.no_grad()
    def sample(self, n: int, context: Any = None, mean: bool = True) -> Tensor:
        """n events from the prior z ~ N(0, I) decoded: the decoder mean (``mean=True``) or x ~ p(x|z).

        Returns (n, *event_shape) in the original units.
        """
        if mean:
            return self.rsample(n, context)
        z = torch.randn(int(n), self.latent, device=self.device, dtype=self.dtype)
        c = self.context_to_internal(context, z.shape[0])
        return self.to_external(self.likelihood.sample(self.decoder_net(z, c)))

    # -- ONNX export -----------------------------------------------------------------------------------
    def export_graph(self, what: str) -> ExportGraph:
        """What :func:`hepgen.export.export` traces: only ``sample``, prior draws z [, c] -> the decoder mean."""
        if what != "sample":
            raise refusal(self, what, "the VAE's −ELBO and importance-weighted log p(x) are Monte-Carlo estimates "
                                      "over posterior samples, not one deterministic graph; export --what sample "
                                      "(the decoder) or score with 'hepgen score'")
        ports = event_ports(self)
        outputs = [Port("x", ports.x.shape, f"decoder mean E[x | z] in {ports.units}")]
        return ExportGraph(_DecoderGraph(self), [Port("z", (self.latent,), "prior draws z ~ N(0, I)"), *ports.context],
                           outputs)


@register
class VAE(_Variational):
    """Dense VAE ``features -> hidden -> (μ, log σ) ; z -> reversed(hidden) -> likelihood parameters``.

    Args:
        features: values per event.
        latent: size of z.
        hidden: encoder hidden sizes (the decoder mirrors them; ``()``: linear maps).
        decoder: ``gaussian`` (learned σ(z)), ``gaussian-fixed`` or ``bernoulli``.
        beta: weight of the KL term (β-VAE; 1 gives the ELBO).
        decoder_sigma: σ of the ``gaussian-fixed`` decoder (preprocessed units).
        activation, context, preprocess: as for :class:`hepgen.autoencoders.Autoencoder`.
    """

    cli_name = "vae"

    def __init__(self, features: int, latent: int = 2, hidden: Sequence[int] = (64, 32), decoder: str = "gaussian",
                 beta: float = 1.0, decoder_sigma: float = 1.0, activation: str = "relu", context: int = 0,
                 preprocess: PreprocessSpec = "standard"):
        check_common(latent, context)
        super().__init__((features,), context, preprocess)
        self.features, self.latent, self.hidden = int(features), int(latent), tuple(int(h) for h in hidden)
        self.activation = activation
        self._init_variational(decoder, beta, decoder_sigma)
        self.encoder_net, self.decoder_net = dense_networks(self.features, 2 * self.latent, self.latent,
                                                    self.likelihood.params_per_value, self.hidden, self.context,
                                                    activation)


@register
class ConvVAE(_Variational):
    """Convolutional VAE on images (C, H, W) or (H, W).

    Args:
        shape: event shape (C, H, W) or (H, W).
        latent: size of z.
        channels: conv channels of the encoder, in order (the decoder mirrors them).
        decoder: ``bernoulli`` (default, values in [0, 1]), ``gaussian`` or ``gaussian-fixed``.
        beta: weight of the KL term (β-VAE): 1 is the ELBO, larger β pushes towards independent (disentangled)
            latents (``hepgen report latents RUN`` measures them).
        decoder_sigma, activation, context: as for :class:`VAE`.
        kernel_size, downsample: as for :class:`hepgen.autoencoders.ConvAutoencoder`.
        preprocess: ``minmax`` (default) or ``none``.
    """

    cli_name = "conv-vae"

    rows_per_pass = 4096

    def __init__(self, shape: Sequence[int], latent: int = 16, channels: Sequence[int] = (16, 32, 64),
                 decoder: str = "bernoulli", beta: float = 1.0, decoder_sigma: float = 0.1, kernel_size: int = 3,
                 downsample: int | None = None, activation: str = "relu", context: int = 0,
                 preprocess: PreprocessSpec = "minmax"):
        check_common(latent, context)
        super().__init__(tuple(shape), context, preprocess)
        self.shape, self.latent, self.channels = tuple(int(s) for s in shape), int(latent), tuple(int(c) for c in channels)
        self.kernel_size, self.downsample, self.activation = int(kernel_size), downsample, activation
        self._init_variational(decoder, beta, decoder_sigma)
        try:
            self.encoder_net, self.decoder_net = conv_networks(self.shape, 2 * self.latent, self.latent,
                                                       self.likelihood.params_per_value, self.channels,
                                                       self.context, activation, self.kernel_size, downsample)
        except ValueError as exc:
            raise ConfigError(f"conv-vae: {exc}") from None

    @classmethod
    def from_data(cls, event_shape: tuple[int, ...], context: int, **params: Any) -> Model:
        return conv_from_data(cls, event_shape, context, **params)
