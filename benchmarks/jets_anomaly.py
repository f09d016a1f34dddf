"""Anomaly detection of top and W jets by scorers trained on QCD only, through the public API (issues 12 and 24).

Scorers (each trained on background jets only; higher score = more anomalous):

* ``conv_ae``: hepgen.ConvAutoencoder on the 40×40 jet images as pT fractions (per-pixel
  standardised; score: reconstruction error); ``conv_ae_sqrt``: the same on √(pT fraction), which
  lifts the soft radiation against the hard core (the image-preprocessing variant);
  ``conv_vae``: hepgen.ConvVAE on √(pT fraction) (a fixed-σ Gaussian decoder on standardised pixels, or
  ``--conv-vae-decoder bernoulli`` on [0, 1]: AUC 0.77 top / 0.44 W on the shipped sample against 0.90 /
  0.77; score −ELBO with ``--vae-k`` posterior samples);
* ``pixel_cnn`` (issue 25): hepgen.PixelCNN, the family ``hepgen fit pixel-cnn`` builds, on the same 40×40 pT
  fraction images as ``conv_ae`` (non-negative, as the family requires; it quantises them itself: level 0 an empty
  pixel, 15 bins of log1p(x / s) above, s the median non-zero pixel of the first training slice, so nothing is
  dequantised); score −log P per image in nats (exact and normalised over the quantised images). Trained for
  the conv_ae's training CPU time, ``--pixel-cnn-budget`` (default 475 CPU s: the committed direct conv_ae units'
  mean 483 CPU s (519, 495, 433 for seeds 1-3), which include scoring 45k test images, ~8 s, less that), scaled
  by a task's training jets, through benchmarks/_budget.py (the loop of gan_architectures.py: resumed fits until
  the budget is spent), each step one pass over the next of ``--pixel-cnn-slices`` (10) interleaved slices of the
  training images, so the budget is overshot by at most a slice (~40 CPU s), not a whole pass (~400 CPU s).
  Width: channels 16, 4 gated layers, 16 levels, lr 1e-3 without a schedule (the length is not known in
  advance). The family's defaults (channels 32, 6 layers) take ~18 CPU s per batch of 256 40×40 images against the
  ConvAE's 0.1 s, so at equal time they would see ~7k images; channels 16 and 4 layers take ~2 s, ~1.2 passes over
  the 50k jets in the budget (the ConvAE: 30 epochs), and scoring the 45k test images ~130 CPU s. It runs in
  ``--pixel-cnn-tasks`` (default: direct only; inverted and contamination are left out). Its settings are
  checked per unit rather than in the manifest, so the units of the committed run stay valid: adding it trains
  only its own units (below) and every other scorer's numbers stay identical. benchmarks/gan_architectures.py
  copies its AUCs from this script's JSON (the one measurement).
* ``ae``, ``vae``: hepgen.Autoencoder / hepgen.VAE on the 11 substructure features (log n_constituents);
* ``nsf``: hepgen.NSF density on the 11 features, score = −log p;
* ``nsf_m_tau``: an NSF on a subset, log of (mass, τ21, τ32): the jet mass and the two
  N-subjettiness ratios, without pT, η (no anomaly information at fixed pT) and the heavy-tailed
  D2 / C2 / multiplicity, whose QCD tails otherwise dominate −log p. The subset was chosen on the
  shipped 2,500-jet sample (looking at the signals: a tuning choice, stated as such); the scaled run
  uses independent jets (other seeds), so its numbers test that choice honestly;
* ``combined``: an unsupervised combination of ``conv_ae_sqrt`` and ``nsf_m_tau`` of the same task and seed
  (Fisher's method on their QCD-training p-values: −log(1 − F_ae) − log(1 − F_nsf), F the score CDF of the
  training jets); it trains nothing of its own;
* ``supervised``: the ceiling, hepgen.Classifier on the 11 features with labels (QCD vs that signal).

Tasks: ``direct`` (train QCD, top/W as signal), ``inverted`` (train on top, QCD as signal: the known
failure of reconstruction scores, which flag *complex* jets), ``contaminated_1pct`` / ``_5pct`` (the
QCD training sample with 1 % / 5 % top jets mixed in). Every scorer of every task is trained with each of
``--seeds`` (default 1 2 3). Per task, scorer, seed and signal: AUC, max SIC and 1/ε_B at ε_S = 0.3, 0.5 with
bootstrap errors over the test jets (hepgen.report.roc.roc_report, what ``hepgen roc`` writes); then per
scorer the mean over seeds, their sample standard deviation (training spread) and the mean bootstrap error
(test statistics; the seeds share the test jets). For the direct task and the first seed each scorer's
ROC/SIC and QCD mass-sculpting figures (bins: metrics.decorrelation.sculpting_edges, as ``hepgen roc``)
under ``results/jets_anomaly/<scorer>/`` and one ROC/SIC figure of all scorers per signal.

    python benchmarks/jets_anomaly.py --quick            # smoke run (< 60 s): shipped sample, 2 seeds, 1-3 epochs
    python benchmarks/jets_anomaly.py --resume           # the full study (issue 24), resumable

PixelCNN added to the committed run (issue 25; its 3 direct units ≈ 3 × (475 + ≤ 40 + ~130) ≈ 32 CPU-min, then the
cached assembly, which rewrites results/jets_anomaly.json with every scorer; then gan_architectures.py copies the
AUCs into its JSON at its next run, a ``--resume`` of cached entries is cheap):

    OMP_NUM_THREADS=1 python benchmarks/jets_anomaly.py --resume --scorers pixel_cnn --tasks direct --output /tmp/p.json
    OMP_NUM_THREADS=1 python benchmarks/jets_anomaly.py --resume

``pixel_cnn_complexity`` in the JSON (no training: the cached direct scores and the test images) measures how much of
PixelCNN's −log P is image complexity (see :func:`pixel_cnn_complexity`): on the full run its rank correlation with
the number of non-empty pixels is 0.99 on QCD, the pixel count alone gives AUC 0.705 (top) / 0.315 (W) against the
score's 0.73 / 0.32, Serrà et al.'s input-complexity score (−log P less the PNG length) 0.27 / 0.62, and the
score at fixed pixel count 0.69-0.72 / 0.50: a W jet is not unlikely for the model, it is sparse.

The full run reads 70k QCD, 20k top and 20k W jets (``--file-jets``) from the cache of benchmarks/_jet_cache.py
(benchmarks/data/chunks/, seeds 1101-1302, disjoint from the shipped sample's seed 1; a single file
benchmarks/data/jets_P_N_11.h5 is read instead where it exists, e.g. the 20k W of seed 11): 15k test jets per
process, 50k QCD training jets (5k QCD unused), and the 5k top and 5k W left over as the pool of the inverted task
(5k top training jets), the contamination (2.6k top at 5 %) and the supervised ceiling's signal training set
(50k QCD vs 5k signal, classes weighted to equal totals). Each trained unit (task, scorer, seed) leaves its test
(and, for the combination's parts, training) scores in benchmarks/data/jets_anomaly_units/ the moment it is
done; ``--resume`` reloads them, so a killed run loses at most the unit in progress, and later runs may add
tasks, scorers or seeds. The JSON records the load average and CPU-seconds of this invocation (benchmarks/
_machine.Meter) and of every unit, whichever invocation trained it (``cpu_hours_units``).

Image-model speed (issue 24): one Adam step of the ConvAE (channels 16, 32, 64; latent 8) on a batch of 256
40×40 images, one thread, CPU time (this 2-core machine at load 7-9, medians of 4×5 steps; torch.profiler for the
layers): 119 ms as before, 97 ms with the conv weights in channels_last, now hepgen's default for ConvAutoencoder
and ConvVAE (the transposed convolutions: 26 → 13 ms and 32 → 14 ms forward + backward for the 16 → 1 and
32 → 16 layers; the same AUCs on the shipped sample to three decimals: 0.923 / 0.744 for seed 1);
torch.compile of the step 110 ms (with channels_last 97 ms: no gain, and 4 s of compilation per model);
channels 8, 16, 32 with channels_last 41 ms, but its W AUC drops (0.703 / 0.731 for seeds 1, 2 against
0.744 / 0.734), so the channels stay; a batch of 1024 costs the same per image (389 µs against 399 µs) and is
not used. The engine adds ~5 % (110 ms per step of a whole fit).
Per training at the full scale, measured per step at load 7-9: ConvAE 5.9k steps × ~0.1 s ≈ 10 CPU-min (ConvVAE
~11), dense AE / VAE 11.7k × 1.5 ms ≈ 20 s, NSF on 11 features 5.9k × 9 ms ≈ 55 s, classifier ≈ 20 s.
CPU estimate of the full run (3 seeds, 4 tasks, every scorer): 27 image trainings on 50k jets ≈ 4.6 h (the
inverted task's 9 on 5k top jets ≈ 0.15 h), feature models and classifiers ≈ 0.4 h, scoring and reports ≈ 0.2 h:
~5.3 CPU-hours. The contamination tasks' image models are 3 h of it (``--image-tasks direct inverted``: ~2.3 h).
The units are independent, so the two cores can share the work, then one cheap ``--resume`` assembles it all:

    OMP_NUM_THREADS=1 python benchmarks/jets_anomaly.py --resume --tasks direct inverted --output /tmp/a.json &
    OMP_NUM_THREADS=1 python benchmarks/jets_anomaly.py --resume --tasks contaminated_1pct contaminated_5pct \
        --output /tmp/b.json
    OMP_NUM_THREADS=1 python benchmarks/jets_anomaly.py --resume          # all units cached: reports only

What was tried on the shipped sample (1250 QCD training jets, 1250 test jets per process; AUC top / W):
√(pT fraction) instead of the pT fraction lifts the ConvAE from 0.776 / 0.733 to 0.923 / 0.744; its
latent size 4 / 8 / 16 gives 0.890 / 0.439, 0.923 / 0.744, 0.923 / 0.738 (8 kept); the ConvVAE with a
Bernoulli decoder on [0, 1] 0.774 / 0.435, with a fixed-σ Gaussian on standardised √ pixels 0.901 /
0.773 (kept); the NSF on all 11 features 0.90 / 0.68, without pT and η 0.91 / 0.57, on (m, τ1, τ2, τ3)
0.945 / 0.71, on log(m, τ21, τ32) 0.88 / 0.81 (kept, for W); Fisher's combination of the √ ConvAE and
that NSF 0.933 / 0.811 (seeds 1-3: 0.931-0.934 / 0.805-0.811), the only scorer above both goals.
Training length matters and cuts both ways: the dense AE after 4 epochs reached 0.92 on top against
0.78 after 30 (an under-trained AE flags complexity); it is not tuned here, as that would choose the
epoch by looking at the signal. Those numbers came from ``--quick --epochs 30 --image-epochs 10 --image-train-jets
1250 --test-jets 1250 --bootstrap 50 --seeds 1 2 3`` (``--image-tasks direct inverted``); every choice above is
frozen for the full run. benchmarks/results/jets_anomaly_quick.json and jets_anomaly_quick/ in git hold that
shipped-sample study (its ``command`` predates the smoke-run defaults of ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import _jet_cache as jet_cache
from _budget import fit_for_budget
from _jets_data import COLUMNS, DATA, cached_path, jets
from _machine import Meter
from _units import Units

import hepgen
from hepgen.autoencoders.anomaly import jet_images
from hepgen.files import atomic_write_text
from hepgen.metrics.classification import roc_auc, roc_curve
from hepgen.metrics.roc import sic_curve
from hepgen.report.roc import plot_roc_sic, roc_report

RESULTS = Path(__file__).parent / "results"
SCORERS = ("conv_ae", "conv_ae_sqrt", "conv_vae", "pixel_cnn", "ae", "vae", "nsf", "nsf_m_tau", "combined", "supervised")
IMAGE_SCORERS = ("conv_ae", "conv_ae_sqrt", "conv_vae")
COMBINED = ("conv_ae_sqrt", "nsf_m_tau")  # the parts of the Fisher combination
TASKS = ("direct", "inverted", "contaminated_1pct", "contaminated_5pct")
SUBSET = ("mass", "tau21", "tau32")
TRAIN = {"batch_size": 256, "lr": 2e-3, "scheduler": "cosine", "val_fraction": 0.0, "monitor": None, "quiet": True}
#: the conv_ae units' mean CPU seconds in the direct task (benchmarks/results/jets_anomaly.json: 519.5, 495.4, 433.4
#: for seeds 1-3, training 30 epochs on 50k QCD images plus scoring 45k test images) less that scoring (~8 s)
PIXEL_CNN_BUDGET = 475.0
KEYS = ("auc", "max_sic", "eps_s_at_max_sic", "rejection_at_eps_s_0.3", "rejection_at_eps_s_0.5")


def prepare(data: dict, processes=("qcd", "top", "w")) -> dict:
    """Per process: ``features`` (11, log n_constituents), ``subset`` (log of SUBSET), ``images``
    (pT fractions), ``sqrt_images`` and ``mass`` (GeV)."""
    out = {}
    for p in processes:
        f = data[p]["features"].astype(np.float64)
        feats = f.copy()
        feats[:, -1] = np.log(feats[:, -1])
        sub = np.log(np.clip(f[:, [COLUMNS.index(c) for c in SUBSET]], 1e-6, None))
        img = jet_images(data[p]["images"])
        out[p] = {"features": feats.astype(np.float32), "subset": sub.astype(np.float32), "images": img,
                  "sqrt_images": np.sqrt(img), "mass": f[:, COLUMNS.index("mass")]}
    return out


def take(sample: dict, idx: np.ndarray) -> dict:
    return {k: v[idx] for k, v in sample.items()}


def concat(*samples: dict) -> dict:
    return {k: np.concatenate([s[k] for s in samples]) for k in samples[0]}


class Scorer:
    """One trained anomaly scorer: ``fit(train, seed)`` on a background sample, ``score(sample)`` -> (n,) float64."""

    def __init__(self, name: str, args: argparse.Namespace):
        self.name, self.args = name, args

    def _build(self):
        a, kind = self.args, self.name
        channels = tuple(a.image_channels)
        if kind in ("conv_ae", "conv_ae_sqrt"):
            model = hepgen.ConvAutoencoder((40, 40), a.image_latent, channels=channels, preprocess="standard")
        elif kind == "conv_vae":
            if a.conv_vae_decoder == "bernoulli":  # √(pT fraction) lies in [0, 1]; minmax keeps it there
                model = hepgen.ConvVAE((40, 40), a.image_latent, channels=channels)
            else:
                model = hepgen.ConvVAE((40, 40), a.image_latent, channels=channels, decoder="gaussian-fixed",
                                       decoder_sigma=1.0, preprocess="standard")
        elif kind == "pixel_cnn":  # the family `hepgen fit pixel-cnn` builds, narrower than its defaults (docstring)
            return hepgen.PixelCNN((40, 40), levels=a.pixel_cnn_levels, channels=a.pixel_cnn_channels,
                                   layers=a.pixel_cnn_layers)
        elif kind == "ae":
            return hepgen.Autoencoder(len(COLUMNS), a.feature_latent, hidden=(64, 32))
        elif kind == "vae":
            return hepgen.VAE(len(COLUMNS), a.feature_latent, hidden=(64, 32))
        elif kind in ("nsf", "nsf_m_tau"):
            return hepgen.NSF(len(COLUMNS) if kind == "nsf" else len(SUBSET), transforms=4, hidden=(64, 64))
        else:
            raise ValueError(kind)
        return model  # conv weights in channels_last (hepgen.autoencoders.base.conv_networks; module docstring)

    def _input(self, sample: dict) -> np.ndarray:
        return sample[{"conv_ae": "images", "pixel_cnn": "images", "conv_ae_sqrt": "sqrt_images", "conv_vae": "sqrt_images",
                       "nsf_m_tau": "subset"}.get(self.name, "features")]

    def fit(self, train: dict, seed: int, budget: float | None = None) -> Scorer:
        self.model = self._build()
        x = self._input(train)
        if self.name == "pixel_cnn":
            return self._fit_budget(x[:self.args.image_train_jets], seed, budget)
        image = self.name in IMAGE_SCORERS
        n = self.args.image_train_jets if image else None
        epochs = self.args.image_epochs if image else self.args.epochs
        if self.name.startswith("nsf"):
            epochs = max(1, epochs // 2)
        self.model.fit(x[:n] if n else x, epochs=epochs, seed=seed, **TRAIN)
        return self

    def _fit_budget(self, x: np.ndarray, seed: int, budget: float) -> Scorer:
        """Train for ``budget`` CPU seconds (benchmarks/_budget.py), each of its "epochs" one resumed pass over the
        next of ``--pixel-cnn-slices`` interleaved slices of the training images (so the budget is overshot by at
        most one slice, not one pass over all of them); the levels are fitted on the first slice."""
        slices = self.args.pixel_cnn_slices
        settings = {"batch_size": TRAIN["batch_size"], "lr": self.args.pixel_cnn_lr, "seed": seed,
                    "val_fraction": 0.0, "monitor": None, "quiet": True}
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / "run"
            steps, used = fit_for_budget(lambda k: self.model.fit(x[(k - 1) % slices::slices], epochs=k, run_dir=run,
                                                                  resume=k > 1, **settings), budget, 100_000)
        self.budget_record = {"budget_cpu_s": round(budget, 1), "train_cpu_s": round(used, 1), "slices_trained": steps,
                              "passes": round(steps / slices, 2), "train_images": len(x)}
        return self

    def score(self, sample: dict) -> np.ndarray:
        x = self._input(sample)
        if self.name == "pixel_cnn":  # in chunks: the gated stacks of 15k 40×40 images at once need ~10 GB
            return np.concatenate([self.model.score(x[i:i + 1024]).double().numpy() for i in range(0, len(x), 1024)])
        if self.name in ("conv_vae", "vae"):  # −ELBO with fewer posterior samples than score()'s 16 (speed)
            return (-self.model.elbo(x, k=self.args.vae_k)).double().numpy()
        return self.model.score(x).double().numpy()


def complexity_bits(levels: np.ndarray) -> np.ndarray:
    """The PNG length in bits of each quantised image (levels (n, H, W) in 0 … 15, PIL's lossless coder at its
    best setting): the generic compressor L(x) of Serrà et al. 2020's input-complexity score."""
    import io

    from PIL import Image

    out = np.empty(len(levels))
    for i, a in enumerate(levels.astype(np.uint8)):
        buf = io.BytesIO()
        Image.fromarray(a * 16).save(buf, format="PNG", optimize=True)
        out[i] = 8.0 * len(buf.getvalue())
    return out


def pixel_cnn_complexity(units: dict[int, dict[str, np.ndarray]], train_images: np.ndarray, test: dict, args
                         ) -> dict:
    """How much of PixelCNN's −log P is image complexity: per seed and process, the Spearman correlation of the score
    with the number of non-empty pixels (of the image the family sees: its levels, fitted as the fit does on the first
    training slice); the AUC of that pixel count alone; of Serrà et al.'s input-complexity score −log P − L(x) ln 2
    (L: PNG bits); and of the score's residual at fixed pixel count, (s − m(n)) / σ(n) with m and σ the mean and the spread
    about a straight line through the QCD scores within ±2 pixels of n, calibrated on the even QCD test jets and judged (background) on the odd ones."""
    from scipy.stats import spearmanr

    model = hepgen.PixelCNN((40, 40), levels=args.pixel_cnn_levels).fit_levels(train_images[0::args.pixel_cnn_slices])
    keys = {"qcd": "background", "top": "signal_top", "w": "signal_w"}
    levels = {p: model.quantise(test[p]["images"]).numpy() for p in keys}
    count = {p: (lv > 0).sum(axis=(1, 2)).astype(np.float64) for p, lv in levels.items()}
    bits = {p: complexity_bits(lv) for p, lv in levels.items()}
    even = np.arange(len(count["qcd"])) % 2 == 0

    def aucs(score: dict[str, np.ndarray], background=None) -> dict[str, float]:
        b = score["qcd"] if background is None else background
        return {sig: round(roc_auc(score[sig], b), 4) for sig in ("top", "w")}

    out = {"mean_nonempty_pixels": {p: round(float(c.mean()), 2) for p, c in count.items()},
           "mean_png_bits": {p: round(float(b.mean()), 1) for p, b in bits.items()},
           "auc_nonempty_pixels_alone": aucs(count), "auc_png_bits_alone": aucs(bits), "by_seed": {}}
    for seed, arrays in units.items():
        nll = {p: arrays[k] for p, k in keys.items()}
        ks = np.unique(count["qcd"][even])
        ref_n, ref_s = count["qcd"][even], nll["qcd"][even]
        mean, std, slopes = np.empty(len(ks)), np.empty(len(ks)), np.empty(len(ks))
        for i, k in enumerate(ks):  # a straight line through the QCD scores within ±2 pixels of k
            near = np.abs(ref_n - k) <= 2
            dn = ref_n[near] - k
            slope = (np.sum(dn * (ref_s[near] - ref_s[near].mean())) / np.sum(dn * dn)) if np.any(dn) else 0.0
            fit = ref_s[near].mean() + slope * (dn - dn.mean())
            mean[i] = ref_s[near].mean() - slope * dn.mean()
            std[i] = np.sqrt(np.mean((ref_s[near] - fit) ** 2)) + 1e-3
            slopes[i] = slope

        def m(n):  # interpolated; beyond the calibration's pixel counts, its end lines extended
            return np.interp(n, ks, mean) + np.where(n < ks[0], slopes[0] * (n - ks[0]), 0.0) + np.where(
                n > ks[-1], slopes[-1] * (n - ks[-1]), 0.0)

        resid = {p: (nll[p] - m(count[p])) / np.interp(count[p], ks, std) for p in keys}
        out["by_seed"][str(seed)] = {
            "spearman_score_nonempty": {p: round(float(spearmanr(nll[p], count[p])[0]), 4) for p in keys},
            "auc_score": aucs(nll),
            "auc_input_complexity": aucs({p: nll[p] - bits[p] * np.log(2) for p in keys}),
            "auc_residual_at_fixed_pixel_count": aucs(resid, background=resid["qcd"][~even])}
    out["what"] = pixel_cnn_complexity.__doc__.split("\n\n")[0].replace("\n    ", " ")
    return out


def fisher(parts: list[dict[str, np.ndarray]], key: str) -> np.ndarray:
    """Fisher's combination −Σ log(1 − F_i(s_i)) of the parts' scores ``key``, F_i the CDF of part i's training
    scores."""
    total = 0.0
    for arrays in parts:
        ref = np.sort(arrays["train"])
        rank = np.searchsorted(ref, arrays[key], side="right")
        total = total - np.log((len(ref) - rank + 0.5) / (len(ref) + 1.0))  # 1 − F, kept away from 0
    return total


def summarise(result: dict) -> dict:
    out = {}
    for sig, m in result["signals"].items():
        out[sig] = {k: m.get(k) for k in KEYS} | {f"{k}_err": m.get(f"{k}_err") for k in KEYS}
    if "mass_sculpting" in result:
        out["mass_sculpting_inverse_jsd"] = {k: v["inverse_jsd"] for k, v in
                                             result["mass_sculpting"]["by_background_efficiency"].items()}
    return out


def over_seeds(per_seed: dict[int, dict], signals) -> dict:
    """Per signal and key: the seeds' values, their mean, sample std (training spread) and mean bootstrap error."""
    out = {}
    for sig in signals:
        out[sig] = {}
        for k in KEYS:
            values = [r[sig][k] for r in per_seed.values() if r[sig][k] is not None]
            errs = [r[sig][f"{k}_err"] for r in per_seed.values() if r[sig].get(f"{k}_err") is not None]
            out[sig][k] = float(np.mean(values)) if values else None
            out[sig][f"{k}_seed_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
            out[sig][f"{k}_bootstrap_err"] = float(np.mean(errs)) if errs else None
            if k == "auc":
                out[sig]["auc_by_seed"] = [round(v, 5) for v in values]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run on the shipped sample (< 60 s; its numbers mean nothing)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the finished units of a killed or earlier run with the same settings")
    parser.add_argument("--fresh", action="store_true", help="discard the finished units of an earlier run")
    parser.add_argument("--units", type=Path, default=None,
                        help="folder of the per-unit scores (default benchmarks/data/jets_anomaly[_quick]_units)")
    parser.add_argument("--train-jets", type=int, default=50000, help="QCD training jets")
    parser.add_argument("--test-jets", type=int, default=None, help="test jets per process (15000; --quick 500)")
    parser.add_argument("--image-train-jets", type=int, default=None,
                        help="at most this many training jets for the image models (default: all; --quick 300)")
    parser.add_argument("--file-jets", type=int, nargs=3, default=(70000, 20000, 20000), metavar=("QCD", "TOP", "W"),
                        help="jets read per process from the cache")
    parser.add_argument("--epochs", type=int, default=None, help="feature models, NSF: half (60; --quick 2)")
    parser.add_argument("--image-epochs", type=int, default=None, help="(30; --quick 1)")
    parser.add_argument("--image-channels", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--image-latent", type=int, default=8)
    parser.add_argument("--feature-latent", type=int, default=3)
    parser.add_argument("--conv-vae-decoder", default="gaussian-fixed", choices=("bernoulli", "gaussian-fixed"))
    parser.add_argument("--vae-k", type=int, default=4, help="posterior samples of the VAE scores")
    parser.add_argument("--scorers", nargs="*", default=list(SCORERS), choices=SCORERS)
    parser.add_argument("--tasks", nargs="*", default=list(TASKS), choices=TASKS)
    parser.add_argument("--image-tasks", nargs="*", default=None, choices=TASKS,
                        help="tasks the image scorers (and the combination) run in (default: all; --quick: "
                             "direct and inverted)")
    parser.add_argument("--pixel-cnn-tasks", nargs="*", default=["direct"], choices=TASKS,
                        help="tasks pixel_cnn runs in (default: direct)")
    parser.add_argument("--pixel-cnn-budget", type=float, default=None,
                        help=f"pixel_cnn's training CPU seconds on the QCD training jets, scaled by a task's training "
                             f"jets (default {PIXEL_CNN_BUDGET:g}: the conv_ae's; --quick 2)")
    parser.add_argument("--pixel-cnn-levels", type=int, default=16)
    parser.add_argument("--pixel-cnn-channels", type=int, default=16)
    parser.add_argument("--pixel-cnn-layers", type=int, default=4)
    parser.add_argument("--pixel-cnn-lr", type=float, default=1e-3)
    parser.add_argument("--pixel-cnn-slices", type=int, default=10,
                        help="the budget is checked after each pass over one of this many slices of the images")
    parser.add_argument("--reports", nargs="*", default=None, choices=SCORERS,
                        help="scorers whose report folder (ROC/SIC, mass sculpting) is written "
                             "(all; --quick: combined)")
    parser.add_argument("--bootstrap", type=int, default=None, help="resamples of the test jets (50; --quick 5)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds (1 2 3; --quick 1 2)")
    parser.add_argument("--output", type=Path, default=None, help="JSON (default results/jets_anomaly[_quick].json)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    meter = Meter()
    start = time.perf_counter()
    quick = args.quick
    args.epochs = args.epochs or (2 if quick else 60)
    args.image_epochs = args.image_epochs or (1 if quick else 30)
    args.test_jets = args.test_jets or (500 if quick else 15000)
    args.image_train_jets = args.image_train_jets or (300 if quick else None)
    args.bootstrap = args.bootstrap if args.bootstrap is not None else (5 if quick else 50)
    args.seeds = args.seeds or ([1, 2] if quick else [1, 2, 3])
    if args.pixel_cnn_budget is None:
        args.pixel_cnn_budget = 2.0 if quick else PIXEL_CNN_BUDGET
    if args.pixel_cnn_budget <= 0 or args.pixel_cnn_slices < 1:
        parser.error("--pixel-cnn-budget must be > 0 and --pixel-cnn-slices >= 1")
    if args.reports is None:  # the figures are most of a smoke run's time
        args.reports = ["combined"] if quick else list(SCORERS)
    if args.image_tasks is None:  # quick: the image models where they matter most (and cost least time)
        args.image_tasks = [t for t in args.tasks if t in ("direct", "inverted")] if quick else args.tasks
    image_tasks = set(args.image_tasks)
    pixel_tasks = set(args.pixel_cnn_tasks)
    stem = "jets_anomaly_quick" if quick else "jets_anomaly"
    output = args.output or RESULTS / f"{stem}.json"
    fig_dir = output.with_suffix("")

    file_jets = dict(zip(("qcd", "top", "w"), args.file_jets))
    if not quick:
        missing = [str(cached_path(p, n)) for p, n in file_jets.items()
                   if not cached_path(p, n).exists() and 10_000 * len(jet_cache.chunks(p)) < n]
        if missing:  # _jets_data generates them once with hepgen data jets (both cores; hours at 70k QCD)
            print(f"missing cached jets: {', '.join(missing)}; generating them (better: run benchmarks/_jet_cache.py "
                  "first, resumably)", file=sys.stderr, flush=True)
    raw = jets(quick, file_jets)
    data = prepare(raw)
    del raw
    rng = np.random.default_rng(0)
    order = {p: rng.permutation(len(d["features"])) for p, d in data.items()}
    n_test = min(args.test_jets, len(order["qcd"]) // 2) if quick else args.test_jets
    test = {p: take(d, order[p][:n_test]) for p, d in data.items()}
    qcd_train = take(data["qcd"], order["qcd"][n_test:n_test + args.train_jets])
    pool = {p: take(data[p], order[p][n_test:]) for p in ("top", "w")}
    n_train = len(qcd_train["features"])
    if n_train < args.train_jets and not quick:
        print(f"only {n_train} QCD training jets after {n_test} test jets", file=sys.stderr)
    del data

    def contaminated(frac: float) -> tuple[dict, int]:
        k = min(round(frac / (1 - frac) * n_train), len(pool["top"]["features"]))
        return concat(qcd_train, take(pool["top"], np.arange(k))), k

    tasks: dict[str, tuple] = {}
    setup: dict[str, dict] = {}
    signals = {"top": test["top"], "w": test["w"]}
    for task in args.tasks:
        if task == "direct":
            tasks[task] = (qcd_train, test["qcd"], signals)
            setup[task] = {"train": f"{n_train} QCD", "background": "QCD test", "signals": ["top", "w"]}
        elif task == "inverted":
            n_top = min(n_train, len(pool["top"]["features"]))
            tasks[task] = (take(pool["top"], np.arange(n_top)), test["top"], {"qcd": test["qcd"]})
            setup[task] = {"train": f"{n_top} top", "background": "top test", "signals": ["qcd"]}
        else:
            frac = 0.01 if task.endswith("1pct") else 0.05
            x, k = contaminated(frac)
            tasks[task] = (x, test["qcd"], signals)
            setup[task] = {"train": f"{n_train} QCD + {k} top ({k / (n_train + k):.2%})", "background": "QCD test",
                           "signals": ["top", "w"]}

    scale = {"qcd_train_jets": n_train, "test_jets_per_process": n_test,
             "image_train_jets": min(n_train, args.image_train_jets or n_train),
             "signal_pool_jets": {p: len(v["features"]) for p, v in pool.items()},
             "feature_epochs": args.epochs, "nsf_epochs": max(1, args.epochs // 2),
             "image_epochs": args.image_epochs, "image_tasks": sorted(image_tasks), "seeds": args.seeds,
             "bootstrap": args.bootstrap}
    settings = {"image_latent": args.image_latent, "image_channels": list(args.image_channels),
                "image_memory_format": "channels_last", "feature_latent": args.feature_latent,
                "conv_vae_decoder": args.conv_vae_decoder, "vae_score": f"-ELBO, k = {args.vae_k}", "train": TRAIN,
                "nsf_subset": list(SUBSET), "images": "40x40, pT fraction per pixel (conv_ae_sqrt: its square root)"}
    # pixel_cnn came after the units of the committed run: its settings are checked per unit (below), so the
    # manifest, and with it every other scorer's cached units, stays as it was
    pixel_settings = {"model": "hepgen.PixelCNN (hepgen fit pixel-cnn), kernel 3", "levels": args.pixel_cnn_levels,
                      "channels": args.pixel_cnn_channels, "layers": args.pixel_cnn_layers, "lr": args.pixel_cnn_lr,
                      "batch_size": TRAIN["batch_size"], "scheduler": "none", "slices": args.pixel_cnn_slices,
                      "budget_cpu_s": args.pixel_cnn_budget, "budget_reference_jets": scale["image_train_jets"],
                      "images": "40x40 pT fraction per pixel, quantised by the family (level 0: empty; 15 log1p "
                                "bins), score = -log P per image in nats"}
    # what the units' scores depend on: a resumed run must agree on all of it
    manifest = {"data": "shipped sample" if quick else {"file_jets": file_jets, "jet_cache_plan": jet_cache.PLAN},
                "split": {k: scale[k] for k in ("qcd_train_jets", "test_jets_per_process", "image_train_jets",
                                                "signal_pool_jets")},
                "epochs": [args.epochs, args.image_epochs], "settings": settings}
    units = Units(args.units or DATA / f"{stem}_units", manifest, args.resume, discard=args.fresh or quick)
    records: dict[str, dict] = {}

    def unit(task: str, name: str, seed: int) -> dict[str, np.ndarray]:
        """The scores of ``name`` trained with ``seed`` for ``task``: cached, or trained now and cached."""
        key = f"{task}/{name}/seed{seed}"
        got = units.get(key)
        if got is not None and name == "pixel_cnn" and got[1].get("pixel_cnn_settings") != json.loads(
                json.dumps(pixel_settings)):
            print(f"--resume: {units.folder}/{key} was made with pixel_cnn settings "
                  f"{json.dumps(got[1].get('pixel_cnn_settings'))[:200]}, this run has other ones; rerun with them, "
                  "or delete that unit", file=sys.stderr)
            raise SystemExit(2)
        if got is None:
            x_train, bkg, sigs = tasks[task]
            piece = Meter()
            if name.startswith("supervised_"):
                sig = name.removeprefix("supervised_")
                n_sig = min(n_train, len(pool[sig]["features"]))
                x = np.concatenate([qcd_train["features"], pool[sig]["features"][:n_sig]])
                y = np.r_[np.zeros(n_train), np.ones(n_sig)]
                w = np.r_[np.ones(n_train), np.full(n_sig, n_train / n_sig)]  # balanced classes
                clf = hepgen.Classifier(len(COLUMNS)).fit(x, labels=y, weights=w, epochs=args.epochs, seed=seed,
                                                          **{**TRAIN, "lr": 1e-3})
                arrays = {"background": clf.score(bkg["features"]).double().numpy(),
                          f"signal_{sig}": clf.score(test[sig]["features"]).double().numpy()}
                extra = {}
            else:
                n_fit = min(len(x_train["features"]), args.image_train_jets or len(x_train["features"]))
                budget = args.pixel_cnn_budget * n_fit / scale["image_train_jets"]  # the conv_ae's epochs × jets
                scorer = Scorer(name, args).fit(x_train, seed, budget=budget if name == "pixel_cnn" else None)
                scoring = time.process_time()
                arrays = {"background": scorer.score(bkg), **{f"signal_{n}": scorer.score(v) for n, v in sigs.items()}}
                extra = {"score_cpu_s": round(time.process_time() - scoring, 1)}
                if name in COMBINED:  # the combination's reference: the training jets' own scores
                    arrays["train"] = scorer.score(x_train)
                if name == "pixel_cnn":
                    extra |= {"pixel_cnn": scorer.budget_record, "pixel_cnn_settings": pixel_settings}
            record = {"machine": piece.record(), "train_jets": int(len(x_train["features"])), **extra}
            units.put(key, arrays, record)
            meter.sample()
            print(f"{key}: {record['machine']['cpu_s']:.1f} CPU s", flush=True)
        else:
            arrays, record = got
        records[key] = record
        return arrays

    out: dict = {"benchmark": "jets_anomaly", "quick": bool(quick),
                 "data": "shipped sample (seed 1)" if quick else
                         f"hepgen data jets (benchmarks/_jet_cache.py chunks, seeds 1101-1302, or seed 11 files): "
                         f"{file_jets} jets per process (550-650 GeV, anti-kT R = 0.8)",
                 "scale": scale, "settings": settings, "pixel_cnn_settings": pixel_settings,
                 "command": " ".join(["python", "benchmarks/jets_anomaly.py", *sys.argv[1:]]),
                 "units_folder": str(units.folder.relative_to(DATA.parent) if units.folder.is_relative_to(
                     DATA.parent) else units.folder), "setup": setup, "tasks": {}, "by_seed": {}}
    curves: dict[str, dict] = {"top": {}, "w": {}}
    sics: dict[str, dict] = {"top": {}, "w": {}}
    first = args.seeds[0]
    for task, (x_train, bkg, sigs) in tasks.items():
        out["tasks"][task], out["by_seed"][task] = {}, {}
        names = [n for n in args.scorers if n != "supervised"
                 and not ((n in IMAGE_SCORERS or n == "combined") and task not in image_tasks)
                 and not (n == "pixel_cnn" and task not in pixel_tasks)]
        if "supervised" in args.scorers and task == "direct":
            names += [f"supervised_{sig}" for sig in sigs]
        for name in names:
            per_seed = {}
            for seed in args.seeds:
                if name == "combined":
                    parts = [unit(task, part, seed) for part in COMBINED]
                    arrays = {k: fisher(parts, k) for k in parts[0] if k != "train"}
                else:
                    arrays = unit(task, name, seed)
                b = arrays["background"]
                s = {k.removeprefix("signal_"): v for k, v in arrays.items() if k.startswith("signal_")}
                figures = task == "direct" and seed == first
                report = figures and ("supervised" if name.startswith("supervised_") else name) in args.reports
                label = "classifier output" if name.startswith("supervised") else name
                result = roc_report(b, s, fig_dir / name if report else None,
                                    mass=bkg["mass"] if task != "inverted" else None, mass_label="jet mass [GeV]",
                                    n_bootstrap=args.bootstrap, score_name=label,
                                    title=f"{name} trained on {setup[task]['train']} jets, seed {seed}")
                per_seed[seed] = summarise(result)
                if figures:
                    for sig, s_sig in s.items():
                        eps_b, eps_s, _ = roc_curve(s_sig, b)
                        curves[sig][name.removesuffix(f"_{sig}")], sics[sig][name.removesuffix(f"_{sig}")] = (
                            (eps_b, eps_s), sic_curve(s_sig, b))
            out["by_seed"][task][name] = {str(seed): r for seed, r in per_seed.items()}
            out["tasks"][task][name] = over_seeds(per_seed, [k for k in per_seed[first] if k in ("top", "w", "qcd")])
            print(task, name, {sig: f"{v['auc']:.3f} ± {v['auc_seed_std'] or 0:.3f} (seeds) ± "
                                    f"{v['auc_bootstrap_err'] or 0:.3f} (test)"
                               for sig, v in out["tasks"][task][name].items()}, flush=True)

    for sig in ("top", "w"):
        if curves[sig]:
            plot_roc_sic(curves[sig], sics[sig], fig_dir / f"roc_sic_{sig}.png",
                         title=f"{sig} jets as anomalies; scorers trained on {n_train} QCD jets (supervised: labels), "
                               f"seed {first}")
    direct = out["tasks"].get("direct", {})
    if direct:
        best = {}
        for sig in ("top", "w"):
            ranked = [(v[sig]["auc"], n) for n, v in direct.items() if not n.startswith("supervised") and v.get(sig)]
            if ranked:
                auc, name = max(ranked)
                best[sig] = {"scorer": name, **{k: direct[name][sig][k] for k in
                                                ("auc", "auc_seed_std", "auc_bootstrap_err", "auc_by_seed")}}
        out["best_unsupervised_direct"] = best
        out["goal"] = {"top_auc_0.92": bool(best.get("top", {}).get("auc", 0) >= 0.92),
                       "w_auc_0.80": bool(best.get("w", {}).get("auc", 0) >= 0.80),
                       "what": "mean AUC over the seeds of the best unsupervised scorer (chosen after the fact)"}
        changes = {}
        for task in ("contaminated_1pct", "contaminated_5pct"):
            for name, v in out["tasks"].get(task, {}).items():
                if name in direct:
                    changes.setdefault(task, {})[name] = {
                        sig: {"auc_change": round(v[sig]["auc"] - direct[name][sig]["auc"], 4),
                              "seed_err": _change_err(v[sig], direct[name][sig], len(args.seeds))}
                        for sig in ("top", "w")}
        out["auc_change_from_contamination"] = changes
        if "pixel_cnn" in direct:  # why its −log P ranks W jets below QCD (no training: the cached scores)
            out["pixel_cnn_complexity"] = pixel_cnn_complexity(
                {seed: unit("direct", "pixel_cnn", seed) for seed in args.seeds},
                qcd_train["images"][:scale["image_train_jets"]], test, args)
        out["auc_change_what"] = ("mean AUC over seeds, contaminated minus direct; seed_err = √(s_c² + s_d²)/√n "
                                  "from the seed spreads (the test jets are shared, so their bootstrap errors "
                                  "mostly cancel)")
    out["figures"] = (sorted(str(p.relative_to(output.parent)) for p in fig_dir.rglob("*.png"))
                      if fig_dir.exists() else [])
    cpu_units = sum(r["machine"]["cpu_s"] for r in records.values())
    out["units"] = {k: {"cpu_s": r["machine"]["cpu_s"], "wall_s": r["machine"]["wall_s"],
                        "load_1min_peak": r["machine"]["peak_load_1min_sampled"],
                        "timings_valid": r["machine"]["timings_valid"],
                        **{f: r[f] for f in ("score_cpu_s", "pixel_cnn") if f in r}} for k, r in sorted(records.items())}
    out["cpu_hours_units"] = round(cpu_units / 3600, 3)
    out["machine"] = meter.record()  # this invocation (a resumed run: only what it trained and the reports)
    out["wall_time_s"] = round(time.perf_counter() - start, 1)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output, json.dumps(out, indent=2) + "\n")
    print(f"wrote {output} ({out['wall_time_s']} s, {out['machine']['cpu_s']} CPU s; all units "
          f"{out['cpu_hours_units']} CPU h)")
    return 0


def _change_err(a: dict, b: dict, n: int) -> float | None:
    if a.get("auc_seed_std") is None or b.get("auc_seed_std") is None:
        return None
    return round(float(np.hypot(a["auc_seed_std"], b["auc_seed_std"]) / np.sqrt(n)), 4)


if __name__ == "__main__":
    sys.exit(main())
