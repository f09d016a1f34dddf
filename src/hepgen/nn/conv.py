"""Convolutional encoder and decoder stacks shared by the autoencoder and GAN families.

    encoder:  x (B, C, H, W) ─conv₁…conv_k─► (B, c_k, h, w) ─flatten, [c]─► Linear ─► (B, out_features)
    decoder:  z (B, in_features), [c] ─Linear─► (B, c_k, h, w) ─conv_k…conv₁─► (B, C, H, W)

Each of the k = len(channels) layers each way is a k×k convolution (odd kernel, "same" padding)
followed by an activation (and optional batch norm). The first ``downsample`` encoder layers have
stride 2, so a side n shrinks to ⌈n/2⌉; the decoder mirrors them with stride-2 transposed
convolutions whose ``output_padding`` is chosen per side to give back exactly n — any H, W works
(8×8 digits, 28×28, 40×40 jet images), no cropping needed. Events of shape (H, W) are treated as
one channel. The decoder's last layer has no activation: a likelihood or an output map (sigmoid,
tanh) is the caller's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hepgen.nn.mlp import activation as make_activation


def image_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    """(C, H, W) for an event shape (C, H, W) or (H, W) (one channel)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        return (1, *shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"image events have shape (C, H, W) or (H, W), got {shape}")
    return shape  # type: ignore[return-value]


def auto_downsample(shape: Sequence[int], layers: int, min_size: int = 4) -> int:
    """How many stride-2 layers: halve (⌈n/2⌉) while the smaller side stays >= ``min_size``."""
    _, h, w = image_shape(shape)
    n, side = 0, min(h, w)
    while n < layers and -(-side // 2) >= min_size:
        side = -(-side // 2)
        n += 1
    return n


def spatial_sizes(shape: Sequence[int], downsample: int) -> list[tuple[int, int]]:
    """(H, W) after 0, 1, …, ``downsample`` stride-2 layers (each side n -> ⌈n/2⌉)."""
    _, h, w = image_shape(shape)
    sizes = [(h, w)]
    for _ in range(downsample):
        h, w = -(-h // 2), -(-w // 2)
        sizes.append((h, w))
    return sizes


def _check(channels: Sequence[int], kernel_size: int, downsample: int | None, shape: Sequence[int]) -> int:
    if not channels or any(int(c) < 1 for c in channels):
        raise ValueError(f"channels must list at least one positive channel count, got {list(channels)}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd (same padding), got {kernel_size}")
    if downsample is None:
        return auto_downsample(shape, len(channels))
    if not 0 <= downsample <= len(channels):
        raise ValueError(f"downsample must be between 0 and len(channels)={len(channels)}, got {downsample}")
    return int(downsample)


def _maybe_spectral(layer: nn.Module, spectral: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(layer) if spectral else layer


class ConvEncoder(nn.Module):
    """Image (B, C, H, W) or (B, H, W) -> (B, out_features).

    Args:
        shape: event shape (C, H, W) or (H, W).
        channels: output channels of the conv layers, in order (their number is the depth).
        out_features: size of the output vector.
        kernel_size: odd kernel side.
        downsample: number of leading stride-2 layers (None: halve while the smaller side stays >= 4).
        activation: hidden activation name (see :func:`hepgen.nn.mlp.activation`).
        norm: ``"batch"`` for batch norm after each conv, or None.
        spectral_norm: spectral normalisation of every layer (GAN critics).
        context: size of a context vector concatenated to the flattened features.
    """

    def __init__(self, shape: Sequence[int], channels: Sequence[int], out_features: int, *, kernel_size: int = 3,
                 downsample: int | None = None, activation: str = "relu", norm: str | None = None,
                 spectral_norm: bool = False, context: int = 0):
        super().__init__()
        self.shape, self.image = tuple(int(s) for s in shape), image_shape(shape)
        self.channels = [int(c) for c in channels]
        self.downsample = _check(self.channels, kernel_size, downsample, shape)
        if norm not in (None, "batch"):
            raise ValueError(f"unknown norm {norm!r}; choose 'batch' or None")
        layers: list[nn.Module] = []
        c_in = self.image[0]
        for i, c_out in enumerate(self.channels):
            stride = 2 if i < self.downsample else 1
            layers.append(_maybe_spectral(nn.Conv2d(c_in, c_out, kernel_size, stride, kernel_size // 2), spectral_norm))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(make_activation(activation))
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        h, w = spatial_sizes(shape, self.downsample)[-1]
        self.feature_shape = (c_in, h, w)
        self.context, self.out_features = int(context), int(out_features)
        self.linear = _maybe_spectral(nn.Linear(c_in * h * w + self.context, self.out_features), spectral_norm)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """x: (B, *shape), context: (B, context) -> (B, out_features)."""
        h = self.convs(x.reshape(x.shape[0], *self.image)).flatten(1)
        if self.context:
            if context is None:
                raise ValueError("this encoder was built with a context input; pass context=")
            h = torch.cat([h, context.expand(h.shape[0], -1)], dim=1)
        return self.linear(h)


class ConvDecoder(nn.Module):
    """Vector (B, in_features) -> image (B, out_channels or C, H, W), the mirror of :class:`ConvEncoder`.

    Args:
        in_features: size of the input vector (a latent code, GAN noise).
        shape: event shape (C, H, W) or (H, W) of the output.
        channels: the encoder's channel list, in the encoder's order (the decoder runs it backwards).
        kernel_size, downsample, activation, norm, spectral_norm, context: as for :class:`ConvEncoder`
            (``downsample`` must match the encoder's to mirror it; None picks the same default).
        out_channels: output channels (default C; e.g. 2C for a Gaussian's mean and log σ).
    """

    def __init__(self, in_features: int, shape: Sequence[int], channels: Sequence[int], *, kernel_size: int = 3,
                 downsample: int | None = None, activation: str = "relu", norm: str | None = None,
                 spectral_norm: bool = False, context: int = 0, out_channels: int | None = None):
        super().__init__()
        self.shape, self.image = tuple(int(s) for s in shape), image_shape(shape)
        self.channels = [int(c) for c in channels]
        self.downsample = _check(self.channels, kernel_size, downsample, shape)
        if norm not in (None, "batch"):
            raise ValueError(f"unknown norm {norm!r}; choose 'batch' or None")
        self.out_channels = int(out_channels) if out_channels is not None else self.image[0]
        self.in_features, self.context = int(in_features), int(context)
        sizes = spatial_sizes(shape, self.downsample)
        h, w = sizes[-1]
        self.feature_shape = (self.channels[-1], h, w)
        self.linear = _maybe_spectral(nn.Linear(self.in_features + self.context, self.channels[-1] * h * w),
                                      spectral_norm)
        layers: list[nn.Module] = [make_activation(activation)]
        outs = [*self.channels[-2::-1], self.out_channels]
        c_in = self.channels[-1]
        for j, c_out in enumerate(outs):
            i = len(self.channels) - 1 - j  # the encoder layer this one mirrors
            if i < self.downsample:
                th, tw = sizes[i]
                conv: nn.Module = nn.ConvTranspose2d(c_in, c_out, kernel_size, 2, kernel_size // 2,
                                                     output_padding=(1 - th % 2, 1 - tw % 2))
            else:
                conv = nn.Conv2d(c_in, c_out, kernel_size, 1, kernel_size // 2)
            layers.append(_maybe_spectral(conv, spectral_norm))
            if j < len(outs) - 1:
                if norm == "batch":
                    layers.append(nn.BatchNorm2d(c_out))
                layers.append(make_activation(activation))
            c_in = c_out
        self.convs = nn.Sequential(*layers)

    def forward(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        """z: (B, in_features), context: (B, context) -> (B, out_channels, H, W)."""
        if self.context:
            if context is None:
                raise ValueError("this decoder was built with a context input; pass context=")
            z = torch.cat([z, context.expand(z.shape[0], -1)], dim=1)
        return self.convs(self.linear(z).reshape(z.shape[0], *self.feature_shape))


def periodic_pad(x: Tensor, width: int, dims: int) -> Tensor:
    """x (batch, C, *sites) with its last ``dims`` axes wrapped around by ``width`` sites on each side (a
    periodic lattice's neighbours), by concatenation: the same values as ``F.pad(mode="circular")`` at about
    half its cost forward and backward on small lattices (its slices and copies dominated a lattice flow's step);
    2-D without gradients by ``F.pad`` (there the faster: 6 % of a lattice flow's proposal at L = 12)."""
    if width == 0:
        return x
    if dims == 2 and x.dim() == 4 and not torch.is_grad_enabled() and width <= min(x.shape[-2:]):
        return F.pad(x, (width,) * 4, mode="circular")
    for axis in range(x.dim() - dims, x.dim()):
        n = x.shape[axis]
        if width > n:
            raise ValueError(f"periodic padding of {width} sites needs at least {width} sites per axis, got {n}")
        x = torch.cat([x.narrow(axis, n - width, width), x, x.narrow(axis, 0, width)], axis)
    return x


class _Periodic:
    """A convolution on a periodic lattice: wrap the input by kernel_size // 2 sites, then a valid convolution
    (built with padding=0; parameters named as in the plain torch layer)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(periodic_pad(x, self.kernel_size[0] // 2, len(self.kernel_size)))  # type: ignore[misc]


class PeriodicConv1d(_Periodic, nn.Conv1d):
    """Conv1d with periodic boundaries (same-size output for an odd kernel)."""


class PeriodicConv2d(_Periodic, nn.Conv2d):
    """Conv2d with periodic boundaries (same-size output for an odd kernel)."""


class PeriodicConv3d(_Periodic, nn.Conv3d):
    """Conv3d with periodic boundaries (same-size output for an odd kernel)."""


CONVS: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
PERIODIC_CONVS: dict[int, type[nn.Module]] = {1: PeriodicConv1d, 2: PeriodicConv2d, 3: PeriodicConv3d}


def same_conv(dims: int, in_channels: int, out_channels: int, kernel_size: int, padding_mode: str = "zeros",
              bias: bool = True) -> nn.Module:
    """A ``dims``-D convolution (1, 2 or 3) keeping the sites' shape (odd kernel): zero padding, or periodic
    boundaries with ``padding_mode="circular"`` (:func:`periodic_pad`); ``bias=False``: a linear map (odd in x)."""
    if dims not in CONVS:
        raise ValueError(f"convolutions on 1-, 2- or 3-D sites only, got {dims} dimensions")
    if padding_mode == "circular":
        return PERIODIC_CONVS[dims](in_channels, out_channels, kernel_size, padding=0, bias=bias)
    return CONVS[dims](in_channels, out_channels, kernel_size, padding=kernel_size // 2, padding_mode=padding_mode,
                       bias=bias)
