"""Autoregressive image models: an exact likelihood as a product of per-pixel conditionals.

Models: :class:`PixelCNN` (``pixel-cnn``, a gated PixelCNN on quantised non-negative intensities); the
quantiser :class:`IntensityLevels` lives in :mod:`hepgen.autoregressive.levels`.
"""

from hepgen.autoregressive.levels import IntensityLevels
from hepgen.autoregressive.pixelcnn import PixelCNN

__all__ = ["IntensityLevels", "PixelCNN"]
