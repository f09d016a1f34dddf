"""k-NN precision, recall, density and coverage against a direct evaluation of their definitions (scipy's cdist
and Python loops), and their limits: a sample against itself, a collapsed sample, disjoint samples."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from hepgen.errors import DataError
from hepgen.metrics import knn_radii, precision_recall_coverage


def _by_definition(x, y, k):
    dxx, dyy, dyx = cdist(x, x), cdist(y, y), cdist(y, x)
    r_x = np.sort(dxx, axis=1)[:, k]  # column 0 is the point itself
    r_y = np.sort(dyy, axis=1)[:, k]
    precision = np.mean([any(dyx[j, i] <= r_x[i] for i in range(len(x))) for j in range(len(y))])
    recall = np.mean([any(dyx[j, i] <= r_y[j] for j in range(len(y))) for i in range(len(x))])
    density = sum(dyx[j, i] <= r_x[i] for j in range(len(y)) for i in range(len(x))) / (k * len(y))
    coverage = np.mean([dyx[:, i].min() <= r_x[i] for i in range(len(x))])
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


@pytest.mark.parametrize("k", [1, 3, 5])
def test_the_four_numbers_follow_their_definitions(k):
    rng = np.random.default_rng(k)
    x = rng.normal(size=(120, 3))
    y = 0.6 * rng.normal(size=(90, 3)) + np.array([0.4, 0.0, -0.2])
    got = precision_recall_coverage(x, y, k=k, standardise=False)
    want = _by_definition(x, y, k)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-12), key
    # the radii themselves
    np.testing.assert_allclose(knn_radii(x, k), np.sort(cdist(x, x), axis=1)[:, k], rtol=1e-10)


def test_standardising_uses_the_real_samples_scale():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 2)) * np.array([1.0, 1000.0])
    y = rng.normal(size=(70, 2)) * np.array([1.0, 1000.0])
    got = precision_recall_coverage(x, y, k=3)
    mean, std = x.mean(0), x.std(0)
    want = _by_definition((x - mean) / std, (y - mean) / std, 3)
    assert got == pytest.approx(want, abs=1e-12)


def test_limits_identical_collapsed_and_disjoint():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 2))
    same = precision_recall_coverage(x, x.copy(), k=5)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    collapsed = precision_recall_coverage(x, np.zeros((50, 2)) + 1e-3 * rng.normal(size=(50, 2)), k=5)
    assert collapsed["precision"] == 1.0 and collapsed["recall"] < 0.1 and collapsed["coverage"] < 0.1
    far = precision_recall_coverage(x, x + 100.0, k=5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_bad_input_is_a_data_error():
    x = np.zeros((10, 2))
    with pytest.raises(DataError, match="k = 10"):
        precision_recall_coverage(x, x, k=10)
    with pytest.raises(DataError, match="features"):
        precision_recall_coverage(x, np.zeros((10, 3)), k=2)
    bad = x.copy()
    bad[4, 1] = np.nan
    with pytest.raises(DataError, match="row is 4"):
        precision_recall_coverage(x, bad, k=2)
