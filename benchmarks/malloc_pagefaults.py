"""What glibc's default allocator costs a CPU training step, and what hepgen.memory.keep_freed_memory saves.

A lattice flow (hepgen.lattice.Phi4Flow, 8 spline layers of (16, 16) channels) takes reverse-KL training steps
(forward, backward, Adam) at L = 12, batch 1024 and 4096, one thread, each setting in a fresh interpreter:
``system`` (HEPGEN_MALLOC=system: glibc's own thresholds) and ``kept`` (keep_freed_memory: freed blocks stay in
the heap). Per case: the median CPU seconds of a step after the first, and the page faults (getrusage minflt) of
the last step. The numbers do not change with the setting; only where memory comes from does.

    python benchmarks/malloc_pagefaults.py            # ~2 CPU-minutes
    python benchmarks/malloc_pagefaults.py --quick    # L = 8, batch 1024, ~10 s

Output: benchmarks/results/malloc_pagefaults.json (--quick: malloc_pagefaults_quick.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from _machine import Meter

from hepgen.files import atomic_write_text

RESULTS = Path(__file__).with_name("results")

STEPS = """
import json, resource, sys, time
import hepgen.memory
kept = hepgen.memory.keep_freed_memory()
import torch
from hepgen.lattice import Phi4Flow
torch.set_num_threads(1)
L, batch, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
model = Phi4Flow(L=L, lam=5.276, kind="spline")
opt = torch.optim.Adam(model.parameters(), 1e-4)
times, faults = [], 0
for i in range(steps):
    before, t = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time()
    loss = model.training_losses({"w": torch.ones(batch)})["loss"].mean()
    opt.zero_grad(); loss.backward(); opt.step()
    times.append(time.process_time() - t)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
rest = sorted(times[1:])
print(json.dumps({"kept": kept, "step_cpu_s": rest[len(rest) // 2], "page_faults_last_step": faults,
                  "loss_last_step": float(loss)}))
"""


def run(setting: str, L: int, batch: int, steps: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "HEPGEN_MALLOC"}
    env["OMP_NUM_THREADS"] = "1"
    if setting == "system":
        env["HEPGEN_MALLOC"] = "system"
    out = subprocess.run([sys.executable, "-c", STEPS, str(L), str(batch), str(steps)], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    L, batches, steps = (8, [1024], 3) if args.quick else (12, [1024, 4096], 4)
    meter = Meter()
    cases = []
    for batch in batches:
        row = {"L": L, "batch": batch}
        for setting in ("system", "kept"):
            row[setting] = run(setting, L, batch, steps)
            meter.sample()
        row["speedup"] = row["system"]["step_cpu_s"] / row["kept"]["step_cpu_s"]
        row["same_loss"] = row["system"]["loss_last_step"] == row["kept"]["loss_last_step"]
        cases.append(row)
        print(json.dumps(row), flush=True)
    out = {"benchmark": "malloc_pagefaults", "quick": args.quick, "cases": cases, "machine": meter.record(),
           "note": "CPU seconds (process_time) per training step, median of the steps after the first, one thread"}
    name = "malloc_pagefaults_quick" if args.quick else "malloc_pagefaults"
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / f"{name}.json", json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS / name}.json")


if __name__ == "__main__":
    main()
