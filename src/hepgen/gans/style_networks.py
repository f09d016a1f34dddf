"""StyleGAN2's networks (Karras et al. 2020), sized for small physics images (40×40 jets; 3×96, 12×12, 12×6 layers).

    mapping      w = f([ẑ, ĉ]),  ẑ = z / rms(z),  ĉ = E c / rms(E c)      (``layers`` equalised-lr layers, lr × 0.01)
    modulation   s = A w + 1                                            one scale per input channel
    demodulation w''_oik = s_i w_oik / sqrt(Σ_ik (s_i w_oik)² + 1e-8)     unit output variance for unit-variance input
    style conv   y = lrelu(conv(x, w'') + γ n + b) · √2,  n ~ N(0, 1) per pixel, γ learned (starts at 0)
    generator    const (C₀, h₀, w₀) → conv → per stage: up ×2, conv, conv; skip outputs: rgb ← up(rgb) + toRGB(x)
    critic       fromRGB → per stage: (conv, conv, pool) + (pool, 1×1 conv), / √2 → minibatch std → conv → fc → D
                 [+ ⟨E c, h⟩ / √C: projection of a continuous condition]

Geometry (any H × W): each axis is doubled in as many stages as it can be halved (⌈n/2⌉) while staying at least 3
pixels, at most ``upsamples`` stages; the constant input has side ⌈n / 2^k⌉ and the generator's output is cropped
centrally to n (no crop when n is a multiple of 2^k). Per-axis stages keep the non-square layers cheap and exact:

    40×40 → const 5×5, three stages (×2, ×2)          3×96  → const 3×12, three stages (×1, ×2)
    12×12 → const 3×3, two stages                     12×6  → const 3×3, stages (×2, ×1), (×2, ×2)

The feature maps halve at each stage (``channels`` at the constant, at least ``min_channels``: 64, 32, 16, 16 for
40×40), as StyleGAN's width falls with the resolution. The critic pools the same axes in the mirrored order
(average pooling, ⌈n/2⌉). Upsampling is bilinear (×2, not aligned at the corners), which is StyleGAN's [1, 3, 3, 1]
FIR upsampling away from the borders; the critic's average pooling stands in for its blur-then-subsample.

Every weight has an equalised learning rate (stored N(0, 1) / lr_mul, used × lr_mul / √fan_in), as in StyleGAN.
The modulated convolution is computed as conv(x · s, W) · d, which equals the grouped convolution with each
event's own weights s_i w_oik d_o (the test checks it by hand) and, unlike the grouped form whose ONNX ``group``
attribute would fix the batch size at export, traces to plain operations with a dynamic batch.

Speed on one CPU thread (the same function, rounding aside): the activations run in the channels-last memory
format (oneDNN's 3×3 convolutions, their backward, pooling and upsampling were about twice as fast in it as in
NCHW in a one-thread profile, not a committed benchmark), and the activation's gain √2 is folded into the small tensors before it (lrelu(a v) = a lrelu(v) for
a > 0: the demodulation d, noise strength and bias of a style conv, the weight and bias of an equalised layer)
instead of multiplying every feature map once more, forward and backward.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: smallest side an axis is halved to: 40 → 20 → 10 → 5 stops (⌈5/2⌉ = 3 would be allowed, but 3 stages is the cap)
MIN_SIDE = 3
#: the slope of every leaky ReLU; outputs are multiplied by √2 to keep unit variance (StyleGAN's gain)
SLOPE, GAIN = 0.2, math.sqrt(2.0)


def channels_last(x: Tensor) -> Tensor:
    """x (B, C, H, W) in the channels-last memory format (same values; the fast layout of CPU convolutions)."""
    return x.contiguous(memory_format=torch.channels_last)


def stage_widths(stages: int, channels: int, min_channels: int) -> list[int]:
    """Feature maps at the constant and after each ×2 stage: ``channels`` halved per stage, >= ``min_channels``."""
    return [max(int(min_channels), int(channels) // 2**s) for s in range(stages + 1)]


def stage_plan(height: int, width: int, upsamples: int = 3) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """(the constant's (h₀, w₀), each stage's upsampling factors (f_h, f_w) ∈ {1, 2}²) for an H × W output.

    Axis a doubles in the last k_a of the K = max(k_h, k_w) stages, k_a = min(upsamples, halvings of n_a keeping
    ⌈n/2⌉ ≥ 3); its constant side is ⌈n_a / 2^k_a⌉, so the generated side n₀ 2^k_a ≥ n_a (cropped to n_a).
    """
    def halvings(n: int) -> int:
        k = 0
        while k < upsamples and -(-n // 2) >= MIN_SIDE:
            n, k = -(-n // 2), k + 1
        return k

    kh, kw = halvings(int(height)), halvings(int(width))
    stages = max(kh, kw)
    base = (-(-int(height) // 2**kh), -(-int(width) // 2**kw))
    factors = [(2 if s >= stages - kh else 1, 2 if s >= stages - kw else 1) for s in range(stages)]
    return base, factors


# -- equalised-learning-rate layers (each a leaf: its reset_parameters re-draws all it holds) --------------------------
class EqualLinear(nn.Module):
    """y = x (lr_mul W / √in)ᵀ + lr_mul b, W stored ~ N(0, 1) / lr_mul [, lrelu · √2]: (..., in) -> (..., out)."""

    def __init__(self, in_features: int, out_features: int, lr_mul: float = 1.0, bias_init: float = 0.0,
                 activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features))
        self.lr_mul, self.bias_init, self.activate = float(lr_mul), float(bias_init), bool(activate)
        self.gain = self.lr_mul / math.sqrt(in_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.normal_().div_(self.lr_mul)
            self.bias.fill_(self.bias_init / self.lr_mul)

    def forward(self, x: Tensor) -> Tensor:
        if self.activate:  # lrelu(y) √2 = lrelu(√2 y): the gain on the weights, not on the output
            return F.leaky_relu(F.linear(x, self.weight * (self.gain * GAIN), self.bias * (self.lr_mul * GAIN)),
                                SLOPE)
        return F.linear(x, self.weight * self.gain, self.bias * self.lr_mul)


class EqualConv2d(nn.Module):
    """k×k convolution ("same" padding) with weights × 1/√(in k²) [, lrelu · √2]: (B, in, H, W) -> (B, out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.padding, self.activate = kernel_size // 2, activate
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.normal_()
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        if self.activate:  # lrelu(y) √2 = lrelu(√2 y): the gain on the weights, not on the feature maps
            bias = None if self.bias is None else self.bias * GAIN
            return F.leaky_relu(F.conv2d(x, self.weight * (self.gain * GAIN), bias, padding=self.padding), SLOPE)
        return F.conv2d(x, self.weight * self.gain, self.bias, padding=self.padding)


class StyleConv(nn.Module):
    """A modulated (and demodulated) convolution with noise, bias and activation (module doc), one leaf module.

    x: (B, in, H, W), w: (B, style) -> (B, out, H, W). ``demodulate=False``, ``noise=False``, ``activate=False``
    give StyleGAN's toRGB layer (a modulated 1×1 convolution).
    """

    def __init__(self, in_channels: int, out_channels: int, style: int, kernel_size: int = 3, demodulate: bool = True,
                 noise: bool = True, activate: bool = True):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same padding), got {kernel_size}")
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.affine_weight = nn.Parameter(torch.empty(in_channels, style))
        self.affine_bias = nn.Parameter(torch.empty(in_channels))
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.noise_strength = nn.Parameter(torch.empty(())) if noise else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.affine_gain = 1.0 / math.sqrt(style)
        self.demodulate, self.activate, self.padding = bool(demodulate), bool(activate), kernel_size // 2
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.normal_()
            self.affine_weight.normal_()
            self.affine_bias.fill_(1.0)  # s = 1 + A w: the styles start near one
            self.bias.zero_()
            if self.noise_strength is not None:
                self.noise_strength.zero_()

    def styles(self, w: Tensor) -> Tensor:
        """s = A w + b (b starts at 1): (B, style) -> (B, in)."""
        return F.linear(w, self.affine_weight * self.affine_gain, self.affine_bias)

    def modulated_weight(self, w: Tensor) -> Tensor:
        """Each event's effective weights s_i w_oik [/ ‖·‖]: (B, out, in, k, k) (what forward applies, spelled out)."""
        weight = self.weight[None] * self.weight_gain * self.styles(w)[:, None, :, None, None]
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum((2, 3, 4), keepdim=True) + 1e-8)
        return weight

    def forward(self, x: Tensor, w: Tensor, noise: Tensor | None = None) -> Tensor:
        s = self.styles(w)
        weight = self.weight * self.weight_gain
        # the activation's gain √2 multiplies the small tensors below, not the output (lrelu(a v) = a lrelu(v))
        gain = GAIN if self.activate else 1.0
        if self.demodulate:  # d_o = 1 / sqrt(Σ_i s_i² Σ_k w_oik² + ε): one (B, in) × (in, out) product
            d = torch.rsqrt(s.square() @ weight.square().sum((2, 3)).T + 1e-8)
            y = F.conv2d(x * s[:, :, None, None], weight, padding=self.padding) * (d * gain)[:, :, None, None]
        else:
            y = F.conv2d(x * s[:, :, None, None], weight * gain, padding=self.padding)
        if noise is not None and self.noise_strength is not None:
            y = y + (self.noise_strength * gain) * noise
        y = y + (self.bias * gain)[None, :, None, None]
        return F.leaky_relu(y, SLOPE) if self.activate else y


class ConstantInput(nn.Module):
    """The learned constant the synthesis starts from: (C, h₀, w₀), repeated over the batch."""

    def __init__(self, channels: int, height: int, width: int):
        super().__init__()
        self.value = nn.Parameter(torch.empty(channels, height, width))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.value.normal_()

    def forward(self, batch: int) -> Tensor:
        return self.value[None].expand(batch, -1, -1, -1)


def _normalise(x: Tensor) -> Tensor:
    """x / rms(x) per row (StyleGAN's normalize_2nd_moment)."""
    return x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-8)


# -- mapping network, with the running mean of w for the truncation trick ----------------------------------------------
class MappingNetwork(nn.Module):
    """w = f([z / rms(z), E c / rms(E c)]): z (B, latent) [, c (B, context)] -> w (B, style).

    Keeps the mean of w for the truncation trick w' = w̄(c) + ψ (w − w̄(c)) as exponential moving averages
    (decay ``w_avg_decay``, warmed up as the generator EMA: d_t = min(decay, (1 + t) / (10 + t))) of the
    generated w — and, for a conditional model, of c, c cᵀ and w cᵀ, so that w̄(c) is the linear regression of w
    on the (preprocessed) condition: w̄(c) = E w + Cov(w, c) Var(c)⁻¹ (c − E c). Truncation then pulls an event
    towards the typical w *of its own condition* (its energy), not towards the average over all conditions.
    """

    def __init__(self, latent: int, context: int, style: int, layers: int = 8, lr_mul: float = 0.01,
                 w_avg_decay: float = 0.995):
        super().__init__()
        self.latent, self.context, self.style = int(latent), int(context), int(style)
        self.w_avg_decay = float(w_avg_decay)
        self.embed = EqualLinear(self.context, self.style) if self.context else None
        width = [self.latent + (self.style if self.context else 0)] + [self.style] * int(layers)
        self.net = nn.Sequential(*(EqualLinear(a, b, lr_mul=lr_mul, activate=True) for a, b in zip(width, width[1:])))
        self.register_buffer("w_avg", torch.zeros(self.style))
        self.register_buffer("w_avg_updates", torch.zeros((), dtype=torch.int64))
        if self.context:
            self.register_buffer("c_avg", torch.zeros(self.context))
            self.register_buffer("cc_avg", torch.zeros(self.context, self.context))
            self.register_buffer("wc_avg", torch.zeros(self.style, self.context))

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        h = _normalise(z)
        if self.embed is not None:
            if c is None:
                raise ValueError("this mapping network is conditional; pass the context")
            h = torch.cat([h, _normalise(self.embed(c))], dim=1)
        return self.net(h)

    @torch.no_grad()
    def update_average(self, w: Tensor, c: Tensor | None = None) -> None:
        """One EMA step of the moments of w (and c) towards this batch's means (module doc)."""
        t = int(self.w_avg_updates)
        keep = min(self.w_avg_decay, (1.0 + t) / (10.0 + t))
        w = w.detach().to(self.w_avg.dtype)
        self.w_avg.lerp_(w.mean(0), 1.0 - keep)
        if self.context and c is not None:
            c = c.detach().to(self.w_avg.dtype)
            self.c_avg.lerp_(c.mean(0), 1.0 - keep)
            self.cc_avg.lerp_(c.T @ c / len(c), 1.0 - keep)
            self.wc_avg.lerp_(w.T @ c / len(c), 1.0 - keep)
        self.w_avg_updates += 1

    @torch.no_grad()
    def reset_average(self) -> None:
        """Forget the tracked moments (a fresh fit)."""
        for buffer in self.buffers():
            buffer.zero_()

    def mean(self, c: Tensor | None = None) -> Tensor:
        """w̄ (1, style), or w̄(c) (B, style) for a conditional network (module doc)."""
        if not self.context or c is None:
            return self.w_avg[None]
        cov_cc = self.cc_avg - torch.outer(self.c_avg, self.c_avg)
        cov_wc = self.wc_avg - torch.outer(self.w_avg, self.c_avg)
        ridge = 1e-6 * (cov_cc.diagonal().sum() / self.context + 1.0)
        eye = torch.eye(self.context, dtype=cov_cc.dtype, device=cov_cc.device)
        slope = torch.linalg.solve(cov_cc + ridge * eye, cov_wc.T).T  # (style, context)
        return self.w_avg[None] + (c - self.c_avg[None]) @ slope.T

    def truncate(self, w: Tensor, c: Tensor | None, psi: float) -> Tensor:
        """w' = w̄(c) + ψ (w − w̄(c)); ψ = 1 leaves w as it is."""
        if psi == 1.0:
            return w
        mean = self.mean(c)
        return mean + psi * (w - mean)


# -- synthesis and the generator ---------------------------------------------------------------------------------------
class SynthesisNetwork(nn.Module):
    """Styles ws (B, num_ws, style) [, noise (B, noise_size)] -> image (B, C, H, W): the skip generator (module doc).

    Each style conv and each toRGB layer reads its own row of ``ws`` (all equal unless styles are mixed);
    ``noise`` holds every noise layer's per-pixel N(0, 1) values, flattened and concatenated (None: drawn here).
    """

    def __init__(self, shape: Sequence[int], style: int, channels: Sequence[int] = (64, 32, 16, 16),
                 kernel_size: int = 3, upsamples: int = 3):
        super().__init__()
        self.channels_out, self.height, self.width = (int(s) for s in shape)
        base, self.factors = stage_plan(self.height, self.width, upsamples)
        widths = [int(c) for c in channels]
        if len(widths) != len(self.factors) + 1:
            raise ValueError(f"{len(widths)} widths for {len(self.factors) + 1} resolutions")
        self.const = ConstantInput(widths[0], *base)
        self.conv0 = StyleConv(widths[0], widths[0], style, kernel_size)
        self.rgb0 = StyleConv(widths[0], self.channels_out, style, 1, demodulate=False, noise=False, activate=False)
        self.convs = nn.ModuleList()
        self.rgbs = nn.ModuleList()
        for c_in, c_out in zip(widths, widths[1:]):
            self.convs.append(StyleConv(c_in, c_out, style, kernel_size))
            self.convs.append(StyleConv(c_out, c_out, style, kernel_size))
            self.rgbs.append(StyleConv(c_out, self.channels_out, style, 1, demodulate=False, noise=False,
                                       activate=False))
        # the resolution of each noise layer: conv0 at the base, then two convs per stage
        sizes, (h, w) = [base], base
        for fh, fw in self.factors:
            h, w = h * fh, w * fw
            sizes += [(h, w), (h, w)]
        self.noise_sizes = sizes
        self.noise_size = sum(a * b for a, b in sizes)
        self.generated = (h, w)
        self.num_ws = 2 + 3 * len(self.factors)

    @staticmethod
    def _up(x: Tensor, factor: tuple[int, int]) -> Tensor:
        return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)

    def forward(self, ws: Tensor, noise: Tensor | None = None) -> Tensor:
        batch = ws.shape[0]
        if noise is None:
            noise = torch.randn(batch, self.noise_size, device=ws.device, dtype=ws.dtype)
        maps, start = [], 0
        for h, w in self.noise_sizes:
            maps.append(noise[:, start:start + h * w].reshape(batch, 1, h, w))
            start += h * w
        x = self.conv0(channels_last(self.const(batch)), ws[:, 0], maps[0])
        rgb = self.rgb0(x, ws[:, 1])
        for s, factor in enumerate(self.factors):
            i = 2 + 3 * s
            x = self.convs[2 * s](self._up(x, factor), ws[:, i], maps[1 + 2 * s])
            x = self.convs[2 * s + 1](x, ws[:, i + 1], maps[2 + 2 * s])
            rgb = self._up(rgb, factor) + self.rgbs[s](x, ws[:, i + 2])
        top = (self.generated[0] - self.height) // 2
        left = (self.generated[1] - self.width) // 2
        return rgb[:, :, top:top + self.height, left:left + self.width]


class StyleGenerator(nn.Module):
    """G: z (B, latent) [, c (B, context)] [, noise (B, noise_size)] -> image (B, *event_shape), with truncation ψ."""

    def __init__(self, shape: Sequence[int], latent: int, style: int, context: int = 0, mapping_layers: int = 8,
                 mapping_lr: float = 0.01, channels: int = 64, min_channels: int = 16, kernel_size: int = 3,
                 upsamples: int = 3, w_avg_decay: float = 0.995):
        super().__init__()
        from hepgen.nn.conv import image_shape

        self.shape = tuple(int(s) for s in shape)
        image = image_shape(self.shape)
        widths = stage_widths(len(stage_plan(image[1], image[2], upsamples)[1]), channels, min_channels)
        self.mapping = MappingNetwork(latent, context, style, mapping_layers, mapping_lr, w_avg_decay)
        self.synthesis = SynthesisNetwork(image, style, widths, kernel_size, upsamples)

    def styles(self, z: Tensor, c: Tensor | None = None, truncation: float = 1.0) -> Tensor:
        """ws (B, num_ws, style): one w = f(z, c), truncated, for every layer."""
        w = self.mapping.truncate(self.mapping(z, c), c, truncation)
        return w[:, None].expand(-1, self.synthesis.num_ws, -1)

    def forward(self, z: Tensor, c: Tensor | None = None, noise: Tensor | None = None,
                truncation: float = 1.0) -> Tensor:
        return self.synthesis(self.styles(z, c, truncation), noise).reshape(z.shape[0], *self.shape)


# -- the critic --------------------------------------------------------------------------------------------------------
class MinibatchStd(nn.Module):
    """Appends the mean standard deviation over groups of ``group`` events as one more channel (StyleGAN's layer).

    x: (B, C, H, W) -> (B, C + 1, H, W); the group is the largest divisor of B not above ``group``, so every batch
    size works (the events of a group see each other's spread: a collapsed generator is easy to spot).
    """

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = int(group)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        g = min(self.group, b)
        while b % g:
            g -= 1
        y = x.reshape(g, -1, c, h, w)
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt()  # (B/g, C, H, W)
        y = y.mean((1, 2, 3)).reshape(-1, 1, 1, 1).repeat(g, 1, h, w)  # group j: events j, j + B/g, j + 2B/g, ...
        return torch.cat([x, y], dim=1)


class ResidualBlock(nn.Module):
    """(conv, conv, pool) + (pool, 1×1 conv), divided by √2: (B, C_in, H, W) -> (B, C_out, ⌈H/f_h⌉, ⌈W/f_w⌉)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, factor: tuple[int, int]):
        super().__init__()
        self.factor = tuple(int(f) for f in factor)
        self.conv1 = EqualConv2d(in_channels, in_channels, kernel_size, activate=True)
        self.conv2 = EqualConv2d(in_channels, out_channels, kernel_size, activate=True)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False)

    def _pool(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.factor, ceil_mode=True) if self.factor != (1, 1) else x

    def forward(self, x: Tensor) -> Tensor:
        return (self._pool(self.conv2(self.conv1(x))) + self.skip(self._pool(x))) / math.sqrt(2.0)


class ResidualCritic(nn.Module):
    """D: image (B, *shape) [, c (B, context)] -> (B,), StyleGAN2's residual discriminator (module doc)."""

    def __init__(self, shape: Sequence[int], channels: int = 64, min_channels: int = 16, context: int = 0,
                 kernel_size: int = 3, upsamples: int = 3, minibatch_std: int = 4):
        super().__init__()
        from hepgen.nn.conv import image_shape

        self.shape = tuple(int(s) for s in shape)
        c_in, h, w = image_shape(self.shape)
        _, factors = stage_plan(h, w, upsamples)
        widths = stage_widths(len(factors), channels, min_channels)[::-1]  # the generator's, mirrored
        self.from_rgb = EqualConv2d(c_in, widths[0], 1, activate=True)
        self.blocks = nn.ModuleList()
        for factor, a, b in zip(reversed(factors), widths, widths[1:]):
            self.blocks.append(ResidualBlock(a, b, kernel_size, factor))
            h, w = -(-h // factor[0]), -(-w // factor[1])
        top = widths[-1]
        self.mbstd = MinibatchStd(minibatch_std) if minibatch_std > 0 else None
        self.conv = EqualConv2d(top + (1 if self.mbstd is not None else 0), top, 3, activate=True)
        self.fc = EqualLinear(top * h * w, top, activate=True)
        self.out = EqualLinear(top, 1)
        self.embed = EqualLinear(context, top) if context else None
        self.image = (c_in, *self.shape[-2:])

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        x = channels_last(self.from_rgb(x.reshape(x.shape[0], *self.image)))
        for block in self.blocks:
            x = block(x)
        if self.mbstd is not None:
            x = self.mbstd(x)
        h = self.fc(self.conv(x).flatten(1))
        out = self.out(h).squeeze(-1)
        if self.embed is not None:
            if c is None:
                raise ValueError("this critic is conditional; pass the context")
            out = out + (self.embed(c) * h).sum(-1) / math.sqrt(h.shape[1])
        return out
