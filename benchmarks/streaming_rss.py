"""Peak memory while training on HDF5 files larger than memory budgets: it must not grow with file size.

For each size (default 2 GB and 4 GB) a file of float32 events (32 features) is written chunk by chunk,
then a fresh Python process trains hepgen's gaussian on it for one epoch with ``stream=True`` and
reports its peak RSS (``VmHWM``). Output: benchmarks/results/streaming_rss.json.

    .venv/bin/python benchmarks/streaming_rss.py [--sizes-gb 2 4] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FEATURES = 32
RESULTS = Path(__file__).with_name("results") / "streaming_rss.json"

CHILD = r"""
import sys, time, resource
import torch
torch.set_num_threads(2)
import hepgen
path, steps = sys.argv[1], int(sys.argv[2])
start = time.perf_counter()
model = hepgen.Gaussian({features}).fit(f"{{path}}:events", stream=True, chunk_size=65536, epochs=1,
                                        batch_size=8192, lr=1e-3, val_fraction=0.01, monitor=None, quiet=True)
with open("/proc/self/status") as fh:
    hwm = [l for l in fh if l.startswith("VmHWM")][0].split()[1]
print(int(hwm) * 1024, time.perf_counter() - start)
""".format(features=FEATURES)


def write_file(path: Path, gigabytes: float) -> int:
    import h5py

    rows = int(gigabytes * 2**30 / (FEATURES * 4))
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(FEATURES, FEATURES)).astype(np.float32) / np.sqrt(FEATURES)
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("events", shape=(rows, FEATURES), dtype="f4", chunks=(16384, FEATURES))
        for start in range(0, rows, 1 << 20):
            stop = min(start + (1 << 20), rows)
            ds[start:stop] = rng.standard_normal((stop - start, FEATURES), dtype=np.float32) @ mixing
    return rows


def baseline_rss() -> int:
    code = "import hepgen, torch\nprint([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return int(out) * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-gb", type=float, nargs="+", default=[2.0, 4.0])
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--quick", action="store_true",
                        help="0.25 and 0.5 GB files, results in streaming_rss_quick.json (the full run keeps its own)")
    args = parser.parse_args()
    results_path = RESULTS.with_name("streaming_rss_quick.json") if args.quick else RESULTS
    if args.quick:
        args.sizes_gb = [0.25, 0.5]
    results = {"features": FEATURES, "batch_size": 8192, "chunk_size": 65536, "runs": [],
               "import_baseline_rss_mb": round(baseline_rss() / 2**20, 1)}
    for size in args.sizes_gb:
        path = Path(args.dir) / f"hepgen_stream_{size:g}gb.h5"
        t0 = time.perf_counter()
        rows = write_file(path, size)
        written = time.perf_counter() - t0
        try:
            out = subprocess.run([sys.executable, "-c", CHILD, str(path), "0"], capture_output=True, text=True,
                                 env={**os.environ, "OMP_NUM_THREADS": "2"})
            if out.returncode != 0:
                raise SystemExit(out.stderr)
            peak, seconds = out.stdout.split()
            run = {"file_gb": size, "file_bytes": path.stat().st_size, "rows": rows,
                   "peak_rss_mb": round(int(peak) / 2**20, 1), "train_epoch_s": round(float(seconds), 1),
                   "write_s": round(written, 1)}
            print(json.dumps(run))
            results["runs"].append(run)
        finally:
            path.unlink(missing_ok=True)
    peaks = [r["peak_rss_mb"] for r in results["runs"]]
    results["peak_rss_growth_mb"] = round(max(peaks) - min(peaks), 1)
    from hepgen.files import atomic_write_text

    atomic_write_text(results_path, json.dumps(results, indent=2) + "\n")
    print(f"wrote {results_path}")


if __name__ == "__main__":
    main()
