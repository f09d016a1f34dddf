"""The demo's autoencoder figures: the ConvAE beats PCA at equal latent size, and the summary is reproducible."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score

import hepgen
from hepgen.autoencoders.ae import ConvAutoencoder
from hepgen.cli import main
from hepgen.data import io


def test_conv_autoencoder_beats_pca_on_held_out_digits_at_equal_latent_size():
    digits = (load_digits().images / 16.0).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(digits))
    train, test = digits[order[400:]], digits[order[:400]]
    pca = PCA(4, svd_solver="full").fit(train.reshape(len(train), -1))
    flat = test.reshape(len(test), -1)
    pca_mse = np.mean((pca.inverse_transform(pca.transform(flat)) - flat) ** 2)
    ae = ConvAutoencoder((8, 8), 4, channels=(32, 64), preprocess="standard")
    ae.fit(train, epochs=12, batch_size=64, lr=3e-3, scheduler="cosine", seed=0, val_fraction=0.0, monitor=None,
           quiet=True)
    ae_mse = float(np.mean((ae.reconstruct(test).numpy() - test) ** 2))
    assert ae_mse < 0.85 * pca_mse, (ae_mse, pca_mse)


@pytest.mark.slow
def test_quick_figures_summary_is_reproduced_by_the_cli(tmp_path):
    from hepgen.demo.figures.autoencoders import autoencoder_figures

    summary = autoencoder_figures(tmp_path, quick=True)
    assert json.loads((tmp_path / "summary.json").read_text())["anomaly"] == json.loads(
        json.dumps(summary["anomaly"]))
    for path in summary["figures"].values():
        assert (tmp_path / path).stat().st_size > 10_000
    assert summary["digits"]["mse_conv_ae"] < summary["digits"]["mse_pca"]
    assert summary["jet_images"]["mse_conv_ae"] < summary["jet_images"]["mse_pca"]
    assert summary["anomaly"]["conv_ae_images"]["top"]["auc"] > 0.85
    # the saved run and data file give the same AUC through `hepgen score` and scikit-learn
    data = summary["data"]["jets"]
    run = summary["runs"]["conv_ae_jet_images"]
    for key in ("qcd_test", "top"):
        assert main(["score", run, f"{data}:{key}/images", "-o", str(tmp_path / f"{key}.h5")]) == 0
    bg = io.read(f"{tmp_path / 'qcd_test.h5'}:score").data.reshape(-1)
    sig = io.read(f"{tmp_path / 'top.h5'}:score").data.reshape(-1)
    w = io.read(f"{data}:top/weights").data.reshape(-1)
    auc = roc_auc_score(np.r_[np.zeros(len(bg)), np.ones(len(sig))], np.r_[bg, sig],
                        sample_weight=np.r_[np.ones(len(bg)), w])
    assert auc == pytest.approx(summary["anomaly"]["conv_ae_images"]["top"]["auc"], abs=1e-6)
    model = hepgen.load(run)
    np.testing.assert_allclose(sig, model.score(io.read(f"{data}:top/images").data).numpy(), rtol=1e-6)
