"""Flow-based MCMC against HMC for 2-D lattice φ⁴ on the line of constant physics, L = 6 … 16 (issue 21).

The study of Albergo, Kanwar & Shanahan, PRD 100 (2019) 034515, in one resumable run. Per lattice (m² = −4;
λ = 6.975, 6.008, 5.550, 5.276, 5.113 for L = 6, 8, 10, 12, 14, where m_p·L ≈ 4; L = 16's λ chosen here by an
HMC scan so that m_p·16 = 4, and recorded):

* a :class:`hepgen.lattice.Phi4Flow` trained by reverse KL through the engine, in stages whose batch size grows
  (256 → 1024 → 4096 by default, learning rate falling, cosine within each stage); each stage starts from the
  previous one's weights and the first stage of L from the final flow of the previous L (``init_from``: the
  conditioners are convolutions, independent of L); every epoch the Kish ESS of 2048 fresh proposals is logged
  (``val_ess``), each stage keeps its epoch of highest ESS (``monitor="val_ess"``) and L's flow is the best of
  them over all stages;
* an independence Metropolis–Hastings chain of its (Z₂-symmetrised) proposals, drawn in blocks (memory flat in
  the chain's length);
* HMC in the same run (:mod:`hepgen.data.generators.phi4`'s leapfrog and Hamiltonian; 4 chains vectorised,
  trajectory length τ = 1, step size jittered ±20 % per trajectory, the number of leapfrog steps tuned on pilot
  runs to the fewest giving acceptance ≥ 0.8).

Reported per L: acceptance; τ_int (Sokal's window) of |M|, of the signed M (tunnelling) and of S, per proposal
for the flow and per trajectory for HMC; the CPU cost per independent configuration (cost per step × τ_int of
|M| and of M), for the flow without training and with its training amortised over 10⁶ configurations (shown
separately), and each as a ratio to HMC's; ⟨|M|⟩, χ₂, the Ising energy and the pole mass of both chains with
jackknife errors and their pulls. Figures: acceptance and τ_int against L for both samplers, the cost ratios,
and the training curves (ESS per draw against training step).

    python benchmarks/lattice_mcmc.py --quick           # L = 6, 8, tiny training, ≤ 60 s: proves the pipeline
    python benchmarks/lattice_mcmc.py                   # the full study (see the estimate below)
    python benchmarks/lattice_mcmc.py --resume          # continue an interrupted study where it stopped
    python benchmarks/lattice_mcmc.py --resume --remeasure 6 8 10   # finished L's chains again, today's code
    python benchmarks/lattice_mcmc.py --ship 12         # then: ship the L = 12 flow as pretrained:phi4-L12

Resumable: each L's stages are run directories under benchmarks/data/lattice_mcmc/L<L>/ (checkpoints every epoch,
the engine's --resume), and each finished L leaves its result there (result.json), which --resume takes as is.

Speed of a training step (measured 2026-12-07, one thread, Phi4Flow 8 layers of (16, 16) channels, L = 8, batch
256, torch 2.13 CPU, on a machine shared with other work, load 2-8):
    before (main at 4f5b098): 120 ms per step. torch.profiler over 10 steps: convolution backward 39 %, convolution
        forward 19 %, copies 17 % and fills 5 % (mostly Conv2d's circular padding: slices, copies, their backward),
        the rest elementwise and Adam; the action with its gradient (float64 NumPy inside an autograd Function)
        2.66 ms per step, 2 %.
    after: 105-110 ms per step. The action in batched float64 torch with its autograd gradient: 0.59 ms (4.5x);
        periodic padding by concatenation instead of Conv2d's circular mode: 118.5 → 109.8 ms per step in an
        interleaved A/B in one process. The step is now convolution-bound (forward and backward ~70 %): its cost
        grows as batch × L² × layers × channels²; the remaining lever is fewer or narrower layers, not the action.
    page faults (found 2026-12-07 at L = 12, spline couplings): a step of batch 4096 took 16.2 s, with 3.7 million
        page faults per step: its activations (4096 × 16 channels × 144 sites × 4 bytes ≈ 38 MB) exceed glibc's
        32 MiB cap on its dynamic mmap threshold, so every one was mapped and zeroed afresh. With glibc keeping
        freed memory (hepgen.memory, which this benchmark turns on through _machine) 5.9 s, about batch 1024's cost
        × 4; batch 1024 itself gains nothing (1.46 against 1.51 s; benchmarks/malloc_pagefaults.py). The proposals
        gained 1.3-2x from the same cause (hepgen.lattice.mcmc).
        L = 6-10 were trained before the fix (at L = 10 the batch-4096 stage took 4.6 s per step against 4 × 1.04 s
        at batch 1024: ~10 % lost); their chains were run again
        after it (--remeasure), so every L's sampling costs compare.

Spline couplings (``--kind spline``, the default since 2026-12-07) with Z₂-symmetrised proposals. The first study
ran affine Z₂-equivariant couplings (odd shifts and even scales make q(−φ) = q(φ), so a proposal takes one pass
through the flow instead of two; at L = 6, 240 steps of batch 256, their ESS per draw after each 60 steps was 0.016,
0.047, 0.059, 0.057 against 0.013, 0.022, 0.039, 0.029 for plain affine ones). Its L = 6, 8, 10 (acceptance 0.56,
0.37, 0.28; benchmarks/results/lattice_mcmc_affine.json) showed the affine flow saturating: at L = 10 the ESS per draw
reached 0.13-0.17 in the first stage (warm-started from L = 8) and the batch-1024 and batch-4096 stages, 1760 CPU-s,
added nothing. A probe at L = 10 from scratch (8 layers, 600 steps of batch 256, lr 2e-3 cosine, seed 0, ESS of 2048
draws after each 100 steps, one thread; /work/probe at the time, numbers here):

    ================================  ==========================================  =======
    couplings                         ESS per draw after 100 … 600 steps          CPU s
    ================================  ==========================================  =======
    affine, equivariant, (16, 16)     0.002 0.004 0.014 0.019 0.021 0.024         150
    affine, equivariant, (32, 32)     0.005 0.004 0.011 0.029 0.031 0.023         323
    spline (8 bins), Z₂-sym., (16, 16) 0.032 0.081 0.096 0.102 0.110 0.104        153
    ================================  ==========================================  =======

Splines learn 4.6x the ESS at the same training cost; a wider affine conditioner does not help. Their proposal needs
q(−φ) (a second pass), which doubles the sampling part of the budget below. ``--kind affine`` (with the equivariant
couplings) reproduces the first study.

Estimated CPU time of the full default study (one thread, measured at load ~8 on this machine, 8 layers of (16, 16)):
a training step costs 5.8-7.8 µs per site and draw (L = 16 batch 256: 382 ms; L = 8 batch 1024: 509 ms), a
Z₂-symmetrised proposal 7.8 µs per site (3.7 without the sign symmetrisation, which needs q(−φ): a second pass),
an HMC trajectory 0.15-0.2 ms per chain at L = 6-8 (8 leapfrog steps). With Σ L² = 796 sites over L = 6 … 16:
    training   1500 × 256 + 1000 × 1024 + 200 × 4096 = 2.2 M draws per L  → 2.2e6 × 796 × 8.5 µs ≈ 4.1 h
               (6.5 µs per site and draw for plain couplings, +30 % equivariant)
    sampling   5·10⁵ proposals per L (spline, Z₂-symmetrised: two passes)    → 5e5 × 796 × 7.8 µs   ≈ 0.9 h
    HMC        10⁶ trajectories per L (4 chains), pilots, L = 16's λ scan (3 × 2·10⁵)               ≈ 0.5 h
    ESS       2048 draws per 100 steps: 2.4 % of the draws, forward only                              ≈ 0.05 h
    total ≈ 5.5 CPU-hours (the issue's budget: 6). The quick mode: 21 CPU-s (L = 6, 8). Measured in the affine
    study at load ~2: training 761, 1344, 2093 CPU-s at L = 6, 8, 10 (~L², so ~4.6 h for all six lattices).
The costs per independent configuration amortise the training over 10⁶ configurations whatever the chain's length.
Warm start, measured: a fresh L = 8 flow has ESS 0.0005 per draw (KL − log Z = 1067); started from
pretrained:phi4-L6 (an L = 6 flow of 700 steps) it has 0.024 (KL − log Z = −13.0) before any step, and 0.043 → 0.067
over its first 300 steps at batch 256 (the probe's ESS: 2048 draws). At L = 12 the L = 6 flow starts at −34.4.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import Meter  # noqa: E402

import hepgen  # noqa: E402
from hepgen.data.generators import phi4  # noqa: E402
from hepgen.files import atomic_write_text  # noqa: E402
from hepgen.lattice import Phi4Flow, jackknife, observables, tau_int  # noqa: E402
from hepgen.lattice.mcmc import propose  # noqa: E402
from hepgen.metrics.sampling import independence_metropolis  # noqa: E402
from hepgen.nn.rng import seeded  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
DATA = ROOT / "benchmarks" / "data"
M2 = -4.0
LAMBDAS = {6: 6.975, 8: 6.008, 10: 5.550, 12: 5.276, 14: 5.113}
OBS = ("abs_magnetisation", "chi2", "ising_energy", "pole_mass")
AMORTISED = 1_000_000
HMC_TAU = 1.0
HMC_JITTER = 0.2
HMC_STEPS = (3, 4, 5, 6, 8, 10, 12, 14, 16, 20, 24, 32)


def write_json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(value, indent=1, default=float) + "\n")


def blocks_for(n: int, tau: float, most: int = 20) -> int:
    """Jackknife blocks of at least 5 τ_int (2 … most)."""
    if not np.isfinite(tau):
        return 2
    return int(np.clip(n // max(1.0, 5.0 * tau), 2, most))


# -- the flow ------------------------------------------------------------------------------------------------
class TimedFlow(Phi4Flow):
    """Phi4Flow that adds the CPU time of each epoch (training and its ESS measurement) to a file beside the run,
    so that an interrupted and resumed stage still counts all its CPU time."""

    clock: Path | None = None

    def on_fit_start(self, events):
        super().on_fit_start(events)
        self._t = time.process_time()

    def on_epoch_start(self, epoch: int) -> None:
        super().on_epoch_start(epoch)
        self._tick()

    def on_fit_end(self, events):
        self._tick()
        super().on_fit_end(events)

    def _tick(self) -> None:
        now = time.process_time()
        if self.clock is not None:
            spent = json.loads(self.clock.read_text())["cpu_s"] if self.clock.is_file() else 0.0
            write_json(self.clock, {"cpu_s": spent + now - self._t})
        self._t = now


def parse_stages(text: str) -> list[tuple[int, int, float]]:
    """"steps:batch:lr,..." -> [(steps, batch, lr)]."""
    out = []
    for part in text.split(","):
        steps, batch, lr = part.split(":")
        out.append((int(steps), int(batch), float(lr)))
    return out


def train(L: int, lam: float, start_from: Path | None, args: argparse.Namespace, folder: Path) -> tuple[Phi4Flow, dict]:
    """The stages of L's training (resumed where a run directory holds checkpoints); returns the final flow (the
    best-ESS epoch over all stages: each stage keeps its best epoch, the best stage wins) and the training record."""
    record = {"stages": [], "initialised_from": str(start_from) if start_from else None}
    previous = start_from
    curve, steps_done = [], 0
    model = None
    for k, (steps, batch, lr) in enumerate(parse_stages(args.stages)):
        run = folder / f"stage{k}"
        clock = folder / f"stage{k}.cpu.json"
        epochs = max(1, steps // args.steps_per_epoch)
        done = folder / f"stage{k}.done.json"
        if done.is_file():  # finished earlier: its best epoch, as saved
            model = hepgen.load(run)
        else:
            model = TimedFlow(L=L, m2=M2, lam=lam, layers=args.layers, channels=tuple(args.channels), kind=args.kind,
                              bins=args.bins, ess_draws=args.ess_draws,
                              equivariant=args.equivariant and args.kind == "affine",
                              init_from=str(previous) if previous is not None else None)
            model.clock = clock
            resume = (run / "checkpoints" / "last.pt").is_file()
            model.fit(None, steps_per_epoch=args.steps_per_epoch, epochs=epochs, batch_size=batch, lr=lr,
                      scheduler="cosine", seed=args.seed + k, quiet=True, run_dir=run, resume=resume,
                      monitor="val_ess")
            write_json(done, {"finished": True})
        history = _read_metrics(run / "metrics.csv")
        best = max(history, key=lambda r: r.get("val_ess", -1.0))
        for row in history:
            curve.append({"step": steps_done + int(row["epoch"]) * args.steps_per_epoch, "ess": row.get("val_ess"),
                          "kl": row.get("val_kl"), "batch": batch})
        steps_done += epochs * args.steps_per_epoch
        cpu = json.loads(clock.read_text())["cpu_s"] if clock.is_file() else float("nan")
        record["stages"].append({"steps": epochs * args.steps_per_epoch, "batch_size": batch, "lr": lr,
                                 "epochs": epochs, "best_epoch": int(best["epoch"]), "best_ess": best.get("val_ess"),
                                 "cpu_s": cpu, "run": str(run)})
        previous = run
    record["cpu_s"] = sum(s["cpu_s"] for s in record["stages"])
    record["steps"] = steps_done
    record["curve"] = curve
    # the flow of the stage whose best epoch had the highest ESS (the same seeded draws measure every epoch)
    best = max(record["stages"], key=lambda s: s["best_ess"] if s["best_ess"] is not None else -1.0)
    record["final_run"] = best["run"]
    if best["run"] != str(previous):
        model = hepgen.load(best["run"])
    return model, record


def _read_metrics(path: Path) -> list[dict]:
    lines = path.read_text().splitlines()
    keys = lines[0].split(",")
    return [{k: float(v) for k, v in zip(keys, line.split(",")) if v != ""} for line in lines[1:]]


@torch.no_grad()
def flow_chain(model: Phi4Flow, n: int, seed: int, block: int, keep: int) -> dict:
    """An independence MH chain of n proposals drawn in blocks (the state carried across blocks): per step M and S,
    ``keep`` configurations evenly thinned, acceptance, and its CPU seconds."""
    t0 = time.process_time()
    thin = max(1, n // keep)
    mags, acts, kept = [], [], []
    accepted, current = 0, None
    step = 0
    with seeded(seed, model.device):
        for b, start in enumerate(range(0, n, block)):
            phi, log_p, log_q = propose(model, min(block, n - start), batch_size=1024)  # fastest on a CPU
            if current is not None:  # the chain's state before this block leads
                phi = np.concatenate([current[0][None], phi])
                log_p = np.concatenate([[current[1]], log_p])
                log_q = np.concatenate([[current[2]], log_q])
            _, idx = independence_metropolis(log_p, log_q, seed=seed * 100_003 + b)
            if current is not None:
                accepted += int(np.sum(idx[1:] != idx[:-1]))
                idx = idx[1:]
            else:
                accepted += int(np.sum(idx[1:] != idx[:-1]))
            m = phi.reshape(len(phi), -1).mean(1)
            mags.append(m[idx])
            acts.append(-log_p[idx])
            positions = np.arange(step, step + len(idx))
            take = positions % thin == 0
            kept.append(phi[idx[take]].astype(np.float32))
            last = idx[-1]
            current = (phi[last], log_p[last], log_q[last])
            step += len(idx)
    cpu = time.process_time() - t0
    mag, act = np.concatenate(mags), np.concatenate(acts)
    return {"magnetisation": mag, "action": act, "configs": np.concatenate(kept), "thin": thin,
            "acceptance": accepted / (n - 1), "cpu_s": cpu}


# -- HMC -------------------------------------------------------------------------------------------------------
def hmc_chains(L: int, lam: float, trajectories: int, steps: int, seed: int, therm: int = 200, chains: int = 4,
               keep: int = 0) -> dict:
    """``chains`` HMC chains side by side (numpy, the generator's leapfrog and Hamiltonian): per trajectory M and S
    (trajectories, chains), ``keep`` configurations per chain evenly thinned (chain 0's first), acceptance, CPU s."""
    rng = np.random.default_rng(seed)
    per_chain = max(1, trajectories // chains)
    thin = max(1, per_chain // keep) if keep else 0
    phi = 0.1 * rng.standard_normal((chains, L, L))
    mags = np.empty((per_chain, chains))
    acts = np.empty((per_chain, chains))
    kept = []
    accepted = 0
    t0 = time.process_time()
    for t in range(therm + per_chain):
        pi = rng.standard_normal(phi.shape)
        eps = HMC_TAU / steps * (1.0 + HMC_JITTER * (2.0 * rng.random(chains) - 1.0))
        with np.errstate(over="ignore", invalid="ignore"):
            new_phi, new_pi = phi4.leapfrog(phi, pi, M2, lam, eps[:, None, None], steps)
            dh = phi4.hamiltonian(new_phi, new_pi, M2, lam) - phi4.hamiltonian(phi, pi, M2, lam)
        accept = np.isfinite(dh) & (np.log(rng.random(chains)) < -np.nan_to_num(dh, nan=np.inf))
        phi = np.where(accept[:, None, None], new_phi, phi)
        i = t - therm
        if i >= 0:
            accepted += int(accept.sum())
            mags[i] = phi.reshape(chains, -1).mean(1)
            acts[i] = phi4.action(phi, M2, lam)
            if thin and i % thin == 0:
                kept.append(phi.copy())
    cpu = time.process_time() - t0
    configs = np.stack(kept, axis=1).reshape(-1, L, L) if kept else np.empty((0, L, L))  # chain by chain
    return {"magnetisation": mags, "action": acts, "configs": configs, "acceptance": accepted / (per_chain * chains),
            "cpu_s": cpu, "per_chain": per_chain, "chains": chains, "thin": thin,
            "cpu_per_trajectory_s": cpu / ((therm + per_chain) * chains)}


def tune_hmc(L: int, lam: float, seed: int, pilot: int) -> tuple[int, list[dict]]:
    """The fewest leapfrog steps (trajectory length 1) with acceptance ≥ 0.8 on pilot runs."""
    tried = []
    for steps in HMC_STEPS:
        r = hmc_chains(L, lam, pilot, steps, seed, therm=100)
        tried.append({"steps": steps, "acceptance": r["acceptance"]})
        if r["acceptance"] >= 0.8:
            return steps, tried
    return HMC_STEPS[-1], tried


def pole_mass_L(configs: np.ndarray) -> tuple[float, float]:
    (value, error) = jackknife(observables, configs.astype(float), blocks=20)["pole_mass"]
    L = configs.shape[-1]
    return value * L, error * L


def choose_lambda_16(args: argparse.Namespace, folder: Path) -> dict:
    """λ at L = 16 with m_p·16 = 4: HMC at a few λ around the trend of the paper's values, m_p·L interpolated
    linearly in λ (recorded, and reused on --resume)."""
    path = folder / "lambda.json"
    if args.resume and path.is_file():
        return json.loads(path.read_text())
    if args.lam16 is not None:
        out = {"lam": args.lam16, "how": "given with --lam16"}
        write_json(path, out)
        return out
    points = []
    for lam in args.scan:
        steps, _ = tune_hmc(16, lam, args.seed, args.pilot)
        r = hmc_chains(16, lam, args.scan_trajectories, steps, args.seed, keep=args.keep // 4)
        mpl, err = pole_mass_L(r["configs"])
        points.append({"lam": lam, "mp_L": mpl, "error": err, "trajectories": args.scan_trajectories,
                       "leapfrog_steps": steps, "acceptance": r["acceptance"]})
        print(f"L=16 scan: lam={lam} m_p L={mpl:.3f} ± {err:.3f}", flush=True)
    lams = np.array([p["lam"] for p in points])
    mpl = np.array([p["mp_L"] for p in points])
    w = 1.0 / np.maximum([p["error"] for p in points], 1e-3) ** 2
    slope, intercept = np.polyfit(lams, mpl, 1, w=np.sqrt(w))
    lam = float((4.0 - intercept) / slope) if slope != 0 else float(np.mean(lams))
    out = {"lam": round(lam, 4), "how": "HMC scan: m_p·16 linear in λ through the points, solved for 4",
           "points": points, "fit": {"slope": slope, "intercept": intercept}}
    write_json(path, out)
    return out


# -- one lattice ------------------------------------------------------------------------------------------------
def taus(series: np.ndarray) -> dict:
    return {"abs_m": tau_int(np.abs(series["m"])), "m": tau_int(series["m"]), "action": tau_int(series["s"])}


def run_lattice(L: int, lam: float, start_from: Path | None, args: argparse.Namespace, folder: Path) -> dict:
    model, training = train(L, lam, start_from, args, folder)
    return measure(L, lam, model, training, args)


def measure(L: int, lam: float, model: Phi4Flow, training: dict, args: argparse.Namespace) -> dict:
    """The flow's MH chain and HMC in the same process: acceptance, τ_int, observables and costs of L's row."""
    chain = flow_chain(model, args.proposals, args.seed + 1, args.block, args.keep)
    flow_tau = taus({"m": chain["magnetisation"], "s": chain["action"]})
    flow_obs = jackknife(observables, chain["configs"].astype(float),
                         blocks=blocks_for(len(chain["configs"]), flow_tau["abs_m"] / chain["thin"]))

    steps, tried = tune_hmc(L, lam, args.seed, args.pilot)
    hmc = hmc_chains(L, lam, args.hmc, steps, args.seed + 2, keep=args.keep // 4)
    hmc_tau = taus({"m": hmc["magnetisation"], "s": hmc["action"]})
    hmc_obs = jackknife(observables, hmc["configs"],
                        blocks=4 * blocks_for(hmc["configs"].shape[0] // 4, hmc_tau["abs_m"] / max(hmc["thin"], 1), 5))

    per_proposal = chain["cpu_s"] / args.proposals
    per_trajectory = hmc["cpu_per_trajectory_s"]
    cost = {}
    for key in ("abs_m", "m"):
        hmc_cost = per_trajectory * hmc_tau[key]
        flow_cost = per_proposal * flow_tau[key]
        amortised = (training["cpu_s"] + per_proposal * AMORTISED * flow_tau[key]) / AMORTISED
        cost[key] = {"flow_s": flow_cost, "flow_with_training_amortised_1e6_s": amortised,
                     "training_share_amortised_1e6_s": training["cpu_s"] / AMORTISED, "hmc_s": hmc_cost,
                     "flow_over_hmc": flow_cost / hmc_cost, "flow_with_training_over_hmc": amortised / hmc_cost}
    pulls = {k: (flow_obs[k][0] - hmc_obs[k][0]) / float(np.hypot(flow_obs[k][1], hmc_obs[k][1]) or np.inf)
             for k in OBS}
    return {
        "L": L, "m2": M2, "lam": lam, "hmc_mp_L": [hmc_obs["pole_mass"][0] * L, hmc_obs["pole_mass"][1] * L],
        "flow": {"acceptance": chain["acceptance"], "tau_int": flow_tau, "proposals": args.proposals,
                 "sample_cpu_s": chain["cpu_s"], "cpu_per_proposal_s": per_proposal, "training": training,
                 "observables": {k: list(flow_obs[k]) for k in OBS}, "configs_kept_every": chain["thin"]},
        "hmc": {"acceptance": hmc["acceptance"], "tau_int": hmc_tau, "trajectories": hmc["per_chain"] * hmc["chains"],
                "chains": hmc["chains"], "trajectory_length": HMC_TAU, "leapfrog_steps": steps,
                "step_size": HMC_TAU / steps, "step_jitter": HMC_JITTER, "tuning": tried, "cpu_s": hmc["cpu_s"],
                "cpu_per_trajectory_s": per_trajectory, "observables": {k: list(hmc_obs[k]) for k in OBS}},
        "cost_per_independent_configuration": cost,
        "pulls": pulls,
        "agree_within_3_sigma": bool(all(abs(p) < 3 for p in pulls.values() if np.isfinite(p))),
        "flow_errors_reliable": bool(args.proposals / flow_tau["m"] >= 100),
        "goals": {"flow_tau_abs_m_below_hmc": bool(flow_tau["abs_m"] < hmc_tau["abs_m"]),
                  "flow_cost_m_with_training_below_hmc": bool(cost["m"]["flow_with_training_over_hmc"] < 1)},
    }


def remeasure(row: dict, args: argparse.Namespace) -> dict:
    """``row`` (a finished lattice) with its chains run again on its trained flow: the same seeds give the same
    proposals, acceptances and τ_int (checked), only the CPU costs change; the earlier row's costs are kept."""
    model = hepgen.load(row["flow"]["training"]["final_run"])
    meter = Meter()
    new = measure(row["L"], row["lam"], model, row["flow"]["training"], args)
    for key in ("acceptance",):
        if not np.isclose(new["flow"][key], row["flow"][key]) or not np.isclose(new["hmc"][key], row["hmc"][key]):
            raise SystemExit(f"--remeasure L={row['L']}: the chains differ from the recorded ones ({key}: flow "
                             f"{new['flow'][key]} against {row['flow'][key]}, HMC {new['hmc'][key]} against "
                             f"{row['hmc'][key]}); were the settings changed?")
    new["machine"] = meter.record()
    for key in ("lambda_choice",):
        if key in row:
            new[key] = row[key]
    new["remeasured"] = {"why": "chains run again with the code and allocator settings of the later lattices "
                                "(hepgen.memory: glibc keeps freed memory), so that every L's costs compare",
                         "previous": {"flow_cpu_per_proposal_s": row["flow"]["cpu_per_proposal_s"],
                                      "hmc_cpu_per_trajectory_s": row["hmc"]["cpu_per_trajectory_s"],
                                      "cost_per_independent_configuration": row["cost_per_independent_configuration"],
                                      "machine": row.get("machine")}}
    return new


# -- figures ---------------------------------------------------------------------------------------------------
def figures(rows: list[dict], name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ls = [r["L"] for r in rows]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(12, 3.4), constrained_layout=True)
    a.plot(ls, [r["flow"]["acceptance"] for r in rows], "o-", label="flow MH")
    a.plot(ls, [r["hmc"]["acceptance"] for r in rows], "s--", label="HMC")
    a.set(xlabel="L", ylabel="acceptance", ylim=(0, 1.05))
    for key, label, style in (("abs_m", "|M|", "-"), ("m", "M", ":")):
        b.plot(ls, [r["flow"]["tau_int"][key] for r in rows], "o" + style, color="C0", label=f"flow, {label}")
        b.plot(ls, [r["hmc"]["tau_int"][key] for r in rows], "s" + style, color="C1", label=f"HMC, {label}")
    b.set(xlabel="L", ylabel=r"$\tau_\mathrm{int}$ (proposals / trajectories)", yscale="log")
    for key, label, style in (("abs_m", "|M|", "-"), ("m", "M", ":")):
        c.plot(ls, [r["cost_per_independent_configuration"][key]["flow_over_hmc"] for r in rows], "o" + style,
               color="C0", label=f"{label}, sampling only")
        c.plot(ls, [r["cost_per_independent_configuration"][key]["flow_with_training_over_hmc"] for r in rows],
               "^" + style, color="C2", label=f"{label}, training over $10^6$")
    c.axhline(1.0, color="grey", lw=0.8)
    c.set(xlabel="L", ylabel="CPU per independent config, flow / HMC", yscale="log")
    for ax in (a, b, c):
        ax.legend(frameon=False, fontsize=7)
    fig.savefig(RESULTS / f"{name}.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.4), constrained_layout=True)
    for r in rows:
        curve = [p for p in r["flow"]["training"]["curve"] if p.get("ess") is not None]
        ax.plot([p["step"] for p in curve], [p["ess"] for p in curve], label=f"L = {r['L']}")
    ax.set(xlabel="training step (all stages)", ylabel="Kish ESS per draw", yscale="log")
    ax.legend(frameon=False)
    fig.savefig(RESULTS / f"{name}_training.png", dpi=100)
    plt.close(fig)


def repo_relative(path: str | None) -> str | None:
    """A path under the repository as the repository names it (what the shipped record shows on any machine)."""
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return path


def ship(L: int, args: argparse.Namespace, folder: Path) -> None:
    """Copy the finished L's final flow into the package as pretrained:phi4-L<L>, with its training record."""
    from hepgen.pretrained import ship as ship_model

    result = json.loads((folder / f"L{L}" / "result.json").read_text())
    training = result["flow"]["training"]
    ship_model(f"phi4-L{L}", Path(training["final_run"]), model="phi4-flow",
               description=f"2-D phi^4 flow at L={L}, m2={M2}, lam={result['lam']} (the line of constant physics, "
                           f"m_p L = 4), the flow of benchmarks/lattice_mcmc.py",
               training={"command": f"python benchmarks/lattice_mcmc.py --sizes {' '.join(map(str, args.sizes))}",
                         "steps": training["steps"], "cpu_seconds": round(training["cpu_s"], 1),
                         "stages": [{k: s[k] for k in ("steps", "batch_size", "lr", "best_epoch")}
                                    for s in training["stages"]],
                         "initialised_from": repo_relative(training["initialised_from"])},
               quality={"acceptance": result["flow"]["acceptance"], "tau_int_abs_m": result["flow"]["tau_int"]["abs_m"],
                        "proposals": result["flow"]["proposals"], "seed": args.seed + 1,
                        "command": f"hepgen sample pretrained:phi4-L{L} -n {result['flow']['proposals']} --mcmc "
                                   f"--seed {args.seed + 1} -o chain.h5"})
    print(f"shipped pretrained:phi4-L{L}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="L = 6, 8 with tiny training and short chains (≤ 60 s)")
    parser.add_argument("--resume", action="store_true", help="continue: finished lattices are read back, a stage "
                                                               "with checkpoints resumes")
    parser.add_argument("--sizes", type=int, nargs="+", default=[6, 8, 10, 12, 14, 16])
    parser.add_argument("--stages", default="1500:256:2e-3,1000:1024:1e-3,200:4096:5e-4",
                        help="training stages steps:batch:lr, comma separated (batch grows, lr falls)")
    parser.add_argument("--steps-per-epoch", type=int, default=100,
                        help="steps between ESS measurements (at L = 16, batch 256 the 2048 draws cost ~10 %% of an epoch)")
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--channels", type=int, nargs="+", default=[16, 16])
    parser.add_argument("--kind", default="spline", choices=["affine", "spline"],
                        help="couplings (spline: Z2-symmetrised proposals; affine: Z2-equivariant unless "
                             "--no-equivariant); see the module doc for the probe behind the default")
    parser.add_argument("--no-equivariant", dest="equivariant", action="store_false",
                        help="plain couplings with Z2-symmetrised proposals instead of Z2-equivariant couplings")
    parser.add_argument("--bins", type=int, default=8)
    parser.add_argument("--ess-draws", type=int, default=2048, help="proposals per epoch for the ESS (monitor)")
    parser.add_argument("--no-warm-start", dest="warm_start", action="store_false",
                        help="train every L from scratch instead of from the previous L's flow")
    parser.add_argument("--proposals", type=int, default=500_000, help="flow MH chain length")
    parser.add_argument("--block", type=int, default=50_000, help="proposals drawn at once")
    parser.add_argument("--keep", type=int, default=20_000, help="configurations kept (thinned) for the observables")
    parser.add_argument("--hmc", type=int, default=1_000_000, help="HMC trajectories (over 4 chains)")
    parser.add_argument("--pilot", type=int, default=800, help="HMC trajectories per tuning pilot")
    parser.add_argument("--lam16", type=float, help="L = 16's λ (skips the HMC scan)")
    parser.add_argument("--scan", type=float, nargs="+", default=[4.95, 5.0, 5.05], help="λ values of the L = 16 scan")
    parser.add_argument("--scan-trajectories", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="results name (default lattice_mcmc, --quick lattice_mcmc_quick)")
    parser.add_argument("--ship", type=int, metavar="L", help="copy the finished L's flow into the package "
                                                              "(pretrained:phi4-L<L>) and stop")
    parser.add_argument("--remeasure", type=int, nargs="+", default=[], metavar="L",
                        help="with --resume: run the finished L's chains (flow and HMC, same seeds, so the same "
                             "chains) again with today's code and machine, keeping its trained flow; the CPU "
                             "costs are replaced, the earlier ones kept under 'remeasured' (once: an L that "
                             "has that record is not measured again)")
    args = parser.parse_args()
    if args.remeasure and not args.resume:
        parser.error("--remeasure needs --resume (it re-runs the chains of finished lattices)")
    if args.quick:  # the reduced scale, where a flag was left at its default
        quick = {"sizes": [6, 8], "stages": "60:128:3e-3,30:512:1e-3", "steps_per_epoch": 15, "layers": 4,
                 "channels": [8, 8], "ess_draws": 512, "proposals": 20_000, "block": 10_000, "keep": 4000,
                 "hmc": 20_000, "pilot": 200, "scan_trajectories": 8000}
        for key, value in quick.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
    name = args.output or ("lattice_mcmc_quick" if args.quick else "lattice_mcmc")
    folder = DATA / name
    if args.ship is not None:
        ship(args.ship, args, folder)
        return
    torch.set_num_threads(1)
    meter = Meter()
    if args.quick and not args.resume and folder.exists():  # the quick study always starts over
        import shutil

        shutil.rmtree(folder)
    if folder.exists() and not args.resume and any(folder.iterdir()):
        parser.error(f"{folder} holds an earlier study: give --resume to continue it, or remove it to start over")
    rows = []
    previous = None
    for L in sorted(args.sizes):
        result_path = folder / f"L{L}" / "result.json"
        if args.resume and result_path.is_file() and L in args.remeasure \
                and "remeasured" not in json.loads(result_path.read_text()):  # once: a resumed study skips it
            rows.append(remeasure(json.loads(result_path.read_text()), args))
            write_json(result_path, rows[-1])
        elif args.resume and result_path.is_file():
            rows.append(json.loads(result_path.read_text()))
        else:
            lam = LAMBDAS.get(L)
            lam_record = None
            if lam is None:
                lam_record = choose_lambda_16(args, folder / f"L{L}") if L == 16 else {"lam": args.lam16}
                lam = lam_record["lam"]
                if lam is None:
                    parser.error(f"no λ for L = {L} on the line of constant physics: give --lam16")
            start = previous if args.warm_start else None
            lattice_meter = Meter()  # this lattice's own load record (a study spans sessions and neighbours)
            row = run_lattice(L, lam, start, args, folder / f"L{L}")
            row["machine"] = lattice_meter.record()
            if lam_record is not None:
                row["lambda_choice"] = lam_record
            write_json(result_path, row)
            rows.append(row)
        previous = Path(rows[-1]["flow"]["training"]["final_run"])
        r = rows[-1]
        print(json.dumps({"L": L, "flow_acceptance": round(r["flow"]["acceptance"], 3),
                          "tau_abs_m flow/hmc": [round(r["flow"]["tau_int"]["abs_m"], 2),
                                                 round(r["hmc"]["tau_int"]["abs_m"], 2)],
                          "tau_m flow/hmc": [round(r["flow"]["tau_int"]["m"], 1), round(r["hmc"]["tau_int"]["m"], 1)],
                          "train_cpu_s": round(r["flow"]["training"]["cpu_s"], 1)}), flush=True)
        meter.sample()
    RESULTS.mkdir(exist_ok=True)
    out = {"benchmark": "lattice_mcmc", "quick": args.quick, "settings": vars(args), "lattices": rows,
           "table": [{"L": r["L"], "lam": r["lam"], "flow_acceptance": r["flow"]["acceptance"],
                      "tau_int_abs_m_flow": r["flow"]["tau_int"]["abs_m"], "tau_int_abs_m_hmc": r["hmc"]["tau_int"]["abs_m"],
                      "tau_int_m_flow": r["flow"]["tau_int"]["m"], "tau_int_m_hmc": r["hmc"]["tau_int"]["m"],
                      "cost_m_flow_with_training_over_hmc":
                          r["cost_per_independent_configuration"]["m"]["flow_with_training_over_hmc"],
                      "cost_abs_m_flow_over_hmc": r["cost_per_independent_configuration"]["abs_m"]["flow_over_hmc"],
                      "training_cpu_s": r["flow"]["training"]["cpu_s"]} for r in rows],
           "machine": {**meter.record(), "threads": 1, "torch": torch.__version__,
                       # per lattice, from the invocation that ran it (None: run before lattices kept a record)
                       "timings_valid_per_lattice": {str(r["L"]): r.get("machine", {}).get("timings_valid")
                                                     for r in rows},
                       "note": "CPU seconds (process_time) on one thread; a resumed study's earlier lattices "
                               "keep the CPU times they recorded, and their load record under lattices[i].machine "
                               "(the lattice's own; a resumed lattice's covers its last invocation)"}}
    write_json(RESULTS / f"{name}.json", out)
    figures(rows, name)
    print(f"wrote {RESULTS / name}.json and .png", flush=True)


if __name__ == "__main__":
    main()
