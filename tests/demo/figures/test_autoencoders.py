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
    # the report's ROC/SIC figure (hepgen roc) is of the same scores as the anomaly figure
    assert (tmp_path / "roc" / "plots" / "roc_sic.png").stat().st_size > 10_000
    for p in ("top", "w"):
        for key in ("auc", "max_sic", "rejection_at_eps_s_0.5"):
            assert summary["roc"]["signals"][p][key] == pytest.approx(summary["anomaly"]["conv_ae_images"][p][key],
                                                                    rel=1e-9)
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


def test_anomaly_roc_report_figures_and_numbers_match_sklearn_on_the_same_scores(tmp_path):
    """The demo's ROC/SIC figure: a (briefly trained) ConvAE's scores through hepgen.report.roc, checked against
    scikit-learn's roc_auc_score / roc_curve on exactly those scores, and the mass-sculpting figure."""
    from sklearn.metrics import roc_curve

    from hepgen.autoencoders.anomaly import evaluate_detector
    from hepgen.demo.figures.autoencoders import anomaly_roc_report, jets_data

    data = jets_data(pool=2, seed=0)
    images, feats, weights = data["images"], data["features"], data["weights"]
    tr, te = data["qcd_train"][:400], data["qcd_test"][:400]
    model = ConvAutoencoder(images["qcd"].shape[1:], 4, channels=(8, 16), preprocess="standard")
    model.fit(images["qcd"][tr], epochs=1, batch_size=64, lr=3e-3, seed=0, val_fraction=0.0, monitor=None, quiet=True)
    sig = {p: images[p][:400] for p in ("top", "w")}
    sw = {p: weights[p][:400] for p in ("top", "w")}
    result = evaluate_detector(model, images["qcd"][te], sig, background_weights=weights["qcd"][te], signal_weights=sw)
    mass = feats["qcd"][te][:, 2].astype(np.float64)
    out = tmp_path / "roc"
    metrics = anomaly_roc_report(result, out, mass=mass, background_weights=weights["qcd"][te], signal_weights=sw,
                                 n_bootstrap=10)
    for name in ("plots/roc_sic.png", "plots/mass_sculpting.png"):
        assert (out / name).stat().st_size > 10_000
        assert (out / name).with_suffix(".pdf").stat().st_size > 1_000
    index = (out / "index.html").read_text()
    assert 'src="plots/roc_sic.png"' in index and 'src="plots/mass_sculpting.png"' in index
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    bg = model.score(images["qcd"][te]).double().numpy()
    np.testing.assert_allclose(result.background_scores, bg, rtol=1e-6)
    wb = weights["qcd"][te]
    for p in ("top", "w"):
        s = model.score(sig[p]).double().numpy()
        y, scores, w = np.r_[np.zeros(len(bg)), np.ones(len(s))], np.r_[bg, s], np.r_[wb, sw[p]]
        m = metrics["signals"][p]
        assert m["auc"] == pytest.approx(roc_auc_score(y, scores, sample_weight=w), abs=1e-9)
        assert m["auc_err"] is not None and 0 < m["auc_err"] < 0.1
        fpr, tpr, _ = roc_curve(y, scores, sample_weight=w, drop_intermediate=False)
        keep = fpr > 10.0 / (wb.sum() ** 2 / np.sum(wb**2))
        assert m["max_sic"] == pytest.approx(np.max(tpr[keep] / np.sqrt(fpr[keep])), rel=1e-9)
        eps_b_at_half = np.interp(0.5, tpr, fpr)  # tpr is non-decreasing; ties resolved to the lowest fpr below
        assert m["rejection_at_eps_s_0.5"] == pytest.approx(1 / eps_b_at_half, rel=0.02)
    # the QCD mass after the 10 % cut is what the score keeps
    cut = metrics["mass_sculpting"]["by_background_efficiency"]["0.1"]
    assert cut["efficiency"] == pytest.approx(np.sum(wb[bg >= cut["threshold"]]) / wb.sum(), abs=1e-9)
    assert cut["efficiency"] == pytest.approx(0.1, abs=0.01)
