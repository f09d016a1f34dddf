"""Image flows (RealNVP, Dinh et al. 2017): checkerboard and channel masks, squeeze, convolutional
coupling layers and the multi-scale architecture that factors out half the variables at each scale.

Events are images (C, H, W) flattened channel-major to vectors x: (batch, C·H·W) (``x.view(batch, C, H, W)``),
so image layers compose with every other transform and log p(x) keeps the tabular interface.

    checkerboard mask   m[c, h, w] = (h + w) % 2 == parity
    channel mask        m[c, h, w] = (c < C/2) if parity == 0 else (c >= C/2)
    squeeze             (C, H, W) -> (4C, H/2, W/2), each 2×2 block becomes 4 channels (a permutation: log|det J| = 0)
    conv coupling       y = m ⊙ x + (1 - m) ⊙ τ(x; θ(m ⊙ x, c)),   θ = CNN (same-size convolutions)
    split               y = [f(x_{:k}), x_{k:}]  (the last features are factored out to the base)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hepgen.flows.transforms.base import Compose, Transform
from hepgen.flows.transforms.elementwise import AdditiveTransformer, AffineTransformer
from hepgen.flows.transforms.splines import SplineTransformer
from hepgen.nn.conv import PeriodicConv2d, image_shape, periodic_pad, same_conv
from hepgen.nn.mlp import activation as make_activation


def field_shape(shape: Sequence[int], spatial_dims: int = 2) -> tuple[int, ...]:
    """(C, *sites) for events of shape (C, *sites) or (*sites) (one channel) with ``spatial_dims`` site axes
    (2: images (C, H, W) or (H, W); 1 or 3: lattices)."""
    if spatial_dims == 2:
        return image_shape(shape)
    shape = tuple(int(s) for s in shape)
    if len(shape) == spatial_dims:
        shape = (1, *shape)
    if len(shape) != spatial_dims + 1 or min(shape) < 1:
        raise ValueError(f"events with {spatial_dims} site axes have shape (C, *sites) or (*sites), got {shape}")
    return shape


def checkerboard_mask(shape: Sequence[int], parity: int = 0, spatial_dims: int = 2) -> Tensor:
    """(C·Π sites,) bool, True (kept) on sites whose coordinates sum to ``parity`` mod 2, in every channel
    (2-D: pixels with (h + w) % 2 == parity)."""
    c, *sites = field_shape(shape, spatial_dims)
    total = torch.zeros(sites, dtype=torch.long)
    for axis, n in enumerate(sites):
        view = [1] * len(sites)
        view[axis] = n
        total = total + torch.arange(n).reshape(view)
    return ((total % 2) == parity).expand(c, *sites).reshape(-1)


def channel_mask(shape: Sequence[int], parity: int = 0) -> Tensor:
    """(C·H·W,) bool, True (kept) on the first ⌊C/2⌋ channels (parity 0) or on the others (parity 1)."""
    c, h, w = image_shape(shape)
    if c < 2:
        raise ValueError(f"a channel mask needs at least 2 channels, got shape {(c, h, w)}; squeeze first")
    first = torch.arange(c) < c // 2
    kept = first if parity % 2 == 0 else ~first
    return kept[:, None, None].expand(c, h, w).reshape(-1)


class Squeeze(Transform):
    """(C, H, W) -> (4C, H/2, W/2) on flattened images x: (batch, C·H·W); H and W must be even.

    Output channel 4c + 2i + j holds pixel (2h + i, 2w + j) of input channel c. ``out_shape`` is the new shape.
    """

    def __init__(self, shape: Sequence[int]):
        super().__init__()
        self.shape = image_shape(shape)
        c, h, w = self.shape
        if h % 2 or w % 2:
            raise ValueError(f"squeeze needs an even height and width, got shape {self.shape}")
        self.out_shape = (4 * c, h // 2, w // 2)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        c, h, w = self.shape
        y = x.reshape(-1, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
        return y.reshape(x.shape[0], -1), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        c, h, w = self.shape
        x = y.reshape(-1, c, 2, 2, h // 2, w // 2).permute(0, 1, 4, 2, 5, 3)
        return x.reshape(y.shape[0], -1), y.new_zeros(y.shape[0])


def _board_exact(x: Tensor) -> bool:
    """Whether a stride-2 convolution gives the full convolution's numbers bit for bit on x: float32 batches of
    two or more events on the CPU with oneDNN, which then runs both and sums each output in the same order
    (checked at L = 2-32, batches of 2-500, kernels 3 and 5, 4-32 → 1-47 channels, one and two threads). One
    event, float64 or oneDNN off: torch's own im2col convolution, whose sums depend on the output's size."""
    return (x.dtype == torch.float32 and x.device.type == "cpu" and x.shape[0] >= 2
            and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)


class ConvCoupling(Transform):
    """Coupling layer on flattened images x: (batch, C·H·W) with a convolutional conditioner (or, with
    ``spatial_dims`` 1 or 3, on fields of 1-D or 3-D sites, x: (batch, C·Π sites)).

    The conditioner sees the kept pixels (the others zeroed) and the context broadcast as constant
    channels, and returns ``transformer.params`` numbers for every pixel; those of the changed pixels
    parametrise τ.

    Args:
        shape: (C, H, W) or (H, W); with ``spatial_dims`` d: (C, *sites) or (*sites), d site axes.
        mask: (C·H·W,) bool, True on the kept pixels (:func:`checkerboard_mask`, :func:`channel_mask`).
        transformer: elementwise map (:class:`AffineTransformer`, :class:`AdditiveTransformer`,
            :class:`SplineTransformer`).
        channels: hidden channel counts of the conditioner's same-size convolutions.
        context: context size.
        kernel_size: odd kernel size.
        padding_mode: the convolutions' padding, "zeros" (images) or "circular" (periodic lattices,
            :func:`hepgen.nn.conv.periodic_pad`).
        spatial_dims: site axes of the events: 2 (images, the default), 1 or 3.
        odd: a Z₂-equivariant layer, τ(−x) = −τ(x) (affine only, no context): the conditioner is an odd trunk
            h (bias-free convolutions, tanh), the shift a bias-free convolution of h (odd) and the log-scale a
            convolution of |h| (even); ``activation`` is not used. A flow of such layers on N(0, I) has
            q(−x) = q(x).
    """

    def __init__(self, shape: Sequence[int], mask: Tensor, transformer, channels: Sequence[int] = (64, 64),
                 context: int = 0, kernel_size: int = 3, activation: str = "relu", padding_mode: str = "zeros",
                 spatial_dims: int = 2, odd: bool = False):
        super().__init__()
        self.shape = field_shape(shape, spatial_dims)
        c, *sites = self.shape
        self.sites = tuple(sites)
        mask = torch.as_tensor(mask, dtype=torch.bool).reshape(-1)
        if mask.numel() != c * math.prod(sites):
            raise ValueError(f"mask has {mask.numel()} entries for images of shape {self.shape}")
        if bool(mask.all()) or not bool(mask.any()):
            raise ValueError("a coupling mask needs pixels on both sides")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same padding), got {kernel_size}")
        self.register_buffer("mask", mask.to(torch.get_default_dtype()).reshape(1, c, *sites))
        self.register_buffer("changed", torch.nonzero(~mask).flatten())
        self.transformer, self.context, self.odd = transformer, int(context), bool(odd)
        # a checkerboard on a periodic 2-D lattice of even sides: without gradients the last convolution runs
        # only at the changed sites (:meth:`_board_params`); None everywhere else
        self.board_parity: int | None = None
        sizes = [c + self.context, *[int(k) for k in channels]]
        layers: list[nn.Module] = []
        if self.odd:  # Z₂-equivariant: an odd trunk h(−x) = −h(x), shift t = conv(h) odd, log-scale s = conv(|h|) even
            if not isinstance(transformer, AffineTransformer) or self.context:
                raise ValueError("odd (Z2-equivariant) couplings are affine and take no context")
            for a, b in zip(sizes[:-1], sizes[1:]):
                layers += [same_conv(len(sites), a, b, kernel_size, padding_mode, bias=False), nn.Tanh()]
            self.conditioner = nn.Sequential(*layers)
            self.shift_head = same_conv(len(sites), sizes[-1], c, kernel_size, padding_mode, bias=False)
            self.scale_head = same_conv(len(sites), sizes[-1], c, kernel_size, padding_mode)
            return
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [same_conv(len(sites), a, b, kernel_size, padding_mode), make_activation(activation)]
        layers.append(same_conv(len(sites), sizes[-1], c * transformer.params, kernel_size, padding_mode))
        self.conditioner = nn.Sequential(*layers)
        if len(sites) == 2 and padding_mode == "circular" and not self.context and sites[0] % 2 == 0 \
                and sites[1] % 2 == 0:
            for parity in (0, 1):
                if torch.equal(mask, checkerboard_mask(self.shape, parity)):
                    self.board_parity = parity

    def reset_to_identity(self) -> None:
        with torch.no_grad():
            if self.odd:
                self.shift_head.weight.zero_()
                self.scale_head.weight.zero_()
                self.scale_head.bias.zero_()
                return
            self.conditioner[-1].weight.zero_()
            self.conditioner[-1].bias.zero_()

    def _params(self, x: Tensor, context: Tensor | None) -> Tensor:
        """θ for the changed pixels: (batch, changed, P)."""
        if self.board_parity is not None and not torch.is_grad_enabled() and _board_exact(x):
            return self._board_params(x)
        c, sites = self.shape[0], self.sites
        inp = x.reshape(-1, c, *sites) * self.mask
        if self.context:
            if context is None:
                raise ValueError("this layer was built with a context input; pass context=")
            maps = context.reshape(-1, self.context, *[1] * len(sites)).expand(x.shape[0], -1, *sites)
            inp = torch.cat([inp, maps], dim=1)
        p = self.transformer.params
        if self.odd:  # (shift, raw log-scale) as AffineTransformer takes them
            h = self.conditioner(inp)
            out = torch.stack([self.shift_head(h), self.scale_head(h.abs())], 2)
        else:
            out = self.conditioner(inp)
        theta = out.reshape(x.shape[0], c, p, math.prod(sites)).transpose(2, 3).reshape(x.shape[0], -1, p)
        return theta.index_select(1, self.changed)

    def _board_params(self, x: Tensor) -> Tensor:
        """:meth:`_params` (the same numbers, bit for bit) for a checkerboard on a periodic 2-D lattice of even
        sides, without gradients: the last convolution runs only at the changed sites, as two stride-2
        convolutions (even rows, odd rows), written straight into (P, batch, changed) memory, the layout
        :func:`hepgen.flows.transforms.splines._flatten` takes without a copy (a proposal's time went into
        that convolution at every site and the reshuffling of its output). Only where :func:`_board_exact`."""
        c, (h, w) = self.shape[0], self.sites
        p, batch = self.transformer.params, x.shape[0]
        hidden = self.conditioner[:-1](x.reshape(-1, c, h, w) * self.mask)
        last: PeriodicConv2d = self.conditioner[-1]
        padded = periodic_pad(hidden, last.kernel_size[0] // 2, 2)
        out = hidden.new_empty(p, batch, c, h // 2, 2, w // 2)
        for row in (0, 1):  # rows 2i + row: the changed sites sit in columns 2j + (row + 1 + parity) % 2
            col = (row + 1 + self.board_parity) % 2
            part = F.conv2d(padded[:, :, row:, col:], last.weight, last.bias, stride=2)
            out[:, :, :, :, row] = part.view(batch, c, p, h // 2, w // 2).permute(2, 0, 1, 3, 4)
        return out.view(p, batch, -1).permute(1, 2, 0)

    def _couple(self, x: Tensor, context: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        y_b, ladj = self.transformer(x.index_select(1, self.changed), self._params(x, context), inverse)
        return x.index_copy(1, self.changed, y_b), ladj

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._couple(x, context, False)

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._couple(y, context, True)


class Split(Transform):
    """y = [f(x_{:k}), x_{k:}]: ``transform`` acts on the first ``features`` entries, the rest pass through
    (multi-scale flows factor them out to the base); log|det J| = that of f."""

    def __init__(self, features: int, transform: Transform):
        super().__init__()
        self.features, self.transform = int(features), transform

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y, ladj = self.transform(x[:, :self.features], context)
        return torch.cat([y, x[:, self.features:]], dim=1), ladj

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x, ladj = self.transform.inverse(y[:, :self.features], context)
        return torch.cat([x, y[:, self.features:]], dim=1), ladj

    def reset_to_identity(self) -> None:
        self.transform.reset_to_identity()


TRANSFORMERS = {"affine": AffineTransformer, "additive": AdditiveTransformer}


def _transformer(kind: str, bins: int, bound: float):
    if kind == "spline":
        return SplineTransformer(bins, bound)
    if kind not in TRANSFORMERS:
        raise ValueError(f"unknown coupling kind {kind!r}; choose affine, additive or spline")
    return TRANSFORMERS[kind]()


def conv_coupling(shape: Sequence[int], mask: Tensor, kind: str = "affine", channels: Sequence[int] = (64, 64),
                  context: int = 0, bins: int = 8, bound: float = 5.0) -> ConvCoupling:
    """Image coupling layer: ``kind`` "affine" (RealNVP), "additive" (NICE) or "spline" (RQ spline)."""
    return ConvCoupling(shape, mask, _transformer(kind, bins, bound), channels, context)


def multiscale_image_transforms(shape: Sequence[int], scales: int = 2, steps: int = 3, kind: str = "affine",
                                channels: Sequence[int] = (64, 64), context: int = 0, bins: int = 8,
                                bound: float = 5.0) -> list[Transform]:
    """The RealNVP multi-scale chain for images of ``shape`` (data -> base direction).

    Per scale: ``steps`` checkerboard couplings (alternating parity), squeeze, ``steps`` channel couplings,
    then half of the channels are factored out and the next scale acts on the other half (:class:`Split`).
    The last scale (or one whose sides cannot be halved) has ``steps + 1`` checkerboard couplings (channel
    couplings where the image has a single pixel).
    Use with ``Flow("normal", multiscale_image_transforms(shape), features=C*H*W)``.
    """
    if scales < 1 or steps < 1:
        raise ValueError(f"need scales >= 1 and steps >= 1, got scales={scales}, steps={steps}")

    def build(shape3: tuple[int, int, int], scale: int) -> list[Transform]:
        c, h, w = shape3
        last = scale == scales - 1 or h % 2 or w % 2
        n_board = steps + 1 if last else steps
        spatial = checkerboard_mask if h * w > 1 else channel_mask
        layers: list[Transform] = [conv_coupling(shape3, spatial(shape3, i % 2), kind, channels, context, bins, bound)
                                   for i in range(n_board)]
        if last:
            return layers
        squeeze = Squeeze(shape3)
        layers.append(squeeze)
        sq = squeeze.out_shape
        layers += [conv_coupling(sq, channel_mask(sq, i % 2), kind, channels, context, bins, bound)
                   for i in range(steps)]
        half = (sq[0] // 2, sq[1], sq[2])
        layers.append(Split(half[0] * half[1] * half[2], Compose(build(half, scale + 1))))
        return layers

    return build(image_shape(shape), 0)


__all__ = ["ConvCoupling", "Split", "Squeeze", "channel_mask", "checkerboard_mask", "conv_coupling",
           "field_shape", "multiscale_image_transforms"]
