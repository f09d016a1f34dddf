"""The demo's shower panel: the images it draws are the numpy means of the showers it was given, the demo section
fits both surrogates and writes the figure, and samples of the wrong layout are a clear error."""

import json

import numpy as np
import pytest

from hepgen.calo.shower_layout import LAYERS, Showers
from hepgen.demo.figures.calo import (
    calo_panel,
    mean_image_figure,
    mean_images,
    shower_panel,
)
from hepgen.errors import DataError


def _random_showers(n, seed):
    rng = np.random.default_rng(seed)
    return {k: rng.gamma(0.5, 20.0, (n, *s)) - 1.0 for k, s in LAYERS.items()}


def test_panel_draws_the_numpy_mean_image_of_every_sample_and_layer(tmp_path, monkeypatch):
    import hepgen.demo.figures.calo as panel_module

    drawn = []
    monkeypatch.setattr(panel_module, "mean_image_figure", lambda means: drawn.append(mean_image_figure(means))
                        or drawn[-1])  # the figure shower_panel saves, to read back what it shows
    samples = {"simulator": Showers(_random_showers(50, 1), np.ones(50)), "model": _random_showers(30, 2)}
    result = shower_panel(samples, tmp_path / "panel.png")
    assert (tmp_path / "panel.png").is_file() and len(drawn) == 1
    fig = drawn[0]
    assert len(fig.axes) == len(samples) * len(LAYERS) + len(LAYERS)  # the images and one colour bar per layer
    for i, label in enumerate(samples):
        layers = samples[label].layers if isinstance(samples[label], Showers) else samples[label]
        for j, name in enumerate(LAYERS):
            expected = np.mean(layers[name], axis=0)
            np.testing.assert_allclose(result["means"][label][name], expected, rtol=1e-12)
            # what the figure shows, row = sample, column = layer
            shown = fig.axes[i * len(LAYERS) + j].images[0].get_array()
            np.testing.assert_allclose(np.asarray(shown), expected, rtol=1e-12)
            assert result["mean_energy_mev"][label][name] == pytest.approx(layers[name].sum(axis=(1, 2)).mean())


def test_panel_rejects_showers_of_another_layout(tmp_path):
    bad = _random_showers(5, 0)
    bad["layer_1"] = bad["layer_1"][:, :, :11]
    with pytest.raises(DataError, match=r"'cand' layer layer_1 has shape \(5, 12, 11\)"):
        shower_panel({"ref": _random_showers(5, 1), "cand": bad}, tmp_path / "p.png")
    with pytest.raises(DataError, match="layer_2"):
        mean_images({"ref": {k: v for k, v in _random_showers(5, 1).items() if k != "layer_2"}})
    assert not (tmp_path / "p.png").exists()


@pytest.mark.slow  # ~5 s of CPU: simulation and two short fits
def test_demo_section_fits_both_surrogates_and_writes_the_panel(tmp_path):
    result = calo_panel(tmp_path, quick=True)
    (_caption, png), = result["figures"]
    assert png.endswith("mean_images.png") and (tmp_path / "mean_images.png").exists()
    assert set(result["mean_response"]) == {"simulator", "calo-gan", "calo-flow"}
    assert json.loads((tmp_path / "showers.json").read_text())["n_train"] == result["n_train"]
    # the simulator's e+ response is 0.2 (sampling fraction, little leakage); short fits are near it
    assert result["mean_response"]["simulator"] == pytest.approx(0.2, abs=0.01)
    for name in ("calo-gan", "calo-flow"):
        assert result["mean_response"][name] == pytest.approx(result["mean_response"]["simulator"], rel=0.15), name
