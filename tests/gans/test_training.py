"""What adversarial training must get right, checked numerically against independent answers.

* a near-perfect discriminator makes the saturating (minimax) generator gradient vanish, not the
  non-saturating one (Goodfellow et al. 2014, §3);
* against a generator that already equals the data the trained discriminator outputs ½ everywhere;
* a WGAN-GP critic trained between two 1-D Gaussians estimates W1 as scipy computes it;
* CycleGAN's cycle-consistency error falls below a stated threshold on a toy pair of domains;
* WGAN-GP covers the 8-Gaussian ring (see also benchmarks/gan_quality.py for longer runs).
* ``WGANGP(2)`` with its defaults forms the 6-mode ring of issues 11 and 25 on a short schedule, whatever the seed.

The discriminators are trained by the engine through ``GAN.fit`` with a generator held fixed
(``critic_steps`` beyond the number of batches, so the generator player never steps).
"""

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from hepgen.gans.cyclegan import CycleGAN
from hepgen.gans.diagnostics import GeneratorGradNorms, generator_grad_norm
from hepgen.gans.gan import GAN

NEVER = 10**9  # critic_steps: the generator player never steps


class GaussianSampler(nn.Module):
    """A fixed generator x̃ = m + s ⊙ z[:, :d] (exact samples of N(m, diag s²)); ``m`` is a parameter
    only so that the generator player has something to hold."""

    def __init__(self, mean, scale):
        super().__init__()
        self.mean = nn.Parameter(torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, z, context=None):
        return self.mean + self.scale * z[:, : len(self.mean)]


def _fixed_generator_gan(mean, scale, **params):
    # no EMA copy: the generator is replaced by a fixed sampler after construction
    model = GAN(len(mean), latent=len(mean), critic_steps=NEVER, preprocess="none", ema=0.0, **params)
    model.generator = GaussianSampler(mean, scale)
    return model


def test_saturating_generator_gradient_vanishes_against_a_near_perfect_discriminator():
    """Data N((3, 3), 0.5²) against a generator stuck at N(0, 0.5²): the trained discriminator separates
    them almost perfectly, so σ(D(x̃)) → 0. Per event the generator gradients are σ(f) ∂f/∂θ (minimax)
    and −(1 − σ(f)) ∂f/∂θ (non-saturating): the first collapses with σ(f), the second does not."""
    rng = np.random.default_rng(0)
    data = (3.0 + 0.5 * rng.normal(size=(2048, 2))).astype(np.float32)
    model = GAN(2, latent=2, hidden=(32, 32), loss="non-saturating", critic_steps=NEVER, preprocess="none", ema=0.0)
    model.generator = GaussianSampler([0.0, 0.0], [0.5, 0.5])
    # after every epoch the engine logs both generator losses' gradient norms against the current critic
    model.fit(data, epochs=12, batch_size=128, lr=3e-3, seed=0, quiet=True, val_fraction=0.1,
              diagnostics=[GeneratorGradNorms(("minimax", "non-saturating"), n=2048)])
    norms = [(r["val_grad_norm_minimax"], r["val_grad_norm_non_saturating"]) for r in model.history_]
    with torch.no_grad():
        torch.manual_seed(2)
        fake = model.generator(torch.randn(4096, 2))
        d_fake = torch.sigmoid(model.critic(fake)).numpy()
        d_real = torch.sigmoid(model.critic(torch.as_tensor(data))).numpy()
    assert d_fake.mean() < 1e-3 and d_real.mean() > 0.999  # the discriminator is near-perfect
    minimax, non_saturating = norms[-1]
    torch.manual_seed(0)  # the logged value is the diagnostic function's, recomputed here on the final critic
    assert generator_grad_norm(model, 2048, loss="minimax") == pytest.approx(minimax, rel=1e-4)
    assert minimax < 1e-3 * non_saturating  # the saturating gradient collapsed ...
    assert non_saturating > 0.5 * norms[0][1]  # ... the non-saturating one did not shrink
    assert norms[-1][0] < 0.05 * norms[0][0]  # the minimax gradient fell with the discriminator's progress


def test_discriminator_against_a_generator_equal_to_the_data_tends_to_one_half():
    """With p_G = p_data the optimal discriminator D* = p_data / (p_data + p_G) = ½ everywhere."""
    mean, scale = [1.0, -2.0], [0.5, 2.0]
    rng = np.random.default_rng(1)
    data = (np.array(mean) + np.array(scale) * rng.normal(size=(4096, 2))).astype(np.float32)
    model = _fixed_generator_gan(mean, scale, hidden=(32, 32), loss="non-saturating")
    model.fit(data, epochs=6, batch_size=256, lr=1e-3, seed=0, quiet=True, val_fraction=0)
    last = model.history_[-1]
    assert last["train_critic_d_real"] == pytest.approx(0.5, abs=0.02)
    assert last["train_critic_d_fake"] == pytest.approx(0.5, abs=0.02)
    # fresh events across the bulk of the distribution (within 2σ): σ(D) within 0.05 of ½ at every one
    probe = np.array(mean) + np.array(scale) * rng.uniform(-2, 2, size=(2000, 2))
    with torch.no_grad():
        d = torch.sigmoid(model.critic_output(probe.astype(np.float32))).numpy()
    assert np.abs(d - 0.5).max() < 0.05
    # the same training against a generator off by one σ in x0 does tell them apart (the check can fail)
    shifted = _fixed_generator_gan([1.5, -2.0], scale, hidden=(32, 32), loss="non-saturating")
    shifted.fit(data, epochs=6, batch_size=256, lr=1e-3, seed=0, quiet=True, val_fraction=0)
    with torch.no_grad():
        d_shift = torch.sigmoid(shifted.critic_output(probe.astype(np.float32))).numpy()
    assert np.abs(d_shift - 0.5).max() > 0.2


def test_wgan_gp_critic_estimates_the_wasserstein_distance_of_two_gaussians():
    """Data N(0, 1) against a generator N(½, 0.75²): E[D(x)] − E[D(x̃)] of the trained critic on fresh
    samples matches scipy.stats.wasserstein_distance of those samples (W1 ≈ 0.50) within 10%.

    The gradient penalty is a soft constraint: for a critic of slope k it trades k·W1 against
    λ (k − 1)², so the estimate sits near (1 + W1/2λ) W1, i.e. ~3% high here, inside the tolerance."""
    rng = np.random.default_rng(2)
    data = rng.normal(size=(4096, 1)).astype(np.float32)
    model = _fixed_generator_gan([0.5], [0.75], hidden=(64, 64), loss="wgan-gp", lr_critic=5e-3)
    model.fit(data, epochs=25, batch_size=256, seed=0, quiet=True, val_fraction=0)
    real = rng.normal(size=(50000, 1)).astype(np.float32)
    fake = (0.5 + 0.75 * rng.normal(size=(50000, 1))).astype(np.float32)
    with torch.no_grad():
        estimate = float(model.critic_output(real).mean() - model.critic_output(fake).mean())
    exact = stats.wasserstein_distance(real[:, 0], fake[:, 0])
    assert estimate == pytest.approx(exact, rel=0.10)
    # the logged per-epoch estimate (r − f on the training batches) agrees too
    assert model.history_[-1]["train_critic_wasserstein"] == pytest.approx(exact, rel=0.15)


def test_cyclegan_cycle_error_falls_below_threshold_on_a_toy_pair_of_domains():
    """A: a correlated 2-D Gaussian; B: A rotated by 60°, stretched and shifted (an invertible affine
    map, so an exact cycle exists). After training the mean cycle error |F(G(a)) − a|₁ in standardised
    units is below 0.05 in both directions, against ≈ 0.8 before training, and G(A) matches B's marginals."""
    rng = np.random.default_rng(3)
    a = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.6], [0.6, 1.0]], size=3000)
    angle = np.pi / 3
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    b = (rng.multivariate_normal([0.0, 0.0], [[1.0, 0.6], [0.6, 1.0]], size=3000) @ rot.T) * [2.0, 0.5] + [5.0, -1.0]
    a, b = a.astype(np.float32), b.astype(np.float32)
    torch.manual_seed(0)  # the initial weights, on which `before` is measured
    model = CycleGAN(2, hidden=(32, 32))
    model.preprocessor.fit(a)
    model.preprocessor_b.fit(b.astype(np.float64))
    before = float(model.cycle_error(a).mean())
    model.fit(a, streams={"b": b}, epochs=12, batch_size=128, lr=1e-3, seed=0, quiet=True, val_fraction=0)
    cycle_a, cycle_b = float(model.cycle_error(a).mean()), float(model.cycle_error(b, domain="b").mean())
    assert before > 0.6  # 0.81 with these weights (0.81 +- 0.01 over seeds)
    assert cycle_a < 0.05 and cycle_b < 0.05
    with torch.no_grad():
        translated = model.transform(a).numpy()
    for j in range(2):
        assert stats.wasserstein_distance(translated[:, j], b[:, j]) < 0.15 * b[:, j].std()


def _ring_fit(quick):
    from hepgen.data.generators.toys import eight_gaussian_centres, eight_gaussians
    from hepgen.demo.figures.gans import ring_settings
    from hepgen.gans.diagnostics import ModeCoverage, mode_coverage

    settings = ring_settings(quick=quick)
    sigma, centres = settings["sigma"], eight_gaussian_centres()
    data = eight_gaussians(settings["n"], np.random.default_rng(0), std=sigma).astype(np.float32)
    model = GAN(2, **settings["model"])
    model.fit(data, seed=0, quiet=True, val_fraction=0.05, diagnostics=[ModeCoverage(centres, sigma)],
              **settings["train"])
    torch.manual_seed(1)
    hit, good = mode_coverage(model.sample(20000).numpy(), centres, sigma)
    return model, hit, good


def test_uniform_ring_baseline_of_the_high_quality_fraction():
    """3σ discs are a meaningful bar on this ring: samples spread evenly along the circle of radius R = 2
    (no modes) put only 8 · 2θ / 2π ≈ 38% inside them, with θ = 2 arcsin(3σ / 2R) the half-angle of a disc."""
    from hepgen.data.generators.toys import eight_gaussian_centres
    from hepgen.gans.diagnostics import mode_coverage

    angle = np.random.default_rng(0).uniform(0, 2 * np.pi, 20000)
    ring = 2.0 * np.column_stack([np.cos(angle), np.sin(angle)])
    hit, good = mode_coverage(ring, eight_gaussian_centres(), 0.1)
    theta = 2 * np.arcsin(0.3 / 4.0)
    assert hit == 8 and good == pytest.approx(8 * 2 * theta / (2 * np.pi), abs=0.01)


def test_wgan_gp_covers_the_eight_gaussian_ring():
    """The issue's criterion on the ring of 8 Gaussians (σ = 0.1, radius 2): WGAN-GP hits 8/8 modes with
    >= 80% of its samples within 3σ of a mode (full schedule, ~60-70 s on one core, inside make test's
    budget; the benchmark runs it for several seeds). The per-epoch trajectory comes from the
    ModeCoverage diagnostic in history_."""
    model, hit, good = _ring_fit(quick=False)
    assert hit == 8 and good >= 0.8
    assert model.history_[-1]["val_modes_hit"] == 8


def _six_mode_ring(n, seed, rotation=0.0):
    """The ring of issues 11 and 25 (benchmarks/gan_quality.py, ring6 and seeds): six N(c_k, 0.1² I) at radius
    3, turned by ``rotation``: (6, 2), (n, 2)."""
    angle = 2 * np.pi * np.arange(6) / 6 + rotation
    centres = 3.0 * np.column_stack([np.cos(angle), np.sin(angle)])
    rng = np.random.default_rng(seed)
    return centres, (centres[rng.integers(0, 6, n)] + 0.1 * rng.standard_normal((n, 2))).astype(np.float32)


def _six_mode_ring_fit(seed, **params):
    from hepgen.gans.diagnostics import ModeCoverage, mode_coverage
    from hepgen.gans.gan import WGANGP

    centres, data = _six_mode_ring(20000, 0, rotation=0.3)
    model = WGANGP(2, **params)
    model.fit(data, epochs=30, lr=5e-4, seed=seed, quiet=True, val_fraction=0.05,
              diagnostics=[ModeCoverage(centres, 0.1, n=2000)])
    torch.manual_seed(seed)
    hit, good = mode_coverage(model.sample(20000).numpy(), centres, 0.1)
    return model, hit, good


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wgan_gp_defaults_form_the_six_mode_ring_whatever_the_seed(seed):
    """Issue 25: ``WGANGP(2)`` with its defaults on the rotated 6-mode ring (σ = 0.1, radius 3, 20k events,
    lr 5e-4), 30 of the issue's 100 epochs (~450 generator steps, ~20 s on one core per seed): all 6 modes
    and >= 30% of the samples within 3σ on every seed. With the penalty λ = 10 of the defaults before
    issue 25 (``gp_weight=10``) seeds 0 and 1 had formed no mode by epoch 30 (3% and 2% within 3σ; seed 2:
    6 modes, 50%), because in standardised units λ = 10 outweighs the Wasserstein term (see GAN's
    docstring); λ = 5: 6 modes on each seed, 56, 61 and 47%. The per-epoch ModeCoverage diagnostic sees the
    modes too."""
    model, hit, good = _six_mode_ring_fit(seed)
    assert hit == 6 and good >= 0.3
    assert model.history_[-1]["val_modes_hit"] == 6
