"""PixelCNN (van den Oord et al. 2016): an exact autoregressive likelihood of images, pixel by pixel in raster order.

    log P(x | c) = Σ_{i=1}^{H·W} log P(ℓ_i | ℓ_1, …, ℓ_{i-1}, c),    ℓ = level(x)  (a categorical over K levels per pixel)

The image is first mapped by a fixed quantiser (:class:`hepgen.autoregressive.levels.IntensityLevels`): level 0
is an exactly empty pixel, levels 1 … K−1 are equal bins of log1p(x / s). ``log_prob`` is therefore the exact,
normalised log-probability of the *quantised* image (it sums to one over all K^(H·W) level images; it is ≤ 0, a
probability, not a density in the data's units; no Jacobian enters), and ``score`` = −log_prob is an anomaly
score in nats. The conditionals come from a gated PixelCNN (:class:`hepgen.nn.pixelcnn.GatedPixelCNN`: vertical
and horizontal stacks, no blind spot, mask A then B), optionally conditioned on a context vector (a jet's pT).

``sample(n)`` is the sequential pass: H·W network evaluations, each on the rows the next pixel can see, drawing
its level from the categorical; the levels are mapped back to intensities in the data's units (zero for level 0,
uniform in log1p(x / s) inside the bin otherwise). Sampling draws discrete levels, so there is no ``rsample``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hepgen.autoregressive.levels import IntensityLevels
from hepgen.density import DensityModel
from hepgen.errors import ConfigError, DataError
from hepgen.export import ExportGraph, GraphModule, Port, event_ports, refusal
from hepgen.models import Model, refuse_several_arrays, register
from hepgen.nn.pixelcnn import GatedPixelCNN

#: images of the training events read per chunk when fitting the levels
_CHUNK = 4096


def _image_shape(shape: Sequence[int], name: str) -> tuple[int, int]:
    """(H, W) of a single-channel event shape (H, W) or (1, H, W)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) == 3:
        raise ConfigError(f"{name} models single-channel images (H, W) or (1, H, W); these events have {shape[0]} "
                          "channels (the channel-ordered masks of a multi-channel PixelCNN are not implemented)")
    if len(shape) != 2 or min(shape) < 1:
        raise ConfigError(f"{name} models images of shape (H, W) or (1, H, W), got events of shape {shape}")
    return shape  # type: ignore[return-value]


class _LogProbGraph(GraphModule):
    """x (batch, *shape) [, c] -> log P(level(x) | c) (batch,) [, score = −log P]; the graph does no data checks (a
    negative or NaN intensity gets level 0)."""

    def __init__(self, model: PixelCNN, with_score: bool):
        super().__init__(model)
        self.with_score = with_score

    def forward(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor, ...]:
        lp = self.model.log_prob_internal(x, self.ctx(c), checked=False)
        return (lp, -lp) if self.with_score else (lp,)


@register
class PixelCNN(DensityModel):
    """Gated PixelCNN on single-channel images of non-negative intensities (jet images).

    Args:
        shape: event shape (H, W) or (1, H, W).
        levels: K, the intensity levels per pixel (level 0: an empty pixel).
        channels: the width of the vertical and horizontal stacks.
        layers: gated layers (mask A, then B); each sees ``kernel_size // 2`` more rows above.
        kernel_size: odd kernel side k >= 3.
        context: size of a conditioning vector (0: unconditional), e.g. a jet's pT.
    """

    cli_name = "pixel-cnn"
    #: what ``export`` writes unless told: the log-probability per image (its use as an anomaly score)
    export_default = "log_prob"
    #: what ``hepgen score`` says its columns are (the densities' wording, "log p(x) in the original units,
    #: preprocessing Jacobian included", is wrong here)
    score_description = ("log_prob = log P of the image quantised to its intensity levels (exact and normalised: a "
                         "probability, no Jacobian); score = -log_prob, in nats")

    def __init__(self, shape: Sequence[int], levels: int = 16, channels: int = 32, layers: int = 6,
                 kernel_size: int = 3, context: int = 0):
        if int(context) < 0:
            raise ConfigError(f"pixel-cnn: context must be >= 0, got {context}")
        self.image = _image_shape(shape, "pixel-cnn")
        super().__init__(tuple(int(s) for s in shape), context, preprocess="none")
        self.shape, self.levels, self.channels = tuple(int(s) for s in shape), int(levels), int(channels)
        self.layers, self.kernel_size = int(layers), int(kernel_size)
        try:
            self.net = GatedPixelCNN(self.levels, self.channels, self.layers, self.kernel_size, self.context)
            self.quantiser = IntensityLevels(self.levels)
        except ValueError as exc:
            raise ConfigError(f"pixel-cnn: {exc}") from None
        # channels-last weights, so the activations are too: a CPU training step on 40×40 jet images was ~7 %
        # faster in a profile (not a committed benchmark)
        # (oneDNN's convolutions), the same function; reset_parameters draws in the usual layout (the same weights)
        self.net.to(memory_format=torch.channels_last)

    def reset_parameters(self) -> None:
        """Re-draw every weight from the torch RNG, weight by weight as in the contiguous layout."""
        self.net.to(memory_format=torch.contiguous_format)
        super().reset_parameters()
        self.net.to(memory_format=torch.channels_last)

    @classmethod
    def from_data(cls, event_shape: tuple[int, ...], context: int, **params: Any) -> Model:
        refuse_several_arrays(cls.cli_name, event_shape)
        if len(event_shape) not in (2, 3):
            raise ConfigError(f"pixel-cnn models images of shape (H, W) or (1, H, W); this data has events of "
                              f"shape {event_shape}")
        return cls(shape=event_shape, context=context, **params)

    # -- the quantised image -----------------------------------------------------------------------------
    def quantise(self, x: Tensor | np.ndarray) -> Tensor:
        """The levels of images x in the data's units: (B, *shape) -> (B, H, W) int64."""
        x = self._as_tensor(x)
        if tuple(x.shape[1:]) != self.event_shape:
            raise ConfigError(f"pixel-cnn was built for events of shape {self.event_shape}, got a batch of shape "
                              f"{tuple(x.shape)}")
        return self._levels(x)

    def _levels(self, u: Tensor, where: str | None = "pixel-cnn") -> Tensor:
        return self.quantiser(u.reshape(u.shape[0], *self.image), where)

    @torch.no_grad()
    def fit_levels(self, x: Tensor | np.ndarray) -> PixelCNN:
        """Fit the quantiser's scale and range on images x (B, *shape) (``fit`` does it on the training images)."""
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
        self.quantiser.fit([x], "pixel-cnn.fit_levels")
        return self

    def check_events(self, x: Any, first_row: int, where: str) -> None:
        """The engine's check of the training (and validation) images before any work: non-negative and finite
        intensities (a DataError naming ``where``, the row and the pixel)."""
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
        bad = ~torch.isfinite(x) | (x < 0)
        if bool(bad.any()):
            row, *pixel = (int(i) for i in torch.nonzero(bad)[0])
            value = float(x[(row, *pixel)])
            raise DataError(f"{where}: row {first_row + row}, pixel {tuple(pixel)}: the intensity {value:.6g} is "
                            f"{'negative' if value < 0 else 'not finite'}; pixel-cnn models non-negative intensities")

    def on_fit_start(self, events: Any) -> None:
        """Engine hook: fit the levels on the training images, unless a warm start keeps the fitted ones."""
        if bool(self.quantiser.fitted):
            return
        chunks = (events.rows(start, min(start + _CHUNK, len(events)))["x"] for start in range(0, len(events), _CHUNK))
        self.quantiser.fit(chunks, "the training images")

    # -- the likelihood ----------------------------------------------------------------------------------
    def log_prob_internal(self, u: Tensor, context: Tensor | None = None, *, checked: bool = True) -> Tensor:
        """log P(level(u) | c) = Σ_pixels log P(ℓ_i | ℓ_<i, c): u (B, *shape) -> (B,); ``checked=False`` (the
        exported graph) gives a negative or NaN intensity level 0 instead of refusing it."""
        onehot = self.quantiser.onehot(self._levels(u, "pixel-cnn" if checked else None), self.dtype)
        return (self.net.log_probs(onehot, context) * onehot).sum(dim=(1, 2, 3))

    # -- sampling ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_internal(self, n: int, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The sequential pass: (x (n, *shape) in the data's units, log P(level(x) | c) (n,)); not differentiable."""
        h, w = self.image
        level = torch.zeros(n, h, w, dtype=torch.int64, device=self.device)
        log_p = torch.zeros(n, dtype=self.dtype, device=self.device)
        above = self.net.rows_above
        for i in range(h):
            top = max(0, i - above)  # the logits of row i see no row above `top`, nor any row below i
            for j in range(w):
                onehot = self.quantiser.onehot(level[:, top:i + 1], self.dtype)
                logits = self.net.log_probs(onehot, context)[:, :, i - top, j]
                drawn = torch.multinomial(logits.exp(), 1)
                level[:, i, j] = drawn[:, 0]
                log_p += logits.gather(1, drawn)[:, 0]
        x = self.quantiser.values(level, torch.rand(level.shape, device=self.device)).to(self.dtype)
        return x.reshape(n, *self.event_shape), log_p

    def rsample_and_log_prob(self, n: int | None, context: Any = None) -> tuple[Tensor, Tensor]:
        raise ConfigError("pixel-cnn draws a discrete level per pixel: its samples are no differentiable function of "
                          "the weights (no rsample); use sample")

    def rsample(self, n: int | None, context: Any = None) -> Tensor:
        return self.rsample_and_log_prob(n, context)[0]

    @torch.no_grad()
    def sample_and_log_prob(self, n: int | None, context: Any = None) -> tuple[Tensor, Tensor]:
        """(x (n, *shape) in the data's units, log P(level(x) | c) (n,)) from one sequential pass."""
        n, c = self._sample_count(n, context)
        return self.sample_internal(n, c)

    @torch.no_grad()
    def sample(self, n: int | None, context: Any = None) -> Tensor:
        """n images in the data's units by the sequential pass: (n, *shape); context (n, c) gives one per row."""
        return self.sample_and_log_prob(n, context)[0]

    # -- ONNX export ---------------------------------------------------------------------------------------
    def export_graph(self, what: str) -> ExportGraph:
        """``log_prob`` x [, c] -> log P(level(x) | c); ``score`` x [, c] -> (log P, −log P); ``sample`` is refused
        (a sequential pass of categorical draws)."""
        if what == "sample":
            raise refusal(self, what, "its sampler is a sequential pass of H·W categorical draws, not a function of "
                                      "N(0, I) noise; export --what log_prob or score")
        ports = event_ports(self)
        log_prob = Port("log_prob", (), f"log P of the image quantised to {self.levels} intensity levels (exact, <= 0; "
                                        "negative or NaN intensities get level 0)")
        outputs = [log_prob, Port("score", (), "−log P")] if what == "score" else [log_prob]
        return ExportGraph(_LogProbGraph(self, what == "score"), [ports.x, *ports.context], outputs)
