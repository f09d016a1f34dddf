"""W vs QCD tagging decorrelated from the jet mass: the plane of the DisCo paper (Kasieczka & Shih 2020), issue 24.

Jets from ``hepgen data jets`` (550–650 GeV, anti-kT R = 0.8): 70k QCD and 20k W from the cache of
benchmarks/_jet_cache.py (benchmarks/data/chunks/, or a single file benchmarks/data/jets_P_N_11.h5 where it exists,
e.g. the 20k W of seed 11; features only), half of each for training (35k QCD + 10k W) and half for testing;
``--quick``: the shipped 2,500 jets per process. Inputs are the substructure features without the mass and pT
(tau1..3, tau21, tau32, c2, d2, n_constituents); the classes are balanced by per-event weights (each class sums to
the same weight). Taggers, all through the public API:

* a τ21 cut (score −τ21) and the plain hepgen.Classifier;
* hepgen.Pivot over a λ sweep — the adversary sees the background only (``adversary_on="background"``) and
  predicts the QCD mass binned in ``--mass-bins`` quantile bins (softmax adversary; ``--adversary gmm``: the
  mixture density network on the standardised mass);
* hepgen.DisCo over an α sweep (distance correlation of the output with the mass on background events).

For each, on the held-out test jets: the background rejection R50 = 1/ε_B at ε_S = 0.5 and 1/JSD of the QCD
mass histograms of the passing and failing jets at that same cut — JSD in bits from
:func:`hepgen.metrics.decorrelation.mass_sculpting` on the bins of
:func:`hepgen.metrics.decorrelation.sculpting_edges` of the test QCD mass (40 equal bins over its central 99.8 %,
what ``hepgen roc --mass`` uses) — each with a bootstrap error (signal and background test jets resampled, the
background's scores and masses together). Every trained tagger is trained with each of ``--seeds`` (1 2 3): the
plane shows the mean over seeds with error bars √(bootstrap² + seed spread²) (the mean bootstrap error of the
seeds, which share the test jets, and their sample standard deviation); the JSON has each seed's point too.
The Pareto front (the points no other point beats in both R50 and 1/JSD) is drawn and listed. The
mass-independent limit of 1/JSD at this test statistics is quoted from a random cut (``random cut``: a score
independent of everything).

Each (tagger, seed) unit's test scores are cached in benchmarks/data/jets_decorrelation_units/ the moment it is
trained; ``--resume`` continues a killed run (benchmarks/_units.py). The JSON records the load average and
CPU-seconds of this invocation (benchmarks/_machine.Meter) and of every unit (``cpu_hours_units``).

    python benchmarks/jets_decorrelation.py --quick              # the shipped sample, seeds 1 2 (< 60 s)
    python benchmarks/jets_decorrelation.py --resume             # 70k QCD + 20k W from the cache, seeds 1 2 3
    python benchmarks/jets_decorrelation.py --resume --seeds 1 2 3 4 5 6 7 8 9 10   # the committed run (adds 7)

CPU of the full run, measured (2026-12-07, one thread, load ~2): 136 CPU-s for seeds 1 2 3 and 336 CPU-s for ten
(27 and 90 trainings of ~4 s on 45k jets, bootstraps included); the earlier estimate of 0.25 CPU-h was 6x high. The
error bars combine each tagger's seed spread (one training's, not the mean's) with the bootstrap: the pivot's
spread at λ ≥ 3 (R50 ± 16-35) is the adversarial training's own instability, DisCo's stays ± 7-10.

Writes benchmarks/results/jets_decorrelation[_quick].json and .png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).parent))
import hepgen
from _jets_data import COLUMNS, DATA, jets
from _machine import Meter
from _units import Units
from hepgen.files import atomic_write_text
from hepgen.metrics import background_rejection, bootstrap, roc_curve
from hepgen.metrics.decorrelation import mass_sculpting, passing_fraction, sculpting_edges
from hepgen.report.plots import save_figure

RESULTS = Path(__file__).parent / "results"
INPUTS = ["tau1", "tau2", "tau3", "tau21", "tau32", "c2", "d2", "n_constituents"]
PIVOT_SCHEDULE = {"pretrain_classifier": 3, "pretrain_adversary": 3, "adversary_steps": 2}


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


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Names of the points (1/JSD, R50) that no other point matches or beats in both with one strictly better,
    ordered by 1/JSD."""
    front = [a for a, (xa, ya) in points.items()
             if not any(xb >= xa and yb >= ya and (xb > xa or yb > ya) for b, (xb, yb) in points.items() if b != a)]
    return sorted(front, key=lambda name: points[name][0])


def load(args: argparse.Namespace) -> dict[str, np.ndarray]:
    if args.quick:
        data = jets(True, 2500, processes=("qcd", "w"), images=False)
    else:
        data = jets(False, {"qcd": args.n_qcd, "w": args.n_w}, processes=("qcd", "w"), images=False)
    return {p: data[p]["features"] for p in ("qcd", "w")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the shipped 2500 jets per process, seeds 1 2")
    parser.add_argument("--resume", action="store_true", help="reuse the finished units of an earlier run")
    parser.add_argument("--fresh", action="store_true", help="discard the finished units of an earlier run")
    parser.add_argument("--units", type=Path, default=None,
                        help="folder of the per-unit scores (default benchmarks/data/jets_decorrelation[_quick]_units)")
    parser.add_argument("--n-qcd", type=int, default=70000, help="QCD jets read from the cache")
    parser.add_argument("--n-w", type=int, default=20000, help="W jets read from the cache")
    parser.add_argument("--train-qcd", type=int, default=None, help="QCD jets to train on (default: half)")
    parser.add_argument("--train-w", type=int, default=None, help="W jets to train on (default: half)")
    parser.add_argument("--epochs", type=int, default=None, help="25 (--quick), 20")
    parser.add_argument("--batch-size", type=int, default=None, help="default 256 (--quick), 1024")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--lams", default=None, help="comma-separated λ of the pivot")
    parser.add_argument("--alphas", default=None, help="comma-separated α of DisCo")
    parser.add_argument("--adversary", choices=("binned", "gmm"), default="binned")
    parser.add_argument("--mass-bins", type=int, default=10, help="classes of the binned adversary")
    parser.add_argument("--bootstrap", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds (1 2 3; --quick 1 2)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    meter = Meter()
    t_start = time.perf_counter()
    features = load(args)
    epochs = args.epochs or (25 if args.quick else 20)
    args.batch_size = args.batch_size or (256 if args.quick else 1024)
    seeds = args.seeds or ([1, 2] if args.quick else [1, 2, 3])
    lams = [float(v) for v in args.lams.split(",")] if args.lams else [1.0, 3.0, 10.0, 30.0]
    alphas = [float(v) for v in args.alphas.split(",")] if args.alphas else [0.3, 1.0, 3.0, 10.0]
    stem = "jets_decorrelation_quick" if args.quick else "jets_decorrelation"
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
    edges = sculpting_edges(m_test_bkg)  # the binning of hepgen roc --mass and its figure
    fit = {"epochs": epochs, "batch_size": args.batch_size, "lr": args.lr, "quiet": True, "weights": weights}

    # the trained taggers: unit key -> (name, kind, parameter, trainer(seed) -> test scores)
    def classifier(seed: int) -> np.ndarray:
        return hepgen.Classifier(len(INPUTS)).fit(x["train"], labels=ytr, seed=seed, **fit).score(x["test"]).numpy()

    def pivot(lam: float):
        def train(seed: int) -> np.ndarray:
            model = hepgen.Pivot(len(INPUTS), lam=lam, adversary_on="background", **PIVOT_SCHEDULE, **pivot_extra)
            model.fit(x["train"], labels=ytr, nuisance=z_tr, seed=seed, **{**fit, "epochs": epochs + 6})
            return model.score(x["test"]).numpy()
        return train

    def disco(alpha: float):
        def train(seed: int) -> np.ndarray:
            model = hepgen.DisCo(len(INPUTS), alpha=alpha)
            return model.fit(x["train"], labels=ytr, nuisance=mtr, seed=seed, **fit).score(x["test"]).numpy()
        return train

    trained = {"classifier": ("classifier", "classifier", None, classifier),
               **{f"pivot_lam{lam:g}": (f"pivot λ={lam:g}", "pivot", lam, pivot(lam)) for lam in lams},
               **{f"disco_alpha{a:g}": (f"disco α={a:g}", "disco", a, disco(a)) for a in alphas}}
    manifest = {"data": "shipped sample" if args.quick else {"n_qcd": args.n_qcd, "n_w": args.n_w},
                "split": {p: [len(split[p][0]), len(split[p][1])] for p in split}, "epochs": epochs,
                "batch_size": args.batch_size, "lr": args.lr, "adversary": args.adversary,
                "mass_bins": args.mass_bins, "inputs": INPUTS, "pivot_schedule": PIVOT_SCHEDULE}
    units = Units(args.units or DATA / f"{stem}_units", manifest, args.resume, discard=args.fresh or args.quick)
    records: dict[str, dict] = {}

    def point(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s_sig, s_bkg = scores[y["test"] == 1], scores[test_bkg]
        return bootstrap(lambda a, b, m: plane_point(a, b, m, edges), s_sig, s_bkg, m_test_bkg,
                         n=args.bootstrap, groups=(0, 1, 1))

    rows: dict[str, dict] = {}
    by_seed: dict[str, dict] = {}
    for name, kind, scores in (("random cut", "reference", np.random.default_rng(1).random(len(y["test"]))),
                               ("tau21 cut", "cut", -x["test"][:, INPUTS.index("tau21")])):
        value, err = point(scores)
        rows[name] = {"rejection_at_eps_s_0.5": float(value[0]), "rejection_err": float(err[0]),
                      "inverse_jsd": float(value[1]), "inverse_jsd_err": float(err[1]),
                      "eps_b_at_eps_s_0.5": float(value[2]), "kind": kind}
        print(f"{name}: R50 = {value[0]:.2f} ± {err[0]:.2f}, 1/JSD = {value[1]:.3g} ± {err[1]:.2g}", flush=True)
    for key, (name, kind, parameter, train) in trained.items():
        per_seed = {}
        for seed in seeds:
            got = units.get(f"{key}/seed{seed}")
            if got is None:
                piece = Meter()
                scores = train(seed)
                record = {"machine": piece.record()}
                units.put(f"{key}/seed{seed}", {"scores": scores}, record)
                meter.sample()
            else:
                (arrays, record) = got
                scores = arrays["scores"]
            records[f"{key}/seed{seed}"] = record
            value, err = point(scores)
            per_seed[seed] = {"rejection_at_eps_s_0.5": float(value[0]), "rejection_err": float(err[0]),
                              "inverse_jsd": float(value[1]), "inverse_jsd_err": float(err[1]),
                              "eps_b_at_eps_s_0.5": float(value[2]), "fit_cpu_s": record["machine"]["cpu_s"]}
        by_seed[name] = {str(s): v for s, v in per_seed.items()}
        row = {"kind": kind, **({"lam": parameter} if kind == "pivot" else
                                {"alpha": parameter} if kind == "disco" else {})}
        for k, e in (("rejection_at_eps_s_0.5", "rejection"), ("inverse_jsd", "inverse_jsd")):
            values = np.array([v[k] for v in per_seed.values()])
            boot = float(np.mean([v[f"{e}_err"] for v in per_seed.values()]))
            spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            row |= {k: float(np.mean(values)), f"{e}_bootstrap_err": boot, f"{e}_seed_std": spread,
                    f"{e}_err": float(np.hypot(boot, spread))}
        row["eps_b_at_eps_s_0.5"] = float(np.mean([v["eps_b_at_eps_s_0.5"] for v in per_seed.values()]))
        rows[name] = row
        print(f"{name}: R50 = {row['rejection_at_eps_s_0.5']:.2f} ± {row['rejection_err']:.2f}, 1/JSD = "
              f"{row['inverse_jsd']:.3g} ± {row['inverse_jsd_err']:.2g} (seeds {seeds})", flush=True)
    front = pareto_front({n: (r["inverse_jsd"], r["rejection_at_eps_s_0.5"]) for n, r in rows.items()
                          if r["kind"] != "reference" and np.isfinite(r["inverse_jsd"])})
    for name in rows:
        rows[name]["pareto"] = name in front
    figure(rows, front, len(y["test"]), args, RESULTS / f"{stem}.png")
    cpu_units = sum(r["machine"]["cpu_s"] for r in records.values())
    out = {"quick": args.quick, "jets_qcd": len(features["qcd"]), "jets_w": len(features["w"]),
           "train_qcd": len(split["qcd"][0]), "train_w": len(split["w"][0]),
           "test_qcd": len(split["qcd"][1]), "test_w": len(split["w"][1]), "seeds": seeds,
           "epochs": epochs, "pivot_epochs": epochs + 6, "batch_size": args.batch_size, "lr": args.lr,
           "class_weights": "each class the same total weight", "inputs": INPUTS,
           "pivot_adversary": args.adversary, "mass_bins": args.mass_bins if args.adversary == "binned" else None,
           "pivot_schedule": PIVOT_SCHEDULE,
           "jsd": f"bits, hepgen.metrics.decorrelation.mass_sculpting on sculpting_edges of the test QCD mass "
                  f"({len(edges) - 1} bins over [{edges[0]:.1f}, {edges[-1]:.1f}] GeV, as hepgen roc --mass), "
                  "passing vs failing QCD at the cut with ε_S = 0.5",
           "errors": "trained taggers: mean over seeds; *_err = √(bootstrap_err² + seed_std²), bootstrap_err the "
                     "seeds' mean bootstrap error over the test jets, seed_std their sample standard deviation",
           "bootstrap": args.bootstrap, "pareto_front": front,
           "command": " ".join(["python", "benchmarks/jets_decorrelation.py", *sys.argv[1:]]), "taggers": rows,
           "by_seed": by_seed,
           "units": {k: {"cpu_s": r["machine"]["cpu_s"], "timings_valid": r["machine"]["timings_valid"]}
                     for k, r in sorted(records.items())},
           "cpu_hours_units": round(cpu_units / 3600, 3), "machine": meter.record(),
           "wall_seconds": round(time.perf_counter() - t_start, 1)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / f"{stem}.json", json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS / f'{stem}.json'} ({out['wall_seconds']} s, {out['machine']['cpu_s']} CPU s)")


def figure(rows: dict[str, dict], front: list[str], n_test: int, args: argparse.Namespace, path: Path) -> None:
    fig = Figure(figsize=(8, 6.5), layout="constrained")
    ax = fig.subplots()
    styles = {"reference": ("x", "grey"), "cut": ("D", "black"), "classifier": ("*", "tab:red"),
              "pivot": ("o", "tab:blue"), "disco": ("s", "tab:green")}
    if len(front) > 1:
        ax.plot([rows[n]["inverse_jsd"] for n in front], [rows[n]["rejection_at_eps_s_0.5"] for n in front], ls="-",
                color="0.5", lw=7, alpha=0.25, zorder=0, solid_capstyle="round", label="Pareto front")
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
    seeds = args.seeds or ([1, 2] if args.quick else [1, 2, 3])
    ax.set_title(f"W vs QCD, {n_test} test jets" + (" (shipped sample)" if args.quick else "")
                 + f"; trained taggers: mean of seeds {', '.join(map(str, seeds))}", fontsize="medium")
    ax.legend(fontsize="small")
    RESULTS.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)


if __name__ == "__main__":
    main()
