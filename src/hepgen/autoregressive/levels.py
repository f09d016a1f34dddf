"""The fixed quantiser of non-negative pixel intensities (jet images: pT per pixel, mostly exactly zero).

    level(x) = 0                                                  if x = 0
             = 1 + min(⌊log1p(x / s) / Δ⌋, K − 2)                 if x > 0,    Δ = log1p(x_max / s) / (K − 1)

K levels: level 0 is the point "no energy" (exactly zero), levels 1 … K−1 split log1p(x / s) on (0, log1p(x_max / s)]
into K − 1 equal bins, the top one open upwards (a value above the training maximum falls into it). The scale
s (the median non-zero training pixel) and x_max (the largest training pixel) are fitted once, on the training
images, and saved with the model; a warm start keeps them. Negative or non-finite intensities have no level and
are refused. The map back, for samples, draws x uniformly in log1p(x / s) inside its bin (a zero for level 0).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor, nn

from hepgen.errors import DataError

#: the share of each bin's width left out at both ends when a level is mapped back to an intensity, so that the
#: value quantises back to its level in float32
_INNER = 1e-3
#: non-zero pixels kept for the median (the first ones met)
_MEDIAN_VALUES = 2_000_000


class IntensityLevels(nn.Module):
    """x ≥ 0 (any shape) <-> levels in {0, …, K − 1} (the same shape); see the module docstring for the map.

    Args:
        levels: K >= 2.
    """

    def __init__(self, levels: int):
        super().__init__()
        if int(levels) < 2:
            raise ValueError(f"levels must be at least 2, got {levels}")
        self.levels = int(levels)
        self.register_buffer("scale", torch.tensor(1.0, dtype=torch.float64))
        self.register_buffer("top", torch.tensor(float(np.log1p(1.0)), dtype=torch.float64))
        self.register_buffer("fitted", torch.tensor(False))

    def reset_parameters(self) -> None:
        """Forget the fitted scale and range (a fit from scratch fits them again)."""
        self.scale.fill_(1.0)
        self.top.fill_(float(np.log1p(1.0)))
        self.fitted.fill_(False)

    @property
    def width(self) -> float:
        """Δ, the width of one non-zero bin in log1p(x / s)."""
        return float(self.top) / (self.levels - 1)

    def edges(self) -> Tensor:
        """The K − 1 lower edges of the non-zero levels 1 … K − 1 in the data's units (the first is 0, excluded)."""
        v = torch.arange(self.levels - 1, dtype=torch.float64) * self.width
        return self.scale * torch.expm1(v)

    @torch.no_grad()
    def fit(self, chunks: Iterable[np.ndarray | Tensor], where: str = "the training images") -> IntensityLevels:
        """s = median non-zero pixel, x_max = largest pixel, over ``chunks`` of images (any shape each)."""
        kept, n_kept, largest = [], 0, 0.0
        for chunk in chunks:
            values = torch.as_tensor(chunk).detach().to("cpu", torch.float64).reshape(-1)
            self.check(values, where)
            nonzero = values[values > 0]
            if nonzero.numel():
                largest = max(largest, float(nonzero.max()))
                if n_kept < _MEDIAN_VALUES:
                    kept.append(nonzero[:_MEDIAN_VALUES - n_kept])
                    n_kept += kept[-1].numel()
        if not n_kept:
            raise DataError(f"{where}: every pixel is zero; the intensity levels need some non-zero pixels")
        scale = float(torch.cat(kept).median())
        self.scale.fill_(scale)
        self.top.fill_(float(np.log1p(largest / scale)))
        self.fitted.fill_(True)
        return self

    @staticmethod
    def check(x: Tensor, where: str) -> None:
        """Refuse negative or non-finite intensities with a DataError naming ``where`` and the first bad value."""
        bad = ~torch.isfinite(x) | (x < 0)
        if bool(bad.any()):
            index = tuple(int(i) for i in torch.nonzero(bad)[0])
            value = float(x[index])
            what = "negative" if value < 0 else "not finite"
            raise DataError(f"{where}: the intensity at index {index} is {what} ({value:.6g}); the intensity levels "
                            "need non-negative, finite pixels")

    def forward(self, x: Tensor, where: str | None = "the images") -> Tensor:
        """Levels (same shape as x, int64) of intensities x ≥ 0; others are refused, naming ``where`` (None: not
        checked, as in an exported graph, where a negative or NaN intensity gets level 0)."""
        if where is not None:
            self.check(x, where)
        v = torch.log1p(x.to(self.scale.dtype) / self.scale) / (self.top / (self.levels - 1))
        level = 1 + torch.clamp(torch.floor(v), 0, self.levels - 2)
        return torch.where(x > 0, level, torch.zeros_like(level)).to(torch.int64)

    def onehot(self, level: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        """(B, H, W) levels -> (B, K, H, W) one-hot (a comparison, which traces to ONNX)."""
        k = torch.arange(self.levels, device=level.device).view(1, -1, 1, 1)
        return (level.unsqueeze(1) == k).to(dtype)

    def values(self, level: Tensor, uniform: Tensor) -> Tensor:
        """Intensities for ``level`` (any shape): 0 for level 0, else s·expm1(Δ·(k − 1 + t)) with t the uniform
        draws ``uniform`` in [0, 1) squeezed into the bin's inner part; float64 (cast by the caller)."""
        t = _INNER + (1 - 2 * _INNER) * uniform.to(torch.float64)
        v = (level.to(torch.float64) - 1 + t) * (self.top / (self.levels - 1))
        return torch.where(level > 0, self.scale * torch.expm1(v), torch.zeros_like(v))
