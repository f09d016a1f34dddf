"""What the engine costs over a plain torch loop: a GAN, a flow and an autoencoder, same networks, same steps.

For each family the model is first trained by ``model.fit`` at the default engine settings (validation
pass, monitor, history, progress bar off as on a pipe), then a copy of the same freshly drawn networks is
trained by a hand-written loop doing the same optimiser steps on the same preprocessed events (the
engine's training share, 1 - val_fraction), with the same Adam settings:

    gan   hepgen.GAN(2, loss="wgan-gp", critic_steps=5): a critic step with the gradient penalty on every
          batch, a generator step on every 5th, the generator EMA after each generator step
    flow  hepgen.NSF(2): maximum likelihood, -log p(u) per event
    ae    hepgen.Autoencoder(2): mean squared reconstruction error per event

The cost is CPU-seconds (``time.process_time``) with ``torch.set_num_threads(1)``; the ratio hepgen / plain
is what counts (both measured in the same run, minutes apart at most), and the load average is recorded
because the machine may be shared. Two ratios per case:

    ratio             steady state: each side ``repeats`` times (5; alternating) in this process after an
                      untimed warm-up run, the least disturbed kept
    first_fit_ratio   each side once in a fresh interpreter (torch and hepgen imported beforehand, not
                      counted): what a script that trains once pays, first-call costs included. Building
                      the first torch optimiser imports torch._dynamo (about 1 CPU-second), in either loop.

Where the engine's time goes (cProfile of the GAN case, issue 19). The 2.7x of the issue (3.2 s against
1.2 s) was a first fit against a warm plain loop: of the 3.2 s, about 1 CPU-second is torch importing
torch._dynamo the first time any torch.optim optimiser is built (Optimizer.__init__ is wrapped by
torch._disable_dynamo, which imports it lazily), and a few tenths are first calls of autograd and the
fused Adam kernel; a plain loop in a fresh process pays the same (``first_fit_ratio`` ~1.0). In steady
state the engine's own share is a few percent: the per-batch preprocessing of the events (an affine map;
the plain loop standardises once), the gradient norm logged per step, the one stacked [Σw, Σwℓ...] vector
per step whose host sync also serves the NaN/inf guard, the validation pass (10% of the events once per
epoch) and the history row; the EMA is the GAN's own and the plain loop does it too. Without a run
directory nothing is written; with one, one checkpoint and metrics.csv per epoch (not per step).
The GradScaler's pass-through calls (scale, unscale_, step, update: identities unless fp16) are now
skipped when it is disabled, which was the largest avoidable per-step cost (~2% of a GAN step).

    .venv/bin/python benchmarks/engine_overhead.py            # about 1-2 min on one core
    .venv/bin/python benchmarks/engine_overhead.py --quick    # about 20 s

Output: benchmarks/results/engine_overhead.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).with_name("results") / "engine_overhead.json"
VAL_FRACTION = 0.1  # the engine's default hold-out; the plain loop trains on as many events


def cpu_seconds(function: Callable[[], object]) -> float:
    """CPU-seconds of this process spent in ``function()``."""
    start = time.process_time()
    function()
    return time.process_time() - start


def ratio(hepgen_s: float, plain_s: float) -> float:
    """The engine's cost as a multiple of the plain loop's."""
    if not plain_s > 0:
        raise ValueError(f"the plain loop took {plain_s} CPU-seconds; nothing to compare with")
    return hepgen_s / plain_s


def data(n: int, seed: int = 0) -> np.ndarray:
    """(n, 2) events: a ring of six Gaussians (the GAN benchmark's toy)."""
    rng = np.random.default_rng(seed)
    angle = rng.integers(0, 6, n) * (2 * np.pi / 6)
    return (np.stack([np.cos(angle), np.sin(angle)], 1) * 2 + 0.1 * rng.standard_normal((n, 2))).astype(np.float32)


def batches(u: torch.Tensor, batch_size: int, epoch: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(epoch)
    order = torch.randperm(len(u), generator=g)
    return [u[order[i:i + batch_size]] for i in range(0, len(u), batch_size)]


def standardised(x: np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(x[: int(round(len(x) * (1 - VAL_FRACTION)))], dtype=torch.float32)
    return (t - t.mean(0)) / t.std(0)


# -- plain torch loops -------------------------------------------------------------------------------------
def plain_gan(model, x: np.ndarray, epochs: int, batch_size: int, lr: float) -> dict[str, int]:
    from hepgen.gans.losses import gradient_penalty

    generator, critic = copy.deepcopy(model.generator), copy.deepcopy(model.critic)
    ema = copy.deepcopy(generator).requires_grad_(False)
    opt_c = torch.optim.Adam(critic.parameters(), lr=lr, betas=(0.5, 0.9))
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.9))
    u, k, t = standardised(x), model.critic_steps, 0
    steps = {"critic": 0, "generator": 0}
    for epoch in range(epochs):
        for step, real in enumerate(batches(u, batch_size, epoch), start=1):
            with torch.no_grad():
                fake = generator(torch.randn(len(real), model.latent))
            loss = (critic(fake) - critic(real)).mean() + gradient_penalty(critic, real, fake).mean()
            opt_c.zero_grad()
            loss.backward()
            opt_c.step()
            steps["critic"] += 1
            if step % k == 0:
                loss = -critic(generator(torch.randn(len(real), model.latent))).mean()
                opt_g.zero_grad()
                loss.backward()
                opt_g.step()
                steps["generator"] += 1
                with torch.no_grad():
                    decay = min(model.ema, (1.0 + t) / (10.0 + t))
                    for q, p in zip(ema.parameters(), generator.parameters()):
                        q.lerp_(p, 1.0 - decay)
                    t += 1
    return steps


def plain_single(model, loss_of: Callable[[object, torch.Tensor], torch.Tensor], x: np.ndarray, epochs: int,
                 batch_size: int, lr: float) -> dict[str, int]:
    net = copy.deepcopy(model)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    u, steps = standardised(x), 0
    for epoch in range(epochs):
        for batch in batches(u, batch_size, epoch):
            loss = loss_of(net, batch).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
    return {"model": steps}


# -- the cases -----------------------------------------------------------------------------------------------
def cases(quick: bool) -> dict[str, dict]:
    import hepgen

    n = 5_000 if quick else 20_000
    return {
        "gan": {"model": lambda: hepgen.GAN(2, loss="wgan-gp", critic_steps=5), "n": n, "epochs": 3,
                "batch_size": 256, "lr": 1e-3, "plain": plain_gan},
        "flow": {"model": lambda: hepgen.NSF(2), "n": n // 2, "epochs": 3, "batch_size": 256, "lr": 1e-3,
                 "plain": lambda m, *a: plain_single(m, lambda net, u: -net.log_prob_internal(u), *a)},
        "ae": {"model": lambda: hepgen.Autoencoder(2), "n": n, "epochs": 3, "batch_size": 256, "lr": 1e-3,
               "plain": lambda m, *a: plain_single(m, lambda net, u: net.training_losses({"x": u})["loss"], *a)},
    }


def run_once(case: dict, side: str) -> float:
    """CPU-seconds of one training of ``case`` by ``side`` ("hepgen" or "plain") on fresh networks."""
    x = data(case["n"])
    if side == "hepgen":
        model = case["model"]()
        return cpu_seconds(lambda: model.fit(x, epochs=case["epochs"], batch_size=case["batch_size"], lr=case["lr"],
                                             quiet=True))
    model = case["model"]()
    return cpu_seconds(lambda: case["plain"](model, x, case["epochs"], case["batch_size"], case["lr"]))


def cold(name: str, side: str, quick: bool) -> float:
    """``run_once`` in a fresh interpreter (torch and hepgen imported first, not counted): what a script that
    trains once pays, first-call costs included (torch imports torch._dynamo when an optimiser is built)."""
    code = (f"import sys, torch; torch.set_num_threads(1); import hepgen; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import engine_overhead as b; print(b.run_once(b.cases({quick})[{name!r}], {side!r}))")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return float(out.stdout.split()[-1])


def measure(name: str, case: dict, repeats: int, quick: bool, fresh_process: bool = True) -> dict:
    """Both sides ``repeats`` times in this process (the least disturbed kept: steady state) and, with ``fresh_process``,
    once each in a fresh interpreter (first-call costs included)."""
    run_once(case, "hepgen"), run_once(case, "plain")  # warm-up, not counted: first-call costs are apart
    times: dict[str, list[float]] = {"hepgen": [], "plain": []}
    for _ in range(repeats):  # alternating, so that both sides see the machine's load alike
        for side in times:
            times[side].append(run_once(case, side))
    hepgen_s, plain_s = min(times["hepgen"]), min(times["plain"])
    out = {"events": case["n"], "epochs": case["epochs"], "batch_size": case["batch_size"], "lr": case["lr"],
           "hepgen_cpu_s": round(hepgen_s, 4), "plain_cpu_s": round(plain_s, 4),
           "ratio": round(ratio(hepgen_s, plain_s), 3)}
    if fresh_process:
        first_hepgen, first_plain = cold(name, "hepgen", quick), cold(name, "plain", quick)
        out.update(first_fit_hepgen_cpu_s=round(first_hepgen, 4), first_fit_plain_cpu_s=round(first_plain, 4),
                   first_fit_ratio=round(ratio(first_hepgen, first_plain), 3))
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events, one repeat")
    parser.add_argument("--only", choices=("gan", "flow", "ae"), action="append", help="run only these cases")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    repeats = 1 if args.quick else 5
    load_before = os.getloadavg()
    results = {name: measure(name, case, repeats, args.quick) for name, case in cases(args.quick).items()
               if not args.only or name in args.only}
    out = {"quick": args.quick, "repeats": repeats, "threads": torch.get_num_threads(),
           "load_average_before": [round(v, 2) for v in load_before],
           "load_average_after": [round(v, 2) for v in os.getloadavg()],
           "python": platform.python_version(), "torch": torch.__version__, "cases": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    for name, r in results.items():
        print(f"{name:5s} hepgen {r['hepgen_cpu_s']:.2f} s  plain {r['plain_cpu_s']:.2f} s  ratio {r['ratio']:.2f}  "
              f"(first fit in a fresh process: {r['first_fit_hepgen_cpu_s']:.2f} s / {r['first_fit_plain_cpu_s']:.2f} s"
              f" = {r['first_fit_ratio']:.2f})", file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
