"""Anomaly detection of top and W jets by scorers trained on QCD only, through the public API.

Scorers on the 11 substructure features: a dense autoencoder (reconstruction error), an NSF density
(score = −log p) and the supervised ceiling (hepgen.Classifier, QCD vs the signal, same features).
Tasks: direct (train on QCD, top/W as signal), inverted (train on top, QCD as signal: the known
failure of reconstruction scores), contaminated (training QCD with 1 % and 5 % top). AUCs on held-out
jets with bootstrap errors (hepgen.metrics.roc.roc_summary). Image scorers (ConvAE/ConvVAE) run in
the full mode only.

    python benchmarks/jets_anomaly.py --quick      # shipped sample: 2500 jets per process, half for testing
    python benchmarks/jets_anomaly.py --n 50000    # hepgen data jets, cached in benchmarks/data/
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import hepgen
from hepgen.metrics.roc import roc_summary

from _jets_data import jets

RESULTS = Path(__file__).parent / "results"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", type=int, default=50000)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    epochs = args.epochs or (30 if args.quick else 60)
    data = jets(args.quick, args.n)
    rng = np.random.default_rng(0)
    feats = {p: d["features"].astype(np.float32) for p, d in data.items()}
    for p in feats:
        feats[p][:, -1] = np.log(feats[p][:, -1])  # log n_constituents
    split = {p: rng.random(len(f)) < 0.5 for p, f in feats.items()}
    train = {p: f[~split[p]] for p, f in feats.items()}
    test = {p: f[split[p]] for p, f in feats.items()}
    d = feats["qcd"].shape[1]
    fit = {"epochs": epochs, "batch_size": 256, "quiet": True, "seed": 1}

    def scorers(x_train):
        yield "ae", hepgen.Autoencoder(d, 3, hidden=(64, 32)).fit(x_train, **fit)
        yield "nsf", hepgen.NSF(d, transforms=4, hidden=(64, 64)).fit(x_train, **{**fit, "epochs": epochs // 2})

    def aucs(model, bkg, sigs):
        b = model.score(bkg).double().numpy()
        return {n: roc_summary(model.score(s).double().numpy(), b, n_bootstrap=30) for n, s in sigs.items()}

    out = {"quick": args.quick, "jets_per_process": len(feats["qcd"]), "epochs": epochs, "tasks": {}}
    tasks = {"direct": (train["qcd"], test["qcd"], {"top": test["top"], "w": test["w"]}),
             "inverted (train top, QCD signal)": (train["top"], test["top"], {"qcd": test["qcd"]})}
    for frac in (0.01, 0.05):
        k = int(frac * len(train["qcd"]))
        tasks[f"contaminated {frac:.0%} top"] = (np.concatenate([train["qcd"], train["top"][:k]]), test["qcd"],
                                                 {"top": test["top"], "w": test["w"]})
    for task, (x_train, bkg, sigs) in tasks.items():
        out["tasks"][task] = {}
        for name, model in scorers(x_train):
            m = aucs(model, bkg, sigs)
            out["tasks"][task][name] = {s: {"auc": v["auc"], "auc_err": v["auc_err"], "max_sic": v["max_sic"]}
                                        for s, v in m.items()}
            print(task, name, {s: round(v["auc"], 3) for s, v in m.items()}, flush=True)
    ceiling = {}
    for sig in ("top", "w"):
        x = np.concatenate([train["qcd"], train[sig]])
        y = np.r_[np.zeros(len(train["qcd"])), np.ones(len(train[sig]))]
        clf = hepgen.Classifier(d).fit(x, labels=y, **fit)
        v = roc_summary(clf.score(test[sig]).double().numpy(), clf.score(test["qcd"]).double().numpy(),
                        n_bootstrap=30)
        ceiling[sig] = {"auc": v["auc"], "auc_err": v["auc_err"]}
    out["supervised_ceiling"] = ceiling
    print("supervised", ceiling, flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "jets_anomaly.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
