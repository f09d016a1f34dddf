"""The 2-D toy gallery: the heat-map grid is oriented and normalised right (checked on a closed-form Gaussian),
a trained flow's grid mass equals the box probability of its own samples, and the PNG and JSON are written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from hepgen.demo.figures.flows import TOYS, density_grid, grid_mass, toy_gallery
from hepgen.errors import ConfigError


class _Gaussian:
    """A stand-in model with a closed-form density."""

    def __init__(self, mean, cov):
        self.dist = multivariate_normal(mean, cov)

    def log_prob(self, x):
        return torch.as_tensor(self.dist.logpdf(np.asarray(x)))


def test_density_grid_is_oriented_and_normalised():
    model = _Gaussian([0.5, -1.0], [[1.0, 0.6], [0.6, 0.5]])
    xe, ye, density = density_grid(model, (-7.0, 8.0, -6.0, 4.0), bins=300, batch=10_000)
    assert xe.shape == ye.shape == (301,) and density.shape == (300, 300)
    i, j = 40, 170  # density[row j (y), column i (x)]
    xc, yc = 0.5 * (xe[i] + xe[i + 1]), 0.5 * (ye[j] + ye[j + 1])
    np.testing.assert_allclose(density[j, i], model.dist.pdf([xc, yc]), rtol=1e-12)
    assert abs(grid_mass(xe, ye, density) - 1.0) < 1e-4


def test_gallery_writes_png_and_normalised_heat_maps(tmp_path):
    png = toy_gallery(tmp_path / "g", toys=("moons", "eight-gaussians"), quick=True, epochs=3, events=3000, bins=100)
    assert png == tmp_path / "g" / "flow_gallery.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000
    summary = json.loads((tmp_path / "g" / "flow_gallery.json").read_text())
    assert summary["model"] == "nsf" and list(summary["toys"]) == ["moons", "8gaussians"]
    for name, row in summary["toys"].items():
        # the grid's mass is the flow's probability of the plotted box (50k samples: sd 0.0005 here)
        assert abs(row["grid_mass"] - row["box_probability"]) < 0.005, (name, row)
        assert 0.95 < row["grid_mass"] < 1.005, (name, row)  # little mass outside the box, even briefly trained
        assert np.isfinite(row["test_nll"]) and row["train_events"] == 3000


def test_gallery_other_models_and_bad_names(tmp_path):
    png = toy_gallery(tmp_path, toys=("rings",), model="realnvp", epochs=1, events=1000, bins=60,
                      params={"transforms": 2, "hidden": (16, 16)})
    assert png.is_file()
    assert json.loads((tmp_path / "flow_gallery.json").read_text())["model"] == "realnvp"
    with pytest.raises(ConfigError, match="unknown toy"):
        toy_gallery(tmp_path, toys=("swiss-roll",))
    with pytest.raises(ConfigError, match="at least one"):
        toy_gallery(tmp_path, toys=())
    assert set(TOYS) == {"moons", "8gaussians", "checkerboard", "rings", "spirals"}
