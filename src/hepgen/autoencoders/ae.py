"""Deterministic autoencoders: dense, convolutional and denoising.

    z = f(x),  x̂ = g(z),  loss per event ℓ = (1/D) Σ_d (x̂_d − x_d)²   (in the preprocessed space)

The anomaly score of an event is the same reconstruction error; ``score_outputs`` adds the
per-feature (per-pixel) squared errors. A denoising autoencoder reconstructs the clean x from a
corrupted x̃ (Gaussian noise x̃ = x + σ ε, or masking: each value set to 0 with probability
``mask_prob``), ℓ = (1/D) ‖g(f(x̃)) − x‖².

``sample(n)`` draws z from a Gaussian N(m, S) fitted to the latent codes of the training data
(after training, by :meth:`fit`) and decodes it. This is the classic failure that motivates the
VAE: nothing in the autoencoder's loss makes its latent distribution Gaussian or its decoder good
away from the training codes, so these samples are often blurred or off the data manifold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hepgen.autoencoders.base import LatentModel, check_common, conv_from_data, conv_networks, dense_networks
from hepgen.data.preprocess import PreprocessSpec
from hepgen.errors import ConfigError
from hepgen.export import ExportGraph, GraphModule, Port, event_ports, refusal
from hepgen.models import Model, register

NOISES = ("gaussian", "mask")


class _ScoreGraph(GraphModule):
    """x [, c] -> (score (batch,), score_per_feature (batch, *event_shape)): squared errors in u = T(x)."""

    def forward(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, Tensor]:
        m = self.model
        per = m._squared_errors(m.preprocessor(x), self.ctx(c))
        return per.reshape(per.shape[0], -1).mean(dim=1), per


class _SampleGraph(GraphModule):
    """z (batch, latent) standard normal [, c] -> x = T⁻¹(g(m + S z, T_c(c))), S the fitted latent Cholesky factor."""

    def forward(self, eps: Tensor, c: Tensor | None = None) -> tuple[Tensor]:
        m = self.model
        z = m.latent_mean_ + eps @ m.latent_scale_tril_.T
        return (m.preprocessor.inverse(m._decoded(z, self.ctx(c))),)


class _DeterministicAE(LatentModel):
    """Shared by the deterministic autoencoders: MSE loss, reconstruction score, latent-Gaussian sampling."""

    #: what ``export`` writes unless told: the anomaly score, the autoencoders' use
    export_default = "score"

    def _init_latent_gaussian(self) -> None:
        self.register_buffer("latent_mean_", torch.zeros(self.latent))
        self.register_buffer("latent_scale_tril_", torch.eye(self.latent))
        self.register_buffer("latent_fitted_", torch.tensor(False))

    def _code(self, u: Tensor, c: Tensor | None) -> Tensor:
        return self.encoder_net(u, c)

    def _decoded(self, z: Tensor, c: Tensor | None) -> Tensor:
        return self.decoder_net(z, c)[:, 0]

    def _corrupt(self, u: Tensor) -> Tensor:
        """The encoder's input during training (identity; the denoising AE overrides it)."""
        return u

    def training_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Mean squared reconstruction error per event: (batch,)."""
        u, c = batch["x"], batch.get("context")
        u_hat = self._decoded(self._code(self._corrupt(u), c), c)
        return {"loss": (u_hat - u).square().reshape(u.shape[0], -1).mean(dim=1)}

    # -- scores ------------------------------------------------------------------------------------
    def _squared_errors(self, u: Tensor, c: Tensor | None) -> Tensor:
        return (self._decoded(self._code(u, c), c) - u).square()

    @torch.no_grad()
    def score(self, x: Tensor | np.ndarray, context: Any = None) -> Tensor:
        """Reconstruction error (1/D) ‖g(f(u)) − u‖² in the preprocessed space: (B, *event_shape) -> (B,)."""
        return self._map(lambda _, u, c: self._squared_errors(u, c).reshape(u.shape[0], -1).mean(dim=1),
                         x, context)

    @torch.no_grad()
    def score_outputs(self, x: Tensor | np.ndarray, context: Any = None) -> dict[str, Tensor]:
        """``score`` (B,) and ``score_per_feature`` (B, *event_shape): squared errors per value."""
        per = self._map(lambda _, u, c: self._squared_errors(u, c), x, context)
        return {"score": per.reshape(per.shape[0], -1).mean(dim=1), "score_per_feature": per}

    # -- the latent Gaussian -----------------------------------------------------------------------
    def on_fit_end(self, events: Any) -> None:
        """After training (engine hook, every process): fit the latent Gaussian on the training events."""
        self.fit_latent_events(events)

    @torch.no_grad()
    def fit_latent(self, x: Any, weights: Any = None, context: Any = None, chunk_size: int = 65536) -> _DeterministicAE:
        """Fit N(m, S) to the codes z = f(x) of ``x`` (array or data spec), weighted by ``weights``.

        m = Σ w z / Σ w, S = Σ w (z − m)(z − m)ᵀ / Σ w (+ 1e-6·tr(S)/L on the diagonal); stored
        as the buffers ``latent_mean_`` and ``latent_scale_tril_`` (Cholesky factor of S).
        """
        from hepgen.data.sources import load_events

        events, _ = load_events(x, weights, context, self)
        return self.fit_latent_events(events, chunk_size)

    @torch.no_grad()
    def fit_latent_events(self, events: Any, chunk_size: int = 65536) -> _DeterministicAE:
        """:meth:`fit_latent` on :class:`hepgen.data.loader.Events` (in memory or streamed), chunk by chunk."""
        total_w, s1, s2 = 0.0, torch.zeros(self.latent, dtype=torch.float64), torch.zeros(
            self.latent, self.latent, dtype=torch.float64)
        was_training = self.training
        self.eval()
        for start in range(0, len(events), chunk_size):
            rows = events.rows(start, min(start + chunk_size, len(events)))
            z = self.encode(rows["x"], rows.get("context")).double().cpu()
            w = torch.as_tensor(rows["w"], dtype=torch.float64)
            total_w += float(w.sum())
            s1 += (w[:, None] * z).sum(dim=0)
            s2 += (w[:, None] * z).T @ z
        self.train(was_training)
        if total_w <= 0:
            raise ConfigError("cannot fit the latent Gaussian: the events' weights sum to zero or less")
        mean = s1 / total_w
        cov = s2 / total_w - torch.outer(mean, mean)
        cov = 0.5 * (cov + cov.T) + torch.eye(self.latent, dtype=torch.float64) * (
            1e-6 * float(torch.trace(cov).clamp_min(1e-12)) / self.latent)
        self.latent_mean_.copy_(mean.to(self.latent_mean_))
        self.latent_scale_tril_.copy_(torch.linalg.cholesky(cov).to(self.latent_scale_tril_))
        self.latent_fitted_.fill_(True)
        return self

    @torch.no_grad()
    def sample(self, n: int, context: Any = None) -> Tensor:
        """n events decoded from z ~ N(m, S), the Gaussian fitted to the training codes: (n, *event_shape)."""
        if not bool(self.latent_fitted_):
            raise ConfigError(f"{self.cli_name} samples from a Gaussian fitted to its training latents; train it with "
                              "fit() or call fit_latent(x) first")
        eps = torch.randn(int(n), self.latent, device=self.device, dtype=self.dtype)
        z = self.latent_mean_ + eps @ self.latent_scale_tril_.T
        return self.decode(z, context)

    # -- ONNX export -----------------------------------------------------------------------------------
    def export_graph(self, what: str) -> ExportGraph:
        """What :func:`hepgen.export.export` traces: ``score`` x [, c] -> the reconstruction error and its values per
        feature (preprocessed units), ``sample`` z [, c] -> x = T⁻¹(g(m + S z)) from the fitted latent Gaussian."""
        if what == "log_prob":
            raise refusal(self, what, "an autoencoder has no density; export --what score (reconstruction error)")
        ports = event_ports(self)
        if what == "score":
            outputs = [Port("score", (), "reconstruction error (1/D) Σ (g(f(u)) − u)², u = T(x)"),
                       Port("score_per_feature", ports.x.shape, "squared reconstruction error per value, "
                                                                "preprocessed units")]
            return ExportGraph(_ScoreGraph(self), [ports.x, *ports.context], outputs)
        if not bool(self.latent_fitted_):
            raise refusal(self, what, "it samples from a Gaussian fitted to its training codes, which this model "
                                      "does not have yet (train it with fit() or call fit_latent(x))")
        noise = Port("z", (self.latent,), "standard normal N(0, I) noise (z = m + S·noise)")
        return ExportGraph(_SampleGraph(self), [noise, *ports.context], [ports.x])


@register
class Autoencoder(_DeterministicAE):
    """Dense autoencoder ``features -> hidden -> latent -> reversed(hidden) -> features``.

    Args:
        features: values per event.
        latent: size of the code z.
        hidden: encoder hidden sizes (the decoder mirrors them); ``()`` gives a linear autoencoder.
        activation: hidden activation.
        context: size of a conditioning vector fed to encoder and decoder (0: none).
        preprocess: per-feature preprocessing (default ``standard``).
    """

    cli_name = "ae"

    def __init__(self, features: int, latent: int = 2, hidden: Sequence[int] = (64, 32), activation: str = "relu",
                 context: int = 0, preprocess: PreprocessSpec = "standard"):
        check_common(latent, context)
        super().__init__((features,), context, preprocess)
        self.features, self.latent, self.hidden = int(features), int(latent), tuple(int(h) for h in hidden)
        self.activation = activation
        self.encoder_net, self.decoder_net = dense_networks(self.features, self.latent, self.latent, 1, self.hidden,
                                                    self.context, activation)
        self._init_latent_gaussian()


@register
class ConvAutoencoder(_DeterministicAE):
    """Convolutional autoencoder on images (C, H, W) or (H, W): conv stack -> latent -> mirrored stack.

    Args:
        shape: event shape (C, H, W) or (H, W).
        latent: size of the code z.
        channels: channels of the conv layers (their number is the depth each way).
        kernel_size: odd kernel side; downsample: leading stride-2 layers (None: automatic).
        activation, context: as for :class:`Autoencoder`.
        preprocess: ``minmax`` (default: the training pixel range -> [0, 1], one scalar pair) or ``none``.
    """

    cli_name = "conv-ae"

    rows_per_pass = 4096

    def __init__(self, shape: Sequence[int], latent: int = 16, channels: Sequence[int] = (16, 32, 64),
                 kernel_size: int = 3, downsample: int | None = None, activation: str = "relu", context: int = 0,
                 preprocess: PreprocessSpec = "minmax"):
        check_common(latent, context)
        super().__init__(tuple(shape), context, preprocess)
        self.shape, self.latent, self.channels = tuple(int(s) for s in shape), int(latent), tuple(int(c) for c in channels)
        self.kernel_size, self.downsample, self.activation = int(kernel_size), downsample, activation
        try:
            self.encoder_net, self.decoder_net = conv_networks(self.shape, self.latent, self.latent, 1, self.channels,
                                                       self.context, activation, self.kernel_size, downsample)
        except ValueError as exc:
            raise ConfigError(f"conv-ae: {exc}") from None
        self._init_latent_gaussian()

    @classmethod
    def from_data(cls, event_shape: tuple[int, ...], context: int, **params: Any) -> Model:
        return conv_from_data(cls, event_shape, context, **params)


@register
class DenoisingAutoencoder(Autoencoder):
    """Dense denoising autoencoder: reconstructs the clean x from a corrupted x̃.

    Args:
        features, latent, hidden, activation, context, preprocess: as for :class:`Autoencoder`.
        noise: ``gaussian`` (x̃ = x + σ ε in the preprocessed space) or ``mask`` (each value set to 0,
            the training mean under standard preprocessing, with probability ``mask_prob``).
        sigma: standard deviation of the Gaussian noise (preprocessed units).
        mask_prob: probability of masking a value.
    """

    cli_name = "dae"

    def __init__(self, features: int, latent: int = 2, hidden: Sequence[int] = (64, 32), noise: str = "gaussian",
                 sigma: float = 0.5, mask_prob: float = 0.25, activation: str = "relu", context: int = 0,
                 preprocess: PreprocessSpec = "standard"):
        if noise not in NOISES:
            raise ConfigError(f"unknown noise {noise!r} for dae; choose 'gaussian' or 'mask'")
        if noise == "gaussian" and not sigma > 0:
            raise ConfigError(f"dae: sigma must be positive, got {sigma}")
        if noise == "mask" and not 0 < mask_prob < 1:
            raise ConfigError(f"dae: mask_prob must be in (0, 1), got {mask_prob}")
        super().__init__(features, latent, hidden, activation, context, preprocess)
        self.noise, self.sigma, self.mask_prob = noise, float(sigma), float(mask_prob)

    def _corrupt(self, u: Tensor) -> Tensor:
        if self.noise == "gaussian":
            return u + self.sigma * torch.randn_like(u)
        return u * (torch.rand_like(u) >= self.mask_prob).to(u.dtype)

    @torch.no_grad()
    def corrupt(self, x: Tensor | np.ndarray) -> Tensor:
        """x̃: the training corruption applied in the preprocessed space, returned in original units."""
        return self.to_external(self._corrupt(self.to_internal(x)))
