"""Speed of every built-in data generator (``hepgen data NAME``) on small N, and the shipped sample's size.

Measured through the Python API that ``hepgen data`` calls, one generator after another:

* ``jets``: Pythia 8 + FastJet, each process (qcd, top, w) with 1 and 2 worker processes: Pythia events/s
  and kept jets/s (per core after Pythia's initialisation, and wall-clock with everything);
* ``calo``: showers/s for e+, gamma, pi+ (1 and 2 workers);
* ``phi4``: configurations/s and HMC trajectories/s at the Albergo et al. point (L = 8, m2 = -4, lam = 8),
  with the acceptance and tau_int (1 and 2 workers);
* ``smear``: truth/reco pairs/s; ``toys``: points/s of each toy.

Speeds are quoted as ratios against a peer measured in the same run: the 2-worker run against the
1-worker one (parallel speed-up), and for the vectorised smear/toys the time of drawing as many
standard normals with NumPy (the floor of any NumPy sampler). Absolute rates are kept for the record,
wall-clock and per CPU second of this process (``*_per_cpu_s``, single-process runs only), the latter
being what one core delivers whatever the machine's load (``load_average`` is recorded): on a shared
machine wall-clock rates and parallel speed-ups fall with the load, CPU-second rates do not.

    .venv/bin/python benchmarks/generators_speed.py            # about 3-5 min on 2 cores
    .venv/bin/python benchmarks/generators_speed.py --quick    # about 1 min

Output: benchmarks/results/generators_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("results") / "generators_speed.json"


def timed(function, *args, **kwargs):
    """``(result, wall seconds)``; the CPU seconds of this process go to ``timed.cpu``."""
    start, cpu = time.perf_counter(), time.process_time()
    out = function(*args, **kwargs)
    timed.cpu = time.process_time() - cpu
    return out, time.perf_counter() - start


def numpy_floor(size: int) -> float:
    """Seconds to draw ``size`` standard normals with NumPy's default generator (best of 3)."""
    rng = np.random.default_rng(0)
    return min(timed(rng.standard_normal, size)[1] for _ in range(3))


def bench_jets(n: int, block_size: int) -> dict:
    from hepgen.data.generators import jets

    try:
        jets._require_backends()
    except Exception as exc:  # noqa: BLE001 - recorded, the other generators still run
        return {"skipped": str(exc)}
    import fastjet
    import pythia8mc

    out: dict = {"n_jets": n, "block_size": block_size, "options": "pT 550-650 GeV, anti-kT R = 0.8, |eta| < 2",
                 "pythia8mc": getattr(pythia8mc, "__version__", "?"), "fastjet": getattr(fastjet, "__version__", "?")}
    for process in jets.PROCESSES:
        runs = {}
        for workers in (1, 2):
            opts = jets.resolve_options(process=process, workers=workers, block_size=block_size, progress=False)
            (_, s), _ = timed(jets._generate, n, 1, opts)
            busy = s["seconds"] - s["init_s"]
            runs[f"workers_{workers}"] = {
                "pythia_events": int(s["events"]), "jets": int(s["jets"]), "kept_fraction": s["jets"] / s["events"],
                "events_per_s_per_core_after_init": s["events"] / busy,
                "jets_per_s_per_core_after_init": s["jets"] / busy,
                "init_s_per_block": s["init_s"] / -(-n // block_size),
                "wall_s": s["wall_s"], "events_per_s_wall": s["events"] / s["wall_s"],
                "jets_per_s_wall": s["jets"] / s["wall_s"],
            }
            if workers == 1:  # all in this process: per CPU second, whatever the machine's load
                runs["workers_1"]["events_per_cpu_s"] = s["events"] / timed.cpu
                runs["workers_1"]["jets_per_cpu_s"] = s["jets"] / timed.cpu
        runs["speedup_2_vs_1_workers"] = runs["workers_1"]["wall_s"] / runs["workers_2"]["wall_s"]
        out[process] = runs
        print(f"jets {process}: {runs['workers_1']['events_per_cpu_s']:.0f} events per CPU second, "
              f"{runs['workers_1']['jets_per_s_wall']:.1f} jets/s wall (1 worker), "
              f"x{runs['speedup_2_vs_1_workers']:.2f} with 2 workers", file=sys.stderr)
    return out


def bench_calo(n: int) -> dict:
    from hepgen.data.generators import calo

    out: dict = {"n_showers": n, "energy_GeV": "uniform 1-100"}
    for particle in calo.PARTICLES:
        calo.generate(10, seed=0, particle=particle)  # warm-up (imports, caches)
        _, one = timed(calo.generate, n, seed=0, particle=particle)
        cpu = timed.cpu
        _, two = timed(calo.generate, n, seed=0, particle=particle, workers=2)
        out[particle] = {"showers_per_cpu_s": n / cpu, "showers_per_s_1_worker": n / one,
                         "showers_per_s_2_workers": n / two, "speedup_2_vs_1_workers": one / two}
        print(f"calo {particle}: {n / cpu:.0f} showers per CPU second, {n / one:.0f}/s wall, x{one / two:.2f} with "
              "2 workers", file=sys.stderr)
    return out


def bench_phi4(n: int) -> dict:
    from hepgen.data.generators import phi4

    opts = {key: spec.default for key, spec in phi4.OPTIONS.items() if key != "workers"}
    chains = opts["chains"]
    trajectories = chains * opts["therm"] + n * opts["thin"]  # every chain thermalises, then n configs thinned
    phi4.generate(8, seed=0, therm=5)  # warm-up
    result, one = timed(phi4.generate, n, seed=0)
    cpu = timed.cpu
    _, two = timed(phi4.generate, n, seed=0, workers=2)
    out = {"n_configs": n, **opts, "acceptance": float(result["acceptance"]), "tau_int": float(result["tau_int"]),
           "configs_per_cpu_s": n / cpu, "trajectories_per_cpu_s": trajectories / cpu,
           "configs_per_s_1_worker": n / one, "trajectories_per_s_1_worker": trajectories / one,
           "configs_per_s_2_workers": n / two, "speedup_2_vs_1_workers": one / two}
    print(f"phi4: {n / cpu:.0f} configs per CPU second ({trajectories / cpu:.0f} trajectories), acceptance "
          f"{out['acceptance']:.3f}, tau_int {out['tau_int']:.2f}, x{one / two:.2f} with 2 workers", file=sys.stderr)
    return out


def bench_smear(n: int) -> dict:
    from hepgen.data.generators import smear

    smear.generate(100, seed=0)
    _, seconds = timed(smear.generate, n, seed=0)
    cpu = timed.cpu
    floor = numpy_floor(n * 10)  # truth + reco: 10 numbers per row
    print(f"smear: {n / cpu:.3g} pairs per CPU second, {seconds / floor:.1f}x the time of {n * 10} normals",
          file=sys.stderr)
    return {"n_pairs": n, "pairs_per_cpu_s": n / cpu, "pairs_per_s": n / seconds,
            "time_vs_numpy_normals_of_output_size": seconds / floor}


def bench_toys(n: int) -> dict:
    from hepgen.data.generators import toys

    out: dict = {"n_points": n}
    for name in toys.NAMES:
        options = {"name": name, **({"dim": 8} if name in ("correlated-gaussian", "gaussian-mixture") else {})}
        toys.generate(100, seed=0, **options)
        result, seconds = timed(toys.generate, n, seed=0, **options)
        cpu = timed.cpu
        floor = numpy_floor(result["x"].size)
        out[name] = {"dim": int(result["x"].shape[1]), "points_per_cpu_s": n / cpu, "points_per_s": n / seconds,
                     "time_vs_numpy_normals_of_output_size": seconds / floor}
        print(f"toys {name}: {n / seconds:.3g} points/s ({seconds / floor:.1f}x numpy normals)", file=sys.stderr)
    return out


def shipped_sample() -> dict:
    import h5py

    from hepgen.data.generators import jets

    path = jets.SHIPPED_SAMPLE
    out: dict = {"path": str(path.relative_to(Path(__file__).resolve().parents[1] / "src")),
                 "bytes": path.stat().st_size, "groups": {}}
    with h5py.File(path, "r") as handle:
        for group in handle:
            out["groups"][group] = {
                "jets": int(handle[group]["features"].shape[0]),
                "stored_bytes": {key: int(ds.id.get_storage_size()) for key, ds in handle[group].items()},
            }
    out["regenerate"] = ("python -m hepgen.data.generators.jets --sample src/hepgen/data/shipped/jets.h5 "
                         "-n 2500 --seed 1 --workers 2")
    print(f"shipped sample: {out['bytes']} bytes", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller N everywhere (about a minute)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    n = {"jets": 40, "block": 20, "calo": 500, "phi4": 100, "smear": 200_000, "toys": 200_000} if args.quick else \
        {"jets": 200, "block": 100, "calo": 2000, "phi4": 400, "smear": 1_000_000, "toys": 1_000_000}
    start = time.perf_counter()
    result = {
        "benchmark": "generators_speed", "quick": args.quick,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                    "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
                    "numpy": np.__version__},
        "shipped_sample": shipped_sample(),
        "jets": bench_jets(n["jets"], n["block"]),
        "calo": bench_calo(n["calo"]),
        "phi4": bench_phi4(n["phi4"]),
        "smear": bench_smear(n["smear"]),
        "toys": bench_toys(n["toys"]),
    }
    result["machine"]["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    result["total_s"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} in {result['total_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
