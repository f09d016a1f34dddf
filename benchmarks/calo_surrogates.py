"""Calorimeter surrogates judged the CaloChallenge way (issue 13): classifier AUCs with the floor, response vs the
simulator over 1-100 GeV, showers/s at batch 1 and 10,000 against the simulator measured in the same run.

    python benchmarks/calo_surrogates.py --quick                      # reduced scale, all three particles
    python benchmarks/calo_surrogates.py --particles e+               # full mode, one particle per run (~10 min
    python benchmarks/calo_surrogates.py --particles gamma            #  each on one core); results merge into the
    python benchmarks/calo_surrogates.py --particles pi+              #  JSON, each particle with its own scale
    python benchmarks/calo_surrogates.py --particles e+ --train 5000 --test 2000 --gan-epochs 10 --flow-epochs 4 \
        --out benchmarks/results/calo_surrogates_medium.json         # the medium e+ run that was committed

Per particle: ``--train`` simulator showers (seed 1) to fit calo-gan and calo-flow, a reference sample (seed 2)
and the floor sample (seed 3, ``--test`` showers each). The floor sample is also the simulator's timing at batch
``--test`` (fresh, never cached; one process, like the surrogates' one torch thread); one call of
``--speed-batch`` showers times it at that batch. The surrogates are timed on the reference sample's energies. Batch-1 rates: repeated calls for at least ``--min-seconds``.
Training and reference showers are cached in benchmarks/data/calo_{particle}_{n}_{seed}.h5.
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
from hepgen.calo.caloflow import CaloFlow
from hepgen.calo.gan import CaloGAN
from hepgen.calo.shower_layout import LAYERS, Showers, read_showers, write_showers
from hepgen.data.generators import calo

OUT = Path(__file__).parent / "results"
DATA = Path(__file__).parent / "data"
GAN = {"hidden": (128, 128), "critic_hidden": (128, 128), "critic_steps": 5}
FLOW = {"cell_transforms": 4, "bins": 6}


def _simulate(n: int, seed: int, particle: str) -> Showers:
    d = calo.generate(n, seed=seed, particle=particle)
    return Showers({k: d[k] for k in LAYERS}, d["energy"])


def _cached(n: int, seed: int, particle: str) -> Showers:
    """n simulator showers of ``seed``: the cached file of exactly n, else the first n of a larger cached sample
    (an independent sample too), else simulated and cached."""
    path = DATA / f"calo_{particle}_{n}_{seed}.h5"
    larger = sorted((int(q.stem.split("_")[2]), q) for q in DATA.glob(f"calo_{particle}_*_{seed}.h5")
                    if q.stem.split("_")[2].isdigit() and int(q.stem.split("_")[2]) > n)
    if not path.exists() and larger:
        return read_showers(larger[0][1], limit=n)
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        s = _simulate(n, seed, particle)
        write_showers(path, s.layers, s.energy)
    return read_showers(path)


def _rate(fn, batch: int, min_seconds: float) -> float:
    """Showers per second of ``fn(batch)``: one warm-up call, then calls until ``min_seconds`` have passed."""
    fn(batch)
    calls, t0 = 0, time.perf_counter()
    while True:
        fn(batch)
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return batch * calls / elapsed


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--particles", default="e+,gamma,pi+")
    p.add_argument("--train", type=int, default=20_000)
    p.add_argument("--test", type=int, default=5000)
    p.add_argument("--gan-epochs", type=int, default=12)
    p.add_argument("--flow-epochs", type=int, default=4)
    p.add_argument("--classifier-epochs", type=int, default=10)
    p.add_argument("--speed-batch", type=int, default=10_000)
    p.add_argument("--min-seconds", type=float, default=3.0)
    p.add_argument("--out", default=str(OUT / "calo_surrogates.json"), help="the JSON (per-particle runs merge)")
    args = p.parse_args()
    if args.quick:
        args.train, args.test, args.gan_epochs, args.flow_epochs, args.classifier_epochs = 2000, 1500, 10, 3, 10
        args.speed_batch, args.min_seconds = 2000, 1.0
    torch.set_num_threads(1)
    path = Path(args.out)
    result = json.loads(path.read_text()) if path.exists() else {}
    if result.get("quick") != args.quick:  # per-particle runs of one mode merge; the other mode starts afresh
        result = {}
    result.update(quick=args.quick, models={"calo-gan": GAN, "calo-flow": FLOW},
                  particles=result.get("particles", {}))
    for particle in args.particles.split(","):
        t0 = time.perf_counter()
        train, ref = _cached(args.train, 1, particle), _cached(args.test, 2, particle)
        entry: dict = {"scale": vars(args) | {"particles": particle}}
        t = time.perf_counter()
        floor = _simulate(args.test, 3, particle)  # fresh: the simulator's timing at batch --test
        sim_rate = {str(args.test): args.test / (time.perf_counter() - t)}
        if args.speed_batch != args.test:  # one call: a batch this size needs no warm-up
            t = time.perf_counter()
            calo.generate(args.speed_batch, seed=9, particle=particle)
            sim_rate[str(args.speed_batch)] = args.speed_batch / (time.perf_counter() - t)
        sim_rate["1"] = _rate(lambda n, p=particle: calo.generate(n, seed=9, particle=p), 1, args.min_seconds)
        entry["simulator_showers_per_s"] = sim_rate
        fits = {}
        t = time.perf_counter()
        models = {"calo-gan": CaloGAN(**GAN).fit(train.layers, context=train.energy, epochs=args.gan_epochs,
                                                 batch_size=128, lr=5e-4, quiet=True, seed=0)}
        fits["calo-gan"] = time.perf_counter() - t
        t = time.perf_counter()
        models["calo-flow"] = CaloFlow(**FLOW).fit(train.layers, context=train.energy, epochs=args.flow_epochs,
                                                   batch_size=128, lr=1e-3, quiet=True, seed=0)
        fits["calo-flow"] = time.perf_counter() - t
        floor_auc = None
        for name, model in models.items():
            model.eval()
            torch.manual_seed(0)
            s = model.sample(len(ref), context=ref.energy[:, None])
            cand = Showers({k: v.numpy() for k, v in s.items()}, ref.energy.copy())
            out = compare_showers(ref, cand, floor=floor if floor_auc is None else None,
                                  classifier_epochs=args.classifier_epochs,
                                  report_dir=path.parent / path.stem / f"{particle}_{name}")
            if floor_auc is None:  # the floor does not depend on the model: train its classifiers once
                floor_auc = {k: v for k, v in out["classifier"].items() if k.startswith("floor")}
                entry["floor_auc"] = {k.removeprefix("floor_"): v["auc"] for k, v in floor_auc.items()}
            rate = {}
            for batch in (1, args.speed_batch):  # the simulator's spectrum: its cost grows with the energy
                energies = np.resize(ref.energy, batch)[:, None]
                rate[str(batch)] = _rate(lambda n, m=model, c=energies: m.sample(n, context=c), batch,
                                         args.min_seconds)
            sim = {b: sim_rate[b] for b in rate}
            entry[name] = {"fit_seconds": fits[name],
                           "auc": {k.removeprefix("candidate_"): v["auc"] for k, v in out["classifier"].items()
                                   if k.startswith("candidate")},
                           "auc_err": {k.removeprefix("candidate_"): v["auc_err"] for k, v in out["classifier"].items()
                                       if k.startswith("candidate")},
                           "response_edges_gev": out["response"]["edges"],
                           "response_max_rel_deviation": out["response"]["max_rel_deviation"],
                           "response_ref": out["response"]["ref"]["mean"], "response_cand": out["response"]["cand"]["mean"],
                           "resolution_ref": out["response"]["ref"]["resolution"],
                           "resolution_cand": out["response"]["cand"]["resolution"],
                           "showers_per_s": rate,
                           "speedup": {b: rate[b] / sim[b] for b in rate}}
        entry["seconds"] = time.perf_counter() - t0
        result["particles"][particle] = entry
        print(particle, json.dumps(entry, indent=1, default=float), flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
