"""Disentangled latents on images whose generative factors are known: Gaussian blobs on a 12 x 12 grid whose
horizontal position p and width w are drawn at random, encoded by a VAE whose (linear) encoder is set by hand to
μ0 = Σ x I (the centroid, ≈ p), μ1 = Σ y² I (the vertical variance, ≈ w²) and μ2 = 0 (an unused latent)."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

import hepgen
from hepgen.evaluate import disentanglement, latent_kl, latent_traversals
from hepgen.errors import ConfigError

SIDE = 12
COORD = np.arange(SIDE) - (SIDE - 1) / 2


def blobs(n, seed=0):
    """(images (n, SIDE*SIDE) normalised to Σ = 1, position (n,), width (n,))."""
    rng = np.random.default_rng(seed)
    p, w = rng.uniform(-2, 2, n), rng.uniform(0.8, 2.0, n)
    x, y = COORD[None, None, :], COORD[None, :, None]
    img = np.exp(-((x - p[:, None, None]) ** 2 + y**2) / (2 * w[:, None, None] ** 2))
    img /= img.sum(axis=(1, 2), keepdims=True)
    return img.reshape(n, -1), p, w


#: log σ of the three posteriors (constant in x)
LOG_SIGMA = np.array([-1.0, -0.5, 0.0])


def constructed_vae():
    model = hepgen.VAE(SIDE * SIDE, latent=3, hidden=(), decoder="gaussian-fixed", preprocess="none")
    xx, yy = np.meshgrid(COORD, COORD)  # xx[iy, ix] = x of the pixel, as the images are laid out
    weight = np.zeros((6, SIDE * SIDE))
    weight[0], weight[1] = xx.ravel(), (yy**2).ravel()
    bias = np.concatenate([np.zeros(3), LOG_SIGMA])
    enc = model.encoder_net[0]
    with torch.no_grad():
        enc.weight.copy_(torch.as_tensor(weight))
        enc.bias.copy_(torch.as_tensor(bias))
    return model.eval(), weight, bias


def test_matrices_match_a_hand_computation_for_the_constructed_encoder():
    images, p, w = blobs(3000)
    model, weight, bias = constructed_vae()
    analysis = disentanglement(model, images, {"position": p, "width": w}, top_k=2)
    z = images @ weight[:3].T + bias[:3]  # the encoder by hand
    np.testing.assert_allclose(analysis.codes, z, atol=1e-5)
    factors = np.column_stack([p, w])
    pearson = np.corrcoef(np.column_stack([z[:, :2], factors]), rowvar=False)[:2, 2:]
    m = analysis.matrices
    np.testing.assert_allclose(m.pearson[:2], pearson, atol=1e-5)
    assert np.all(m.pearson[2] == 0) and np.all(m.mi[2] == 0)  # the unused latent is constant
    spearman = spearmanr(np.column_stack([z[:, :2], factors])).statistic[:2, 2:]
    np.testing.assert_allclose(m.spearman[:2], spearman, atol=1e-5)
    # the centroid is the position and the vertical variance a monotone function of the width
    assert m.pearson[0, 0] > 0.99 and m.spearman[1, 1] > 0.99 and abs(m.pearson[0, 1]) < 0.1
    assert m.summary["position"]["best_latent"] == "z0" and m.summary["width"]["best_latent"] == "z1"
    assert m.summary["position"]["mig"] > 0.5 and m.summary["width"]["mig"] > 0.5
    assert m.mi[0, 0] > 1.5 and m.mi[1, 0] < 0.05 and m.mi[0, 1] < 0.05


def test_kl_ranking_and_traversals_by_hand():
    images, p, w = blobs(500, seed=1)
    model, weight, bias = constructed_vae()
    mu = images @ weight[:3].T
    sigma = np.exp(LOG_SIGMA)
    kl = (0.5 * (mu**2 + sigma**2 - 1 - 2 * LOG_SIGMA)).mean(axis=0)
    np.testing.assert_allclose(latent_kl(model, images), kl, rtol=1e-5, atol=1e-7)
    analysis = disentanglement(model, images, top_k=2, steps=5, span=2.0)
    np.testing.assert_allclose(analysis.kl, kl, rtol=1e-5, atol=1e-7)
    assert analysis.order == list(np.argsort(-kl)) and analysis.order[-1] == 2 and analysis.matrices is None
    scale = np.sqrt(mu.var(axis=0) + sigma**2)
    np.testing.assert_allclose(analysis.scale, scale, rtol=1e-5)
    t = np.linspace(-2, 2, 5)
    dec = model.decoder_net.net[0]
    for r, l in enumerate(analysis.traversed):
        codes = np.repeat(mu.mean(axis=0)[None], 5, axis=0)
        codes[:, l] += t * scale[l]
        np.testing.assert_allclose(analysis.values[r], codes[:, l], rtol=1e-5)
        by_hand = codes @ dec.weight.detach().double().numpy().T + dec.bias.detach().double().numpy()
        np.testing.assert_allclose(analysis.traversals[r], by_hand, atol=1e-4)
    assert analysis.traversals.shape == (2, 5, SIDE * SIDE)
    metrics = analysis.metrics()
    assert metrics["latents_by_kl"] == [f"z{l}" for l in analysis.order] and metrics["traversal"]["span_sigma"] == 2.0


def test_refusals():
    images, p, _ = blobs(50)
    with pytest.raises(ConfigError, match="need a VAE"):
        disentanglement(hepgen.Autoencoder(SIDE * SIDE), images)
    model, _, _ = constructed_vae()
    with pytest.raises(ConfigError, match="latent 5 does not exist"):
        latent_traversals(model, [5], np.zeros(3), np.ones(3))
    with pytest.raises(Exception, match="49 rows of quantities for 50 events"):
        disentanglement(model, images, p[:49])


def test_a_conditional_vae_is_traversed_at_the_mean_context():
    rng = np.random.default_rng(3)
    c = rng.uniform(1, 3, (200, 1))
    x = rng.normal(size=(200, 3)) * c
    model = hepgen.VAE(3, latent=2, hidden=(8,), context=1).fit(x, context=c, epochs=1, quiet=True)
    analysis = disentanglement(model, x, context=c, top_k=1, steps=3)
    codes = np.repeat(analysis.mean[None], 3, axis=0)
    codes[:, analysis.traversed[0]] = analysis.values[0]
    expected = model.decode(codes, np.full((1, 1), c.mean())).double().numpy()
    np.testing.assert_allclose(analysis.traversals[0], expected, rtol=1e-5, atol=1e-6)
    mu, _ = model.posterior(x, c)
    np.testing.assert_allclose(analysis.codes, mu.double().numpy(), atol=1e-6)
