"""Calorimeter surrogates judged the CaloChallenge way (issue 13): classifier AUCs with the floor, response vs the
simulator over 1-100 GeV, showers/s at batch 1 and 10,000 against the simulator measured in the same run.

    python benchmarks/calo_surrogates.py --quick          # reduced scale (what was run and committed)
    python benchmarks/calo_surrogates.py --train 100000 --test 50000 --gan-epochs 200 --flow-epochs 100

Writes benchmarks/results/calo_surrogates.json and figures under benchmarks/results/calo_surrogates/.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from hepgen.calo.compare import compare_showers
from hepgen.calo.flow import CaloFlow
from hepgen.calo.gan import CaloGAN
from hepgen.calo.showers import LAYERS, Showers
from hepgen.data.generators import calo

OUT = Path(__file__).parent / "results"


def _sim(n, seed, particle):
    d = calo.generate(n, seed=seed, particle=particle)
    return Showers({k: d[k] for k in LAYERS}, d["energy"])


def _rate(fn, batch, repeats):
    fn(batch)
    t = time.perf_counter()
    for _ in range(repeats):
        fn(batch)
    return batch * repeats / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--particles", default="e+,gamma,pi+")
    p.add_argument("--train", type=int, default=50_000)
    p.add_argument("--test", type=int, default=20_000)
    p.add_argument("--gan-epochs", type=int, default=100)
    p.add_argument("--flow-epochs", type=int, default=50)
    p.add_argument("--classifier-epochs", type=int, default=30)
    p.add_argument("--speed-batch", type=int, default=10_000)
    args = p.parse_args()
    if args.quick:
        args.train, args.test, args.gan_epochs, args.flow_epochs, args.classifier_epochs = 2000, 1500, 10, 3, 10
        args.speed_batch = 2000
    torch.set_num_threads(1)
    result = {"scale": vars(args), "particles": {}}
    for particle in args.particles.split(","):
        t0 = time.perf_counter()
        train = _sim(args.train, 1, particle)
        ref, floor = _sim(args.test, 2, particle), _sim(args.test, 3, particle)
        entry = {}
        models = {
            "calo-gan": CaloGAN(hidden=(128, 128), critic_hidden=(128, 128)).fit(
                train.layers, context=train.energy, epochs=args.gan_epochs, batch_size=128, lr=5e-4, quiet=True),
            "calo-flow": CaloFlow(cell_transforms=4, bins=6).fit(
                train.layers, context=train.energy, epochs=args.flow_epochs, batch_size=128, lr=1e-3, quiet=True),
        }
        sim_rate = {b: _rate(lambda n: calo.generate(n, seed=9, particle=particle), b, r)  # noqa: B023
                    for b, r in ((1, 20), (args.speed_batch, 1))}
        entry["simulator_showers_per_s"] = sim_rate
        for name, model in models.items():
            torch.manual_seed(0)
            with torch.no_grad():
                s = model.sample(len(ref), context=ref.energy[:, None])
            cand = Showers({k: v.numpy() for k, v in s.items()}, ref.energy.copy())
            out = compare_showers(ref, cand, floor=floor, classifier_epochs=args.classifier_epochs,
                                  report_dir=OUT / "calo_surrogates" / f"{particle}_{name}")
            e = lambda n, m=model: m.sample(n, context=np.full((n, 1), 50.0))
            rate = {b: _rate(e, b, r) for b, r in ((1, 20), (args.speed_batch, 1))}
            entry[name] = {"auc": {k: v["auc"] for k, v in out["classifier"].items()},
                           "response_max_rel_deviation": out["response"]["max_rel_deviation"],
                           "response_ref": out["response"]["ref"]["mean"], "response_cand": out["response"]["cand"]["mean"],
                           "showers_per_s": rate,
                           "speedup": {b: rate[b] / sim_rate[b] for b in rate}}
        entry["seconds"] = time.perf_counter() - t0
        result["particles"][particle] = entry
        print(particle, json.dumps(entry, indent=1, default=float), flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "calo_surrogates.json").write_text(json.dumps(result, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
