"""Autoencoders on the shipped jets: anomaly detection (QCD-trained, top/W as signal) and ConvAE vs PCA.

Two results files:

* ``ae_anomaly.json``: :func:`hepgen.demo.figures.autoencoders.autoencoder_figures` in full mode (40x40
  jet images as pT fractions, longer training; ``--quick``: the demo's 20x20 setting) with AUC and
  max SIC bootstrap uncertainties over the scored test events, plus, with ``--seeds``, the same two
  detectors retrained with other seeds (the spread from training). Detectors: a ConvAE on QCD jet
  images and a dense AE on the 11 high-level features, trained on 1875 QCD jets, scored on 625
  held-out QCD jets and all 2500 top and 2500 W jets; figures of merit from hepgen.metrics.
* ``ae_vs_pca.json``: held-out MSE of a ConvAE and of PCA at equal latent sizes (2, 4, 8, 16) on
  scikit-learn's 8x8 digits and on the QCD jet images pooled to 20x20.

    .venv/bin/python benchmarks/ae_anomaly.py [--quick] [--seeds 1 2] [--latents 2 4 8 16] [--figures DIR]

About 6 minutes on one core (2 with --quick); every --seeds entry adds about one minute.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).with_name("results")


def scan(quick: bool, latents: list[int]) -> dict:
    from hepgen.demo.figures.autoencoders import conv_ae_vs_pca, public_summary, digits_split, jets_data

    d_train, d_test = digits_split(0)
    jets = jets_data(pool=2, seed=0)
    qcd = jets["images"]["qcd"]
    j_train, j_test = qcd[jets["qcd_train"]], qcd[jets["qcd_test"]]
    out: dict = {"digits": [], "jet_images_20x20": []}
    for latent in latents:
        t0 = time.perf_counter()
        out["digits"].append(public_summary(conv_ae_vs_pca(d_train, d_test, latent, (32, 64), 15 if quick else 40)))
        out["jet_images_20x20"].append(public_summary(conv_ae_vs_pca(j_train, j_test, latent, (16, 32, 64),
                                                              20 if quick else 40)))
        print(f"latent {latent}: digits ratio {out['digits'][-1]['ratio']:.3f}, jets ratio "
              f"{out['jet_images_20x20'][-1]['ratio']:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the demo's budget: 20x20 images, short training")
    parser.add_argument("--seeds", type=int, nargs="*", default=None,
                        help="extra training seeds for the detectors (default: 1 2 in full mode, none with --quick)")
    parser.add_argument("--latents", type=int, nargs="*", default=[2, 4, 8, 16])
    parser.add_argument("--figures", type=Path, default=None, help="keep the figures, runs and data here")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (more than 1 thrashes on a loaded machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = args.seeds if args.seeds is not None else ([] if args.quick else [1, 2])

    from hepgen.demo.figures.autoencoders import SETTINGS, autoencoder_figures, jet_detectors, jets_data

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        fig_dir = args.figures or Path(tmp) / "figures"
        summary = autoencoder_figures(fig_dir, quick=args.quick, seed=0, quiet=False, bootstrap=100)
        cfg = SETTINGS[bool(args.quick)]
        retrained = []
        for seed in seeds:
            t0 = time.perf_counter()
            det = jet_detectors(jets_data(cfg["pool"], seed=0), cfg["jet_epochs"], cfg["feature_epochs"], seed=seed)
            retrained.append({"seed": seed, "anomaly": {k: r.metrics for k, r in det["results"].items()},
                              "jet_images_mse_ratio": det["image_study"]["ratio"]})
            print(f"seed {seed}: retrained in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    spread = {}
    if retrained:
        runs = [{"anomaly": summary["anomaly"]}] + retrained
        for det in summary["anomaly"]:
            for sig in summary["anomaly"][det]:
                aucs = [r["anomaly"][det][sig]["auc"] for r in runs]
                sics = [r["anomaly"][det][sig]["max_sic"] for r in runs]
                spread[f"{det}/{sig}"] = {"auc_mean": statistics.mean(aucs), "auc_std": statistics.stdev(aucs),
                                          "max_sic_mean": statistics.mean(sics), "max_sic_std": statistics.stdev(sics),
                                          "seeds": len(runs)}
    anomaly = {
        "benchmark": "ae_anomaly", "quick": bool(args.quick), "threads": args.threads,
        "settings": SETTINGS[bool(args.quick)], "latent": summary["latent"],
        "data": {k: v for k, v in summary["data"].items() if k != "jets"},
        "anomaly": summary["anomaly"], "anomaly_setup": {k: v for k, v in summary["anomaly_setup"].items()
                                                         if k != "commands"},
        "uncertainties": "auc_std / max_sic_std: bootstrap (100 resamples) of the scored test events; "
                         "training_spread: the same detectors retrained with other seeds",
        "training_spread": spread, "retrained": retrained,
        "reconstruction_vs_pca": {"digits": summary["digits"], "jet_images": summary["jet_images"]},
        "feature_breakdown": summary["feature_breakdown"], "timings_s": summary["timings_s"],
    }
    comparison = {"benchmark": "ae_vs_pca", "quick": bool(args.quick),
                  "what": "held-out MSE of a ConvAE (standardised pixels) and of PCA at equal latent size; "
                          "ratio < 1: the ConvAE reconstructs better",
                  **scan(args.quick, args.latents)}
    anomaly["wall_time_s"] = round(time.perf_counter() - start, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ae_anomaly.json").write_text(json.dumps(anomaly, indent=2, default=float) + "\n")
    (RESULTS / "ae_vs_pca.json").write_text(json.dumps(comparison, indent=2, default=float) + "\n")
    print(f"wrote {RESULTS / 'ae_anomaly.json'} and {RESULTS / 'ae_vs_pca.json'} "
          f"({anomaly['wall_time_s']} s)")


if __name__ == "__main__":
    main()
