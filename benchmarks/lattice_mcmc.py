"""Flow-based MCMC for 2-D lattice φ⁴ against HMC (``hepgen data phi4``), in one run.

Per lattice (m² = −4 and λ tuned to m_p L ≈ 4, the ensembles of Albergo, Kanwar & Shanahan 2019:
L = 6, 8, 10, 12, 14 with λ = 6.975, 6.008, 5.550, 5.276, 5.113): a :class:`hepgen.lattice.Phi4Flow`
trained by reverse KL (no data) through the engine, its training curve (KL − log Z and the Kish ESS of
``--monitor`` fresh draws before every epoch), an independence Metropolis–Hastings chain of its
proposals, and HMC chains of the generator (10 leapfrog steps, every trajectory kept). Reported:
acceptance, τ_int of |M| and of S (flow: per proposal; HMC: per trajectory), ESS per configuration
(1/τ_int of |M| for the chains, Kish's for reweighting), ESS per CPU second, ⟨|M|⟩, χ₂, the Ising energy
and the pole mass with jackknife errors (blocks of at least 5 τ_int) and their pull between the two
samplers, and CPU seconds: training, sampling, HMC, and the cost per effectively independent
configuration without training, with it (amortised over this chain) and amortised over 10⁶ proposals,
each also as a ratio to HMC's measured in the same run.

    python benchmarks/lattice_mcmc.py --quick   # L = 6, 8, 12; 8 layers; 300/200/100 steps (~20 min on a loaded core)
    python benchmarks/lattice_mcmc.py           # L = 6 ... 14, 16 layers, 20000 steps each, 10⁶ proposals
    python benchmarks/lattice_mcmc.py --quick --sizes 6 --steps 1000 --output lattice_mcmc_L6_1000

Output: benchmarks/results/lattice_mcmc.json, lattice_mcmc.png (acceptance and τ_int against L for the flow
and HMC) and lattice_mcmc_training.png (training curves).
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

from hepgen.data.generators import phi4
from hepgen.files import atomic_write_text
from hepgen.lattice import Phi4Flow, jackknife, observables, tau_int
from hepgen.metrics.sampling import effective_sample_size_from_log_weights

RESULTS = Path(__file__).with_name("results")
LAMBDAS = {6: 6.975, 8: 6.008, 10: 5.550, 12: 5.276, 14: 5.113}
OBS = ("abs_magnetisation", "chi2", "ising_energy", "pole_mass")


class MonitoredFlow(Phi4Flow):
    """Phi4Flow that measures KL − log Z and the Kish ESS of ``monitor`` fresh draws before every epoch
    (the torch RNG state restored, so training is the same as without it; its CPU time is kept apart)."""

    monitor = 0

    def on_fit_start(self, events):
        super().on_fit_start(events)
        self.curve_, self.monitor_cpu_, self._t0 = [], 0.0, time.process_time()

    def _measure(self, step: int) -> None:
        t = time.process_time()
        train_cpu = t - self._t0 - self.monitor_cpu_
        state = torch.get_rng_state()
        with torch.no_grad():
            phi, log_q = self.sample_internal(self.monitor)
            log_w = (-self.target.action(phi) - log_q).double().numpy()
        torch.set_rng_state(state)
        self.curve_.append({"step": step, "train_cpu_s": train_cpu, "loss": float(-log_w.mean()),
                            "ess": float(effective_sample_size_from_log_weights(log_w))})
        self.monitor_cpu_ += time.process_time() - t

    def on_epoch_start(self, epoch: int) -> None:
        super().on_epoch_start(epoch)
        if self.monitor:
            self._measure((epoch - 1) * self.steps_per_epoch_)


def blocks_for(n: int, tau: float) -> int:
    """Jackknife blocks of at least 5 τ_int (2 … 20)."""
    if not np.isfinite(tau):
        return 2
    return int(np.clip(n // max(1.0, 5.0 * tau), 2, 20))


def run_lattice(L: int, steps: int, args: argparse.Namespace) -> dict:
    lam = LAMBDAS.get(L, 6.0)
    model = MonitoredFlow(L=L, m2=-4.0, lam=lam, layers=args.layers, channels=tuple(args.channels), kind=args.kind)
    model.monitor, model.steps_per_epoch_ = args.monitor, args.steps_per_epoch
    epochs = max(1, steps // args.steps_per_epoch)
    t0 = time.process_time()
    model.fit(None, steps_per_epoch=args.steps_per_epoch, epochs=epochs, batch_size=args.batch_size, lr=args.lr,
              scheduler="cosine", seed=args.seed, quiet=True)
    if args.monitor:
        model._measure(epochs * args.steps_per_epoch)
    train_s = time.process_time() - t0 - model.monitor_cpu_
    t0 = time.process_time()
    chain = model.sample_mcmc(args.proposals, seed=args.seed + 1)
    sample_s = time.process_time() - t0
    flow_tau = float(chain["tau_int"])
    flow_blocks = blocks_for(args.proposals, flow_tau)
    flow_obs = jackknife(observables, chain["configs"].astype(float), blocks=flow_blocks)

    t0 = time.process_time()
    hmc = phi4.generate(args.hmc, seed=args.seed, L=L, m2=-4.0, lam=lam, thin=1, therm=200, chains=4)
    hmc_s = time.process_time() - t0
    per_chain = hmc["configs"].reshape(4, -1, L, L)
    hmc_tau = tau_int(np.abs(per_chain.mean((2, 3))).T)  # (trajectories, chains)
    hmc_tau_s = tau_int(phi4.action(per_chain, -4.0, lam).T)
    # the configurations are the 4 chains one after another: contiguous blocks stay within a chain
    hmc_blocks = int(np.clip(4 * blocks_for(args.hmc // 4, hmc_tau), 4, 20)) // 4 * 4
    hmc_obs = jackknife(observables, hmc["configs"], blocks=hmc_blocks)

    n = args.proposals
    eff_flow, eff_hmc = n / flow_tau, args.hmc / hmc_tau
    hmc_cost = hmc_s / eff_hmc
    flow_cost = sample_s / eff_flow
    flow_cost_1e6 = (sample_s / n * 1e6 + train_s) / (1e6 / flow_tau)
    pulls = {k: (flow_obs[k][0] - hmc_obs[k][0]) / float(np.hypot(flow_obs[k][1], hmc_obs[k][1]) or np.inf)
             for k in OBS}
    return {
        "L": L, "m2": -4.0, "lam": lam,
        "flow": {"acceptance": float(chain["acceptance"]), "tau_int_abs_m": flow_tau,
                 "tau_int_action": float(chain["tau_int_action"]), "tau_int_m": tau_int(chain["magnetisation"]),
                 "ess_per_config": 1.0 / flow_tau,
                 "ess_reweighting_per_proposal": float(chain["ess_reweighting"]),
                 "proposals": n, "train_steps": epochs * args.steps_per_epoch, "train_cpu_s": train_s,
                 "sample_cpu_s": sample_s, "final_loss": model.history_[-1]["train_loss"],
                 "training_curve": getattr(model, "curve_", []),
                 "cost_per_indep_config_s": flow_cost,
                 "cost_per_indep_config_with_training_s": (sample_s + train_s) / eff_flow,
                 "cost_per_indep_config_amortised_1e6_s": flow_cost_1e6,
                 "ess_per_cpu_s": eff_flow / sample_s,
                 "ess_per_cpu_s_with_training_amortised_1e6": 1.0 / flow_cost_1e6,
                 "jackknife_blocks": flow_blocks,
                 "observables": {k: list(flow_obs[k]) for k in OBS}},
        "hmc": {"acceptance": float(hmc["acceptance"]), "tau_int_abs_m": hmc_tau, "tau_int_action": hmc_tau_s,
                "tau_int_m_generator": float(hmc["tau_int"]), "ess_per_config": 1.0 / hmc_tau,
                "trajectories": args.hmc, "chains": 4, "leapfrog_steps": 10, "cpu_s": hmc_s,
                "cost_per_indep_config_s": hmc_cost, "ess_per_cpu_s": eff_hmc / hmc_s,
                "jackknife_blocks": hmc_blocks, "observables": {k: list(hmc_obs[k]) for k in OBS}},
        "flow_over_hmc": {"tau_int_abs_m": flow_tau / hmc_tau,
                          "cost_per_indep_config": flow_cost / hmc_cost,
                          "cost_per_indep_config_amortised_1e6": flow_cost_1e6 / hmc_cost},
        "pulls": pulls,
        "agree_within_3_sigma": bool(all(abs(p) < 3 for p in pulls.values() if np.isfinite(p))),
        # a chain worth fewer than 100 independent configurations gives no trustworthy jackknife error
        "flow_errors_reliable": bool(n / flow_tau >= 100),
        "flow_tau_below_hmc": bool(flow_tau < hmc_tau),
    }


def figures(rows: list[dict], name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ls = [r["L"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2), constrained_layout=True)
    a.plot(ls, [r["flow"]["acceptance"] for r in rows], "o-", label="flow MH")
    a.plot(ls, [r["hmc"]["acceptance"] for r in rows], "s--", label="HMC")
    a.set(xlabel="L", ylabel="acceptance", ylim=(0, 1.05))
    b.plot(ls, [r["flow"]["tau_int_abs_m"] for r in rows], "o-", label="flow (per proposal)")
    short = [r for r in rows if not r.get("flow_errors_reliable", True)]
    if short:  # chains shorter than 100 τ_int: the estimate is a lower bound
        b.plot([r["L"] for r in short], [r["flow"]["tau_int_abs_m"] for r in short], "o", mfc="white", color="C0",
               label=r"flow, chain < 100 $\tau$ (lower bound)")
    b.plot(ls, [r["hmc"]["tau_int_abs_m"] for r in rows], "s--", label="HMC (per trajectory)")
    b.set(xlabel="L", ylabel=r"$\tau_\mathrm{int}$ of $|M|$", yscale="log")
    for ax in (a, b):
        ax.legend(frameon=False)
    fig.savefig(RESULTS / f"{name}.png", dpi=100)
    plt.close(fig)
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2), constrained_layout=True)
    for r in rows:
        curve = r["flow"]["training_curve"]
        if curve:
            steps = [c["step"] for c in curve]
            a.plot(steps[1:], [c["loss"] / r["L"] ** 2 for c in curve[1:]], label=f"L = {r['L']}")  # after step 0
            b.plot(steps, [c["ess"] for c in curve], label=f"L = {r['L']}")
    a.set(xlabel="training step", ylabel=r"(KL $-\log Z$) / $L^2$")
    b.set(xlabel="training step", ylabel="Kish ESS / draw", yscale="log")
    for ax in (a, b):
        ax.legend(frameon=False)
    fig.savefig(RESULTS / f"{name}_training.png", dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="L = 6, 8, 12 with small flows and short training")
    parser.add_argument("--sizes", type=int, nargs="+", default=[6, 8, 10, 12, 14])
    parser.add_argument("--steps", type=int, nargs="+", default=[20_000],
                        help="training steps, one value for every lattice or one per --sizes entry")
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--channels", type=int, nargs="+", default=[16, 16])
    parser.add_argument("--kind", default="affine", choices=["affine", "spline"])
    parser.add_argument("--monitor", type=int, default=1024, help="draws per training-curve point (0: none)")
    parser.add_argument("--proposals", type=int, default=1_000_000)
    parser.add_argument("--hmc", type=int, default=200_000, help="HMC trajectories (over 4 chains)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="lattice_mcmc", help="results name: benchmarks/results/NAME.json, .png")
    args = parser.parse_args()
    if args.quick:  # the reduced scale, where a flag left at its default
        quick = {"sizes": [6, 8, 12], "steps": [300, 200, 100], "steps_per_epoch": 50, "batch_size": 256, "lr": 3e-3,
                 "layers": 8, "channels": [16, 16], "proposals": 20_000, "hmc": 20_000, "monitor": 512}
        for key, value in quick.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
    if len(args.steps) not in (1, len(args.sizes)):
        parser.error(f"--steps takes one value or one per --sizes entry ({len(args.sizes)}), got {len(args.steps)}")
    steps = args.steps * len(args.sizes) if len(args.steps) == 1 else args.steps
    torch.set_num_threads(1)
    rows = []
    for L, n_steps in zip(args.sizes, steps):
        rows.append(run_lattice(L, n_steps, args))
        print(json.dumps({k: v for k, v in rows[-1].items() if k not in ("flow", "hmc")}, indent=1),
              {k: rows[-1]["flow"][k] for k in ("acceptance", "tau_int_abs_m", "train_cpu_s")}, flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = {"benchmark": "lattice_mcmc", "quick": args.quick, "settings": vars(args), "lattices": rows,
           "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": 1,
                       "note": "CPU seconds (process_time), one thread; shared machine"}}
    atomic_write_text(RESULTS / f"{args.output}.json", json.dumps(out, indent=1) + "\n")
    figures(rows, args.output)


if __name__ == "__main__":
    main()
