"""Flow-based MCMC for 2-D lattice φ⁴ against HMC (``hepgen data phi4``), in one run.

Per lattice (m² = −4, L = 6 with λ = 6.975 and L = 8 with λ = 6.008, the ensembles of Albergo, Kanwar &
Shanahan 2019): a :class:`hepgen.lattice.Phi4Flow` trained by reverse KL (no data), an independence
Metropolis–Hastings chain of its proposals, and HMC chains of the generator (10 leapfrog steps, every
trajectory kept). Reported: acceptance, τ_int of |M| and of S (flow: per proposal; HMC: per trajectory),
the reweighting ESS per proposal, ⟨|M|⟩, χ₂, the Ising energy and the pole mass with jackknife errors
(20 blocks) and their pull between the two samplers, and CPU seconds: training, sampling, HMC, and the
cost per effectively independent configuration (N/τ_int of |M|) with and without training (training
amortised over the chain's proposals here; over 10⁶ proposals in ``cost_amortised_1e6``).

    python benchmarks/lattice_mcmc.py --quick      # small flows, short chains (minutes on one core)
    python benchmarks/lattice_mcmc.py --sizes 6 8 12 --steps 20000 --proposals 1000000 --hmc 200000

Output: benchmarks/results/lattice_mcmc.json and lattice_mcmc.png (acceptance and τ_int against L).
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

RESULTS = Path(__file__).with_name("results")
LAMBDAS = {6: 6.975, 8: 6.008, 10: 5.550, 12: 5.276, 14: 5.113}
OBS = ("abs_magnetisation", "chi2", "ising_energy", "pole_mass")


def run_lattice(L: int, args: argparse.Namespace) -> dict:
    lam = LAMBDAS.get(L, 6.0)
    model = Phi4Flow(L=L, m2=-4.0, lam=lam, layers=args.layers, channels=tuple(args.channels))
    epochs = max(1, args.steps // args.steps_per_epoch)
    t0 = time.process_time()
    model.fit(None, steps_per_epoch=args.steps_per_epoch, epochs=epochs, batch_size=args.batch_size, lr=args.lr,
              scheduler="cosine", seed=args.seed, quiet=True)
    train_s = time.process_time() - t0
    t0 = time.process_time()
    chain = model.sample_mcmc(args.proposals, seed=args.seed + 1)
    sample_s = time.process_time() - t0
    flow_obs = jackknife(observables, chain["configs"].astype(float), blocks=20)

    t0 = time.process_time()
    hmc = phi4.generate(args.hmc, seed=args.seed, L=L, m2=-4.0, lam=lam, thin=1, therm=200, chains=4)
    hmc_s = time.process_time() - t0
    per_chain = hmc["configs"].reshape(4, -1, L, L)
    hmc_abs_m = np.abs(per_chain.mean((2, 3))).T  # (trajectories, chains)
    hmc_tau = tau_int(hmc_abs_m)
    hmc_tau_s = tau_int(phi4.action(per_chain, -4.0, lam).T)
    # jackknife blocks within each chain: interleave so contiguous blocks stay within one chain's time series
    hmc_obs = jackknife(observables, hmc["configs"], blocks=20)

    flow_tau = float(chain["tau_int"])
    n = args.proposals
    eff_flow = n / flow_tau
    eff_hmc = args.hmc / hmc_tau
    pulls = {k: (flow_obs[k][0] - hmc_obs[k][0]) / float(np.hypot(flow_obs[k][1], hmc_obs[k][1]) or np.inf)
             for k in OBS}
    return {
        "L": L, "m2": -4.0, "lam": lam,
        "flow": {"acceptance": float(chain["acceptance"]), "tau_int_abs_m": flow_tau,
                 "tau_int_action": float(chain["tau_int_action"]), "ess_reweighting": float(chain["ess_reweighting"]),
                 "proposals": n, "train_steps": epochs * args.steps_per_epoch, "train_cpu_s": train_s,
                 "sample_cpu_s": sample_s, "final_loss": model.history_[-1]["train_loss"],
                 "cost_per_indep_config_s": sample_s / eff_flow,
                 "cost_per_indep_config_with_training_s": (sample_s + train_s) / eff_flow,
                 "cost_amortised_1e6_s": (sample_s / n * 1e6 + train_s) / (1e6 / flow_tau),
                 "ess_per_cpu_s": eff_flow / sample_s,
                 "observables": {k: list(flow_obs[k]) for k in OBS}},
        "hmc": {"acceptance": float(hmc["acceptance"]), "tau_int_abs_m": hmc_tau, "tau_int_action": hmc_tau_s,
                "tau_int_m_generator": float(hmc["tau_int"]), "trajectories": args.hmc, "leapfrog_steps": 10,
                "cpu_s": hmc_s, "cost_per_indep_config_s": hmc_s / eff_hmc, "ess_per_cpu_s": eff_hmc / hmc_s,
                "observables": {k: list(hmc_obs[k]) for k in OBS}},
        "pulls": pulls,
        "agree_within_3_sigma": bool(all(abs(p) < 3 for p in pulls.values() if np.isfinite(p))),
    }


def figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ls = [r["L"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2), constrained_layout=True)
    a.plot(ls, [r["flow"]["acceptance"] for r in rows], "o-", label="flow MH")
    a.plot(ls, [r["hmc"]["acceptance"] for r in rows], "s--", label="HMC")
    a.set(xlabel="L", ylabel="acceptance", ylim=(0, 1.05))
    b.plot(ls, [r["flow"]["tau_int_abs_m"] for r in rows], "o-", label="flow (per proposal)")
    b.plot(ls, [r["hmc"]["tau_int_abs_m"] for r in rows], "s--", label="HMC (per trajectory)")
    b.set(xlabel="L", ylabel=r"$\tau_\mathrm{int}$ of $|M|$", yscale="log")
    for ax in (a, b):
        ax.legend(frameon=False)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small flows and short chains")
    parser.add_argument("--sizes", type=int, nargs="+", default=[6, 8])
    parser.add_argument("--steps", type=int, default=20_000, help="training steps")
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--channels", type=int, nargs="+", default=[16, 16])
    parser.add_argument("--proposals", type=int, default=1_000_000)
    parser.add_argument("--hmc", type=int, default=200_000, help="HMC trajectories (over 4 chains)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.steps_per_epoch, args.batch_size, args.lr = 400, 50, 128, 3e-3
        args.layers, args.channels, args.proposals, args.hmc = 8, [8, 8], 20_000, 20_000
    torch.set_num_threads(1)
    rows = []
    for L in args.sizes:
        rows.append(run_lattice(L, args))
        print(json.dumps(rows[-1], indent=1), flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = {"benchmark": "lattice_mcmc", "quick": args.quick, "settings": vars(args), "lattices": rows,
           "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": 1,
                       "note": "CPU seconds (process_time), one thread; shared machine"}}
    atomic_write_text(RESULTS / "lattice_mcmc.json", json.dumps(out, indent=1) + "\n")
    figure(rows, RESULTS / "lattice_mcmc.png")


if __name__ == "__main__":
    main()
