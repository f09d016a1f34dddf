"""The main end-to-end job, run by ``make demo`` / ``hepgen demo``: fit, sample, compare, report.

On the jets sample shipped with hepgen (Pythia 8 + FastJet QCD jets, high-level features) it fits
the full-covariance Gaussian baseline through the CLI's own API calls, draws as many events as the
test set holds, compares them with held-out jets (W1 per feature, χ², FPD/KPD, a classifier
two-sample test) and writes an HTML report. Every step is what a user would type:

    hepgen fit gaussian jets.h5:qcd/features --out RUN
    hepgen sample RUN -n N -o samples.h5
    hepgen compare test.h5 samples.h5 --report report/
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from hepgen.cli import main as cli


def _step(title: str, argv: list[str], quiet: bool) -> None:
    if not quiet:
        print(f"\n$ hepgen {' '.join(argv)}", file=sys.stderr, flush=True)
    code = cli(argv + (["--quiet"] if quiet and argv[0] == "fit" else []))
    if code != 0:
        raise SystemExit(f"demo step {title!r} failed with exit code {code}")


def demo_data(out: Path) -> tuple[str, str, list[str]]:
    """Split the shipped QCD jets' high-level features into train and test files; returns their specs."""
    from hepgen.data import io
    from hepgen.data.generators.jets import shipped_sample_path

    table = io.read(f"{shipped_sample_path()}:qcd/features")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(table.data))
    n_test = len(order) // 4
    train, test = out / "data" / "qcd_train.h5", out / "data" / "qcd_test.h5"
    io.write(train, table.data[order[n_test:]], columns=table.columns)
    io.write(test, table.data[order[:n_test]], columns=table.columns)
    return str(train), str(test), list(table.columns)


def run_demo(out: Path, epochs: int | None = None, quiet: bool = False) -> dict:
    """Run the demo into ``out``; returns the summary also written to ``out/summary.json``."""
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    train, test, _ = demo_data(out)
    n_test = len(__import__("hepgen.data.io", fromlist=["read"]).read(test).data)
    run = out / "runs" / "gaussian"
    if run.exists():
        import shutil

        shutil.rmtree(run)
    _step("fit", ["fit", "gaussian", train, "--out", str(run), "--epochs", str(epochs or 30),
                  "--batch-size", "256", "--lr", "0.01", "--seed", "0", "--scheduler", "cosine"], quiet)
    samples = out / "samples" / "gaussian.h5"
    _step("sample", ["sample", str(run), "-n", str(n_test), "-o", str(samples), "--seed", "0"], quiet)
    _step("score", ["score", str(run), test, "-o", str(out / "scores" / "gaussian_test.h5")], quiet)
    report = out / "report"
    _step("compare", ["compare", test, str(samples), "--report", str(report)], quiet)
    metrics = json.loads((report / "metrics.json").read_text())
    summary = {"wall_time_s": round(time.perf_counter() - start, 1), "report": str(report / "index.html"),
               "gaussian": {k: metrics[k] for k in ("c2st", "fpd") if k in metrics}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    if not quiet:
        print(f"\ndemo finished in {summary['wall_time_s']} s; open {summary['report']}", file=sys.stderr)
    return summary
