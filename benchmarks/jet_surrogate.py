"""A fast surrogate of the jet generator: an NSF on the jet features of ``hepgen data jets`` (issue 14, section 4).

Data: QCD jets of ``hepgen data jets`` (Pythia 8 + FastJet, pT 550-650 GeV, anti-kT R = 0.8), the cached
``benchmarks/data/jets_qcd_70000_11.h5`` when it exists (the first ``--n-train`` jets train, the rest are held
out), else the shipped 2500-jet sample (4/5 train, 1/5 held out; development scale, recorded in the JSON).

Model: hepgen's NSF (rational-quadratic coupling splines, ``hepgen fit nsf``) on ten columns: pt, eta, mass,
tau1, tau21, tau32, c2, d2 and n_constituents; tau2 = tau21 tau1 and tau3 = tau32 tau2 are *derived* from the
sampled ratios (in the generator's output they are exactly those products, which a flow on all eleven columns
could not reproduce: a degenerate, 9-dimensional density). The integer n_constituents is **dequantised**: the
flow learns n + u with u ~ U(0, 1) (one draw per jet, or per copy with ``--dequant-copies``) and the
surrogate's value is floor(x), clipped to >= 1, so its probability mass on each integer is the flow's density
integrated over [n, n + 1). Preprocessing: logit for pt and eta (bounded by the selection), log for the rest.

Measured in one run:

* jets/s of the surrogate (sampling ``--speed-jets`` in blocks, preprocessing inverse, derived columns and
  flooring included) and of Pythia + FastJet (``hepgen.data.generators.jets.generate`` on ``--pythia-jets`` QCD
  jets, one worker, initialisation included), both per CPU second of this process (one torch thread), and their
  ratio (the generator also writes constituents and images, the surrogate only the features);
* the C2ST AUC (hepgen.evaluate.c2st_auc, gradient-boosted trees, 5 folds) of surrogate against held-out Pythia
  jets on all eleven columns, next to the floor: the same test of the training jets against the held-out ones;
* per-feature W1 against the held-out jets, relative to the held-out standard deviation.

    .venv/bin/python benchmarks/jet_surrogate.py --quick     # 15 epochs, a 300k-jet speed sample
    .venv/bin/python benchmarks/jet_surrogate.py             # 100 epochs, a 1e6-jet speed sample

Output: benchmarks/results/jet_surrogate.json and jet_surrogate.png (feature histograms, surrogate vs Pythia).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hepgen.files import atomic_write_text

RESULTS = Path(__file__).with_name("results")
DATA = Path(__file__).with_name("data")
COLUMNS = ["pt", "eta", "mass", "tau1", "tau2", "tau3", "tau21", "tau32", "c2", "d2", "n_constituents"]
#: the columns the flow learns, in order, and their preprocessing
MODELLED = ["pt", "eta", "mass", "tau1", "tau21", "tau32", "c2", "d2", "n_constituents"]
PREPROCESS = {"pt": "logit", "eta": "logit", "mass": "log", "tau1": "log", "tau21": "log", "tau32": "log",
              "c2": "log", "d2": "log", "n_constituents": "log"}


def load_jets(n_train: int, path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """(training features, held-out features, provenance): (n, 11) each, columns COLUMNS."""
    if path.exists():
        with h5py.File(path) as f:
            x = f["features"][:].astype(np.float64)
        if len(x) <= n_train:
            raise SystemExit(f"{path} has {len(x)} jets, fewer than --n-train {n_train} plus a held-out set")
        return x[:n_train], x[n_train:], {"file": str(path.relative_to(path.parents[2])), "jets": len(x)}
    import hepgen.data.generators.jets as gen

    with h5py.File(gen.shipped_sample_path()) as f:
        x = f["qcd/features"][:].astype(np.float64)
    cut = int(0.8 * len(x))
    return x[:cut], x[cut:], {"file": "shipped sample (hepgen/data/shipped/jets.h5, group qcd)", "jets": len(x),
                              "note": f"{path.name} not found: development scale"}


def to_modelled(x: np.ndarray) -> np.ndarray:
    return x[:, [COLUMNS.index(c) for c in MODELLED]]


def dequantise(v: np.ndarray, copies: int, rng: np.random.Generator) -> np.ndarray:
    """``copies`` stacked copies of v with U(0, 1) added to n_constituents."""
    out = np.concatenate([v] * copies)
    out[:, -1] += rng.random(len(out))
    return out


def to_features(v: np.ndarray) -> np.ndarray:
    """Sampled modelled columns (m, 9) -> the generator's eleven columns (m, 11) (derived taus, floored n)."""
    out = np.empty((len(v), len(COLUMNS)))
    get = {c: v[:, i] for i, c in enumerate(MODELLED)}
    for c in ("pt", "eta", "mass", "tau1", "tau21", "tau32", "c2", "d2"):
        out[:, COLUMNS.index(c)] = get[c]
    out[:, COLUMNS.index("tau2")] = get["tau21"] * get["tau1"]
    out[:, COLUMNS.index("tau3")] = get["tau32"] * out[:, COLUMNS.index("tau2")]
    out[:, COLUMNS.index("n_constituents")] = np.maximum(np.floor(get["n_constituents"]), 1.0)
    return out


def surrogate_sample(model, n: int, block: int, seed: int) -> np.ndarray:
    torch.manual_seed(seed)
    parts = []
    with torch.no_grad():
        for start in range(0, n, block):
            parts.append(to_features(model.sample(min(block, n - start)).double().numpy()))
    return np.concatenate(parts)


def pythia_speed(n: int, seed: int) -> dict:
    from hepgen.data.generators import jets

    cpu, wall = time.process_time(), time.perf_counter()
    out = jets.generate(n, seed=seed, process="qcd", workers=1, progress=False)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"jets": len(out["features"]), "cpu_s": cpu, "wall_s": wall, "jets_per_cpu_s": len(out["features"]) / cpu,
            "note": "hepgen.data.generators.jets.generate, process=qcd, one worker, Pythia initialisation included"}


def figure(held: np.ndarray, fake: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 4, figsize=(12, 8), constrained_layout=True)
    for k, (ax, name) in enumerate(zip(axes.flat, COLUMNS)):
        lo, hi = np.quantile(held[:, k], [0.001, 0.999])
        if name == "n_constituents":  # integer edges, several values per bin
            step = max(1, int(np.ceil((hi - lo) / 40)))
            edges = np.arange(np.floor(lo), np.ceil(hi) + step + 1, step) - 0.5
        else:
            edges = np.linspace(lo, hi, 41)
        ax.hist(held[:, k], edges, density=True, histtype="step", color="k", label=f"Pythia, held out ({len(held)})")
        ax.hist(fake[:, k], edges, density=True, histtype="step", color="C1", label=f"NSF surrogate ({len(fake)})")
        ax.set_xlabel(name)
    axes.flat[-1].axis("off")
    axes.flat[0].legend(frameon=False, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few epochs and a smaller speed sample")
    parser.add_argument("--data", type=Path, default=DATA / "jets_qcd_70000_11.h5")
    parser.add_argument("--n-train", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=None, help="default 100 (--quick 15)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--transforms", type=int, default=3)
    parser.add_argument("--hidden", type=int, nargs="+", default=[32])
    parser.add_argument("--bins", type=int, default=8)
    parser.add_argument("--dequant-copies", type=int, default=1)
    parser.add_argument("--speed-jets", type=int, default=None, help="default 1e6 (--quick 3e5)")
    parser.add_argument("--pythia-jets", type=int, default=200)
    parser.add_argument("--c2st-max", type=int, default=20_000, help="events per class in the C2ST")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.epochs = args.epochs or (15 if args.quick else 100)
    args.speed_jets = args.speed_jets or (300_000 if args.quick else 1_000_000)
    torch.set_num_threads(1)
    from hepgen.evaluate.two_sample import c2st_auc
    from hepgen.flows.zoo import NSF
    from hepgen.metrics.two_sample import wasserstein_per_feature

    train, held, provenance = load_jets(args.n_train, args.data)
    rng = np.random.default_rng(args.seed)
    v = dequantise(to_modelled(train), args.dequant_copies, rng)
    model = NSF(len(MODELLED), transforms=args.transforms, hidden=tuple(args.hidden), bins=args.bins, coupling=True,
                tail_bound=5.0, preprocess={str(i): PREPROCESS[c] for i, c in enumerate(MODELLED)})
    cpu, wall = time.process_time(), time.perf_counter()
    model.fit(v.astype(np.float32), epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, scheduler="cosine",
              seed=args.seed, quiet=True, patience=max(10, args.epochs // 5))
    train_cpu, train_wall = time.process_time() - cpu, time.perf_counter() - wall

    fake = surrogate_sample(model, len(held), 100_000, args.seed + 1)
    cpu = time.process_time()
    speed = surrogate_sample(model, args.speed_jets, 100_000, args.seed + 2)
    surrogate_cpu = time.process_time() - cpu
    assert np.all(np.isfinite(speed))
    pythia = pythia_speed(args.pythia_jets, seed=1234)
    surrogate_rate = args.speed_jets / surrogate_cpu

    m = min(args.c2st_max, len(held))
    auc = c2st_auc(held, fake, max_per_class=m, seed=args.seed)
    floor = c2st_auc(held, train, max_per_class=m, seed=args.seed)
    w1 = wasserstein_per_feature(held, fake) / held.std(axis=0)
    w1_floor = wasserstein_per_feature(held, train) / held.std(axis=0)
    out = {
        "benchmark": "jet_surrogate", "quick": args.quick, "settings": {k: (str(v) if isinstance(v, Path) else v)
                                                                        for k, v in vars(args).items()},
        "data": {**provenance, "train_jets": len(train), "held_out_jets": len(held)},
        "model": {"class": "hepgen.flows.zoo.NSF (coupling)", "modelled_columns": MODELLED, "preprocess": PREPROCESS,
                  "derived": "tau2 = tau21 * tau1, tau3 = tau32 * tau2",
                  "dequantisation": "n_constituents + U(0,1) in training (dequant_copies draws per jet); "
                                    "surrogate value floor(x) clipped to >= 1",
                  "parameters": sum(p.numel() for p in model.parameters()),
                  "train_cpu_s": train_cpu, "train_wall_s": train_wall},
        "speed": {"surrogate_jets": args.speed_jets, "surrogate_cpu_s": surrogate_cpu,
                  "surrogate_jets_per_cpu_s": surrogate_rate, "pythia": pythia,
                  "ratio_surrogate_over_pythia": surrogate_rate / pythia["jets_per_cpu_s"],
                  "ratio_including_training": args.speed_jets / (surrogate_cpu + train_cpu) / pythia["jets_per_cpu_s"],
                  "goal_ratio": 1e4},
        "c2st": {"auc_surrogate_vs_held_out": auc, "auc_floor_train_vs_held_out": floor, "events_per_class": m,
                 "classifier": "hgb, 5 folds, all 11 columns", "goal": 0.60},
        "w1_over_std": {"surrogate": dict(zip(COLUMNS, w1.tolist())), "floor": dict(zip(COLUMNS, w1_floor.tolist()))},
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": 1,
                    "load_average": os.getloadavg(), "note": "CPU seconds (process_time) of this process"},
    }
    print(json.dumps({k: out[k] for k in ("data", "speed", "c2st")}, indent=1), flush=True)
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "jet_surrogate.json", json.dumps(out, indent=1) + "\n")
    figure(held, speed[:200_000], RESULTS / "jet_surrogate.png",
           f"QCD jets: NSF surrogate vs held-out Pythia ({len(train)} training jets, {args.epochs} epochs); "
           f"C2ST AUC {auc:.3f} (floor {floor:.3f}); {surrogate_rate / pythia['jets_per_cpu_s']:.3g}x Pythia jets/CPU-s")


if __name__ == "__main__":
    main()
