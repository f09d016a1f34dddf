"""Normalizing flows, hepgen against zuko, nflows and normflows: speed and quality in one run.

Same architecture everywhere: 10-D data, 5 transforms, conditioners with hidden layers [128, 128] and
ReLU, batch 512, Adam(lr=1e-3) with the fused kernel for every library (as hepgen's engine runs it),
float32; splines with 8 bins and linear tails outside [-5, 5]. Families:
MAF (affine autoregressive), RealNVP (affine coupling, alternating masks), NSF (autoregressive splines)
and NSF-coupling. Peers are built from their own layers to that architecture (nflows: MADE without
residual blocks and a reverse permutation between layers; normflows for RealNVP only).

* Speed: training steps/s (forward, backward and Adam step on a batch of 512), log_prob samples/s and
  sampling samples/s (``--n-eval`` rows per call, no gradients, each library's public call). Every number
  is the median over ``--rounds`` rounds; in each round the libraries run one after another in a shuffled
  order, so slow phases of a shared machine hit all of them. Ratios are hepgen / peer of the medians.
* FLOP utilisation: a 2048² fp32 matmul measures the machine's GEMM rate in every round of the same run.
  Model FLOPs are 2·Σ in·out over the conditioners' linear layers (dense, as the GEMMs run them) per
  event and pass, ×3 for a training step (forward + backward). For affine coupling sampling the
  matrix-product bound is GEMM rate / FLOPs per sample; the bare GEMM chain of the same shapes (addmm only,
  nothing else) is timed alongside as the rate these matrix shapes reach in practice.
* Quality: every model trains the same number of steps on the same batches of a 10-D Gaussian mixture whose
  density is known; test log-likelihood (nats, original units) on held-out draws, differences paired per
  event with their standard errors.
* Jets: hepgen NSF against zuko NSF on the shipped jet high-level features (``qcd/features``: 11 columns,
  n_constituents dequantised with U(0, 1), standardised on the training split), same training budget, cosine
  learning-rate decay, test log-likelihood at the best-validation checkpoint, over ``--jet-seeds`` seeds.

Output: benchmarks/results/flows_vs_peers.json.

    .venv/bin/python benchmarks/flows_vs_peers.py [--quick] [--threads 2] [--rounds 7] [--steps 1000]
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
# OpenMP threads that spin while waiting lose whole time slices when the cores are shared with other jobs
# (a 2-thread training step then takes 10x longer for every library alike); passive waiting keeps the
# measurement about the libraries. Set before torch (libgomp) loads; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch import nn  # noqa: E402

RESULTS = Path(__file__).with_name("results") / "flows_vs_peers.json"
FEATURES, TRANSFORMS, HIDDEN, BATCH, BINS, BOUND = 10, 5, (128, 128), 512, 8, 5.0
FAMILIES = ("maf", "realnvp", "nsf", "nsf_coupling")
PEERS = ("zuko", "nflows", "normflows")


# ------------------------------------------------------------------------------------------------ models
@dataclass
class Impl:
    """One library's flow: the module (parameters), log p(x) with gradients, and n samples."""

    library: str
    module: nn.Module
    log_prob: Callable[[torch.Tensor], torch.Tensor]
    sample: Callable[[int], torch.Tensor]


def hepgen_flow(family: str, features: int = FEATURES, context: int = 0) -> Impl:
    from hepgen.flows import MAF, NSF, RealNVP

    kw = dict(context=context, transforms=TRANSFORMS, hidden=HIDDEN, preprocess=None)
    model = {"maf": lambda: MAF(features, **kw), "realnvp": lambda: RealNVP(features, **kw),
             "nsf": lambda: NSF(features, bins=BINS, tail_bound=BOUND, **kw),
             "nsf_coupling": lambda: NSF(features, bins=BINS, tail_bound=BOUND, coupling=True, **kw)}[family]()
    return Impl("hepgen", model, lambda x, c=None: model.log_prob(x, c, grad=True), model.sample)


def zuko_flow(family: str, features: int = FEATURES, context: int = 0) -> Impl:
    import zuko

    kw = dict(transforms=TRANSFORMS, hidden_features=list(HIDDEN))
    flow = {"maf": lambda: zuko.flows.MAF(features, context, **kw),
            "realnvp": lambda: zuko.flows.RealNVP(features, context, **kw),
            "nsf": lambda: zuko.flows.NSF(features, context, bins=BINS, **kw),
            "nsf_coupling": lambda: zuko.flows.NSF(features, context, bins=BINS, passes=2, **kw)}[family]()
    return Impl("zuko", flow, lambda x: flow().log_prob(x), lambda n: flow().sample((n,)))


class _Net(nn.Module):
    """nflows conditioner net ``f(x, context)``: the [128, 128] ReLU MLP, context concatenated to the input."""

    def __init__(self, inputs: int, outputs: int):
        super().__init__()
        sizes = [inputs, *HIDDEN]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], outputs))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x if context is None else torch.cat([x, context], dim=-1))


def nflows_flow(family: str, features: int = FEATURES, context: int = 0) -> Impl:
    from nflows.distributions import StandardNormal
    from nflows.flows import Flow
    from nflows.transforms import (AffineCouplingTransform, CompositeTransform, MaskedAffineAutoregressiveTransform,
                                   MaskedPiecewiseRationalQuadraticAutoregressiveTransform,
                                   PiecewiseRationalQuadraticCouplingTransform, ReversePermutation)

    c = context or None
    layers: list[nn.Module] = []
    for i in range(TRANSFORMS):
        mask = (torch.arange(features) + i) % 2  # nflows transforms the features where mask > 0
        net = lambda a, b: _Net(a + context, b)  # noqa: E731
        made = dict(hidden_features=HIDDEN[0], context_features=c, num_blocks=len(HIDDEN) - 1,
                    use_residual_blocks=False)
        if family == "maf":
            layers += [MaskedAffineAutoregressiveTransform(features, **made), ReversePermutation(features)]
        elif family == "nsf":
            layers += [MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
                features, num_bins=BINS, tails="linear", tail_bound=BOUND, **made), ReversePermutation(features)]
        elif family == "realnvp":
            layers.append(AffineCouplingTransform(mask, net))
        else:
            layers.append(PiecewiseRationalQuadraticCouplingTransform(mask, net, num_bins=BINS, tails="linear",
                                                                     tail_bound=BOUND))
    flow = Flow(CompositeTransform(layers), StandardNormal([features]))
    if context:
        return Impl("nflows", flow, lambda x, c=None: flow.log_prob(x, context=c),
                    lambda n, c=None: flow.sample(1, context=c).squeeze(1))
    return Impl("nflows", flow, flow.log_prob, flow.sample)


def normflows_flow(family: str, features: int = FEATURES) -> Impl | None:
    if family != "realnvp":
        return None
    import normflows as nf

    flows: list[nn.Module] = []
    for _ in range(TRANSFORMS):
        flows += [nf.flows.AffineCouplingBlock(nf.nets.MLP([features // 2, *HIDDEN, features], init_zeros=True)),
                  nf.flows.Permute(features, mode="swap")]
    model = nf.NormalizingFlow(nf.distributions.DiagGaussian(features, trainable=False), flows)
    return Impl("normflows", model, model.log_prob, lambda n: model.sample(n)[0])


def build(family: str, library: str, seed: int) -> Impl | None:
    torch.manual_seed(seed)
    return {"hepgen": hepgen_flow, "zuko": zuko_flow, "nflows": nflows_flow,
            "normflows": normflows_flow}[library](family)


def adam(module: nn.Module) -> torch.optim.Adam:
    """Adam(lr=1e-3) with the fused kernel, as hepgen's engine uses it on CPU; the same for every library."""
    return torch.optim.Adam(module.parameters(), lr=1e-3, fused=True)


def linear_macs(module: nn.Module) -> int:
    """Σ in·out over the linear layers (masked ones counted dense, as their GEMMs run)."""
    return sum(m.in_features * m.out_features for m in module.modules() if isinstance(m, nn.Linear))


# -------------------------------------------------------------------------------------------------- data
def mixture(n_train: int, n_test: int, seed: int = 0) -> dict[str, np.ndarray | float]:
    """10-D equal-weight mixture of 8 Gaussians (std 0.5, means uniform in [-1.5, 1.5]^10), standardised on the
    training draws; ``shift`` converts standardised log-likelihoods to original units (−Σ log σ)."""
    from hepgen.data.generators.toys import gaussian_mixture, gaussian_mixture_log_prob, gaussian_mixture_means

    means = gaussian_mixture_means(FEATURES, components=8, spread=1.5, layout_seed=0)
    rng = np.random.default_rng(seed)
    train, test = gaussian_mixture(n_train, rng, means), gaussian_mixture(n_test, rng, means)
    mu, sigma = train.mean(0), train.std(0)
    return {"train": ((train - mu) / sigma).astype(np.float32), "test": ((test - mu) / sigma).astype(np.float32),
            "shift": float(-np.log(sigma).sum()), "true_test_ll": float(gaussian_mixture_log_prob(test, means).mean())}


def jets(seed: int = 0) -> dict[str, np.ndarray | float]:
    """Shipped qcd jet features: 11 columns, n_constituents dequantised, split 60/20/20 (train, validation, test),
    standardised on the training split."""
    import h5py

    from hepgen.data.generators.jets import shipped_sample_path

    with h5py.File(shipped_sample_path(), "r") as f:
        x = np.asarray(f["qcd/features"][:], dtype=np.float64)
        columns = [str(c) for c in f["qcd/features"].attrs.get("columns", [])]
    rng = np.random.default_rng(seed)
    if "n_constituents" in columns:
        x[:, columns.index("n_constituents")] += rng.uniform(0.0, 1.0, len(x))
    x = x[rng.permutation(len(x))]
    a, b = int(0.6 * len(x)), int(0.8 * len(x))
    mu, sigma = x[:a].mean(0), x[:a].std(0)
    parts = {k: ((v - mu) / sigma).astype(np.float32) for k, v in (("train", x[:a]), ("val", x[a:b]), ("test", x[b:]))}
    return {**parts, "shift": float(-np.log(sigma).sum()), "columns": columns}


# ---------------------------------------------------------------------------------------------- timing
def gemm_rate(size: int = 2048) -> float:
    """fp32 GEMM rate of one size² × size² matmul, FLOP/s."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    a @ b
    return 2.0 * size**3 / (time.perf_counter() - start)


def interleaved(calls: dict[str, tuple[Callable[[], object], float]], rounds: int, rng: random.Random,
                gemm: list[float]) -> dict[str, list[float]]:
    """calls: name -> (one timed call, items it processes). Rounds in shuffled order; items/s per round.
    A GEMM-rate probe runs once per round into ``gemm``."""
    for f, _ in calls.values():
        f()  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        order = list(calls) + ["__gemm__"]
        rng.shuffle(order)
        for name in order:
            if name == "__gemm__":
                gemm.append(gemm_rate())
                continue
            f, items = calls[name]
            start = time.perf_counter()
            f()
            rates[name].append(items / (time.perf_counter() - start))
    return rates


def summary(values: list[float]) -> dict[str, float | list[float]]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "values": [round(v, 3) for v in values]}


def train_calls(impl: Impl, data: torch.Tensor, steps: int) -> Callable[[], None]:
    opt = adam(impl.module)
    g = torch.Generator().manual_seed(1)

    def run() -> None:
        for _ in range(steps):
            batch = data[torch.randint(len(data), (BATCH,), generator=g)]
            opt.zero_grad(set_to_none=True)
            loss = -impl.log_prob(batch).mean()
            loss.backward()
            opt.step()

    return run


def gemm_chain(n: int, macs_shapes: list[tuple[int, int]], layers: int) -> Callable[[], None]:
    """The bare matrix products of a coupling flow's conditioners: addmm only, same shapes, n rows."""
    weights = [(torch.randn(o, i) * i**-0.5, torch.zeros(o)) for i, o in macs_shapes]
    x = torch.randn(n, macs_shapes[0][0])

    def run() -> None:
        for _ in range(layers):
            h = x
            for w, b in weights:
                h = torch.addmm(b, h, w.t())

    return run


# --------------------------------------------------------------------------------------------- quality
def fit(impl: Impl, train: torch.Tensor, steps: int, batch: int, seed: int) -> float:
    """Adam(1e-3) on seeded batches (the same for every library); returns seconds."""
    opt = adam(impl.module)
    g = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(steps):
        x = train[torch.randint(len(train), (batch,), generator=g)]
        opt.zero_grad(set_to_none=True)
        loss = -impl.log_prob(x).mean()
        loss.backward()
        opt.step()
    return time.perf_counter() - start


@torch.no_grad()
def test_log_prob(impl: Impl, test: torch.Tensor) -> np.ndarray:
    return torch.cat([impl.log_prob(chunk) for chunk in test.split(5000)]).double().numpy()


def paired(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    d = a - b
    return {"mean": float(d.mean()), "se": float(d.std(ddof=1) / math.sqrt(len(d)))}


def quality(families: list[str], libraries: dict[str, list[str]], data: dict, steps: int, seed: int) -> dict:
    train, test = torch.from_numpy(data["train"]), torch.from_numpy(data["test"])
    out: dict = {"data": "10-D Gaussian mixture, 8 components, std 0.5, means in [-1.5, 1.5]^10",
                 "n_train": len(train), "n_test": len(test), "steps": steps, "batch": BATCH,
                 "true_test_ll": data["true_test_ll"], "families": {}}
    for family in families:
        lls, res = {}, {}
        for library in libraries[family]:
            impl = build(family, library, seed)
            seconds = fit(impl, train, steps, BATCH, seed)
            lp = test_log_prob(impl, test) + data["shift"]
            lls[library] = lp
            finite = bool(np.isfinite(lp).all())
            res[library] = {"test_ll": float(lp.mean()) if finite else None,
                            "se": float(lp.std(ddof=1) / math.sqrt(len(lp))) if finite else None,
                            "train_s": round(seconds, 2), "finite": finite}
            print(f"  quality {family:13s} {library:9s} test LL {res[library]['test_ll']}  ({seconds:.1f} s)",
                  flush=True)
        diffs = {f"hepgen-{lib}": paired(lls["hepgen"], lls[lib]) for lib in lls if lib != "hepgen"
                 and np.isfinite(lls[lib]).all() and np.isfinite(lls["hepgen"]).all()}
        out["families"][family] = {"libraries": res, "differences": diffs}
    return out


def jets_quality(steps: int, seeds: int, every: int = 50) -> dict:
    """Same budget for both: ``steps`` Adam steps (batch 256, lr 1e-3 with cosine decay to 0) per seed. 1500 jets
    overfit within the budget, so the model kept is the checkpoint with the best validation log-likelihood
    (evaluated every ``every`` steps); its test log-likelihood is reported per seed (seed = split and
    initialisation), with the difference hepgen − zuko paired per event and averaged over seeds."""
    out: dict = {"data": "shipped jets.h5 qcd/features, n_constituents + U(0,1), standardised; split 60/20/20",
                 "steps": steps, "batch": 256, "lr": "1e-3, cosine to 0", "eval_every": every, "seeds": {}}
    per_seed = []
    for seed in range(seeds):
        data = jets(seed)
        train, val, test = (torch.from_numpy(data[k]) for k in ("train", "val", "test"))
        out.update(columns=data["columns"], n_train=len(train), n_val=len(val), n_test=len(test))
        best_tests, res = {}, {}
        for library, make in (("hepgen", hepgen_flow), ("zuko", zuko_flow)):
            torch.manual_seed(seed)
            impl = make("nsf", train.shape[1])
            opt = adam(impl.module)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
            g = torch.Generator().manual_seed(seed)
            best_val, best_test, best_step = -math.inf, None, 0
            start = time.perf_counter()
            for step in range(1, steps + 1):
                x = train[torch.randint(len(train), (256,), generator=g)]
                opt.zero_grad(set_to_none=True)
                (-impl.log_prob(x).mean()).backward()
                opt.step()
                schedule.step()
                if step % every == 0:
                    v = float(test_log_prob(impl, val).mean()) + data["shift"]
                    if np.isfinite(v) and v > best_val:
                        best_val, best_step = v, step
                        best_test = test_log_prob(impl, test) + data["shift"]
            final = test_log_prob(impl, test) + data["shift"]
            best_tests[library] = best_test
            res[library] = {"test_ll_at_best_val": float(best_test.mean()), "best_val_ll": best_val,
                            "best_step": best_step, "test_ll_final": float(final.mean()),
                            "train_s": round(time.perf_counter() - start, 2)}
            print(f"  jets seed {seed} {library:7s} test LL at best validation {best_test.mean():.4f} "
                  f"(step {best_step}), final {final.mean():.4f}", flush=True)
        diff = paired(best_tests["hepgen"], best_tests["zuko"])
        per_seed.append(diff["mean"])
        out["seeds"][str(seed)] = {"libraries": res, "difference_hepgen_zuko": diff}
    for library in ("hepgen", "zuko"):
        values = [out["seeds"][k]["libraries"][library]["test_ll_at_best_val"] for k in out["seeds"]]
        out[f"{library}_test_ll_mean"] = float(np.mean(values))
    out["difference_hepgen_zuko"] = {
        "mean": float(np.mean(per_seed)),
        "se": float(np.std(per_seed, ddof=1) / math.sqrt(len(per_seed))) if len(per_seed) > 1 else None,
        "per_seed": per_seed}
    return out


# ------------------------------------------------------------------------------------------------ speed
def speed(families: list[str], libraries: dict[str, list[str]], data: torch.Tensor, args, rng: random.Random,
          gemm: list[float]) -> dict:
    out: dict = {}
    for family in families:
        impls = {lib: build(family, lib, args.seed) for lib in libraries[family]}
        macs = {lib: linear_macs(impl.module) for lib, impl in impls.items()}
        fam: dict = {"linear_macs_per_event": macs}
        x_eval = data[: args.n_eval]
        with torch.no_grad():
            calls = {lib: (lambda i=impl: i.log_prob(x_eval), args.n_eval) for lib, impl in impls.items()}
            fam["log_prob_per_s"] = interleaved(calls, args.rounds, rng, gemm)
            calls = {lib: (lambda i=impl: i.sample(args.n_eval), args.n_eval) for lib, impl in impls.items()}
            if family == "realnvp":
                shapes = [(FEATURES // 2, HIDDEN[0]), (HIDDEN[0], HIDDEN[1]), (HIDDEN[1], FEATURES)]
                calls["gemm_chain"] = (gemm_chain(args.n_eval, shapes, TRANSFORMS), args.n_eval)
            fam["sample_per_s"] = interleaved(calls, args.sample_rounds, rng, gemm)
        calls = {lib: (train_calls(impl, data, args.train_block), args.train_block) for lib, impl in impls.items()}
        fam["train_steps_per_s"] = interleaved(calls, args.rounds, rng, gemm)
        for metric in ("train_steps_per_s", "log_prob_per_s", "sample_per_s"):
            fam[metric] = {lib: summary(v) for lib, v in fam[metric].items()}
        out[family] = fam
        print(f"  speed {family}: " + "; ".join(
            f"{m} " + ", ".join(f"{lib} {fam[m][lib]['median']:.4g}" for lib in fam[m])
            for m in ("train_steps_per_s", "log_prob_per_s", "sample_per_s")), flush=True)
    return out


def ratios_and_mfu(result: dict, peak: float) -> None:
    """Ratios hepgen / peer (and / fastest peer) of the medians; model FLOP utilisation against ``peak``."""
    for family, fam in result["speed"].items():
        macs = fam["linear_macs_per_event"]
        for metric in ("train_steps_per_s", "log_prob_per_s", "sample_per_s"):
            m = fam[metric]
            peers = [lib for lib in m if lib not in ("hepgen", "gemm_chain")]
            hep = m["hepgen"]["median"]
            m["ratio"] = {f"hepgen/{lib}": hep / m[lib]["median"] for lib in peers}
            fastest = max(peers, key=lambda lib: m[lib]["median"])
            m["ratio"]["hepgen/fastest_peer"] = hep / m[fastest]["median"]
            m["fastest_peer"] = fastest
            for lib in peers + ["hepgen"]:
                flops = 2.0 * macs[lib] * (3 * BATCH if metric == "train_steps_per_s" else 1)
                if metric == "sample_per_s" and family in ("maf", "nsf"):
                    continue  # autoregressive sampling is sequential: one-pass FLOPs do not describe it
                m[lib]["model_flops_utilisation"] = m[lib]["median"] * flops / peak
        if family == "realnvp":
            s = {lib: v for lib, v in fam["sample_per_s"].items() if isinstance(v, dict) and "median" in v}
            flops = 2.0 * macs["hepgen"]
            bound = peak / flops
            fam["affine_coupling_sampling_bound"] = {
                "flops_per_sample": flops, "gemm_rate_flops": peak, "matrix_product_bound_per_s": bound,
                **{f"{lib}_fraction_of_bound": s[lib]["median"] / bound for lib in s if lib != "gemm_chain"},
                "gemm_chain_fraction_of_bound": s["gemm_chain"]["median"] / bound,
                "hepgen_fraction_of_gemm_chain": s["hepgen"]["median"] / s["gemm_chain"]["median"]}


def goals(result: dict) -> list[dict]:
    out = []
    sp = result["speed"]
    for family in ("maf", "nsf", "nsf_coupling"):
        for metric in ("train_steps_per_s", "log_prob_per_s"):
            if family in sp:
                r = sp[family][metric]["ratio"]["hepgen/fastest_peer"]
                out.append({"goal": f"{family} {metric}: >= 1.5x the faster peer", "value": round(r, 3),
                            "met": r >= 1.5})
    for family in ("nsf", "nsf_coupling"):
        if family in sp:
            r = sp[family]["sample_per_s"]["ratio"]["hepgen/fastest_peer"]
            out.append({"goal": f"{family} sampling: >= 2x the faster peer", "value": round(r, 3), "met": r >= 2.0})
    if "realnvp" in sp:
        f = sp["realnvp"]["affine_coupling_sampling_bound"]["hepgen_fraction_of_bound"]
        out.append({"goal": "affine coupling sampling: >= 80% of the matrix-product bound", "value": round(f, 3),
                    "met": f >= 0.8})
    if "jets" in result:
        d = result["jets"]["difference_hepgen_zuko"]
        out.append({"goal": "jets: hepgen NSF test LL - zuko NSF >= -0.02 nats (same budget, best-validation "
                            "checkpoint, mean over seeds)", "value": round(d["mean"], 4),
                    "se": None if d["se"] is None else round(d["se"], 4), "met": d["mean"] >= -0.02})
    q = result.get("quality", {}).get("families", {})
    for family, fam in q.items():
        for name, d in fam["differences"].items():
            out.append({"goal": f"{family} quality: test LL {name} >= -0.02 nats (same steps)",
                        "value": round(d["mean"], 4), "se": round(d["se"], 4), "met": d["mean"] >= -0.02})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run: fewer rounds, rows and steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7, help="timing rounds (median over rounds)")
    parser.add_argument("--sample-rounds", type=int, default=5)
    parser.add_argument("--n-eval", type=int, default=20000, help="rows per log_prob / sample call")
    parser.add_argument("--train-block", type=int, default=10, help="training steps per timed call")
    parser.add_argument("--steps", type=int, default=1000, help="training steps for the quality comparison")
    parser.add_argument("--jet-steps", type=int, default=800)
    parser.add_argument("--jet-seeds", type=int, default=3)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.sample_rounds, args.n_eval, args.train_block = 3, 3, 5000, 5
        args.steps, args.jet_steps, args.jet_seeds = 200, 200, 2
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rng = random.Random(args.seed)
    libraries = {f: ["hepgen", "zuko", "nflows"] + (["normflows"] if f == "realnvp" else []) for f in FAMILIES}
    data = mixture(100_000, 20_000, args.seed)
    versions = {lib: metadata.version(lib) for lib in ("torch", "zuko", "nflows", "normflows")}
    result: dict = {"config": {"threads": args.threads, "features": FEATURES, "transforms": TRANSFORMS,
                               "hidden": list(HIDDEN), "batch": BATCH, "bins": BINS, "tail_bound": BOUND,
                               "optimizer": "torch.optim.Adam(lr=1e-3, fused=True), every library",
                               "dtype": "float32",
                               "n_eval": args.n_eval, "rounds": args.rounds, "sample_rounds": args.sample_rounds,
                               "train_block": args.train_block, "quick": args.quick, "versions": versions,
                               "python": sys.version.split()[0], "machine": platform.processor() or platform.machine(),
                               "command": " ".join(["benchmarks/flows_vs_peers.py", *sys.argv[1:]])}}
    gemm: list[float] = []
    print("speed", flush=True)
    result["speed"] = speed(args.families, libraries, torch.from_numpy(data["train"]), args, rng, gemm)
    peak = statistics.median(gemm)
    result["gemm"] = {"size": 2048, "median_flops": peak, "values_gflops": [round(g / 1e9, 1) for g in gemm]}
    ratios_and_mfu(result, peak)
    if not args.skip_quality:
        print("quality", flush=True)
        result["quality"] = quality(args.families, libraries, data, args.steps, args.seed)
        result["jets"] = jets_quality(args.jet_steps, args.jet_seeds)
    result["goals"] = goals(result)
    result["elapsed_s"] = round(time.perf_counter() - start, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    for g in result["goals"]:
        print(f"  {'MET ' if g['met'] else 'NOT '} {g['goal']}: {g['value']}")
    print(f"wrote {args.out} in {result['elapsed_s']} s")


if __name__ == "__main__":
    main()
