"""GAN diagnostics: mode coverage by brute force, grid KL/JS, gradient norms by hand, and their per-epoch
logging through the engine into history_ and metrics.csv."""

import csv

import numpy as np
import pytest
import torch

from hepgen.data.generators.toys import eight_gaussian_centres, eight_gaussians
from hepgen.errors import ConfigError, DataError
from hepgen.gans.diagnostics import (
    GeneratorGradNorms,
    GridDivergence,
    ModeCoverage,
    generator_grad_norm,
    mode_coverage,
)
from hepgen.gans.gan import GAN, WGANGP
from hepgen.metrics import kl_js_from_samples


def test_mode_coverage_against_a_loop_over_samples():
    rng = np.random.default_rng(0)
    centres, sigma = eight_gaussian_centres(), 0.1
    # 6 of the 8 modes get samples (mode 5 only a few), plus uniform junk over the box
    counts = [300, 300, 300, 300, 300, 5, 0, 0]
    x = np.concatenate([c + sigma * rng.normal(size=(k, 2)) for c, k in zip(centres, counts)]
                       + [rng.uniform(-3, 3, size=(500, 2))])
    hit, good = mode_coverage(x, centres, sigma)
    # brute force: nearest centre per sample, within 3σ, a mode counts with >= 1/32 of all samples
    near = [min(range(8), key=lambda k: np.linalg.norm(p - centres[k])) for p in x]
    within = [np.linalg.norm(p - centres[k]) < 3 * sigma for p, k in zip(x, near)]
    per_mode = [sum(w for w, k in zip(within, near) if k == m) for m in range(8)]
    assert good == pytest.approx(np.mean(within))
    assert hit == sum(c >= len(x) / 32 for c in per_mode) == 5
    assert mode_coverage(x, centres, sigma, min_fraction=0.0)[0] == sum(c > 0 for c in per_mode)
    with pytest.raises(DataError, match="same d"):
        mode_coverage(x[:, :1], centres, sigma)
    with pytest.raises(DataError, match="NaN"):
        mode_coverage(np.full((3, 2), np.nan), centres, sigma)


class _Fixed(torch.nn.Module):
    """A 'model' whose samples are a fixed array (for the diagnostics' sampling path)."""

    def __init__(self, x):
        super().__init__()
        self.x = torch.as_tensor(x)

    def sample(self, n):
        return self.x[:n]


def test_mode_coverage_and_grid_divergence_diagnostics_wrap_the_functions():
    data = eight_gaussians(4000, np.random.default_rng(1), std=0.1)
    fake = eight_gaussians(3000, np.random.default_rng(2), std=0.1)[:, ::-1].copy()  # the ring, mirrored
    model = _Fixed(fake)
    values = ModeCoverage(eight_gaussian_centres(), 0.1, n=3000)(model)
    assert values == {"modes_hit": 8.0, "high_quality": pytest.approx(mode_coverage(fake, eight_gaussian_centres(),
                                                                                    0.1)[1])}
    grid = GridDivergence(data, bins=30, n=3000)
    kl, js = kl_js_from_samples(data, fake, bins=30, range=grid.range)
    assert grid.evaluate(model) == {"grid_kl": pytest.approx(kl), "grid_js": pytest.approx(js)}
    assert grid(model) == pytest.approx(js)  # the engine-monitor call
    assert [r["epoch"] for r in grid.history] == [1, 2]


def test_generator_grad_norm_matches_autograd_by_hand():
    torch.manual_seed(0)
    model = GAN(2, latent=3, hidden=(8,), preprocess="none")
    torch.manual_seed(5)
    got = generator_grad_norm(model, 64, loss="minimax")
    torch.manual_seed(5)
    z = torch.randn(64, 3)
    f = model.critic(model.generator(z))
    loss = torch.log1p(-torch.sigmoid(f)).mean()  # log(1 − D(G(z)))
    grads = torch.autograd.grad(loss, list(model.generator.parameters()))
    assert got == pytest.approx(float(torch.sqrt(sum((g**2).sum() for g in grads))), rel=1e-5)
    values = GeneratorGradNorms(n=64, seed=5)(model)
    assert values["grad_norm_minimax"] == pytest.approx(got, rel=1e-6)
    assert set(values) == {"grad_norm_minimax", "grad_norm_non_saturating"}


def test_per_epoch_diagnostics_are_logged_in_metrics_csv(tmp_path):
    data = eight_gaussians(2000, np.random.default_rng(0), std=0.1).astype(np.float32)
    centres = eight_gaussian_centres()
    grid = GridDivergence(data, bins=20, n=1000)
    model = WGANGP(2, hidden=(16, 16), critic_steps=2)
    model.fit(data, epochs=3, batch_size=200, seed=0, quiet=True, run_dir=tmp_path / "run",
              diagnostics=[ModeCoverage(centres, 0.1, n=1000), grid])
    with open(tmp_path / "run" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3
    # everything the issue asks for per epoch: D and G losses, D(real), D(fake), generator gradient norm,
    # the Wasserstein estimate, mode coverage and the grid divergences
    for key in ("train_critic_loss", "train_generator_loss", "train_critic_d_real", "train_critic_d_fake",
                "train_generator_grad_norm", "train_critic_wasserstein", "val_wasserstein", "val_modes_hit",
                "val_high_quality", "val_grid_kl", "val_grid_js"):
        assert all(np.isfinite(float(r[key])) for r in rows), key
    # the last row holds the final model's values, recomputed here independently
    torch.manual_seed(0)
    hit, good = mode_coverage(model.sample(1000).numpy(), centres, 0.1)
    assert float(rows[-1]["val_modes_hit"]) == hit and float(rows[-1]["val_high_quality"]) == pytest.approx(good)
    assert [float(r["val_grid_js"]) for r in rows] == pytest.approx([r["js"] for r in grid.history])
    assert model.history_[-1]["val_grid_kl"] == pytest.approx(grid.history[-1]["kl"])


def test_diagnostics_need_validation_events_and_distinct_names():
    data = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
    with pytest.raises(ConfigError, match="validation"):
        GAN(2, hidden=(8,)).fit(data, epochs=1, val_fraction=0, quiet=True,
                                diagnostics=[ModeCoverage(np.zeros((1, 2)), 1.0)])
    with pytest.raises(ConfigError, match="modes_hit"):
        GAN(2, hidden=(8,)).fit(data, epochs=1, quiet=True,
                                diagnostics=[ModeCoverage(np.zeros((1, 2)), 1.0), ModeCoverage(np.ones((1, 2)), 1.0)])


def test_critic_estimate_is_trained_by_the_engine_and_approaches_w1():
    from scipy.stats import wasserstein_distance

    from hepgen.gans.diagnostics import CriticEstimate, train_critic
    from hepgen.gans.networks import MLPCritic

    rng = np.random.default_rng(0)
    real = torch.tensor(rng.normal(size=(4096, 1)), dtype=torch.float32)
    exact = wasserstein_distance(rng.normal(size=200_000), 1.0 + 1.5 * rng.normal(size=200_000))
    estimate = train_critic(MLPCritic(1, (32, 32)), real, lambda n: 1.0 + 1.5 * torch.randn(n, 1), loss="wgan-gp",
                            steps=300, lr=5e-3, device="cpu")
    assert estimate == pytest.approx(exact, rel=0.15)
    # the loop is the engine's: epochs of the real events (300 steps of 256 = 19 epochs of 16 batches), history_
    model = CriticEstimate(MLPCritic(1, (8,)), real[:1000] + 2.0, loss="wgan", clip=0.05)
    model.fit(real, epochs=3, batch_size=256, lr=1e-3, quiet=True, device="cpu")
    assert [row["epoch"] for row in model.history_] == [1, 2, 3] and "train_loss" in model.history_[0]
    assert all(float(p.detach().abs().max()) <= 0.05 + 1e-7 for p in model.critic.parameters())  # clipped at the end
    assert model.estimate(real) > 0  # the critic scores real events above the shifted fake ones
    with pytest.raises(ConfigError, match="features="):
        CriticEstimate(MLPCritic(1, (8,)), lambda n: torch.randn(n, 1))
