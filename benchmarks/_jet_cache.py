"""Build the jets benchmarks' cache in resumable 10k-jet chunks (issue 24: 50k QCD for training, 15k QCD,
top and W for testing, seeds disjoint from the shipped sample's).

Each chunk is ``hepgen data jets -n 10000 --seed S --option process=P --option workers=1`` written to
benchmarks/data/chunks/jets_P_10000_S.h5 (the CLI writes under a temporary name and renames, so a chunk
is there whole or not at all); a finished chunk is never redone, so the job can be stopped and started
again at will. ``_jets_data.jets`` reads the chunks of a process, in the order of PLAN, as one sample.
One chunk takes about 19 minutes of one core (Pythia 8 + FastJet). Run it beside other work at low
priority with one thread:

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/_jet_cache.py             # the whole plan
    python benchmarks/_jet_cache.py --process top --chunks 1                 # a part of it
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

CHUNKS = Path(__file__).parent / "data" / "chunks"
CHUNK = 10_000
#: seeds per process, in reading order: 70k QCD, 20k top, 20k W (+ the 20k W of jets_w_20000_11.h5 if cached)
PLAN = {"qcd": [1101, 1102, 1103, 1104, 1105, 1106, 1107], "top": [1201, 1202], "w": [1301, 1302]}


def chunk_path(process: str, seed: int) -> Path:
    return CHUNKS / f"jets_{process}_{CHUNK}_{seed}.h5"


def chunks(process: str) -> list[Path]:
    """The finished chunks of ``process``, in PLAN order."""
    return [p for p in (chunk_path(process, s) for s in PLAN.get(process, [])) if p.exists()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--process", nargs="*", default=list(PLAN), choices=list(PLAN))
    parser.add_argument("--chunks", type=int, default=None, help="at most this many chunks per process")
    args = parser.parse_args()
    CHUNKS.mkdir(parents=True, exist_ok=True)
    # interleaved so that every process has jets early on
    order = [(p, s) for i in range(max(map(len, PLAN.values()))) for p in args.process
             if i < len(PLAN[p]) and (args.chunks is None or i < args.chunks) for s in [PLAN[p][i]]]
    for process, seed in order:
        out = chunk_path(process, seed)
        if out.exists():
            continue
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hepgen", "data", "jets", "-n", str(CHUNK), "--seed", str(seed),
                        "--option", f"process={process}", "--option", "workers=1", "-q", "-o", str(out)], check=True)
        print(f"{out.name}: {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
