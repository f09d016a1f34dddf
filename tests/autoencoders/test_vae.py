"""VAEs on probabilistic PCA, where log p(x) and the exact posterior have closed forms.

    z ~ N(0, I₂),  u = W z + b + σ ε,  x = shift + scale ⊙ u   (standard preprocessing maps x back to u)
    p(u) = N(b, W Wᵀ + σ² I),  p(z|u) = N(M⁻¹ Wᵀ (u − b), σ² M⁻¹),  M = Wᵀ W + σ² I

With orthogonal columns of W the posterior is diagonal, so a linear VAE can hold the exact model.
"""

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from hepgen.autoencoders.vae import VAE, ConvVAE
from hepgen.errors import ConfigError, DataError

torch.set_num_threads(1)
D, L, SIGMA = 5, 2, 0.5
SINGULAR = np.array([2.0, 1.2])


@pytest.fixture(scope="module")
def ppca():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    W, b = q[:, :L] * SINGULAR, rng.normal(size=D)
    shift, scale = rng.normal(size=D), rng.uniform(0.5, 3, size=D)
    u = rng.normal(size=(6000, L)) @ W.T + b + SIGMA * rng.normal(size=(6000, D))
    x = shift + scale * u
    cov_x = np.diag(scale) @ (W @ W.T + SIGMA**2 * np.eye(D)) @ np.diag(scale)
    truth = multivariate_normal(shift + scale * b, cov_x).logpdf(x)
    return dict(W=W, b=b, shift=shift, scale=scale, x=x, truth=truth)


def exact_vae(p, dmu=0.0, dlog_sigma=0.0):
    """A float64 linear VAE holding the PPCA model; the encoder is the exact posterior shifted by (dmu, dlog σ)."""
    vae = VAE(D, L, hidden=(), decoder="gaussian-fixed", decoder_sigma=SIGMA, preprocess="standard").double()
    vae.preprocessor.shift.copy_(torch.as_tensor(p["shift"]))
    vae.preprocessor.scale.copy_(torch.as_tensor(p["scale"]))
    m_inv = 1 / (SINGULAR**2 + SIGMA**2)
    A = m_inv[:, None] * p["W"].T
    with torch.no_grad():
        enc, dec = vae.encoder_net[0], vae.decoder_net.net[0]
        enc.weight.zero_()
        enc.weight[:L] = torch.as_tensor(A)
        enc.bias[:L] = torch.as_tensor(-A @ p["b"] + dmu)
        enc.bias[L:] = torch.as_tensor(0.5 * np.log(SIGMA**2 * m_inv) + dlog_sigma)
        dec.weight.copy_(torch.as_tensor(p["W"]))
        dec.bias.copy_(torch.as_tensor(p["b"]))
    return vae, A, m_inv


def test_with_the_exact_posterior_every_importance_weight_is_log_p(ppca):
    vae, _, _ = exact_vae(ppca)
    x, truth = ppca["x"][:1000], ppca["truth"][:1000]
    np.testing.assert_allclose(vae.log_prob_iwae(x, k=1).numpy(), truth, atol=1e-9)
    vae.rows_per_pass = 13  # chunked scoring gives the same numbers
    np.testing.assert_allclose(vae.log_prob(x, k=3).numpy(), truth, atol=1e-9)
    # the ELBO estimate is unbiased around log p (KL(q ‖ posterior) = 0)
    elbo = vae.elbo(x, k=64).numpy()
    assert abs((elbo - truth).mean()) < 4 * (elbo - truth).std() / math.sqrt(len(x))


def test_elbo_below_iwae_below_log_p_and_iwae_converges_with_k(ppca):
    dmu, dls = 0.7, 0.6
    vae, A, m_inv = exact_vae(ppca, dmu, dls)
    x, truth = ppca["x"][:1000], ppca["truth"][:1000]
    # the exact ELBO gap: KL(q(z|x) ‖ p(z|x)) between two diagonal Gaussians differing by (dmu, dls)
    post_var = SIGMA**2 * m_inv
    kl_gap = np.sum(dls * -1 + 0.5 * (np.exp(2 * dls) * post_var + dmu**2) / post_var - 0.5)
    gaps = {}
    for k in (1, 8, 64, 1024):
        elbo, iwae = vae._bounds_all(x, None, k, seed=k)
        g_iwae, g_elbo = (iwae.detach().numpy() - truth), (elbo.detach().numpy() - truth)
        se = g_iwae.std() / math.sqrt(len(x))
        gaps[k] = g_iwae.mean()
        assert g_iwae.mean() < 3 * se  # IWAE <= log p(x) on average
        assert abs(g_elbo.mean() + kl_gap) < 4 * g_elbo.std() / math.sqrt(len(x)) + 0.02, (g_elbo.mean(), kl_gap)
        assert g_elbo.mean() <= g_iwae.mean() + 3 * se
    assert gaps[1] < gaps[8] < gaps[64] < gaps[1024]
    assert abs(gaps[1024]) < 0.05 and gaps[1] < -5  # from a 7-nat gap to within 0.05 nats


def test_trained_vae_reaches_the_true_likelihood(ppca):
    x, truth = ppca["x"].astype(np.float32), ppca["truth"]
    vae = VAE(D, L, hidden=(32,), decoder="gaussian")
    vae.fit(x[:5000], epochs=40, lr=1e-2, batch_size=128, scheduler="cosine", seed=0, quiet=True,
            val_fraction=0.0, monitor=None)
    assert set(vae.history_[-1]) >= {"train_loss", "train_recon", "train_kl"}
    iwae = vae.log_prob_iwae(x[5000:], k=256).double().numpy() - truth[5000:]
    elbo = vae.elbo(x[5000:], k=64).double().numpy() - truth[5000:]
    se = iwae.std() / math.sqrt(len(iwae))
    assert -0.05 < iwae.mean() < 3 * se, iwae.mean()
    assert elbo.mean() <= iwae.mean() + 3 * se


def test_training_loss_is_recon_plus_beta_kl_and_scores_are_minus_elbo(ppca):
    torch.manual_seed(0)  # the weights: the test must not depend on which tests ran before it
    vae = VAE(D, L, hidden=(8,), beta=0.3)
    vae.preprocessor.fit(ppca["x"][:500])
    u = vae.preprocessor(torch.as_tensor(ppca["x"][:50], dtype=torch.float32))
    losses = vae.training_losses({"x": u, "w": torch.ones(50)})
    torch.testing.assert_close(losses["loss"], losses["recon"] + 0.3 * losses["kl"])
    assert all(v.shape == (50,) for v in losses.values())
    out = vae.score_outputs(ppca["x"][:50])
    torch.testing.assert_close(out["score"], -out["elbo"])
    torch.testing.assert_close(vae.score(ppca["x"][:50]), vae.score(ppca["x"][:50]))  # seeded: deterministic
    # the ELBO uses the closed-form KL, the IWAE sampled weights: Jensen's ELBO <= IWAE holds in expectation,
    # not per event, so compare the means over events (the gap, 0.86 nats here, is far above the MC error)
    gap = (out["log_prob_iwae"] - out["elbo"]).mean()
    assert gap > 0.5, gap


def test_prior_samples_decode_standard_normal_latents(ppca):
    vae, _, _ = exact_vae(ppca)
    torch.manual_seed(0)
    means = vae.sample(20_000).numpy()
    draws = vae.sample(20_000, mean=False).numpy()
    cov_means = np.diag(ppca["scale"]) @ ppca["W"] @ ppca["W"].T @ np.diag(ppca["scale"])
    cov_full = np.cov(ppca["x"], rowvar=False)
    assert np.linalg.norm(np.cov(means, rowvar=False) - cov_means) / np.linalg.norm(cov_means) < 0.05
    assert np.linalg.norm(np.cov(draws, rowvar=False) - cov_full) / np.linalg.norm(cov_full) < 0.05
    mu, sigma = vae.posterior(ppca["x"][:3])
    assert mu.shape == sigma.shape == (3, L) and torch.all(sigma > 0)


def test_bernoulli_decoder_refuses_training_data_outside_the_unit_interval():
    x = np.random.default_rng(0).normal(size=(64, 4, 4)).astype(np.float32)
    vae = ConvVAE((4, 4), latent=2, channels=(4,), decoder="bernoulli", preprocess="none")
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        vae.fit(x, epochs=1, quiet=True)
    with pytest.raises(ConfigError, match="decoder"):
        VAE(3, 2, decoder="poisson")


def test_inference_is_plain_and_rsample_gradients_match_the_closed_form():
    """A linear decoder mean x = W z + b with z ~ N(0, I): E‖x‖² = ‖b‖² + ‖W‖²_F, gradients 2b and 2W;
    the reparameterised Monte Carlo gradient over 200k prior draws agrees within its statistical error."""
    torch.manual_seed(0)
    vae = VAE(3, 2, hidden=(), decoder="gaussian-fixed", preprocess="none").double()
    linear = [m for m in vae.decoder_net.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linear) == 1
    W, b = linear[0].weight, linear[0].bias
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    for out in (vae.log_prob(x, k=4), vae.score(x), vae.sample(5), vae.encode(x), vae.reconstruct(x),
                vae.decode(torch.zeros(2, 2))):
        assert out.requires_grad is False
    (gx,) = torch.autograd.grad(vae.log_prob(x, k=4, grad=True).sum(), x)
    assert torch.isfinite(gx).all() and gx.abs().sum() > 0
    draws = vae.rsample(200_000)
    assert draws.requires_grad
    gW, gb = torch.autograd.grad(draws.square().sum(-1).mean(), (W, b))
    torch.testing.assert_close(gb, 2 * b.detach(), rtol=0, atol=0.03)
    torch.testing.assert_close(gW, 2 * W.detach(), rtol=0, atol=0.03)
    z = torch.randn(4, 2, dtype=torch.float64)
    torch.testing.assert_close(vae.rsample(4, z=z).detach(), vae.decode(z))
