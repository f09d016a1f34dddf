"""The gated PixelCNN network (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
Decoders"): logits of a categorical per pixel, each depending only on the pixels before it in raster order.

    v_l = tanh(W_f,l ∗ v_{l-1} + V_f c) ⊙ σ(W_g,l ∗ v_{l-1} + V_g c)                  (vertical stack)
    h_l = h_{l-1} + 1×1( tanh(W_f,l ∗ h_{l-1} + U_f ṽ_l + V_f c) ⊙ σ(… g …) )          (horizontal stack)

where ṽ_l are the vertical stack's pre-activations (linked to the horizontal stack by a 1×1 conv). The
vertical stack's kernel covers the rows above an output (and, from the second layer on, its own row of
the previous layer's features, which themselves only see the rows above), k wide: it sees every pixel of
the rows above within its cone, so there is no blind spot. The horizontal stack's 1×(k//2+1) kernel covers
the pixels left of an output in the same row. The first layer's masks are of type A (the centre row /
pixel excluded: an output never sees its own pixel), the later ones of type B (centre included: the
previous layer's features at that pixel, which do not see it). Both are shifted convolutions
(:class:`hepgen.nn.masked.MaskedConv2d` with one-sided padding) rather than k×k kernels half of which is
masked. Single-channel images: the input is the one-hot of K intensity levels per pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hepgen.nn.masked import MaskedConv2d


def vertical_conv(in_channels: int, out_channels: int, kernel_size: int, mask_type: str) -> MaskedConv2d:
    """(k//2 + 1) × k kernel over the rows above an output and its own row; type A masks its own row out."""
    r = kernel_size // 2
    mask = torch.ones(r + 1, kernel_size)
    if mask_type == "A":
        mask[r] = 0
    return MaskedConv2d(in_channels, out_channels, mask, padding=(r, r, r, 0))


def horizontal_conv(in_channels: int, out_channels: int, kernel_size: int, mask_type: str) -> MaskedConv2d:
    """1 × (k//2 + 1) kernel over the pixels left of an output and itself; type A masks the pixel itself out."""
    r = kernel_size // 2
    mask = torch.ones(1, r + 1)
    if mask_type == "A":
        mask[0, r] = 0
    return MaskedConv2d(in_channels, out_channels, mask, padding=(r, 0, 0, 0))


def _gate(a: Tensor) -> Tensor:
    """tanh(first half) ⊙ σ(second half) along the channels: (B, 2p, H, W) -> (B, p, H, W)."""
    f, g = a.chunk(2, dim=1)
    return torch.tanh(f) * torch.sigmoid(g)


class GatedLayer(nn.Module):
    """One gated layer of both stacks: (v, h) (B, p_in, H, W) each -> (v, h) (B, p, H, W) each.

    Args:
        in_channels, channels: p_in and p; mask_type: ``"A"`` (first layer) or ``"B"``; kernel_size: odd k >= 3;
        context: size of a conditioning vector c added to both stacks' pre-activations (0: none).
    """

    def __init__(self, in_channels: int, channels: int, kernel_size: int, mask_type: str, context: int = 0):
        super().__init__()
        self.mask_type = mask_type
        self.vertical = vertical_conv(in_channels, 2 * channels, kernel_size, mask_type)
        self.horizontal = horizontal_conv(in_channels, 2 * channels, kernel_size, mask_type)
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        self.condition = nn.Linear(context, 4 * channels) if context else None
        self.residual = mask_type == "B" and in_channels == channels

    def forward(self, v: Tensor, h: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        v_pre = self.vertical(v)
        h_pre = self.horizontal(h) + self.link(v_pre)
        if self.condition is not None:
            cv, ch = self.condition(context)[:, :, None, None].chunk(2, dim=1)
            v_pre, h_pre = v_pre + cv, h_pre + ch
        h_new = self.out(_gate(h_pre))
        return _gate(v_pre), h + h_new if self.residual else h_new


class GatedPixelCNN(nn.Module):
    """One-hot levels (B, K, H, W) [+ context (B, c)] -> logits (B, K, H, W); the logits at pixel (i, j) depend
    only on the input pixels before (i, j) in raster order (and on the context).

    Args:
        levels: K, the categories per pixel (input channels and output logits).
        channels: p, the width of both stacks.
        layers: gated layers (the first of mask type A, the others B); at least 1.
        kernel_size: odd k >= 3: the vertical stack sees k//2 more rows above and k//2 more columns either
            side per layer, the horizontal one k//2 more columns to the left.
        context: size of a conditioning vector (0: unconditional).
    """

    def __init__(self, levels: int, channels: int = 32, layers: int = 6, kernel_size: int = 3, context: int = 0):
        super().__init__()
        if int(levels) < 2:
            raise ValueError(f"levels must be at least 2, got {levels}")
        if int(channels) < 1 or int(layers) < 1:
            raise ValueError(f"channels and layers must be positive, got {channels} and {layers}")
        if int(kernel_size) < 3 or int(kernel_size) % 2 == 0:
            raise ValueError(f"kernel_size must be odd and at least 3, got {kernel_size}")
        self.levels, self.channels, self.kernel_size = int(levels), int(channels), int(kernel_size)
        self.layers = nn.ModuleList(
            GatedLayer(self.levels if i == 0 else self.channels, self.channels, self.kernel_size,
                       "A" if i == 0 else "B", int(context)) for i in range(int(layers)))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(self.channels, self.channels, 1), nn.ReLU(),
                                  nn.Conv2d(self.channels, self.levels, 1))

    @property
    def rows_above(self) -> int:
        """How many rows above a pixel its logits can see (the vertical receptive field)."""
        return len(self.layers) * (self.kernel_size // 2)

    def forward(self, onehot: Tensor, context: Tensor | None = None) -> Tensor:
        v = h = onehot
        for layer in self.layers:
            v, h = layer(v, h, context)
        return self.head(h)

    def log_probs(self, onehot: Tensor, context: Tensor | None = None) -> Tensor:
        """log P(level k at pixel (i, j) | pixels before it): (B, K, H, W)."""
        return F.log_softmax(self(onehot, context), dim=1)
