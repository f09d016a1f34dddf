"""W vs QCD tagging decorrelated from the jet mass: the plane of the DisCo paper (Kasieczka & Shih 2020).

Jets from ``hepgen data jets`` (550–650 GeV, anti-kT R = 0.8), cached in benchmarks/data/ by the lead:
jets_qcd_70000_11.h5 and jets_w_20000_11.h5 (``--quick``: the shipped 2,500 jets per process). Inputs are the
substructure features without the mass and pT (tau1..3, tau21, tau32, c2, d2, n_constituents); the classes are
balanced by per-event weights (each class sums to the same weight). Taggers, all through the public API:

* a τ21 cut (score −τ21) and the plain hepgen.Classifier;
* hepgen.Pivot over a λ sweep — the adversary sees the background only (``adversary_on="background"``) and
  predicts the QCD mass binned in ``--mass-bins`` quantile bins (softmax adversary; ``--adversary gmm``: the
  mixture density network on the standardised mass);
* hepgen.DisCo over an α sweep (distance correlation of the output with the mass on background events).

For each, on the held-out test jets: the background rejection R50 = 1/ε_B at ε_S = 0.5 and 1/JSD of the QCD
mass histograms of the passing and failing jets at that same cut — JSD in bits from
:func:`hepgen.metrics.decorrelation.mass_sculpting`, the function ``hepgen roc --mass`` uses, on 50 equal bins
over the test QCD mass range (its default) — each with a bootstrap error (signal and background test jets
resampled, the background's scores and masses together). The mass-independent limit of 1/JSD at this test
statistics is quoted from a random cut (``random cut``: a score independent of everything).

    python benchmarks/jets_decorrelation.py --quick                  # the shipped sample
    python benchmarks/jets_decorrelation.py                          # 70k QCD + 20k W from the cache
    python benchmarks/jets_decorrelation.py --train-qcd 20000 --train-w 8000 --epochs 15   # a reduced run

Writes benchmarks/results/jets_decorrelation.json and jets_decorrelation.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from matplotlib.figure import Figure

import hepgen
from hepgen.files import atomic_write_text
from hepgen.metrics import background_rejection, bootstrap, roc_curve
from hepgen.metrics.decorrelation import mass_sculpting, passing_fraction
from hepgen.report.plots import save_figure

sys.path.insert(0, str(Path(__file__).parent))
from _jets_data import COLUMNS, DATA, jets

RESULTS = Path(__file__).parent / "results"
INPUTS = ["tau1", "tau2", "tau3", "tau21", "tau32", "c2", "d2", "n_constituents"]
MASS_BINS = 50  # hepgen roc --mass: 50 equal bins over the background's mass range


def plane_point(s_sig: np.ndarray, s_bkg: np.ndarray, m_bkg: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(R50 = 1/ε_B at ε_S = 0.5, 1/JSD of the passing vs failing background mass at that cut, ε_B)."""
    eps_b, eps_s, _ = roc_curve(s_sig, s_bkg)
    rejection = background_rejection(eps_b, eps_s, 0.5)
    threshold = np.quantile(s_sig, 0.5)  # the cut keeping half of the signal
    eff_b = passing_fraction(s_bkg, threshold)
    if not 0 < eff_b < 1:
        return np.array([rejection, np.nan, eff_b])
    sculpt = mass_sculpting(s_bkg, m_bkg, efficiencies=(eff_b,), bins=edges)[f"{eff_b:g}"]
    return np.array([rejection, sculpt["inverse_jsd"], eff_b])


def load(args: argparse.Namespace) -> dict[str, np.ndarray]:
    if args.quick:
        data = jets(True, 2500, processes=("qcd", "w"))
        return {p: data[p]["features"] for p in ("qcd", "w")}
    out = {}
    for p, n in (("qcd", args.n_qcd), ("w", args.n_w)):
        path = DATA / f"jets_{p}_{n}_{args.seed_data}.h5"
        if not path.exists():
            sys.exit(f"{path} does not exist: generate it once with\n  hepgen data jets -n {n} --seed "
                     f"{args.seed_data} --option process={p} --option workers=-1 -o {path}")
        with h5py.File(path) as f:
            out[p] = f["features"][:].astype(np.float64)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the shipped 2500 jets per process")
    parser.add_argument("--n-qcd", type=int, default=70000, help="QCD jets in the cached file")
    parser.add_argument("--n-w", type=int, default=20000, help="W jets in the cached file")
    parser.add_argument("--seed-data", type=int, default=11)
    parser.add_argument("--train-qcd", type=int, default=None, help="QCD jets to train on (default: half)")
    parser.add_argument("--train-w", type=int, default=None, help="W jets to train on (default: half)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="default 256 (--quick), 1024")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--lams", default=None, help="comma-separated λ of the pivot")
    parser.add_argument("--alphas", default=None, help="comma-separated α of DisCo")
    parser.add_argument("--adversary", choices=("binned", "gmm"), default="binned")
    parser.add_argument("--mass-bins", type=int, default=10, help="classes of the binned adversary")
    parser.add_argument("--bootstrap", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    features = load(args)
    epochs = args.epochs or (25 if args.quick else 20)
    args.batch_size = args.batch_size or (256 if args.quick else 1024)
    lams = [float(v) for v in args.lams.split(",")] if args.lams else [1.0, 3.0, 10.0, 30.0]
    alphas = [float(v) for v in args.alphas.split(",")] if args.alphas else [0.3, 1.0, 3.0, 10.0]
    idx = [COLUMNS.index(c) for c in INPUTS]
    rng = np.random.default_rng(0)
    split = {}
    for p in ("qcd", "w"):
        n = len(features[p])
        n_train = getattr(args, f"train_{p}") or n // 2
        if not 0 < n_train < n:
            sys.exit(f"--train-{p} {n_train}: must be between 1 and {n - 1}")
        order = rng.permutation(n)
        split[p] = (order[:n_train], order[n_train:])
    x = {part: np.concatenate([features[p][split[p][k]][:, idx] for p in ("qcd", "w")]).astype(np.float32)
         for k, part in enumerate(("train", "test"))}
    y = {part: np.r_[np.zeros(len(split["qcd"][k])), np.ones(len(split["w"][k]))]
         for k, part in enumerate(("train", "test"))}
    mass = {part: np.concatenate([features[p][split[p][k]][:, COLUMNS.index("mass")] for p in ("qcd", "w")])
            for k, part in enumerate(("train", "test"))}
    ytr, mtr = y["train"], mass["train"]
    weights = np.where(ytr == 1, 1.0, (ytr == 1).sum() / (ytr == 0).sum())  # each class the same total weight
    bkg_tr = ytr == 0
    if args.adversary == "binned":
        cuts = np.quantile(mtr[bkg_tr], np.linspace(0, 1, args.mass_bins + 1)[1:-1])
        z_tr = np.searchsorted(cuts, mtr).astype(float)  # the QCD mass's quantile bin, 0 .. bins-1
        pivot_extra = {"nuisance_classes": args.mass_bins}
    else:
        z_tr = (mtr - mtr[bkg_tr].mean()) / mtr[bkg_tr].std()
        pivot_extra = {"nuisance_classes": 0, "components": 5}
    test_bkg = y["test"] == 0
    m_test_bkg = mass["test"][test_bkg]
    edges = np.linspace(m_test_bkg.min(), m_test_bkg.max() + 1e-9 * (1 + abs(m_test_bkg.max())), MASS_BINS + 1)
    rows: dict[str, dict] = {}

    def evaluate(name: str, scores: np.ndarray, seconds: float | None = None, **info) -> None:
        s_sig, s_bkg = scores[y["test"] == 1], scores[test_bkg]
        value, err = bootstrap(lambda a, b, m: plane_point(a, b, m, edges), s_sig, s_bkg, m_test_bkg,
                               n=args.bootstrap, groups=(0, 1, 1))
        rows[name] = {"rejection_at_eps_s_0.5": float(value[0]), "rejection_err": float(err[0]),
                      "inverse_jsd": float(value[1]), "inverse_jsd_err": float(err[1]),
                      "eps_b_at_eps_s_0.5": float(value[2]), "fit_seconds": seconds, **info}
        print(f"{name}: R50 = {value[0]:.2f} ± {err[0]:.2f}, 1/JSD = {value[1]:.3g} ± {err[1]:.2g}"
              + (f" ({seconds:.0f} s)" if seconds else ""), flush=True)

    evaluate("random cut", np.random.default_rng(1).random(len(y["test"])), kind="reference")
    evaluate("tau21 cut", -x["test"][:, INPUTS.index("tau21")], kind="cut")
    fit = {"epochs": epochs, "batch_size": args.batch_size, "lr": args.lr, "quiet": True, "seed": 1,
           "weights": weights}
    t0 = time.perf_counter()
    clf = hepgen.Classifier(len(INPUTS)).fit(x["train"], labels=ytr, **fit)
    evaluate("classifier", clf.score(x["test"]).numpy(), time.perf_counter() - t0, kind="classifier")
    for lam in lams:
        t0 = time.perf_counter()
        model = hepgen.Pivot(len(INPUTS), lam=lam, adversary_on="background", pretrain_classifier=3,
                             pretrain_adversary=3, adversary_steps=2, **pivot_extra)
        model.fit(x["train"], labels=ytr, nuisance=z_tr, **{**fit, "epochs": epochs + 6})
        evaluate(f"pivot λ={lam:g}", model.score(x["test"]).numpy(), time.perf_counter() - t0, kind="pivot",
                 lam=lam)
    for alpha in alphas:
        t0 = time.perf_counter()
        model = hepgen.DisCo(len(INPUTS), alpha=alpha).fit(x["train"], labels=ytr, nuisance=mtr, **fit)
        evaluate(f"disco α={alpha:g}", model.score(x["test"]).numpy(), time.perf_counter() - t0, kind="disco",
                 alpha=alpha)
    figure(rows, len(y["test"]), args)
    out = {"quick": args.quick, "jets_qcd": len(features["qcd"]), "jets_w": len(features["w"]),
           "train_qcd": len(split["qcd"][0]), "train_w": len(split["w"][0]),
           "test_qcd": len(split["qcd"][1]), "test_w": len(split["w"][1]),
           "epochs": epochs, "pivot_epochs": epochs + 6, "batch_size": args.batch_size, "lr": args.lr,
           "class_weights": "each class the same total weight", "inputs": INPUTS,
           "pivot_adversary": args.adversary, "mass_bins": args.mass_bins if args.adversary == "binned" else None,
           "pivot_schedule": {"pretrain_classifier": 3, "pretrain_adversary": 3, "adversary_steps": 2},
           "jsd": "bits, hepgen.metrics.decorrelation.mass_sculpting (as hepgen roc --mass), 50 equal bins over the "
                  "test QCD mass range, passing vs failing QCD at the cut with ε_S = 0.5",
           "bootstrap": args.bootstrap, "wall_seconds": time.perf_counter() - t_start,
           "command": " ".join(["python", "benchmarks/jets_decorrelation.py", *sys.argv[1:]]), "taggers": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "jets_decorrelation.json", json.dumps(out, indent=2) + "\n")


def figure(rows: dict[str, dict], n_test: int, args: argparse.Namespace) -> None:
    fig = Figure(figsize=(8, 6.5), layout="constrained")
    ax = fig.subplots()
    styles = {"reference": ("x", "grey"), "cut": ("D", "black"), "classifier": ("*", "tab:red"),
              "pivot": ("o", "tab:blue"), "disco": ("s", "tab:green")}
    for kind, (marker, color) in styles.items():
        chosen = [(name, r) for name, r in rows.items() if r["kind"] == kind and np.isfinite(r["inverse_jsd"])]
        if not chosen:
            continue
        xs = [r["inverse_jsd"] for _, r in chosen]
        ys = [r["rejection_at_eps_s_0.5"] for _, r in chosen]
        ax.errorbar(xs, ys, xerr=[r["inverse_jsd_err"] for _, r in chosen],
                    yerr=[r["rejection_err"] for _, r in chosen], fmt=marker + ("-" if len(chosen) > 1 else ""),
                    color=color, ms=8, label={"reference": "random cut (no sculpting at this statistics)",
                                              "cut": "τ21 cut", "classifier": "classifier (DNN)",
                                              "pivot": f"pivot, adversary on QCD ({args.adversary} mass)",
                                              "disco": "DisCo"}[kind])
        for (name, r), xv, yv in zip(chosen, xs, ys, strict=True):
            if kind in ("pivot", "disco"):
                ax.annotate(name.split(" ", 1)[1], (xv, yv), textcoords="offset points", xytext=(5, 5),
                            fontsize="small", color=color)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("1/JSD (QCD mass, passing vs failing at ε_S = 0.5)")
    ax.set_ylabel("QCD rejection R50 = 1/ε_B at ε_S = 0.5")
    ax.set_title(f"W vs QCD, {n_test} test jets" + (" (shipped sample)" if args.quick else ""))
    ax.legend(fontsize="small")
    RESULTS.mkdir(parents=True, exist_ok=True)
    save_figure(fig, RESULTS / "jets_decorrelation.png")


if __name__ == "__main__":
    main()
