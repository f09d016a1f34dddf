"""Shower features against brute-force loops over hand-made showers (the classifier test: tests/evaluate)."""

import numpy as np
import pytest

from hepgen.errors import DataError
from hepgen.metrics.shower_observables import (
    cell_centres,
    classifier_inputs,
    response_in_bins,
    shower_features,
)

SHAPES = ((3, 96), (12, 12), (12, 6))


def _showers(n=7, seed=0):
    rng = np.random.default_rng(seed)
    layers = [rng.gamma(0.3, 50.0, size=(n, r, c)) - 2.0 for r, c in SHAPES]  # some negative (noise) cells
    layers[2][0] = -1.0  # a layer with no hit cell
    energy = rng.uniform(1, 100, n)
    return layers, energy


def _brute(layers, energy, threshold):
    out = {}
    n = len(energy)
    rows = []
    for i in range(n):
        row = {}
        total = 0.0
        for k, layer in enumerate(layers):
            r, c = layer.shape[1:]
            e = 0.0
            for a in range(r):
                for b in range(c):
                    e += layer[i, a, b]
            row[f"E_{k}"] = e
            total += e
            sw = sx = sy = sxx = syy = 0.0
            hits = 0
            for a in range(r):
                for b in range(c):
                    v = layer[i, a, b]
                    if v > threshold:
                        x = -240 + (b + 0.5) * 480 / c
                        y = -240 + (a + 0.5) * 480 / r
                        sw += v
                        sx += v * x
                        sy += v * y
                        sxx += v * x * x
                        syy += v * y * y
                        hits += 1
            mx, my = (sx / sw, sy / sw) if sw > 0 else (0.0, 0.0)
            row[f"centroid_x_{k}"], row[f"centroid_y_{k}"] = mx, my
            row[f"width_x_{k}"] = np.sqrt(max(sxx / sw - mx * mx, 0)) if sw > 0 else 0.0
            row[f"width_y_{k}"] = np.sqrt(max(syy / sw - my * my, 0)) if sw > 0 else 0.0
            row[f"sparsity_{k}"] = hits / (r * c)
            cells = sorted(layer[i].ravel())
            row[f"brightest_{k}"], row[f"second_{k}"] = cells[-1], cells[-2]
        row["E_total"] = total
        row["response"] = total / (1000 * energy[i])
        for k in range(len(layers)):
            row[f"frac_{k}"] = row[f"E_{k}"] / total
        rows.append(row)
    for key in rows[0]:
        out[key] = np.array([r[key] for r in rows])
    return out


@pytest.mark.parametrize("threshold", [0.0, 5.0])
def test_features_match_a_brute_force_loop(threshold):
    layers, energy = _showers()
    got = shower_features(layers, energy, threshold=threshold)
    expected = _brute(layers, energy, threshold)
    assert set(got) == set(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-9, atol=1e-9, err_msg=key)
    assert got["centroid_x_2"][0] == 0.0 and got["sparsity_2"][0] == 0.0


def test_a_single_hit_cell_has_its_centre_as_centroid_and_zero_width():
    layers = [np.zeros((1, r, c)) for r, c in SHAPES]
    layers[1][0, 3, 9] = 1000.0
    layers[0][0, 1, 10] = 500.0
    layers[0][0, 1, 11] = 500.0
    f = shower_features(layers, np.array([10.0]))
    xc, yc = cell_centres(12, 12)
    assert f["centroid_x_1"][0] == pytest.approx(xc[9]) and f["centroid_y_1"][0] == pytest.approx(yc[3])
    assert f["width_x_1"][0] == 0.0
    # two equal cells 5 mm apart: centroid between them, width 2.5 mm
    assert f["centroid_x_0"][0] == pytest.approx(-240 + 11 * 5.0) and f["width_x_0"][0] == pytest.approx(2.5)
    assert f["response"][0] == pytest.approx(0.2) and f["frac_1"][0] == pytest.approx(0.5)


def test_response_in_bins_matches_numpy():
    rng = np.random.default_rng(1)
    e = rng.uniform(1, 100, 5000)
    r = rng.normal(0.2, 0.02 / np.sqrt(e))
    edges = [1, 10, 50, 100]
    out = response_in_bins(r, e, edges)
    for b in range(3):
        sel = (e >= edges[b]) & (e < edges[b + 1])
        assert out["mean"][b] == pytest.approx(r[sel].mean())
        assert out["resolution"][b] == pytest.approx(r[sel].std(ddof=1) / r[sel].mean())
        assert out["count"][b] == sel.sum()


def test_classifier_inputs_shapes_and_values():
    layers, energy = _showers()
    cells = classifier_inputs(layers, energy, "cells")
    assert cells.shape == (7, 505)
    np.testing.assert_allclose(cells[:, 0], layers[0][:, 0, 0] / (1000 * energy))
    np.testing.assert_allclose(cells[:, -1], np.log10(energy))
    high = classifier_inputs(layers, energy, "high")
    assert high.shape == (7, 3 + 1 + 3 * 5 + 1) and np.isfinite(high).all()


def test_bad_showers_are_named():
    layers, energy = _showers()
    with pytest.raises(DataError, match="layer 1 has 3 showers"):
        shower_features([layers[0], layers[1][:3], layers[2]], energy)
    with pytest.raises(DataError, match="row 2"):
        shower_features(layers, np.where(np.arange(7) == 2, -1.0, energy))


def test_the_old_module_name_still_works_with_a_deprecation_warning():
    import importlib
    import sys

    import hepgen.metrics.shower_observables as observables

    sys.modules.pop("hepgen.metrics.showers", None)
    with pytest.warns(DeprecationWarning, match="hepgen.metrics.shower_observables"):
        old = importlib.import_module("hepgen.metrics.showers")
    assert old.shower_features is observables.shower_features and set(old.__all__) == set(observables.__all__)
