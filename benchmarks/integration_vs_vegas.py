"""Phase-space integration and unweighting: the hypercube flow (i-flow) against VEGAS at equal calls, one run.

Integrands of :mod:`hepgen.targets`: the camel (two Gaussians of width 0.1 on the diagonal, integral ≈ 1) in
d = 2, 4, 8 (16 with ``--dims``) and e⁺e⁻ → q q̄ g at LO with y_ij > 0.01 (its integral R₃ analytic).
Both samplers get the same number of integrand calls: the flow spends ``train_calls`` on training
(steps × batch) and ``eval_calls`` on the final estimate; VEGAS (``vegas`` 6.4.1) adapts over
``train_calls`` (10 iterations) and evaluates ``eval_calls`` more with its grid frozen. Reported per
integrand: integral ± error, its pull from the exact value, variance per call, the unweighting efficiency
ε = ⟨w⟩/max w of the evaluation calls (max over those calls: it grows with the sample, so ε is an
optimistic estimate of what a run with a true maximum achieves), and CPU seconds.

    python benchmarks/integration_vs_vegas.py --quick            # 1e5 + 1e5 calls per integrand
    python benchmarks/integration_vs_vegas.py --dims 2 4 8 16 --train-calls 3000000 --eval-calls 300000

Output: benchmarks/results/integration_vs_vegas.json and integration_vs_vegas.png (ε against d).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hepgen.files import atomic_write_text
from hepgen.phasespace import HypercubeFlow, summarise

RESULTS = Path(__file__).with_name("results")


def run_vegas(target, train_calls: int, eval_calls: int, seed: int) -> dict:
    import vegas

    np.random.seed(seed)
    calls = [0]

    @vegas.lbatchintegrand
    def f(x):
        calls[0] += len(x)
        return target(torch.as_tensor(np.asarray(x, dtype=float))).numpy()

    t0 = time.process_time()
    integ = vegas.Integrator([[0.0, 1.0]] * target.dim)
    integ(f, nitn=10, neval=max(train_calls // 10, 100))
    adapt_calls = calls[0]
    ws = []
    for x, wgt in integ.random_batch():
        ws.append(np.asarray(wgt) * f(x))
    w = np.concatenate(ws)
    # random_batch draws one pass of the frozen grid (~neval/10 points); repeat to reach eval_calls
    while sum(len(v) for v in ws) < eval_calls:
        for x, wgt in integ.random_batch():
            ws.append(np.asarray(wgt) * f(x))
    per_pass = len(w)
    w = np.concatenate(ws) * per_pass  # wgt sums to the volume per pass: per-call weight = per_pass · wgt · f
    seconds = time.process_time() - t0
    return {**summarise(w), "train_calls": adapt_calls, "eval_calls": len(w), "cpu_s": seconds}


def run_flow(target_name: str, dims: int, train_calls: int, eval_calls: int, batch: int, seed: int,
             transforms: int) -> dict:
    model = HypercubeFlow(target_name, dims, transforms=transforms, hidden=(64, 64), bins=16, loss="variance")
    steps = max(1, train_calls // batch)
    epochs = max(1, steps // 50)
    t0 = time.process_time()
    model.fit(None, steps_per_epoch=max(1, steps // epochs), epochs=epochs, batch_size=batch, lr=3e-3,
              scheduler="cosine", seed=seed, quiet=True)
    train_s = time.process_time() - t0
    t0 = time.process_time()
    res = model.integrate(eval_calls, seed=seed + 1)
    return {**res, "train_calls": epochs * max(1, steps // epochs) * batch, "eval_calls": eval_calls,
            "train_cpu_s": train_s, "eval_cpu_s": time.process_time() - t0}


def figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    camel = [r for r in rows if r["target"] == "camel"]
    fig, ax = plt.subplots(figsize=(4.5, 3.2), constrained_layout=True)
    ds = [r["dims"] for r in camel]
    ax.plot(ds, [r["flow"]["unweighting_efficiency"] for r in camel], "o-", label="flow")
    ax.plot(ds, [r["vegas"]["unweighting_efficiency"] for r in camel], "s--", label="VEGAS")
    ax.set(xlabel="d (camel)", ylabel="unweighting efficiency", yscale="log")
    ax.legend(frameon=False)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1e5 training + 1e5 evaluation calls per integrand")
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--train-calls", type=int, default=3_000_000)
    parser.add_argument("--eval-calls", type=int, default=300_000)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-matrix-element", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.dims = [2, 4, 8]
        args.train_calls, args.eval_calls, args.batch_size = 100_000, 100_000, 1000
    torch.set_num_threads(1)
    cases = [("camel", d) for d in args.dims] + ([] if args.no_matrix_element else [("eeqqg", 2)])
    rows = []
    for name, d in cases:
        flow = run_flow(name, d, args.train_calls, args.eval_calls, args.batch_size, args.seed,
                        transforms=max(4, 2 * int(np.ceil(np.log2(d))) + 2))
        target = HypercubeFlow(name, d, transforms=1, hidden=(1,), bins=1).target
        veg = run_vegas(target, args.train_calls, args.eval_calls, args.seed)
        exact = target.integral
        for r in (flow, veg):
            r["pull"] = (r["integral"] - exact) / r["error"] if r["error"] > 0 else float("inf")
        rows.append({"target": name, "dims": d, "exact": exact, "flow": flow, "vegas": veg,
                     "efficiency_ratio_flow_over_vegas": flow["unweighting_efficiency"]
                     / max(veg["unweighting_efficiency"], 1e-300),
                     "variance_ratio_vegas_over_flow": veg["variance_per_call"] / max(flow["variance_per_call"], 1e-300)})
        print(json.dumps(rows[-1], indent=1), flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = {"benchmark": "integration_vs_vegas", "quick": args.quick, "settings": vars(args), "rows": rows,
           "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": 1,
                       "note": "CPU seconds (process_time), one thread; shared machine"}}
    atomic_write_text(RESULTS / "integration_vs_vegas.json", json.dumps(out, indent=1) + "\n")
    figure(rows, RESULTS / "integration_vs_vegas.png")


if __name__ == "__main__":
    main()
