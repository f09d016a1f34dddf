"""Anomaly detection with autoencoders: metrics equal scikit-learn's, scores equal the model's, the CLI writes them."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

import hepgen
from hepgen.autoencoders.ae import Autoencoder
from hepgen.autoencoders.anomaly import anomaly_metrics, evaluate_detector, feature_breakdown, jet_images
from hepgen.autoencoders.vae import VAE
from hepgen.cli import main
from hepgen.data import io
from hepgen.data.generators.jets import load_sample, shipped_sample_path
from hepgen.errors import ConfigError, DataError

FIT = dict(val_fraction=0.0, monitor=None, quiet=True)


def manifold(n, rng, off=None):
    """6-D events on a 2-D curved manifold; ``off`` (index, size) pushes one feature off it."""
    z = rng.normal(size=(n, 2))
    x = np.stack([z[:, 0], z[:, 1], np.sin(z[:, 0]), z[:, 0] * z[:, 1], np.cos(z[:, 1]), z[:, 0] - z[:, 1]], axis=1)
    x += 0.05 * rng.normal(size=x.shape)
    if off is not None:
        x[:, off[0]] += off[1] * rng.choice([-1.0, 1.0], size=n)
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def detector():
    rng = np.random.default_rng(0)
    background = manifold(3000, rng)
    ae = Autoencoder(6, 2, hidden=(32, 32))
    ae.fit(background[:2500], epochs=25, lr=3e-3, batch_size=128, scheduler="cosine", seed=0, **FIT)
    return ae, background[2500:], manifold(500, rng, off=(3, 1.5))


def test_jet_images_are_pooled_pt_fractions():
    img = load_sample("top")["images"][:20].astype(np.float64)
    out = jet_images(img, pool=2)
    assert out.shape == (20, 20, 20) and out.dtype == np.float32
    manual = np.zeros((20, 20, 20))
    for n in range(20):
        for i in range(40):
            for j in range(40):
                manual[n, i // 2, j // 2] += img[n, i, j] / img[n].sum()
    np.testing.assert_allclose(out, manual, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(jet_images(img, intensity="sqrt"), np.sqrt(img / img.sum((1, 2), keepdims=True)),
                               rtol=1e-5, atol=1e-9)
    with pytest.raises(ConfigError, match="divisor"):
        jet_images(img, pool=3)
    with pytest.raises(DataError, match="no positive pT"):
        jet_images(np.zeros((2, 4, 4)))


def test_anomaly_metrics_equal_scikit_learn_with_weights():
    rng = np.random.default_rng(1)
    bg, sig = rng.normal(size=700), rng.normal(0.8, 1.3, size=400)
    wb, ws = rng.uniform(0.5, 2, size=700), rng.uniform(0.5, 2, size=400)
    res = anomaly_metrics(bg, {"sig": sig}, background_weights=wb, signal_weights={"sig": ws})
    y = np.r_[np.zeros(700), np.ones(400)]
    s, w = np.r_[bg, sig], np.r_[wb, ws]
    assert res.metrics["sig"]["auc"] == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-12)
    fpr, tpr, _ = sk_roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    keep = fpr > 10 / (wb.sum() ** 2 / np.sum(wb**2))
    assert res.metrics["sig"]["max_sic"] == pytest.approx(np.max(tpr[keep] / np.sqrt(fpr[keep])), rel=1e-12)
    np.testing.assert_allclose(res.curves["sig"][0], fpr)
    np.testing.assert_allclose(res.curves["sig"][1], tpr)
    with pytest.raises(ConfigError, match="signal"):
        anomaly_metrics(bg, {})


def test_bootstrap_auc_uncertainty_matches_hanley_mcneil():
    rng = np.random.default_rng(4)
    bg, sig = rng.normal(size=800), rng.normal(1.0, 1.0, size=500)
    m = anomaly_metrics(bg, {"sig": sig}, bootstrap=300).metrics["sig"]
    a, n_s, n_b = m["auc"], len(sig), len(bg)
    q1, q2 = a / (2 - a), 2 * a**2 / (1 + a)
    se = np.sqrt((a * (1 - a) + (n_s - 1) * (q1 - a**2) + (n_b - 1) * (q2 - a**2)) / (n_s * n_b))
    assert 0.8 * se < m["auc_std"] < 1.25 * se, (m["auc_std"], se)
    assert m["max_sic_std"] > 0


def test_detector_scores_are_the_models_and_find_off_manifold_events(detector):
    ae, background, signal = detector
    res = evaluate_detector(ae, background, {"off": signal})
    np.testing.assert_array_equal(res.background_scores, ae.score(background).double().numpy())
    np.testing.assert_array_equal(res.signal_scores["off"], ae.score(signal).double().numpy())
    labels = np.r_[np.zeros(len(background)), np.ones(len(signal))]
    scores = np.r_[res.background_scores, res.signal_scores["off"]]
    assert res.metrics["off"]["auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    # events pushed off the 2-D manifold: the AE beats the best single-feature cut |x_j - mean_j|
    one_feature = max(roc_auc_score(labels, np.abs(np.r_[background, signal][:, j] - background[:, j].mean()))
                      for j in range(background.shape[1]))
    assert res.metrics["off"]["auc"] > max(0.95, one_feature + 0.05), (res.metrics, one_feature)
    assert res.metrics["off"]["rejection_at_eps_s_0.5"] > 20
    assert ae.training is False


def test_feature_breakdown_points_at_the_perturbed_feature(detector):
    ae, background, signal = detector
    w = np.random.default_rng(2).uniform(0.5, 2, size=len(signal))
    per = ae.score_outputs(signal)["score_per_feature"].double().numpy()
    breakdown = feature_breakdown(ae, signal, weights=w)
    np.testing.assert_allclose(breakdown, (w[:, None] * per).sum(0) / w.sum(), rtol=1e-10)
    assert int(np.argmax(breakdown - feature_breakdown(ae, background))) == 3
    with pytest.raises(DataError, match="weights"):
        feature_breakdown(ae, signal, weights=np.ones(3))


def test_vae_per_feature_scores_add_up_and_match_the_closed_form():
    """Linear VAE, fixed σ decoder: −E_q log N(u_d; (Wz + b)_d, σ²) = ((u − Wμ − b)_d² + Σ_l W_dl² s_l²)/(2σ²) + log σ + ½ log 2π."""
    rng = np.random.default_rng(3)
    vae = VAE(4, 2, hidden=(), decoder="gaussian-fixed", decoder_sigma=0.7, preprocess="none").double()
    with torch.no_grad():
        for p in vae.parameters():
            p.copy_(torch.as_tensor(rng.normal(scale=0.5, size=p.shape)))
    x = rng.normal(size=(50, 4))
    out = vae.score_outputs(x, k=20_000)
    mu, s = (t.numpy() for t in vae.posterior(x))
    W = vae.decoder_net.net[0].weight.detach().numpy()
    b = vae.decoder_net.net[0].bias.detach().numpy()
    exact = ((x - mu @ W.T - b) ** 2 + (s**2) @ (W**2).T) / (2 * 0.7**2) + np.log(0.7) + 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(out["score_per_feature"].numpy(), exact, rtol=0.03, atol=0.01)
    np.testing.assert_allclose(out["score"].numpy(), out["score_per_feature"].sum(1).numpy() + out["kl"].numpy(),
                               rtol=1e-12)


def test_cli_scores_shipped_jets_per_event_and_per_feature(tmp_path, capsys):
    jets = shipped_sample_path()
    run = tmp_path / "run"
    code = main(["fit", "ae", f"{jets}:qcd/features", "--out", str(run), "--latent", "3", "--hidden", "16",
                 "--epochs", "2", "--seed", "0", "--quiet"])
    assert code == 0, capsys.readouterr().err
    code = main(["score", str(run), f"{jets}:top/features", "-o", str(tmp_path / "scores.h5")])
    assert code == 0, capsys.readouterr().err
    model = hepgen.load(run)
    top = load_sample("top")["features"]
    expected = model.score_outputs(top)
    score = io.read(f"{tmp_path / 'scores.h5'}:score").data.reshape(-1)
    per_feature = io.read(f"{tmp_path / 'scores.h5'}:score_per_feature").data
    assert score.shape == (2500,) and per_feature.shape == (2500, 11)
    np.testing.assert_allclose(score, model.score(top).numpy(), rtol=1e-6)
    np.testing.assert_allclose(per_feature, expected["score_per_feature"].numpy(), rtol=1e-6)
    np.testing.assert_allclose(per_feature.mean(1), score, rtol=1e-5)
