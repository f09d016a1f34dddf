"""What every autoencoder shares: an encoder f, a decoder g, and the maps between data and latents.

    z = f(x),   x̂ = g(z),   interpolation ξ(α) = g((1 − α) f(x) + α f(x′)),  α ∈ [0, 1]

The networks work in the preprocessed space u = T(x); the public methods take and return
original units. Encoders map (B, *event_shape) [+ context] to (B, code) and decoders map
(B, latent) [+ context] to (B, P, *event_shape), P numbers per value (P = 1 for a plain
reconstruction, 2 for a Gaussian's μ and log σ). Dense families use the shared MLP, image families
the shared conv stacks (:mod:`hepgen.nn.conv`).
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepgen.errors import ConfigError
from hepgen.models import Model, refuse_several_arrays
from hepgen.nn.conv import ConvDecoder, ConvEncoder, image_shape
from hepgen.nn.mlp import MLP


class Reshaped(nn.Module):
    """``net(z, context)`` reshaped to (B, *shape): decoders that output (B, P, *event_shape)."""

    def __init__(self, net: nn.Module, shape: Sequence[int]):
        super().__init__()
        self.net, self.shape = net, tuple(int(s) for s in shape)

    def forward(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        return self.net(z, context).reshape(z.shape[0], *self.shape)


def dense_networks(features: int, code: int, latent: int, params_per_value: int, hidden: Sequence[int],
                   context: int, activation: str) -> tuple[nn.Module, nn.Module]:
    """MLP encoder (B, features) -> (B, code) and mirrored decoder (B, latent) -> (B, P, features)."""
    encoder = MLP(features, code, tuple(hidden), context=context, activation=activation)
    decoder = MLP(latent, params_per_value * features, tuple(reversed(tuple(hidden))), context=context,
                  activation=activation)
    return encoder, Reshaped(decoder, (params_per_value, features))


def conv_networks(shape: Sequence[int], code: int, latent: int, params_per_value: int, channels: Sequence[int],
                  context: int, activation: str, kernel_size: int,
                  downsample: int | None) -> tuple[nn.Module, nn.Module]:
    """Conv encoder (B, *shape) -> (B, code) and mirrored decoder (B, latent) -> (B, P, *shape).

    The convolution weights are kept channels_last (NHWC), so the activations between layers are too: one CPU
    training step of a ConvAE on 40×40 jet images in ~20 % less time, its transposed convolutions in half
    (benchmarks/jets_anomaly.py), with the same function (only the memory layout differs).
    """
    c = image_shape(shape)[0]
    options = dict(kernel_size=kernel_size, downsample=downsample, activation=activation, context=context)
    encoder = ConvEncoder(shape, channels, code, **options).to(memory_format=torch.channels_last)
    decoder = ConvDecoder(latent, shape, channels, out_channels=params_per_value * c, **options)
    return encoder, Reshaped(decoder.to(memory_format=torch.channels_last), (params_per_value, *tuple(shape)))


def check_common(latent: int, context: int) -> None:
    if int(latent) < 1:
        raise ConfigError(f"latent must be a positive number of dimensions, got {latent}")
    if int(context) < 0:
        raise ConfigError(f"context must be >= 0, got {context}")


class LatentModel(Model, metaclass=ABCMeta):
    """Base of the autoencoder families: ``encoder_net``, ``decoder_net`` and the shared public maps.

    Subclasses set ``self.encoder_net``, ``self.decoder_net`` and ``self.latent`` and implement
    :meth:`_code` (u -> z, the deterministic code) and :meth:`_decoded` (z -> reconstruction in u).
    """

    #: rows of (event × sample) pushed through the networks per pass when scoring (memory bound)
    rows_per_pass = 2**16

    # -- subclass hooks ------------------------------------------------------------------------------
    @abstractmethod
    def _code(self, u: Tensor, c: Tensor | None) -> Tensor:
        """u (B, *event_shape) -> z (B, latent)."""

    @abstractmethod
    def _decoded(self, z: Tensor, c: Tensor | None) -> Tensor:
        """z (B, latent) -> reconstruction in the preprocessed space (B, *event_shape)."""

    # -- helpers -------------------------------------------------------------------------------------
    def _chunks(self, x: Tensor | np.ndarray, context: Any, rows: int | None = None
                ) -> Iterator[tuple[Tensor, Tensor, Tensor | None]]:
        """(x, u, c) per slice of at most ``rows`` events (original units, preprocessed, context)."""
        x = self._as_tensor(x)
        if tuple(x.shape[1:]) != self.event_shape and tuple(x.shape) == self.event_shape:
            raise ConfigError(f"{self.cli_name} expects a batch of events (batch, *{self.event_shape}); "
                              f"got one event of shape {tuple(x.shape)}: add a leading axis (x[None])")
        c_all = self.context_to_internal(context, x.shape[0])
        step = rows or self.rows_per_pass
        for start in range(0, max(x.shape[0], 1), step):
            xs = x[start:start + step]
            yield xs, self.to_internal(xs), None if c_all is None else c_all[start:start + step]

    def _map(self, fn: Callable[[Tensor, Tensor, Tensor | None], Tensor], x: Any, context: Any,
             rows: int | None = None) -> Tensor:
        return torch.cat([fn(xs, u, c) for xs, u, c in self._chunks(x, context, rows)])

    # -- public maps ---------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: Tensor | np.ndarray, context: Any = None) -> Tensor:
        """Latent code z = f(x) (the posterior mean for VAEs): x (B, *event_shape) -> (B, latent)."""
        return self._map(lambda _, u, c: self._code(u, c), x, context)

    @torch.no_grad()
    def decode(self, z: Tensor | np.ndarray, context: Any = None) -> Tensor:
        """x̂ = g(z) in the original units (the decoder mean for VAEs): z (B, latent) -> (B, *event_shape)."""
        z = self._as_tensor(z)
        if z.dim() != 2 or z.shape[1] != self.latent:
            raise ConfigError(f"latent codes must have shape (batch, {self.latent}), got {tuple(z.shape)}")
        c = self.context_to_internal(context, z.shape[0])
        return self.to_external(self._decoded(z, c))

    @torch.no_grad()
    def reconstruct(self, x: Tensor | np.ndarray, context: Any = None) -> Tensor:
        """g(f(x)) in the original units: (B, *event_shape) -> (B, *event_shape)."""
        return self._map(lambda _, u, c: self.to_external(self._decoded(self._code(u, c), c)), x, context)

    @torch.no_grad()
    def interpolate(self, x: Tensor | np.ndarray, x2: Tensor | np.ndarray, steps: int = 8,
                    context: Any = None) -> Tensor:
        """ξ(α) = g((1 − α) f(x) + α f(x′)) for α = 0 … 1 in ``steps`` steps: (B, steps, *event_shape)."""
        if steps < 2:
            raise ConfigError(f"interpolate needs steps >= 2 (both end points), got {steps}")
        z1, z2 = self.encode(x, context), self.encode(x2, context)
        if z1.shape != z2.shape:
            raise ConfigError(f"interpolate needs as many events in x2 as in x ({z2.shape[0]} vs {z1.shape[0]})")
        alpha = torch.linspace(0, 1, steps, device=z1.device, dtype=z1.dtype)[None, :, None]
        z = ((1 - alpha) * z1[:, None] + alpha * z2[:, None]).reshape(-1, self.latent)
        c = self.context_to_internal(context, z1.shape[0])
        c = None if c is None else c.repeat_interleave(steps, dim=0)
        return self.to_external(self._decoded(z, c)).reshape(z1.shape[0], steps, *self.event_shape)


def conv_from_data(cls: type[Model], event_shape: tuple[int, ...], context: int, **params: Any) -> Model:
    """``from_data`` of image families: events (C, H, W) or (H, W) become ``shape``."""
    refuse_several_arrays(cls.cli_name, event_shape)
    if len(event_shape) not in (2, 3):
        raise ConfigError(f"{cls.cli_name} models images of shape (C, H, W) or (H, W); this data has events of "
                          f"shape {event_shape} (use the dense model for tabular data)")
    return cls(shape=event_shape, context=context, **params)


def log_mean_exp(values: Tensor, dim: int = 0) -> Tensor:
    """log (1/K) Σ_k exp(v_k) along ``dim``, computed stably."""
    return torch.logsumexp(values, dim=dim) - math.log(values.shape[dim])
