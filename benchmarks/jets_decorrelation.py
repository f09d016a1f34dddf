"""W vs QCD tagging decorrelated from the jet mass: background rejection at ε_S = 0.5 against 1/JSD.

Inputs are the substructure features without the mass and pT (tau1..3, tau21, tau32, c2, d2,
n_constituents). Taggers: the plain hepgen.Classifier, a τ21 cut, hepgen.Pivot (adversary on the
background's standardised mass, MDN) over a λ sweep and hepgen.DisCo (mass) over an α sweep. For each,
on a held-out test half: 1/ε_B at ε_S = 0.5 and the JSD (bits) between the mass histograms of the
passing and the failing QCD jets at that same cut (the DisCo paper's plane), with bootstrap errors.

    python benchmarks/jets_decorrelation.py --quick     # the shipped sample: 2500 QCD + 2500 W
    python benchmarks/jets_decorrelation.py --n 50000   # hepgen data jets, cached in benchmarks/data/
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

import hepgen
from hepgen.metrics import background_rejection, bootstrap, roc_curve
from hepgen.metrics.histograms import js_divergence

from _jets_data import COLUMNS, jets

RESULTS = Path(__file__).parent / "results"
INPUTS = ["tau1", "tau2", "tau3", "tau21", "tau32", "c2", "d2", "n_constituents"]


def plane_point(s_sig, s_bkg, m_bkg, edges):
    """(1/ε_B at ε_S = 0.5, 1/JSD of pass/fail background mass at that cut)."""
    eps_b, eps_s, thr = roc_curve(s_sig, s_bkg)
    rejection = background_rejection(eps_b, eps_s, 0.5)
    t = np.quantile(s_sig, 0.5)
    passed = s_bkg >= t
    hp, _ = np.histogram(m_bkg[passed], edges)
    hf, _ = np.histogram(m_bkg[~passed], edges)
    jsd = js_divergence(hp, hf, eps=1e-12) / np.log(2) if hp.sum() and hf.sum() else np.nan
    return np.array([rejection, 1.0 / jsd if jsd > 0 else np.inf])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", type=int, default=50000, help="jets per process (full mode)")
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = jets(args.quick, args.n, processes=("qcd", "w"))
    epochs = args.epochs or (25 if args.quick else 40)
    lams = [10.0, 100.0] if args.quick else [1.0, 10.0, 50.0, 100.0]
    alphas = [0.3, 2.0] if args.quick else [0.1, 0.3, 1.0, 2.0, 5.0]
    idx = [COLUMNS.index(c) for c in INPUTS]
    qcd, w = data["qcd"]["features"], data["w"]["features"]
    x = np.concatenate([qcd[:, idx], w[:, idx]]).astype(np.float32)
    y = np.r_[np.zeros(len(qcd)), np.ones(len(w))]
    mass = np.concatenate([qcd[:, 2], w[:, 2]])
    rng = np.random.default_rng(0)
    test = rng.random(len(y)) < 0.5
    tr = ~test
    edges = np.linspace(np.quantile(mass[y == 0], 0.01), np.quantile(mass[y == 0], 0.99), 31)
    z = (mass - mass[tr & (y == 0)].mean()) / mass[tr & (y == 0)].std()
    rows = {}

    def evaluate(name, scores, seconds=None):
        s_sig, s_bkg, m_bkg = scores[test & (y == 1)], scores[test & (y == 0)], mass[test & (y == 0)]
        value, err = bootstrap(lambda a, b, m: plane_point(a, b, m, edges), s_sig, s_bkg, m_bkg, n=30,
                               groups=(0, 1, 1))
        rows[name] = {"rejection_at_eps_s_0.5": float(value[0]), "rejection_err": float(err[0]),
                      "inverse_jsd": float(value[1]), "inverse_jsd_err": float(err[1]), "fit_seconds": seconds}
        print(name, json.dumps(rows[name]), flush=True)

    evaluate("tau21 cut", -x[:, INPUTS.index("tau21")])
    fit = {"epochs": epochs, "batch_size": 256, "quiet": True, "seed": 1}
    t0 = time.perf_counter()
    clf = hepgen.Classifier(len(INPUTS)).fit(x[tr], labels=y[tr], **fit)
    evaluate("classifier", clf.score(x).numpy(), time.perf_counter() - t0)
    for lam in lams:
        t0 = time.perf_counter()
        model = hepgen.Pivot(len(INPUTS), lam=lam, adversary_on="background", pretrain_classifier=5,
                             pretrain_adversary=5).fit(x[tr], labels=y[tr], nuisance=z[tr], **fit)
        evaluate(f"pivot lambda={lam:g}", model.score(x).numpy(), time.perf_counter() - t0)
    for alpha in alphas:
        t0 = time.perf_counter()
        model = hepgen.DisCo(len(INPUTS), alpha=alpha).fit(x[tr], labels=y[tr], nuisance=mass[tr],
                                                           **{**fit, "batch_size": 1024})
        evaluate(f"disco alpha={alpha:g}", model.score(x).numpy(), time.perf_counter() - t0)
    fig = Figure(figsize=(7, 6), layout="constrained")
    ax = fig.subplots()
    for name, r in rows.items():
        ax.errorbar(r["inverse_jsd"], r["rejection_at_eps_s_0.5"], xerr=r["inverse_jsd_err"],
                    yerr=r["rejection_err"], fmt="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("1/JSD (QCD mass, pass vs fail at ε_S = 0.5)")
    ax.set_ylabel("QCD rejection 1/ε_B at ε_S = 0.5")
    ax.legend(fontsize="small")
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / "jets_decorrelation.png", dpi=90)
    out = {"quick": args.quick, "jets_per_process": len(qcd), "test_fraction": 0.5, "epochs": epochs,
           "inputs": INPUTS, "taggers": rows}
    (RESULTS / "jets_decorrelation.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
