"""Every autoencoder survives save/load bit for bit, and the CLI fits, scores and samples them."""

import numpy as np
import pytest
import torch
import yaml

import hepgen
from hepgen.autoencoders.ae import Autoencoder, ConvAutoencoder, DenoisingAutoencoder
from hepgen.autoencoders.vae import VAE, ConvVAE
from hepgen.cli import main
from hepgen.data import io
from hepgen.models import model_class

torch.set_num_threads(1)
RNG = np.random.default_rng(0)
TABLE = RNG.normal(size=(300, 5)).astype(np.float32)
IMAGES = RNG.uniform(size=(120, 2, 6, 7)).astype(np.float32)
CONTEXT = RNG.normal(size=(300, 2)).astype(np.float32)

MODELS = {
    "ae": (lambda: Autoencoder(5, 2, hidden=(8,)), TABLE),
    "dae": (lambda: DenoisingAutoencoder(5, 2, hidden=(8,), noise="mask", mask_prob=0.1), TABLE),
    "conv-ae": (lambda: ConvAutoencoder((2, 6, 7), 3, channels=(4, 4, 8, 8, 8), downsample=1), IMAGES),
    "vae": (lambda: VAE(5, 2, hidden=(8, 4), decoder="gaussian"), TABLE),
    "conv-vae": (lambda: ConvVAE((2, 6, 7), 3, channels=(4, 8), decoder="bernoulli"), IMAGES),
    "vae-fixed": (lambda: VAE(5, 2, hidden=(8,), decoder="gaussian-fixed", decoder_sigma=0.4, beta=2.0), TABLE),
    "cvae": (lambda: VAE(5, 2, hidden=(8,), context=2), TABLE),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_save_load_round_trip_keeps_every_output(name, tmp_path):
    build, x = MODELS[name]
    model = build()
    ctx = CONTEXT[:len(x)] if model.context else None
    model.fit(x, context=ctx, epochs=2, batch_size=64, seed=1, quiet=True)
    assert model_class(model.cli_name) is type(model)
    model.save(tmp_path / "run")
    loaded = hepgen.load(tmp_path / "run")
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    c5 = None if ctx is None else ctx[:5]
    for method in ("encode", "reconstruct", "score"):
        a, b = getattr(model, method)(x[:5], c5), getattr(loaded, method)(x[:5], c5)
        assert a.dtype == torch.float32 and a.device.type == "cpu"
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    shapes = {k: tuple(v.shape) for k, v in model.score_outputs(x[:5], c5).items()}
    assert shapes["score"] == (5,) and all(s[0] == 5 for s in shapes.values())
    torch.manual_seed(3)
    s1 = model.sample(4, context=None if ctx is None else ctx[:1])
    torch.manual_seed(3)
    s2 = loaded.sample(4, context=None if ctx is None else ctx[:1])
    assert s1.shape == (4, *x.shape[1:]) and s1.dtype == torch.float32
    torch.testing.assert_close(s1, s2, rtol=0, atol=0)
    z = model.encode(x[:3], None if ctx is None else ctx[:3])
    assert z.shape == (3, model.latent)
    assert model.decode(z, None if ctx is None else ctx[:3]).shape == (3, *x.shape[1:])
    assert model.interpolate(x[:3], x[3:6], 4, None if ctx is None else ctx[:1]).shape == (3, 4, *x.shape[1:])


def test_models_move_to_another_device_and_dtype():
    model = VAE(5, 2, hidden=(8,))
    model.preprocessor.fit(TABLE)
    d = model.double()
    assert d.score(TABLE[:4]).dtype == torch.float64 and d.encode(TABLE[:4]).dtype == torch.float64
    if torch.cuda.is_available():  # pragma: no cover - exercised on GPU machines
        g = model.float().to("cuda")
        assert g.score(TABLE[:4]).device.type == "cuda"


def test_cli_fit_score_sample_an_autoencoder(tmp_path, capsys):
    data = tmp_path / "events.npy"
    np.save(data, TABLE)
    run = tmp_path / "run"
    code = main(["fit", "ae", str(data), "--out", str(run), "--latent", "3", "--hidden", "16,8", "--epochs", "3",
                 "--seed", "2", "--quiet"])
    assert code == 0, capsys.readouterr().err
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"] == "ae" and config["params"]["hidden"] == [16, 8] and config["params"]["latent"] == 3
    model = hepgen.load(run)
    assert bool(model.latent_fitted_)  # the latent Gaussian was fitted after training and saved
    code = main(["score", str(run), str(data), "-o", str(tmp_path / "scores.h5")])
    assert code == 0, capsys.readouterr().err
    score = io.read(f"{tmp_path / 'scores.h5'}:score").data
    per_feature = io.read(f"{tmp_path / 'scores.h5'}:score_per_feature").data
    np.testing.assert_allclose(score.reshape(-1), model.score(TABLE).numpy(), rtol=1e-6)
    np.testing.assert_allclose(per_feature.reshape(300, 5).mean(1), score.reshape(-1), rtol=1e-5)
    code = main(["sample", str(run), "-n", "50", "-o", str(tmp_path / "s.h5")])
    assert code == 0 and io.read(tmp_path / "s.h5").data.shape == (50, 5)


def test_cli_fits_a_conv_vae_on_images_and_refuses_tabular_data(tmp_path, capsys):
    images = tmp_path / "images.npy"
    np.save(images, IMAGES[:, 0])  # (N, H, W): one channel
    run = tmp_path / "run"
    code = main(["fit", "conv-vae", str(images), "--out", str(run), "--latent", "2", "--channels", "4,8",
                 "--epochs", "2", "--quiet"])
    assert code == 0, capsys.readouterr().err
    model = hepgen.load(run)
    assert model.shape == (6, 7) and model.decoder == "bernoulli"
    code = main(["score", str(run), str(images), "-o", str(tmp_path / "scores.npz")])
    assert code == 0
    scores = np.load(tmp_path / "scores.npz")
    np.testing.assert_allclose(scores["score"], -scores["elbo"])
    table = tmp_path / "table.npy"
    np.save(table, TABLE)
    code = main(["fit", "conv-ae", str(table), "--out", str(tmp_path / "bad")])
    assert code == 2 and "images" in capsys.readouterr().err
