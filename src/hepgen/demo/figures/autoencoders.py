"""The autoencoder figures of the demo: AE vs PCA, latent interpolations, samples, anomaly detection.

One entry point, :func:`autoencoder_figures`, trains every model it shows (seeded) and writes

* ``reconstructions_digits.png``, ``reconstructions_jets.png``: originals vs ConvAE vs PCA with the
  same latent size on held-out events, both test MSEs in the title (scikit-learn's 8×8 digits; the
  shipped QCD jet images as pT fractions, 2×2-pooled to 20×20 in quick mode, 40×40 otherwise);
* ``interpolation.png``: ξ(α) = g((1 − α) f(x) + α f(x′)) for digit pairs (ConvAE and ConvVAE) and
  for QCD → top jet pairs (the QCD-trained ConvAE);
* ``samples.png``: ConvVAE prior samples next to ConvAE samples from a Gaussian fitted to the
  training codes (the classic failure that motivates the VAE) and real digits;
* ``anomaly.png``, ``anomaly_breakdown.png``: a ConvAE on QCD jet images and a dense AE on the 11
  high-level jet features, both trained on QCD only, scoring top and W jets: 1/ε_B and
  SIC = ε_S/√ε_B against ε_S, score distributions, and the per-feature (per-pixel) error breakdown;
* ``roc/``: the ConvAE's scores through :func:`hepgen.report.roc.roc_report` (what ``hepgen roc``
  writes): ``plots/roc_sic.png`` (1/ε_B and SIC against ε_S), ``plots/mass_sculpting.png`` (the QCD jet mass
  after cuts at fixed ε_B), ``metrics.json`` with bootstrap errors and ``index.html``.

It returns (and writes to ``summary.json``) the test MSEs, the anomaly figures of merit (AUC, max
SIC, 1/ε_B at ε_S = 0.3 and 0.5), and the paths of the figures, the saved runs and the data files,
so that ``hepgen score RUN DATA -o scores.h5`` reproduces the scores from the command line.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.nn.rng import seeded
from hepgen.report.folder import write_json

#: training budgets; quick mode must run in about a minute and a half on one core
SETTINGS: dict[bool, dict[str, Any]] = {
    True: {"pool": 2, "digits_epochs": 15, "vae_epochs": 30, "jet_epochs": 20, "feature_epochs": 30},
    False: {"pool": 1, "digits_epochs": 40, "vae_epochs": 80, "jet_epochs": 40, "feature_epochs": 80},
}
LATENT = 4  # the latent size shared by every ConvAE / PCA comparison and the anomaly detectors
TRAIN = {"batch_size": 64, "lr": 3e-3, "scheduler": "cosine", "val_fraction": 0.0, "monitor": None, "quiet": True}


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def _split(n: int, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def _pca_mse(train: np.ndarray, test: np.ndarray, latent: int) -> tuple[float, np.ndarray]:
    """Test MSE of a rank-``latent`` PCA fitted on ``train`` and its reconstructions of ``test``."""
    from sklearn.decomposition import PCA

    pca = PCA(latent, svd_solver="full").fit(train.reshape(len(train), -1))
    rec = pca.inverse_transform(pca.transform(test.reshape(len(test), -1))).reshape(test.shape)
    return float(np.mean((rec - test) ** 2)), rec


def _mse(model, test: np.ndarray) -> tuple[float, np.ndarray]:
    rec = model.reconstruct(test).cpu().numpy()
    return float(np.mean((rec - test) ** 2)), rec


# -- drawing ---------------------------------------------------------------------------------------
def _tile(rows: list[np.ndarray], flip: bool) -> np.ndarray:
    """Images (R rows of (C, H, W)) -> one (R(H+1)−1, C(W+1)−1) array separated by NaN lines."""
    r, c = len(rows), len(rows[0])
    h, w = rows[0].shape[-2:]
    out = np.full((r * (h + 1) - 1, c * (w + 1) - 1), np.nan)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            out[i * (h + 1):i * (h + 1) + h, j * (w + 1):j * (w + 1) + w] = img[::-1] if flip else img
    return out


def _show(ax, rows: list[np.ndarray], labels: list[str], *, jets: bool, vmax: float | None = None,
          column_labels: list[str] | None = None) -> None:
    import matplotlib
    from matplotlib.colors import Normalize, PowerNorm

    cmap = matplotlib.colormaps["viridis" if jets else "Greys"].with_extremes(bad="white")
    tile = _tile(rows, flip=jets)
    top = vmax if vmax is not None else float(np.nanmax(tile))
    norm = PowerNorm(0.5, vmin=0.0, vmax=top, clip=True) if jets else Normalize(0.0, top, clip=True)
    ax.imshow(np.clip(tile, 0.0, None), cmap=cmap, norm=norm, interpolation="nearest")
    h, w = rows[0][0].shape[-2:]
    ax.set_yticks([i * (h + 1) + (h - 1) / 2 for i in range(len(rows))], labels, fontsize="small")
    if column_labels is not None:
        ax.set_xticks([j * (w + 1) + (w - 1) / 2 for j in range(len(column_labels))], column_labels,
                      fontsize="x-small")
    else:
        ax.set_xticks([])
    ax.tick_params(length=0)
    ax.minorticks_off()
    for side in ax.spines.values():
        side.set_visible(False)


def _figure(width: float, height: float, rows: int = 1, cols: int = 1, **kw):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False, **kw)


def _reconstruction_figure(path: Path, originals: np.ndarray, ae: np.ndarray, pca: np.ndarray, *, jets: bool,
                           title: str) -> Path:
    import matplotlib.style

    from hepgen.report.plots import STYLE, save_figure

    with matplotlib.style.context(STYLE):
        n = len(originals)
        fig, axes = _figure(1.1 * n + 1.5, 4.2)
        vmax = float(originals.max()) if jets else 1.0
        _show(axes[0, 0], [originals, ae, pca], ["original", "ConvAE", "PCA"], jets=jets, vmax=vmax)
        axes[0, 0].set_title(title, fontsize="small", loc="left")
        return save_figure(fig, path)


def _interpolation_figure(path: Path, panels: list[tuple[str, list[np.ndarray], list[str], bool]]) -> Path:
    import matplotlib.style

    from hepgen.report.plots import STYLE, save_figure

    heights = [len(rows) for _, rows, _, _ in panels]
    with matplotlib.style.context(STYLE):
        fig, axes = _figure(13, 1.25 * sum(heights) + 1.2 * len(panels), len(panels), 1,
                            gridspec_kw={"height_ratios": heights})
        for ax, (title, rows, labels, jets) in zip(axes[:, 0], panels, strict=True):
            n = len(rows[0])
            cols = ["x"] + [f"{a:.2f}" for a in np.linspace(0, 1, n - 2)] + ["x'"]
            _show(ax, rows, labels, jets=jets, column_labels=cols)
            ax.set_title(title, fontsize="small")
        return save_figure(fig, path)


def _samples_figure(path: Path, panels: list[tuple[str, np.ndarray]], per_row: int) -> Path:
    import matplotlib.style

    from hepgen.report.plots import STYLE, save_figure

    with matplotlib.style.context(STYLE):
        fig, axes = _figure(5.5 * len(panels), 6.4, 1, len(panels))
        for ax, (title, images) in zip(axes[0], panels, strict=True):
            rows = [images[i:i + per_row] for i in range(0, len(images), per_row)]
            _show(ax, rows, [""] * len(rows), jets=False, vmax=1.0)
            ax.set_yticks([])
            ax.set_title(title, fontsize="small")
        return save_figure(fig, path)


def _anomaly_figure(path: Path, results: dict[str, Any], labels: dict[str, str]) -> Path:
    import matplotlib.style

    from hepgen.metrics import significance_improvement
    from hepgen.report.plots import STYLE, save_figure

    colors = {"top": "#e76300", "w": "#3f90da"}
    styles = ["-", "--"]
    with matplotlib.style.context(STYLE):
        fig, axes = _figure(15, 12, 2, 2)
        roc, sic_ax = axes[0]
        for style, (key, res) in zip(styles, results.items(), strict=False):
            for name, (eps_b, eps_s) in res.curves.items():
                m = res.metrics[name]
                label = f"{labels[key]}, {name}: AUC {m['auc']:.3f}, max SIC {m['max_sic']:.2f}"
                ok = eps_b > 0
                roc.plot(eps_s[ok], 1 / eps_b[ok], ls=style, color=colors.get(name), label=label)
                n_b = len(res.background_scores)
                s_eps, sic = significance_improvement(eps_b, eps_s, 10.0 / n_b)
                sic_ax.plot(s_eps, sic, ls=style, color=colors.get(name))
        grid = np.linspace(1e-3, 1, 200)
        roc.plot(grid, 1 / grid, ls=":", color="grey", label="random")
        sic_ax.plot(grid, np.sqrt(grid), ls=":", color="grey")
        roc.set_yscale("log")
        roc.set_xlabel(r"signal efficiency $\epsilon_S$")
        roc.set_ylabel(r"background rejection $1/\epsilon_B$")
        fig.legend(loc="outside upper center", ncols=2, fontsize="x-small",
                   title="autoencoders trained on QCD jets only; top and W jets as anomalies",
                   title_fontsize="small")
        sic_ax.set_xlabel(r"signal efficiency $\epsilon_S$")
        sic_ax.set_ylabel(r"SIC $= \epsilon_S\,/\,\epsilon_B^{1/2}$  ($\epsilon_B > 10/N_B$)")
        for ax, (key, res) in zip(axes[1], results.items(), strict=False):
            everything = np.concatenate([res.background_scores, *res.signal_scores.values()])
            edges = np.geomspace(max(np.quantile(everything, 0.001), 1e-12), everything.max() * 1.01, 40)
            ax.hist(res.background_scores, edges, density=True, histtype="stepfilled", color="grey", alpha=0.5,
                    label="QCD (test)")
            for name, s in res.signal_scores.items():
                ax.hist(s, edges, density=True, histtype="step", lw=2, color=colors.get(name), label=name)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(f"anomaly score: {labels[key]}")
            ax.set_ylabel("density")
            ax.legend(fontsize="small")
        return save_figure(fig, path)


def _breakdown_figure(path: Path, features: dict[str, np.ndarray], columns: list[str],
                      pixels: dict[str, np.ndarray]) -> Path:
    """Left: mean squared error per feature (dense AE); right: per-pixel error of each signal over QCD's."""
    import matplotlib.style
    from matplotlib.colors import LogNorm

    from hepgen.report.plots import STYLE, save_figure

    colors = {"QCD (test)": "grey", "top": "#e76300", "w": "#3f90da"}
    ref = pixels["QCD (test)"]
    others = [(k, v) for k, v in pixels.items() if k != "QCD (test)"]
    with matplotlib.style.context(STYLE):
        fig, axes = _figure(8 + 6 * len(others), 6.5, 1, 1 + len(others),
                            gridspec_kw={"width_ratios": [1.6] + [1] * len(others)})
        ax = axes[0, 0]
        x = np.arange(len(columns))
        width = 0.8 / len(features)
        for i, (name, values) in enumerate(features.items()):
            ax.bar(x + (i - (len(features) - 1) / 2) * width, values, width, color=colors.get(name), label=name)
        ax.set_xticks(x, columns, rotation=45, fontsize="small")
        ax.minorticks_off()
        ax.set_yscale("log")
        ax.set_ylabel("MSE (standardised)")
        ax.set_title("dense AE on jet features: error per feature", fontsize="small")
        ax.legend(fontsize="small")
        floor = max(float(ref[ref > 0].min()) if (ref > 0).any() else 1e-12, 1e-12)
        ratios = [(name, values / np.maximum(ref, floor)) for name, values in others]
        top = max(2.0, max(float(r.max()) for _, r in ratios))
        for ax, (name, ratio) in zip(axes[0, 1:], ratios, strict=True):
            im = ax.imshow(ratio[::-1], cmap="magma", norm=LogNorm(0.5, top))
            ax.set_title(f"ConvAE: per-pixel error, {name} / QCD", fontsize="small")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.minorticks_off()
        fig.colorbar(im, ax=axes[0, 1:].tolist(), fraction=0.046, pad=0.02)
        return save_figure(fig, path)


# -- reusable pieces (the benchmark calls them too) -------------------------------------------------
def digits_split(seed: int = 0, n_test: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8×8 digits in [0, 1], (n, 8, 8) float32, split into train and a seeded test set."""
    from sklearn.datasets import load_digits

    digits = (load_digits().images / 16.0).astype(np.float32)
    train, test = _split(len(digits), n_test, seed)
    return digits[train], digits[test]


def jets_data(pool: int = 2, seed: int = 0) -> dict[str, Any]:
    """The shipped jets as the detectors see them: ``images`` (pT fractions, pooled), ``features``,
    ``weights`` per process, and the seeded QCD split ``qcd_train`` / ``qcd_test`` (index arrays, 3:1)."""
    from hepgen.autoencoders.anomaly import jet_images
    from hepgen.data.generators.jets import load_sample

    samples = {p: load_sample(p) for p in ("qcd", "top", "w")}
    train, test = _split(len(samples["qcd"]["features"]), len(samples["qcd"]["features"]) // 4, seed)
    return {"images": {p: jet_images(s["images"], pool=pool) for p, s in samples.items()},
            "features": {p: s["features"].astype(np.float32) for p, s in samples.items()},
            "weights": {p: s["weights"].astype(np.float64) for p, s in samples.items()},
            "qcd_train": train, "qcd_test": test, "pool": int(pool)}


def conv_ae_vs_pca(train: np.ndarray, test: np.ndarray, latent: int, channels: tuple[int, ...], epochs: int,
                   seed: int = 0) -> dict[str, Any]:
    """Train a ConvAE (standardised pixels) and fit a PCA with the same latent size; compare test MSEs.

    Returns ``mse_conv_ae``, ``mse_pca``, ``ratio`` (ConvAE / PCA), ``model`` and both reconstructions.
    """
    from hepgen.autoencoders.ae import ConvAutoencoder

    model = ConvAutoencoder(train.shape[1:], latent, channels=channels, preprocess="standard")
    model.fit(train, epochs=epochs, seed=seed, **TRAIN)
    ae_mse, ae_rec = _mse(model, test)
    pca_mse, pca_rec = _pca_mse(train, test, latent)
    return {"latent": int(latent), "n_train": len(train), "n_test": len(test), "epochs": int(epochs),
            "mse_conv_ae": ae_mse, "mse_pca": pca_mse, "ratio": ae_mse / pca_mse,
            "model": model, "reconstructions": (ae_rec, pca_rec)}


def jet_detectors(data: dict[str, Any], image_epochs: int, feature_epochs: int, seed: int = 0,
                  latent: int = LATENT, bootstrap: int = 0) -> dict[str, Any]:
    """Train the two QCD-only detectors on :func:`jets_data` and score top and W jets.

    ConvAE (channels 16, 32, 64) on the QCD training images; dense AE (hidden 32, 16) on the 11
    features. Returns ``image_study`` (:func:`conv_ae_vs_pca` on the QCD images), ``conv_ae``, ``ae``
    and ``results``: ``conv_ae_images`` / ``ae_features`` -> :class:`~hepgen.autoencoders.anomaly.AnomalyResult`.
    """
    from hepgen.autoencoders.ae import Autoencoder
    from hepgen.autoencoders.anomaly import evaluate_detector

    images, feats, weights = data["images"], data["features"], data["weights"]
    tr, te = data["qcd_train"], data["qcd_test"]
    study = conv_ae_vs_pca(images["qcd"][tr], images["qcd"][te], latent, (16, 32, 64), image_epochs, seed)
    ae = Autoencoder(feats["qcd"].shape[1], latent, hidden=(32, 16))
    ae.fit(feats["qcd"][tr], weights=weights["qcd"][tr], epochs=feature_epochs, seed=seed, **TRAIN)
    signal_weights = {p: weights[p] for p in ("top", "w")}
    results = {
        "conv_ae_images": evaluate_detector(study["model"], images["qcd"][te], {p: images[p] for p in ("top", "w")},
                                            background_weights=weights["qcd"][te], signal_weights=signal_weights,
                                            bootstrap=bootstrap),
        "ae_features": evaluate_detector(ae, feats["qcd"][te], {p: feats[p] for p in ("top", "w")},
                                         background_weights=weights["qcd"][te], signal_weights=signal_weights,
                                         bootstrap=bootstrap),
    }
    return {"image_study": study, "conv_ae": study["model"], "ae": ae, "results": results}


def anomaly_roc_report(result: Any, out_dir: str | Path, *, mass: np.ndarray | None = None,
                       background_weights: np.ndarray | None = None,
                       signal_weights: dict[str, np.ndarray | None] | None = None, n_bootstrap: int = 20,
                       title: str = "anomaly score", score_name: str = "score") -> dict[str, Any]:
    """What ``hepgen roc BACKGROUND top=... w=... --mass ... --report OUT_DIR`` writes, for one detector's scores.

    ``result``: an :class:`~hepgen.autoencoders.anomaly.AnomalyResult` (its background and signal
    scores, higher = more anomalous); ``mass``: the background events' jet mass (mass sculpting).
    Writes ``plots/roc_sic.png``/``.pdf``, ``plots/mass_sculpting.png``/``.pdf``, ``metrics.json`` and
    ``index.html`` through :func:`hepgen.report.roc.roc_report`; returns metrics.json's content.
    """
    from hepgen.report.roc import roc_report

    return roc_report(result.background_scores, result.signal_scores, out_dir,
                      background_weights=background_weights, signal_weights=signal_weights, mass=mass,
                      mass_label="jet mass [GeV]", n_bootstrap=n_bootstrap, title=title, score_name=score_name)


def public_summary(study: dict[str, Any]) -> dict[str, Any]:
    """A study of :func:`conv_ae_vs_pca` without its model and reconstruction arrays (what JSON can hold)."""
    return {k: v for k, v in study.items() if k not in ("model", "reconstructions")}


# -- the entry point -------------------------------------------------------------------------------
def autoencoder_figures(out_dir: str | Path, quick: bool = False, seed: int = 0, quiet: bool = True,
                        bootstrap: int = 0) -> dict[str, Any]:
    """Train the autoencoders of the figures (seeded), write the figures into ``out_dir``; returns a summary.

    ``quick=True`` (demo budget, ~1 min on one core) pools jet images 2×2 to 20×20 and trains for
    fewer epochs; ``quick=False`` uses the 40×40 images and longer training. The summary (also
    ``out_dir/summary.json``) holds ``digits`` and ``jet_images`` (test MSE of ConvAE and PCA at
    latent size ``latent``), ``anomaly`` (per detector and signal: auc, max_sic, eps_s_at_max_sic,
    rejection_at_eps_s_0.3/0.5, with ``bootstrap`` > 1 also auc_std and max_sic_std), ``figures``,
    ``runs`` (saved models), ``data`` (HDF5 inputs) and ``anomaly_setup`` (the ``hepgen score`` commands).
    """
    import torch

    from hepgen.autoencoders.anomaly import feature_breakdown
    from hepgen.autoencoders.vae import ConvVAE
    from hepgen.data import io
    from hepgen.data.generators.jet_features import FEATURE_COLUMNS

    start = time.perf_counter()
    cfg = SETTINGS[bool(quick)]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"quick": bool(quick), "seed": int(seed), "latent": LATENT, "figures": {},
                               "runs": {}, "data": {}}
    timings: dict[str, float] = {}

    def tick(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 2)
        _say(quiet, f"autoencoder figures: {name} done in {timings[name]:.1f} s")

    # -- digits: ConvAE vs PCA, ConvVAE -----------------------------------------------------------------
    t0 = time.perf_counter()
    d_train, d_test = digits_split(seed)
    digit_study = conv_ae_vs_pca(d_train, d_test, LATENT, (32, 64), cfg["digits_epochs"], seed)
    conv_digits = digit_study["model"]
    ae_rec, pca_rec = digit_study["reconstructions"]
    ae_mse, pca_mse = digit_study["mse_conv_ae"], digit_study["mse_pca"]
    summary["digits"] = public_summary(digit_study)
    tick("digits ConvAE", t0)
    t0 = time.perf_counter()
    vae_digits = ConvVAE((8, 8), LATENT, channels=(16, 32), decoder="bernoulli")
    vae_digits.fit(d_train, epochs=cfg["vae_epochs"], seed=seed, **TRAIN)
    tick("digits ConvVAE", t0)

    # -- jets: ConvAE on QCD images (vs PCA, and as a detector) and a dense AE on the features -----------
    t0 = time.perf_counter()
    data = jets_data(cfg["pool"], seed)
    images, feats, weights = data["images"], data["features"], data["weights"]
    j_train, j_test = data["qcd_train"], data["qcd_test"]
    det = jet_detectors(data, cfg["jet_epochs"], cfg["feature_epochs"], seed, bootstrap=bootstrap)
    conv_jets, ae_feats, detectors = det["conv_ae"], det["ae"], det["results"]
    qcd_test = images["qcd"][j_test]
    ae_rec_j, pca_rec_j = det["image_study"]["reconstructions"]
    ae_mse_j, pca_mse_j = det["image_study"]["mse_conv_ae"], det["image_study"]["mse_pca"]
    summary["jet_images"] = {**public_summary(det["image_study"]), "shape": list(qcd_test.shape[1:])}
    tick("jet detectors", t0)

    t0 = time.perf_counter()
    data_path = out / "data" / "anomaly_jets.h5"
    payload = {"qcd_train/images": images["qcd"][j_train], "qcd_train/features": feats["qcd"][j_train],
               "qcd_test/images": qcd_test, "qcd_test/features": feats["qcd"][j_test]}
    for p in ("top", "w"):
        payload.update({f"{p}/images": images[p], f"{p}/features": feats[p], f"{p}/weights": weights[p]})
    io.write(data_path, payload)
    summary["data"] = {"jets": str(data_path), "image_shape": list(qcd_test.shape[1:]),
                       "image_representation": "pT fraction per pixel (image / its total pT)"
                       + (f", {cfg['pool']}x{cfg['pool']} pooled" if cfg["pool"] > 1 else "")}
    for name, model in (("conv_ae_jet_images", conv_jets), ("ae_jet_features", ae_feats)):
        summary["runs"][name] = str(model.save(out / "runs" / name))
    summary["anomaly"] = {k: r.metrics for k, r in detectors.items()}
    summary["anomaly_setup"] = {
        "background_train": len(j_train), "background_test": len(j_test),
        "signals": {p: len(images[p]) for p in ("top", "w")},
        "score": "mean squared reconstruction error in the model's standardised space",
        "commands": {k: f"hepgen score {summary['runs'][run]} {data_path}:top/{what} -o scores_top.h5"
                     for k, run, what in (("conv_ae_images", "conv_ae_jet_images", "images"),
                                          ("ae_features", "ae_jet_features", "features"))},
    }
    tick("saved runs and data", t0)

    # -- figures ---------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    figs = summary["figures"]
    show = slice(0, 12)
    figs["reconstructions_digits"] = str(_reconstruction_figure(
        out / "reconstructions_digits.png", d_test[show], ae_rec[show], pca_rec[show], jets=False,
        title=f"8×8 digits, latent size {LATENT}, {len(d_test)} held-out digits\n"
              f"test MSE: ConvAE {ae_mse:.4f}, PCA {pca_mse:.4f}"))
    h, w = qcd_test.shape[1:]
    figs["reconstructions_jets"] = str(_reconstruction_figure(
        out / "reconstructions_jets.png", qcd_test[show], ae_rec_j[show], pca_rec_j[show], jets=True,
        title=f"QCD jet images ({h}×{w} pT fractions, square-root colour scale), latent size {LATENT}, "
              f"{len(qcd_test)} held-out jets\ntest MSE: ConvAE {ae_mse_j:.3g}, PCA {pca_mse_j:.3g}"))

    steps = 9
    pairs = np.random.default_rng(seed + 1).choice(len(d_test), size=(4, 2), replace=False)
    a, b = d_test[pairs[:, 0]], d_test[pairs[:, 1]]
    with torch.no_grad():
        path_ae = conv_digits.interpolate(a, b, steps).cpu().numpy()
        path_vae = vae_digits.interpolate(a, b, steps).cpu().numpy()
        qa, tb = qcd_test[:3], images["top"][:3]
        path_jet = conv_jets.interpolate(qa, tb, steps).cpu().numpy()
    rows_ae = [np.concatenate([a[i:i + 1], path_ae[i], b[i:i + 1]]) for i in range(len(a))]
    rows_vae = [np.concatenate([a[i:i + 1], path_vae[i], b[i:i + 1]]) for i in range(len(a))]
    rows_jet = [np.concatenate([qa[i:i + 1], path_jet[i], tb[i:i + 1]]) for i in range(len(qa))]
    figs["interpolation"] = str(_interpolation_figure(out / "interpolation.png", [
        ("digits: ConvAE, g((1−α) f(x) + α f(x'))", rows_ae, ["AE"] * len(rows_ae), False),
        ("digits: ConvVAE (posterior means), same pairs", rows_vae, ["VAE"] * len(rows_vae), False),
        ("jets: QCD-trained ConvAE, from a QCD jet x to a top jet x'", rows_jet, ["QCD→top"] * len(rows_jet), True),
    ]))

    n_show = 36
    gen = torch.Generator().manual_seed(seed)
    with seeded(seed), torch.no_grad():
        vae_samples = vae_digits.sample(n_show).cpu().numpy()
        ae_samples = conv_digits.sample(n_show).cpu().numpy()
    real = d_test[torch.randperm(len(d_test), generator=gen)[:n_show].numpy()]
    figs["samples"] = str(_samples_figure(out / "samples.png", [
        ("held-out digits\n(for reference)", real),
        (f"ConvVAE prior samples (latent {LATENT})\nz ~ N(0, I), decoder mean", vae_samples),
        (f"ConvAE samples (latent {LATENT})\nz ~ N(m, S) fitted to training codes", np.clip(ae_samples, 0, 1)),
    ], per_row=6))

    labels = {"conv_ae_images": f"ConvAE, {h}×{w} images", "ae_features": "dense AE, 11 features"}
    signal_weights = {p: weights[p] for p in ("top", "w")}
    figs["anomaly"] = str(_anomaly_figure(out / "anomaly.png", detectors, labels))
    mass = feats["qcd"][j_test][:, list(FEATURE_COLUMNS).index("mass")].astype(np.float64)
    roc = anomaly_roc_report(detectors["conv_ae_images"], out / "roc", mass=mass,
                             background_weights=weights["qcd"][j_test], signal_weights=signal_weights,
                             title=f"ConvAE on {h}×{w} QCD jet images: top and W jets as anomalies",
                             score_name="ConvAE reconstruction error")
    summary["roc"] = {"detector": "conv_ae_images", "report": str(out / "roc" / "index.html"), **roc}
    figs["roc_sic"] = str(out / "roc" / "plots" / "roc_sic.png")
    figs["mass_sculpting"] = str(out / "roc" / "plots" / "mass_sculpting.png")
    breakdown = {"QCD (test)": feature_breakdown(ae_feats, feats["qcd"][j_test]),
                 "top": feature_breakdown(ae_feats, feats["top"]), "w": feature_breakdown(ae_feats, feats["w"])}
    pixels = {"QCD (test)": feature_breakdown(conv_jets, qcd_test),
              "top": feature_breakdown(conv_jets, images["top"]), "w": feature_breakdown(conv_jets, images["w"])}
    summary["feature_breakdown"] = {k: dict(zip(FEATURE_COLUMNS, map(float, v), strict=True))
                                    for k, v in breakdown.items()}
    figs["anomaly_breakdown"] = str(_breakdown_figure(out / "anomaly_breakdown.png", breakdown,
                                                      list(FEATURE_COLUMNS), pixels))
    tick("figures", t0)

    summary["timings_s"] = timings
    summary["wall_time_s"] = round(time.perf_counter() - start, 1)
    write_json(out / "summary.json", summary)
    return summary
