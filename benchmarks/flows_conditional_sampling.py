"""Conditional sampling with per-event contexts: 10⁶ events, each with its own context row, in one call.

The same conditional neural spline flow in hepgen, zuko and nflows (10 features, a 4-D context, 5 transforms,
hidden [128, 128], 8 bins, linear tails outside [-5, 5]; autoregressive and coupling variants), parameters
perturbed from their initial values by N(0, 0.05²) so that no library samples through an identity. Every
library draws one event per context row, vectorised, with its own call:

    hepgen  model.sample(None, context=C)        (C: (n, 4), one row per event)
    zuko    flow(C).sample()
    nflows  flow.sample(1, context=C)[:, 0]

hepgen runs at n = 10⁴, 10⁵ and 10⁶; the peers at 10⁴ and 10⁵ (interleaved with hepgen, median of
``--repeats``), and their 10⁶ time is extrapolated linearly from the 10⁵ rate (the column says so). The way
peers' users report doing it, one ``sample`` call per context row in a Python loop, is timed on
``--loop-events`` rows and extrapolated to 10⁴ events. Output: benchmarks/results/flows_conditional_sampling.json.

    .venv/bin/python benchmarks/flows_conditional_sampling.py [--quick] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# OpenMP threads that spin while waiting lose whole time slices when the cores are shared with other jobs
# (a 2-thread training step then takes 10x longer for every library alike); passive waiting keeps the
# measurement about the libraries. Set before torch (libgomp) loads; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from flows_vs_peers import hepgen_flow, nflows_flow, zuko_flow  # noqa: E402

RESULTS = Path(__file__).with_name("results") / "flows_conditional_sampling.json"
FEATURES, CONTEXT = 10, 4


def build(library: str, family: str, seed: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """A sampler ``f(C) -> (n, FEATURES)``, one event per context row."""
    torch.manual_seed(seed)
    make = {"hepgen": hepgen_flow, "zuko": zuko_flow, "nflows": nflows_flow}[library]
    impl = make(family, FEATURES, CONTEXT)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in impl.module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    module = impl.module
    if library == "hepgen":
        return lambda c: module.sample(None, context=c)
    if library == "zuko":
        return lambda c: module(c).sample()
    return lambda c: module.sample(1, context=c)[:, 0]


def timed(f: Callable[[], object]) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        f()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10⁵ instead of 10⁶ for hepgen, fewer repeats")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--loop-events", type=int, default=100)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.events, args.repeats, args.loop_events = 100_000, 2, 30
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rng = random.Random(0)
    contexts = torch.randn(args.events, CONTEXT, generator=torch.Generator().manual_seed(0))
    sizes = [n for n in (10_000, 100_000) if n < args.events]
    result: dict = {"config": {"features": FEATURES, "context": CONTEXT, "transforms": 5, "hidden": [128, 128],
                               "bins": 8, "threads": args.threads, "repeats": args.repeats, "events": args.events,
                               "command": " ".join(["benchmarks/flows_conditional_sampling.py", *sys.argv[1:]])},
                    "families": {}}
    for family in ("nsf", "nsf_coupling"):
        samplers = {lib: build(lib, family) for lib in ("hepgen", "zuko", "nflows")}
        # one event per context row
        check = samplers["hepgen"](contexts[:3])
        assert check.shape == (3, FEATURES) and torch.isfinite(check).all()
        fam: dict = {"seconds": {}, "events_per_s": {}}
        for n in sizes:
            c = contexts[:n]
            times: dict[str, list[float]] = {lib: [] for lib in samplers}
            for f in samplers.values():
                timed(lambda f=f: f(c[:1000]))  # warm-up
            for _ in range(args.repeats):
                order = list(samplers)
                rng.shuffle(order)
                for lib in order:
                    times[lib].append(timed(lambda f=samplers[lib]: f(c)))
            for lib, t in times.items():
                fam["seconds"].setdefault(lib, {})[str(n)] = statistics.median(t)
                fam["events_per_s"].setdefault(lib, {})[str(n)] = n / statistics.median(t)
            print(f"  {family} n={n}: " + ", ".join(f"{lib} {statistics.median(t):.3f} s" for lib, t in times.items()),
                  flush=True)
        t = [timed(lambda: samplers["hepgen"](contexts)) for _ in range(max(1, args.repeats - 1))]
        fam["seconds"]["hepgen"][str(args.events)] = statistics.median(t)
        fam["events_per_s"]["hepgen"][str(args.events)] = args.events / statistics.median(t)
        print(f"  {family} n={args.events}: hepgen {statistics.median(t):.2f} s (measured)", flush=True)
        base = str(max(sizes))
        fam["extrapolated_seconds"] = {lib: args.events / fam["events_per_s"][lib][base] for lib in ("zuko", "nflows")}
        fam["extrapolation"] = f"peers at n={args.events}: linear from their rate at n={base}"
        fam["ratio_at_largest_common_n"] = {
            f"hepgen/{lib}": fam["events_per_s"]["hepgen"][base] / fam["events_per_s"][lib][base]
            for lib in ("zuko", "nflows")}
        # the per-event loop peers' users report (one sample call per context row)
        loop = {}
        for lib in ("zuko", "nflows"):
            f = samplers[lib]
            seconds = timed(lambda f=f: [f(contexts[i:i + 1]) for i in range(args.loop_events)])
            loop[lib] = {"events": args.loop_events, "seconds": seconds,
                         "extrapolated_seconds_for_10k": seconds / args.loop_events * 10_000}
        fam["per_event_loop"] = loop
        result["families"][family] = fam
    result["elapsed_s"] = round(time.perf_counter() - start, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    for family, fam in result["families"].items():
        print(f"{family}: hepgen {args.events} events in {fam['seconds']['hepgen'][str(args.events)]:.2f} s; "
              + ", ".join(f"{lib} ~{s:.0f} s (extrapolated)" for lib, s in fam["extrapolated_seconds"].items()))
    print(f"wrote {args.out} in {result['elapsed_s']} s")


if __name__ == "__main__":
    main()
