"""Per-event image summary features and mean images against explicit loops."""

import numpy as np
import pytest

from hepgen.errors import DataError
from hepgen.report.image_features import image_feature_names, image_summary_features, mean_image


def _loop_features(img: np.ndarray) -> list[float]:
    h, w = img.shape
    mag = np.abs(img)
    total_abs = mag.sum()
    if total_abs == 0:
        r0, c0, width = (h - 1) / 2, (w - 1) / 2, 0.0
    else:
        r0 = sum(mag[i, j] * i for i in range(h) for j in range(w)) / total_abs
        c0 = sum(mag[i, j] * j for i in range(h) for j in range(w)) / total_abs
        width = np.sqrt(sum(mag[i, j] * ((i - r0) ** 2 + (j - c0) ** 2) for i in range(h) for j in range(w))
                        / total_abs)
    return [img.sum(), img.max(), np.count_nonzero(img) / img.size, r0, c0, width]


def test_summary_features_match_loops_with_signed_and_empty_images():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(5, 2, 4, 6)) * (rng.random((5, 2, 4, 6)) < 0.5)
    images[2, 1] = 0.0
    got = image_summary_features(images)
    assert got.shape == (5, 12)
    for n in range(5):
        expected = [v for c in range(2) for v in _loop_features(images[n, c])]
        np.testing.assert_allclose(got[n], expected, atol=1e-12)
    np.testing.assert_allclose(image_summary_features(images[:, 0]), got[:, :6])
    assert image_feature_names(1) == ["total", "max", "occupancy", "centroid_row", "centroid_col", "width"]
    assert image_feature_names(2)[6:8] == ["ch1_total", "ch1_max"]


def test_mean_image_weighted_and_errors():
    rng = np.random.default_rng(1)
    images, w = rng.random((10, 3, 3)), rng.uniform(-0.2, 1.0, 10)
    np.testing.assert_allclose(mean_image(images)[0], images.mean(axis=0))
    np.testing.assert_allclose(mean_image(images, w)[0], np.einsum("n,nij->ij", w, images) / w.sum())
    with pytest.raises(DataError, match="sum to zero"):
        mean_image(images[:2], np.array([1.0, -1.0]))
    with pytest.raises(DataError, match=r"\(n, H, W\)"):
        image_summary_features(np.ones((3, 4)))
