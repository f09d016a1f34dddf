"""The toy of Louppe, Kagan & Cranmer (2017): a classifier made independent of a nuisance Z by an adversary.

Y = 0: X ~ N((0, 0), [[1, −0.5], [−0.5, 1]]);  Y = 1: X ~ N((1, 1 + Z), I), Z ~ N(0, 1).
For each λ: hepgen.Pivot (MDN adversary) trained through the public API; f's output distribution at
Z = −1, 0, +1 (signal drawn at that Z, against the same background), the ROC AUC at each Z, the
Kolmogorov–Smirnov distance between f|Z=−1 and f|Z=+1, and the mutual information I(f; Z) on signal
(histogram estimate, 20 × 20 bins, in bits). Writes benchmarks/results/pivot_toy.json and pivot_toy.png.

    python benchmarks/pivot_toy.py            # λ ∈ {0, 1, 10, 50}, 50k events, 30 epochs
    python benchmarks/pivot_toy.py --quick    # λ ∈ {0, 50}, 20k events, 20 epochs
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy.stats import ks_2samp

import hepgen
from hepgen.metrics import roc_auc

RESULTS = Path(__file__).parent / "results"


def toy(n, rng, z=None):
    y = rng.integers(0, 2, n).astype(float)
    zz = rng.normal(size=n) if z is None else np.full(n, float(z))
    bkg = rng.multivariate_normal([0, 0], [[1, -0.5], [-0.5, 1]], n)
    sig = rng.normal(size=(n, 2)) + np.c_[np.ones(n), 1 + zz]
    return np.where(y[:, None] == 0, bkg, sig).astype(np.float32), y, zz


def mutual_information(a, b, bins=20):
    h, _, _ = np.histogram2d(a, b, bins=bins)
    p = h / h.sum()
    px, py = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log2(p[nz] / (px @ py)[nz])).sum())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    n = args.n or (20000 if args.quick else 50000)
    epochs = args.epochs or (20 if args.quick else 30)
    lams = [0.0, 50.0] if args.quick else [0.0, 1.0, 10.0, 50.0]
    rng = np.random.default_rng(0)
    x, y, z = toy(n, rng)
    test_rng = np.random.default_rng(1)
    bkg = test_rng.multivariate_normal([0, 0], [[1, -0.5], [-0.5, 1]], 20000).astype(np.float32)
    out = {"n_train": n, "epochs": epochs, "quick": args.quick, "lambda": {}}
    fig = Figure(figsize=(5 * len(lams), 4.5), layout="constrained")
    axes = fig.subplots(1, len(lams))
    for ax, lam in zip(np.atleast_1d(axes), lams):
        t0 = time.perf_counter()
        model = hepgen.Pivot(2, lam=lam, pretrain_classifier=3, pretrain_adversary=3, adversary_steps=5)
        model.fit(x, labels=y, nuisance=z, epochs=epochs, batch_size=256, quiet=True, seed=1)
        seconds = time.perf_counter() - t0
        f_b = model.score(bkg).numpy()
        res = {"fit_seconds": seconds, "auc_at_z": {}, "f_quantiles_at_z": {}}
        f_z = {}
        for v in (-1.0, 0.0, 1.0):
            sig = (test_rng.normal(size=(20000, 2)) + np.array([1, 1 + v])).astype(np.float32)
            f_z[v] = model.score(sig).numpy()
            res["auc_at_z"][f"{v:g}"] = roc_auc(f_z[v], f_b)
            res["f_quantiles_at_z"][f"{v:g}"] = np.quantile(f_z[v], [0.1, 0.5, 0.9]).tolist()
            ax.hist(f_z[v], bins=50, range=(0, 1), histtype="step", density=True, label=f"Z = {v:g}")
        ax.hist(f_b, bins=50, range=(0, 1), histtype="step", density=True, color="grey", ls="--", label="Y = 0")
        _, ys, zs = toy(20000, test_rng)
        xs = (test_rng.normal(size=(20000, 2)) + np.c_[np.ones(20000), 1 + zs]).astype(np.float32)
        fs = model.score(xs).numpy()
        res["ks_z_minus1_vs_plus1"] = float(ks_2samp(f_z[-1.0], f_z[1.0]).statistic)
        res["mutual_information_bits"] = mutual_information(fs, zs)
        res["auc_marginal"] = roc_auc(fs, f_b)
        out["lambda"][f"{lam:g}"] = res
        ax.set_title(f"λ = {lam:g}: KS(Z=±1) = {res['ks_z_minus1_vs_plus1']:.3f}")
        ax.set_xlabel("f(X)")
        ax.legend(fontsize="small")
        print(f"lambda={lam:g}: {json.dumps({k: v for k, v in res.items() if k != 'f_quantiles_at_z'})}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / "pivot_toy.png", dpi=90)
    (RESULTS / "pivot_toy.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
