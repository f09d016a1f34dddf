"""Per-event summary features of images (calorimeter showers, jet images) for two-sample metrics.

Per channel: total intensity Σ I, maximum pixel, occupancy (fraction of non-zero pixels), the
|I|-weighted centroid (row, column) and the |I|-weighted radial spread about it. An image whose pixels
are all zero gets its centroid at the image centre and spread 0.
"""

from __future__ import annotations

import numpy as np

from hepgen.errors import DataError

FEATURES = ("total", "max", "occupancy", "centroid_row", "centroid_col", "width")


def as_channels(images: np.ndarray) -> np.ndarray:
    """View (n, H, W) as (n, 1, H, W); (n, C, H, W) is returned unchanged."""
    images = np.asarray(images)
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 4:
        return images
    raise DataError(f"images must be (n, H, W) or (n, C, H, W); got shape {images.shape}.")


def image_feature_names(n_channels: int) -> list[str]:
    """Names of :func:`image_summary_features` columns: ``total`` ... or ``ch0_total`` ... for several channels."""
    if n_channels == 1:
        return list(FEATURES)
    return [f"ch{c}_{f}" for c in range(n_channels) for f in FEATURES]


def image_summary_features(images: np.ndarray) -> np.ndarray:
    """Summary features (n, 6·C) of images (n, H, W) or (n, C, H, W), channel-major in the order of FEATURES."""
    x = as_channels(np.asarray(images, dtype=np.float64))
    n, n_ch, h, w = x.shape
    rows, cols = np.meshgrid(np.arange(h, dtype=float), np.arange(w, dtype=float), indexing="ij")
    out = np.empty((n, n_ch, len(FEATURES)))
    for c in range(n_ch):
        img = x[:, c].reshape(n, -1)
        mag = np.abs(img)
        norm = mag.sum(axis=1)
        safe = np.where(norm > 0, norm, 1.0)
        r0 = np.where(norm > 0, mag @ rows.ravel() / safe, (h - 1) / 2)
        c0 = np.where(norm > 0, mag @ cols.ravel() / safe, (w - 1) / 2)
        second = mag @ (rows.ravel() ** 2 + cols.ravel() ** 2) / safe  # E|I|[r² + c²]
        out[:, c] = np.stack([
            img.sum(axis=1),
            img.max(axis=1),
            (img != 0).mean(axis=1),
            r0,
            c0,
            np.sqrt(np.clip(np.where(norm > 0, second - r0**2 - c0**2, 0.0), 0.0, None)),
        ], axis=1)
    return out.reshape(n, -1)


def mean_image(images: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(Weighted) mean image, (C, H, W), of images (n, H, W) or (n, C, H, W); signed weights allowed."""
    x = as_channels(np.asarray(images, dtype=np.float64))
    if weights is None:
        return x.mean(axis=0)
    w = np.asarray(weights, dtype=np.float64)
    if w.sum() == 0:
        raise DataError("mean image: the weights sum to zero.")
    return np.tensordot(w, x, axes=1) / w.sum()
