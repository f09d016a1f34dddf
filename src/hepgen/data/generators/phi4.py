"""Lattice phi^4 field configurations in two dimensions by Hybrid Monte Carlo.

Action (the convention of Albergo, Kanwar and Shanahan, PRD 100 (2019) 034515, and of their 2021
tutorial arXiv:2101.08176), on an L x L periodic lattice in lattice units:

    S[phi] = sum_x [ sum_{mu=1,2} (phi_{x+mu} - phi_x)^2 + m2 phi_x^2 + lam phi_x^4 ]

i.e. kinetic term ``-phi Laplacian phi`` with no factor 1/2, bare mass ``m2`` (negative values give a
double-well potential) and quartic coupling ``lam``. The defaults L = 8, m2 = -4, lam = 8 are the
example point of that tutorial; any (L, m2, lam) can be chosen. The free theory (lam = 0, m2 > 0) is
Gaussian with ``<phi_x^2> = (1/V) sum_p 1 / (2 (p_hat^2 + m2))``, ``p_hat^2 = sum_mu 4 sin^2(p_mu/2)``
(:func:`free_phi_squared`), which the tests use to check the sampler.

Algorithm: HMC with unit-mass momenta, H = sum pi^2 / 2 + S, leapfrog (kick-drift-kick) with
``steps`` steps over a trajectory of length ``tau``, Metropolis accept/reject on dH. The step size of
each trajectory is drawn uniformly in ``(1 +- jitter) tau / steps`` (independently of the field, so
detailed balance holds), which breaks the resonances of fixed-length HMC: a free mode with
``omega tau`` near a multiple of pi would otherwise only flip sign and relax very slowly (Mackenzie
1989). Each of ``chains`` independent chains starts from N(0, 0.1^2) noise, runs ``therm`` thermalisation trajectories,
then keeps every ``thin``-th configuration. Chain i draws from ``SeedSequence(seed).spawn(chains)[i]``,
so the output is the same for any number of ``workers``. Chains are vectorised in numpy.

Outputs: ``configs: (n, L, L)`` (chain 0's configurations first, then chain 1's, ...),
``magnetisation: (n,)`` the site average ``(1/V) sum_x phi_x``, ``action: (n,)``, and 0-d arrays
``acceptance`` (over all post-thermalisation trajectories) and ``tau_int``, the integrated
autocorrelation time of the magnetisation in units of *trajectories*
(:func:`hepgen.metrics.sampling.integrated_autocorrelation_time`: Sokal's automatic window,
convention ``tau = 1 + 2 sum_t rho(t)``, so that N trajectories are worth N / tau independent ones;
infinite if every trajectory was rejected); choose ``thin`` of a few ``tau_int`` for nearly
independent configurations.

Limits: plain HMC suffers critical slowing down near the phase transition and tunnels rarely between
the two vacua in the broken phase on large lattices; ``tau_int`` then grows and, when it is not small
compared with the chain length, is itself underestimated. No Fourier acceleration, no multi-level
integrators.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hepgen.data.generators.shared import check_options, check_range, parallel_map, resolve_workers, split_counts
from hepgen.errors import ConfigError, DataError
from hepgen.options import Option
from hepgen.metrics.sampling import integrated_autocorrelation_time
from hepgen.progress import progress_bar, show_progress

OPTIONS: dict[str, Option] = {
    "L": Option(8, low=2, help="lattice extent (L x L sites, periodic; L >= 2 as for phi4-flow)"),
    "m2": Option(-4.0, help="bare mass squared m2"),
    "lam": Option(8.0, low=0, help="quartic coupling lam >= 0"),
    "tau": Option(1.0, low=0, low_open=True, help="trajectory length (molecular-dynamics time)"),
    "steps": Option(10, low=1, help="leapfrog steps per trajectory (step size tau/steps)"),
    "jitter": Option(0.2, low=0, high=0.9, help="step size drawn uniformly in (1 +- jitter) tau/steps per trajectory"),
    "therm": Option(200, low=0, help="thermalisation trajectories per chain, discarded"),
    "thin": Option(10, low=1, help="keep one configuration every `thin` trajectories"),
    "chains": Option(4, low=1, help="independent Markov chains (vectorised; split over workers)"),
    "workers": Option(None, kind=int, low=-1, help="processes to run the chains on (none: this process; -1: every core)"),
}
OPTION_UNITS: dict[str, str] = {"L": "sites", "m2": "lattice units", "tau": "MD time", "therm": "trajectories",
                                "thin": "trajectories"}


def units(**options: Any) -> dict[str, str]:
    """Units of the outputs: fields and the action in lattice units, tau_int in trajectories."""
    check_options(options, OPTIONS, "phi4")
    return {"configs": "lattice units", "magnetisation": "lattice units", "action": "lattice units",
            "acceptance": "", "tau_int": "trajectories"}


def process(**options: Any) -> str:
    """One line on what was simulated."""
    opts = check_options(options, OPTIONS, "phi4")
    return f"2-D lattice phi^4 by HMC, L={opts['L']}, m2={opts['m2']:g}, lam={opts['lam']:g}"


def action(phi: np.ndarray, m2: float, lam: float) -> np.ndarray:
    """S = sum_x [sum_mu (phi_{x+mu} - phi_x)^2 + m2 phi_x^2 + lam phi_x^4]; ``phi: (..., L, L)`` -> ``(...)``."""
    density = m2 * phi**2 + lam * phi**4
    for axis in (-1, -2):
        density = density + (np.roll(phi, -1, axis=axis) - phi) ** 2
    return density.reshape(*phi.shape[:-2], -1).sum(-1)


def force(phi: np.ndarray, m2: float, lam: float) -> np.ndarray:
    """dS/dphi_x = 2 sum_mu (2 phi_x - phi_{x+mu} - phi_{x-mu}) + 2 m2 phi_x + 4 lam phi_x^3: ``(..., L, L)``."""
    grad = (2.0 * m2 + 8.0) * phi + 4.0 * lam * phi**3
    for axis in (-1, -2):
        grad = grad - 2.0 * (np.roll(phi, -1, axis=axis) + np.roll(phi, 1, axis=axis))
    return grad


def leapfrog(phi: np.ndarray, pi: np.ndarray, m2: float, lam: float, step: float | np.ndarray,
             steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` kick-drift-kick steps of size ``step`` for H = pi^2/2 + S. Returns new (phi, pi).

    ``step`` may be an array broadcasting against ``phi`` (one step size per chain).
    """
    pi = pi - 0.5 * step * force(phi, m2, lam)
    for i in range(steps):
        phi = phi + step * pi
        pi = pi - (step if i < steps - 1 else 0.5 * step) * force(phi, m2, lam)
    return phi, pi


def hamiltonian(phi: np.ndarray, pi: np.ndarray, m2: float, lam: float) -> np.ndarray:
    """H = sum_x pi_x^2 / 2 + S[phi]: ``(..., L, L)`` -> ``(...)``."""
    return 0.5 * (pi**2).reshape(*pi.shape[:-2], -1).sum(-1) + action(phi, m2, lam)


def free_phi_squared(L: int, m2: float) -> float:
    """Exact <phi_x^2> of the free theory (lam = 0, m2 > 0): (1/V) sum_p 1/(2 (p_hat^2 + m2))."""
    p = 2.0 * np.pi * np.arange(L) / L
    p_hat2 = 4.0 * np.sin(p / 2.0) ** 2
    return float(np.mean(1.0 / (2.0 * (p_hat2[:, None] + p_hat2[None, :] + m2))))


def _run_chains(seeds: list[np.random.SeedSequence], counts: list[int], L: int, m2: float, lam: float,
                tau: float, steps: int, jitter: float, therm: int, thin: int,
                progress: bool) -> dict[str, np.ndarray]:
    """Run len(seeds) chains side by side; chain i keeps counts[i] configurations."""
    rngs = [np.random.default_rng(s) for s in seeds]
    chains, step = len(rngs), tau / steps
    total = therm + max(counts) * thin
    phi = 0.1 * np.stack([r.standard_normal((L, L)) for r in rngs])
    configs = np.zeros((chains, max(counts), L, L))
    magnetisation = np.zeros((chains, total - therm))
    accepted = np.zeros(chains)
    needed = np.array(counts) * thin
    for trajectory in progress_bar(total, "phi4 HMC", quiet=not progress, iterable=range(total)):
        pi = np.stack([r.standard_normal((L, L)) for r in rngs])
        eps = step * (1.0 + jitter * (2.0 * np.array([r.random() for r in rngs]) - 1.0))
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging trajectory is rejected
            new_phi, new_pi = leapfrog(phi, pi, m2, lam, eps[:, None, None], steps)
            delta_h = hamiltonian(new_phi, new_pi, m2, lam) - hamiltonian(phi, pi, m2, lam)
        u = np.array([r.random() for r in rngs])
        accept = np.isfinite(delta_h) & (np.log(u) < -np.nan_to_num(delta_h, nan=np.inf))
        phi = np.where(accept[:, None, None], new_phi, phi)
        kept = trajectory - therm
        if kept >= 0:
            accepted += accept & (kept < needed)
            magnetisation[:, kept] = phi.reshape(chains, -1).mean(-1)
            if (kept + 1) % thin == 0:
                configs[:, (kept + 1) // thin - 1] = phi
    if not np.all(np.isfinite(phi)):
        raise ConfigError(f"phi4 HMC diverged (non-finite field) for m2={m2}, lam={lam}, step={step}; "
                          f"use a smaller step (more 'steps' or a shorter 'tau') or lam > 0 when m2 < 0")
    return {"configs": configs, "magnetisation": magnetisation, "accepted": accepted, "counts": counts}


def generate(n: int, seed: int = 0, **options: Any) -> dict[str, np.ndarray]:
    """Draw ``n`` phi^4 configurations by HMC: ``configs: (n, L, L)`` plus observables (module doc)."""
    if int(n) != n or n < 1:
        raise ConfigError(f"data generator 'phi4' needs a positive number of samples; got n={n!r}")
    opts = check_options(options, OPTIONS, "phi4")
    for key in ("L", "steps", "thin", "chains"):
        check_range(opts[key], key, "phi4", 1)
    check_range(opts["L"], "L", "phi4", 2)
    check_range(opts["therm"], "therm", "phi4", 0)
    check_range(opts["lam"], "lam", "phi4", 0.0)
    check_range(opts["m2"], "m2", "phi4")
    check_range(opts["tau"], "tau", "phi4", 0.0, low_open=True)
    check_range(opts["jitter"], "jitter", "phi4", 0.0, 0.9)
    if opts["lam"] == 0.0 and opts["m2"] <= 0.0:
        raise ConfigError(f"options 'm2'={opts['m2']} and 'lam'=0 of data generator 'phi4' give an "
                          f"unbounded action; use m2 > 0 for the free theory or lam > 0")
    chains = min(opts["chains"], n)
    counts = split_counts(n, chains)
    seeds = np.random.SeedSequence(seed).spawn(chains)
    workers = resolve_workers(opts["workers"])
    groups = split_counts(chains, min(workers or 1, chains))
    params = (opts["L"], opts["m2"], opts["lam"], opts["tau"], opts["steps"], opts["jitter"], opts["therm"],
              opts["thin"])
    progress = show_progress() and len(groups) == 1
    tasks, start = [], 0
    for size in groups:
        tasks.append((seeds[start:start + size], counts[start:start + size], *params, progress))
        start += size
    results = parallel_map(_run_chains, tasks, workers, "phi4 chains")

    configs = np.concatenate([r["configs"][i, :k] for r in results
                              for i, k in enumerate(r["counts"])])
    # Acceptance and tau_int over the trajectories each chain needed, so that they too do not depend
    # on how chains were grouped over workers.
    shortest = min(counts) * opts["thin"]
    magnetisation_series = np.concatenate([r["magnetisation"][:, :shortest] for r in results])
    accepted = sum(r["accepted"].sum() for r in results)
    return {
        "configs": configs,
        "magnetisation": configs.mean((-2, -1)),
        "action": action(configs, opts["m2"], opts["lam"]),
        "acceptance": np.asarray(accepted / (n * opts["thin"])),
        "tau_int": np.asarray(_tau_int(magnetisation_series)),
    }


def _tau_int(series: np.ndarray) -> float:
    """tau_int of ``series: (chains, trajectories)``; infinite if the chains never moved."""
    try:
        return integrated_autocorrelation_time(series.T)
    except DataError:  # constant series: every trajectory was rejected
        return float("inf")
