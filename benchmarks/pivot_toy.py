"""The toy of Louppe, Kagan & Cranmer (2017), "Learning to pivot with adversarial networks".

Y = 0: X ~ N((0, 0), [[1, −0.5], [−0.5, 1]]);  Y = 1: X ~ N((1, 1 + Z), I), Z ~ N(0, 1)  (Z drawn for every
event; the background does not depend on it). For each λ, hepgen.Pivot is trained through the public API with
the paper's set-up and schedule: f an MLP of 3 × 20 units, r a 5-component Gaussian mixture density network
(2 × 20 units) that predicts Z from f(X); f pretrained alone, then r alone on the frozen f, then both, r taking
``adversary_steps`` steps per step of f, f minimising L_f − λ L_r.

Measured on fresh test events (n_test each): f's output distribution for signal drawn at Z = −1, 0, +1 (and
the background), the ROC and AUC of each against the same background, the Kolmogorov–Smirnov distance
between f | Z = −1 and f | Z = +1, and the mutual information I(f; Z) on signal with Z ~ N(0, 1) (plug-in
estimate on 20 × 20 equiprobable bins, in bits), each with a bootstrap error. Two floors say what "independent"
looks like at this n: the KS distance of two independent samples of the same Z, and the MI after shuffling Z
(the plug-in estimator's bias). A pivotal f depends on x₁ only; its best AUC at every Z is then the AUC of x₁
alone, Φ(1/√2) ≈ 0.760, quoted as ``auc_pivotal_bound``.

    python benchmarks/pivot_toy.py            # the paper's scale: 50k events, batch 256, 40 epochs, 7 values of λ
    python benchmarks/pivot_toy.py --quick    # 50k events, batch 512, 50 epochs, λ ∈ {0, 1, 10, 50}

Optimiser: Adam, f at lr 1e-3 and r at 3e-3 (the adversary must track f; at 1e-2 it destabilises the game and
f stays Z-dependent, at f's rate the residual KS at λ = 50 was ~2× larger in our scans). The engine keeps the
epoch of lowest validation L_f − λ L_r (the last epoch of this oscillating game gave a larger KS).

Writes benchmarks/results/pivot_toy.json and pivot_toy.png.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy.stats import ks_2samp, norm

import hepgen
from hepgen.files import atomic_write_text
from hepgen.metrics import bootstrap, roc_auc, roc_curve
from hepgen.report.plots import save_figure

RESULTS = Path(__file__).parent / "results"
BKG_COV = [[1.0, -0.5], [-0.5, 1.0]]
ZS = (-1.0, 0.0, 1.0)


def toy(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x (n, 2), y (n,), z (n,)): the paper's toy, classes 50/50."""
    y = rng.integers(0, 2, n).astype(float)
    z = rng.normal(size=n)
    bkg = rng.multivariate_normal([0, 0], BKG_COV, n)
    sig = rng.normal(size=(n, 2)) + np.c_[np.ones(n), 1 + z]
    return np.where(y[:, None] == 0, bkg, sig).astype(np.float32), y, z


def signal_at(z: np.ndarray | float, n: int, rng: np.random.Generator) -> np.ndarray:
    z = np.broadcast_to(np.asarray(z, float), (n,))
    return (rng.normal(size=(n, 2)) + np.c_[np.ones(n), 1 + z]).astype(np.float32)


def mutual_information(a: np.ndarray, b: np.ndarray, bins: int = 20) -> float:
    """Plug-in I(a; b) in bits on bins × bins equiprobable (quantile) bins."""
    qa = np.quantile(a, np.linspace(0, 1, bins + 1)[1:-1])
    qb = np.quantile(b, np.linspace(0, 1, bins + 1)[1:-1])
    h = np.zeros((bins, bins))
    np.add.at(h, (np.searchsorted(qa, a), np.searchsorted(qb, b)), 1.0)
    p = h / h.sum()
    outer = p.sum(1, keepdims=True) @ p.sum(0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log2(p[nz] / outer[nz])).sum())


def ks(a: np.ndarray, b: np.ndarray) -> float:
    return float(ks_2samp(a, b).statistic)


def evaluate(model, n_test: int, n_boot: int, seed: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)  # the same test events for every λ
    f_bkg = model.score(rng.multivariate_normal([0, 0], BKG_COV, n_test).astype(np.float32)).numpy()
    f_z = {v: model.score(signal_at(v, n_test, rng)).numpy() for v in ZS}
    f_z0_again = model.score(signal_at(0.0, n_test, rng)).numpy()
    z_marg = rng.normal(size=n_test)
    f_marg = model.score(signal_at(z_marg, n_test, rng)).numpy()
    ks_value, ks_err = bootstrap(ks, f_z[-1.0], f_z[1.0], n=n_boot, seed=seed)
    mi_value, mi_err = bootstrap(mutual_information, f_marg, z_marg, n=n_boot, seed=seed, groups=(0, 0))
    shuffled = [mutual_information(f_marg, np.random.default_rng(seed + k).permutation(z_marg)) for k in range(10)]
    res = {
        "auc_at_z": {}, "auc_at_z_err": {}, "f_quantiles_at_z": {},
        "ks_z_minus1_vs_plus1": ks_value, "ks_z_minus1_vs_plus1_err": ks_err,
        "ks_p_value": float(ks_2samp(f_z[-1.0], f_z[1.0]).pvalue),
        "ks_floor_same_z": ks(f_z[0.0], f_z0_again),
        "mutual_information_bits": mi_value, "mutual_information_bits_err": mi_err,
        "mutual_information_floor_shuffled_z": float(np.mean(shuffled)),
        "auc_marginal": roc_auc(f_marg, f_bkg),
        "median_f_at_z": {}, "roc_at_z": {},
    }
    for v in ZS:
        key = f"{v:g}"
        auc, err = bootstrap(roc_auc, f_z[v], f_bkg, n=min(n_boot, 30), seed=seed)
        res["auc_at_z"][key], res["auc_at_z_err"][key] = auc, err
        res["f_quantiles_at_z"][key] = np.quantile(f_z[v], [0.1, 0.25, 0.5, 0.75, 0.9]).tolist()
        eps_b, eps_s, _ = roc_curve(f_z[v], f_bkg)
        grid = np.linspace(0, 1, 51)
        res["roc_at_z"][key] = {"eps_s": grid.tolist(), "eps_b": np.interp(grid, eps_s, eps_b).tolist()}
    return res, {"bkg": f_bkg, **{f"{v:g}": f_z[v] for v in ZS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="λ ∈ {0, 1, 10, 50}, batch 512, 50 epochs")
    parser.add_argument("--n", type=int, default=50000, help="training events (the paper: 50k)")
    parser.add_argument("--n-test", type=int, default=20000, help="test events per sample")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate of f")
    parser.add_argument("--adversary-lr", type=float, default=3e-3, help="learning rate of r")
    parser.add_argument("--lams", type=str, default=None, help="comma-separated λ values")
    parser.add_argument("--bootstrap", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    epochs = args.epochs or (50 if args.quick else 40)
    batch = args.batch_size or (512 if args.quick else 256)
    lr = args.lr
    lams = [float(v) for v in args.lams.split(",")] if args.lams else \
        ([0.0, 1.0, 10.0, 50.0] if args.quick else [0.0, 1.0, 5.0, 10.0, 20.0, 50.0, 100.0])
    schedule = {"pretrain_classifier": 5, "pretrain_adversary": 5, "adversary_steps": 5}
    arch = {"hidden": (20, 20, 20), "adversary_hidden": (20, 20), "components": 5, "adversary_lr": args.adversary_lr}
    x, y, z = toy(args.n, np.random.default_rng(0))
    out = {"quick": args.quick, "n_train": args.n, "n_test_per_sample": args.n_test, "epochs": epochs,
           "batch_size": batch, "lr": lr, "bootstrap": args.bootstrap, "schedule": schedule,
           "architecture": {k: list(v) if isinstance(v, tuple) else v for k, v in arch.items()},
           "auc_pivotal_bound": float(norm.cdf(1 / np.sqrt(2))), "lambda": {},
           "command": "python benchmarks/pivot_toy.py" + (" --quick" if args.quick else "")}
    outputs = {}
    for lam in lams:
        t0 = time.perf_counter()
        model = hepgen.Pivot(2, lam=lam, **schedule, **arch)
        model.fit(x, labels=y, nuisance=z, epochs=epochs, batch_size=batch, lr=lr, quiet=True, seed=1)
        seconds = time.perf_counter() - t0
        res, outputs[lam] = evaluate(model, args.n_test, args.bootstrap, seed=7)
        res["fit_seconds"] = seconds
        out["lambda"][f"{lam:g}"] = res
        print(f"λ={lam:g}: KS={res['ks_z_minus1_vs_plus1']:.4f}±{res['ks_z_minus1_vs_plus1_err']:.4f} "
              f"(floor {res['ks_floor_same_z']:.4f}), MI={res['mutual_information_bits']:.4f}"
              f"±{res['mutual_information_bits_err']:.4f} bits (floor {res['mutual_information_floor_shuffled_z']:.4f}), "
              f"AUC at Z=-1,0,1: {[round(v, 3) for v in res['auc_at_z'].values()]}, {seconds:.0f} s", flush=True)
    figure(out, outputs, lams)
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "pivot_toy.json", json.dumps(out, indent=2) + "\n")


def figure(out: dict, outputs: dict, lams: list[float]) -> None:
    shown = [lams[0], lams[-1]] if 50.0 not in lams or 0.0 not in lams else [0.0, 50.0]
    fig = Figure(figsize=(13, 10), layout="constrained")
    axes = fig.subplots(2, 2)
    colors = {"-1": "tab:blue", "0": "tab:green", "1": "tab:red"}
    for ax, lam in zip(axes[0], shown, strict=True):
        res = out["lambda"][f"{lam:g}"]
        for key, c in colors.items():
            ax.hist(outputs[lam][key], bins=50, range=(0, 1), histtype="step", density=True, color=c,
                    label=f"Y = 1, Z = {key}")
        ax.hist(outputs[lam]["bkg"], bins=50, range=(0, 1), histtype="stepfilled", density=True, color="grey",
                alpha=0.3, label="Y = 0")
        ax.set_title(f"λ = {lam:g}: KS(Z = −1, +1) = {res['ks_z_minus1_vs_plus1']:.3f} ± "
                     f"{res['ks_z_minus1_vs_plus1_err']:.3f} (floor {res['ks_floor_same_z']:.3f})")
        ax.set_xlabel("f(X)")
        ax.set_ylabel("density")
        ax.legend(fontsize="small")
    ax = axes[1, 0]
    for lam, ls in zip(shown, ("-", "--"), strict=True):
        res = out["lambda"][f"{lam:g}"]
        for key, c in colors.items():
            roc = res["roc_at_z"][key]
            ax.plot(roc["eps_b"], roc["eps_s"], ls=ls, color=c,
                    label=f"λ = {lam:g}, Z = {key}: AUC {res['auc_at_z'][key]:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.5)
    ax.set_xlabel("background efficiency ε_B")
    ax.set_ylabel("signal efficiency ε_S")
    ax.set_title("ROC at each Z (same background)")
    ax.legend(fontsize="small")
    ax = axes[1, 1]
    lam_x = np.array(lams)
    rows = [out["lambda"][f"{v:g}"] for v in lams]
    ax.errorbar(lam_x, [r["ks_z_minus1_vs_plus1"] for r in rows], [r["ks_z_minus1_vs_plus1_err"] for r in rows],
                fmt="o-", color="tab:purple", label="KS(f | Z = −1, f | Z = +1)")
    ax.plot(lam_x, [r["ks_floor_same_z"] for r in rows], ":", color="tab:purple", label="KS floor (same Z)")
    ax.errorbar(lam_x, [r["mutual_information_bits"] for r in rows], [r["mutual_information_bits_err"] for r in rows],
                fmt="s-", color="tab:orange", label="I(f; Z) [bits], signal")
    ax.plot(lam_x, [r["mutual_information_floor_shuffled_z"] for r in rows], ":", color="tab:orange",
            label="I floor (Z shuffled)")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_yscale("log")
    ax.set_xlabel("λ")
    ax.set_title(f"dependence on Z against λ ({out['n_train']} training events, {out['epochs']} epochs)")
    ax.legend(fontsize="small")
    RESULTS.mkdir(parents=True, exist_ok=True)
    save_figure(fig, RESULTS / "pivot_toy.png")


if __name__ == "__main__":
    main()
