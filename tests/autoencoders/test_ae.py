"""Deterministic autoencoders: the linear AE finds PCA, denoising works, scores and the latent Gaussian are exact."""

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

import hepgen
from hepgen.autoencoders.ae import Autoencoder, ConvAutoencoder, DenoisingAutoencoder
from hepgen.errors import ConfigError

torch.set_num_threads(1)
FIT = dict(val_fraction=0.0, monitor=None, quiet=True)


def low_rank_data(n=4000, seed=0):
    """8-D Gaussian, three large principal variances and five small ones, rotated and shifted."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    sd = np.sqrt([9, 5, 3, 0.4, 0.3, 0.2, 0.1, 0.05])
    return ((rng.normal(size=(n, 8)) * sd) @ q.T + rng.normal(size=8)).astype(np.float32)


@pytest.fixture(scope="module")
def linear_ae():
    x = low_rank_data()
    ae = Autoencoder(8, 3, hidden=(), preprocess="none")
    ae.fit(x, epochs=40, lr=1e-2, batch_size=128, scheduler="cosine", seed=0, **FIT)
    return ae, x


def test_linear_autoencoder_spans_the_pca_subspace(linear_ae):
    ae, x = linear_ae
    pca = PCA(3).fit(x)
    decoder_columns = ae.decoder_net.net[0].weight.detach().double().numpy()  # (8, 3)
    angles = subspace_angles(decoder_columns, pca.components_.T)
    assert angles.max() < 0.05, angles
    # and its reconstruction error is PCA's, the optimum of any rank-3 linear map
    pca_mse = np.mean((pca.inverse_transform(pca.transform(x)) - x) ** 2)
    ae_mse = float(ae.score(x).mean())
    assert pca_mse <= ae_mse * (1 + 1e-4) and ae_mse < 1.02 * pca_mse, (ae_mse, pca_mse)


def test_score_is_the_per_event_mse_and_chunking_does_not_change_it(linear_ae):
    ae, x = linear_ae
    out = ae.score_outputs(x[:300])
    u = ae.preprocessor(torch.as_tensor(x[:300]))
    manual = (ae.reconstruct(x[:300]) - u).square()  # preprocess "none": u = x
    torch.testing.assert_close(out["score_per_feature"], manual)
    torch.testing.assert_close(out["score"], manual.mean(1))
    torch.testing.assert_close(ae.score(x[:300]), manual.mean(1))
    ae.rows_per_pass = 7
    try:
        torch.testing.assert_close(ae.score(x[:300]), manual.mean(1))
    finally:
        del ae.rows_per_pass


def test_latent_gaussian_is_the_weighted_mean_and_covariance_of_the_codes(linear_ae):
    ae, x = linear_ae
    w = np.random.default_rng(1).uniform(0.2, 2.0, size=len(x))
    fresh = Autoencoder(8, 3, hidden=(), preprocess="none")
    fresh.load_state_dict(ae.state_dict())
    fresh.fit_latent(x, weights=w, chunk_size=777)
    z = fresh.encode(x).double().numpy()
    mean = np.average(z, axis=0, weights=w)
    cov = np.cov(z, rowvar=False, aweights=w, bias=True)
    np.testing.assert_allclose(fresh.latent_mean_.numpy(), mean, rtol=1e-4, atol=1e-4)
    L = fresh.latent_scale_tril_.double().numpy()
    np.testing.assert_allclose(L @ L.T, cov, rtol=1e-3, atol=1e-3)


def test_samples_from_the_latent_gaussian_have_the_covariance_of_the_pca_projection(linear_ae):
    ae, x = linear_ae
    pca = PCA(3).fit(x)
    projected = pca.inverse_transform(pca.transform(x))
    torch.manual_seed(0)
    s = ae.sample(40_000).double().numpy()
    assert s.shape == (40_000, 8)
    c_s, c_p = np.cov(s, rowvar=False), np.cov(projected, rowvar=False)
    assert np.linalg.norm(c_s - c_p) / np.linalg.norm(c_p) < 0.05
    np.testing.assert_allclose(s.mean(0), x.mean(0), atol=0.1)


def test_sampling_needs_the_latent_gaussian():
    with pytest.raises(ConfigError, match="fit_latent"):
        Autoencoder(4, 2).sample(3)


def test_interpolation_ends_at_the_reconstructions_and_passes_the_mean_code(linear_ae):
    ae, x = linear_ae
    a, b = x[:4], x[4:8]
    path = ae.interpolate(a, b, steps=5)
    assert path.shape == (4, 5, 8)
    torch.testing.assert_close(path[:, 0], ae.reconstruct(a))
    torch.testing.assert_close(path[:, -1], ae.reconstruct(b))
    torch.testing.assert_close(path[:, 2], ae.decode((ae.encode(a) + ae.encode(b)) / 2), rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="steps"):
        ae.interpolate(a, b, steps=1)


@pytest.mark.parametrize("noise", ["gaussian", "mask"])
def test_denoising_output_is_closer_to_the_clean_input_than_the_noisy_input(noise):
    rng = np.random.default_rng(3)
    z = rng.normal(size=(3000, 2))
    x = np.concatenate([z, np.sin(z), z[:, :1] * z[:, 1:], 0.5 * z], axis=1).astype(np.float32)  # 7-D, 2 dof
    dae = DenoisingAutoencoder(7, 2, hidden=(64, 64), noise=noise, sigma=0.5, mask_prob=0.2)
    dae.fit(x[:2500], epochs=30, lr=3e-3, batch_size=128, seed=0, **FIT)
    clean = torch.as_tensor(x[2500:])
    torch.manual_seed(1)
    noisy = dae.corrupt(clean)
    denoised = dae.reconstruct(noisy)
    scale = clean.std(0)  # compare in standardised units, as the model does
    err_noisy = (((noisy - clean) / scale) ** 2).mean()
    err_out = (((denoised - clean) / scale) ** 2).mean()
    assert err_out < 0.5 * err_noisy, (float(err_out), float(err_noisy))


def test_denoising_corruption_has_the_stated_strength():
    dae = DenoisingAutoencoder(5, 2, noise="mask", mask_prob=0.3, preprocess="none")
    torch.manual_seed(0)
    u = torch.ones(20_000, 5)
    masked = dae._corrupt(u)
    assert abs(float((masked == 0).float().mean()) - 0.3) < 0.01
    dae = DenoisingAutoencoder(5, 2, noise="gaussian", sigma=0.7, preprocess="none")
    assert abs(float((dae._corrupt(u) - u).std()) - 0.7) < 0.01
    with pytest.raises(ConfigError, match="noise"):
        DenoisingAutoencoder(5, 2, noise="salt")


def test_conv_autoencoder_on_two_dimensional_images_learns():
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[0:9, 0:7]
    centres = rng.uniform(1, 6, size=(600, 2))
    img = np.exp(-((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) / 3.0).astype(np.float32)
    ae = ConvAutoencoder((9, 7), latent=2, channels=(8, 16))
    ae.fit(img[:500], epochs=40, lr=3e-3, batch_size=50, seed=0, **FIT)
    recon = ae.reconstruct(img[500:])
    assert recon.shape == (100, 9, 7) and recon.dtype == torch.float32
    mse, var = float(((recon - torch.as_tensor(img[500:])) ** 2).mean()), float(img[500:].var())
    assert mse < 0.1 * var, (mse, var)  # two latent dof describe the blob positions


@pytest.mark.parametrize("family", ["conv-ae", "conv-vae"])
def test_conv_weights_are_channels_last_and_compute_what_the_nchw_layout_computes(family, tmp_path):
    from hepgen.autoencoders.vae import ConvVAE

    def build():
        if family == "conv-ae":
            return ConvAutoencoder((10, 10), latent=3, channels=(4, 8), preprocess="none")
        return ConvVAE((10, 10), latent=3, channels=(4, 8), decoder="gaussian-fixed", decoder_sigma=1.0,
                       preprocess="none")

    x = torch.rand(64, 10, 10)
    model = build().fit(x, epochs=1, batch_size=32, seed=0, **FIT)
    convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)  # kept by fit
    nchw = build().to(memory_format=torch.contiguous_format)
    nchw.load_state_dict(model.state_dict())
    assert all(m.weight.is_contiguous() for m in nchw.modules() if isinstance(m, torch.nn.Conv2d))
    u = model.to_internal(x)
    torch.testing.assert_close(model._code(u, None), nchw._code(u, None), rtol=1e-5, atol=1e-6)
    z = torch.randn(64, 3)
    torch.testing.assert_close(model._decoded(z, None), nchw._decoded(z, None), rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "run")
    loaded = hepgen.load(tmp_path / "run")
    torch.testing.assert_close(loaded._decoded(z, None), model._decoded(z, None))
