"""The GAN-Lab figure: decision map and generator arrows against closed forms, and the demo entry point's
files and summary against an independent recomputation from the saved run."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import hepgen
from hepgen.data.generators.toys import eight_gaussian_centres, eight_gaussians
from hepgen.demo.figures.gans import (
    decision_map,
    draw_gan_lab,
    gan_lab_figure,
    generator_arrows,
    ring_settings,
)
from hepgen.gans.diagnostics import mode_coverage
from hepgen.gans.gan import GAN
from hepgen.metrics import kl_js_from_samples


class _Linear(torch.nn.Module):
    """D(x) = ⟨a, x⟩ + b."""

    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = torch.tensor(a), torch.tensor(b)

    def forward(self, x, context=None):
        return x @ self.a + self.b


@pytest.mark.parametrize("loss", ["wgan-gp", "non-saturating", "minimax", "least-squares"])
def test_decision_map_and_generator_arrows_against_closed_forms(loss):
    a, b = [0.5, -2.0], 0.3
    model = GAN(2, hidden=(4,), loss=loss, preprocess="none")
    model.critic = _Linear(a, b)
    xs, ys, dmap = decision_map(model, [(-1, 1), (0, 2)], resolution=5)
    gx, gy = np.meshgrid(xs, ys)
    f = a[0] * gx + a[1] * gy + b
    expected = 1 / (1 + np.exp(-f)) if model.adversarial_loss.probabilistic else f
    np.testing.assert_allclose(dmap, expected, rtol=1e-6)
    # arrows −∂ℓ_G/∂x̃ = −ℓ_G'(f) a, with ℓ_G'(f) from the loss table
    pts = np.array([[0.2, -0.4], [1.0, 1.0], [-3.0, 2.0]])
    f = pts @ a + b
    slope = {"wgan-gp": -np.ones_like(f), "non-saturating": -1 / (1 + np.exp(f)),
             "minimax": -1 / (1 + np.exp(-f)), "least-squares": f - 1}[loss]
    np.testing.assert_allclose(generator_arrows(model, pts), -slope[:, None] * np.array(a), rtol=1e-5, atol=1e-7)


def test_draw_gan_lab_writes_a_png_with_the_logged_panels(tmp_path):
    data = eight_gaussians(1000, np.random.default_rng(0), std=0.1).astype(np.float32)
    model = GAN(2, hidden=(8,)).fit(data, epochs=1, batch_size=200, quiet=True)
    path = draw_gan_lab(tmp_path / "lab.png", model, data, n=300, arrows=20, resolution=20)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(hepgen.errors.ConfigError, match="2-D"):
        draw_gan_lab(tmp_path / "x.png", model, data[:, :1])


def test_gan_lab_figure_files_and_summary_match_the_saved_run(tmp_path):
    summary = gan_lab_figure(tmp_path, quick=True, seed=0, epochs=1)
    for path in summary["figures"]:
        assert Path(path).read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "gan_lab.json").read_text()) == summary
    with open(tmp_path / "run_wgan_gp" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and {"val_modes_hit", "val_high_quality", "val_grid_kl", "val_grid_js",
                               "train_critic_wasserstein", "train_generator_grad_norm"} <= set(rows[0])
    # the summary's numbers, recomputed from the saved model with the documented seed
    model = hepgen.load(summary["run"])
    torch.manual_seed(1)
    fake = model.sample(5000).double().numpy()
    hit, good = mode_coverage(fake, eight_gaussian_centres(), 0.1)
    assert (summary["modes_hit"], summary["high_quality"]) == (hit, pytest.approx(good))
    data = eight_gaussians(ring_settings(True)["n"], np.random.default_rng(0), std=0.1)
    kl, js = kl_js_from_samples(data, fake, bins=40, range=[(-3.0, 3.0), (-3.0, 3.0)])
    assert (summary["kl"], summary["js"]) == (pytest.approx(kl, rel=1e-4), pytest.approx(js, rel=1e-4))
