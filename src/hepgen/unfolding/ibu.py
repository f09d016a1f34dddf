"""Iterative Bayesian unfolding (D'Agostini 1995; pyunfold's convention), binned, one observable at a time.

With the response R_ij = P(reco bin i, reconstructed | truth bin j) (columns sum to the efficiency
eps_j = P(reconstructed and accepted | truth bin j)), a prior p0_j and observed counts n_i with the
fakes removed, one iteration is

    P(j | i) = R_ij p_j / sum_k R_ik p_k,      u_j = (1 / eps_j) sum_i n_i P(j | i),      p_j <- u_j / sum u

started from the simulated truth spectrum (the prior). Efficiency and acceptance are corrected by the
1/eps_j; fakes by scaling each observed reco bin by 1 - f_i, f_i the simulated fake fraction of that
bin (fakes assumed as frequent, per reco bin, as simulated). Values beyond the outer edges fall into
the first/last bin. The result is also given as per-event weights of the simulated truth: event e
in truth bin j gets w_e u_j / g_j (g_j the simulated truth count of bin j), so histogramming the
weighted simulated truth on the same edges reproduces u.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hepgen.errors import ConfigError
from hepgen.metrics.bootstrap import poisson_weights
from hepgen.unfolding.inputs import UnfoldingInputs, bin_index, reco_edges, truth_edges


def ibu(data: np.ndarray, response: np.ndarray, efficiency: np.ndarray, prior: np.ndarray,
        iterations: int = 4, min_efficiency: float = 0.0) -> np.ndarray:
    """Unfolded truth counts (T,) from observed counts ``data: (R,)`` (fakes removed), ``response: (R, T)``
    = P(reco i, reconstructed | truth j), ``efficiency: (T,)`` = column sums of the response, ``prior: (T,)``.

    Truth bins with ``efficiency < min_efficiency`` (outside the acceptance: the data say almost nothing
    about them, and 1/eps would amplify their noise) are not unfolded but extrapolated with the prior:
    u_j = p_j sum_{measured} u / sum_{measured} p. ``min_efficiency=0`` is D'Agostini's (and pyunfold's) IBU."""
    if int(iterations) != iterations or iterations < 1:
        raise ConfigError(f"IBU needs iterations >= 1, got {iterations!r}")
    data, response = np.asarray(data, float), np.asarray(response, float)
    eff = np.asarray(efficiency, float)
    p = np.asarray(prior, float)
    p = p / p.sum()
    u = p * data.sum()
    for _ in range(int(iterations)):
        folded = response @ p                                       # (R,) expected reco share
        posterior = np.divide(response * p[None, :], folded[:, None], out=np.zeros_like(response),
                              where=folded[:, None] > 0)             # P(j | i)
        u = np.divide(data @ posterior, eff, out=np.zeros_like(p), where=eff > 0)
        low = eff < min_efficiency if min_efficiency > 0 else eff <= 0
        if low.any() and (~low).any() and p[~low].sum() > 0:
            u[low] = p[low] * u[~low].sum() / p[~low].sum()
        total = u.sum()
        if not total > 0:
            break
        p = u / total
    return u


@dataclass
class Response:
    """One observable's simulated detector response on fixed edges (see the module doc)."""

    truth_edges: np.ndarray
    reco_edges: np.ndarray
    response: np.ndarray        # (R, T)
    efficiency: np.ndarray      # (T,)
    fake_fraction: np.ndarray   # (R,)
    generated: np.ndarray       # (T,) simulated truth counts (weighted)

    @property
    def prior(self) -> np.ndarray:
        return self.generated / self.generated.sum()


def response(inputs: UnfoldingInputs, j: int, t_edges: np.ndarray, r_edges: np.ndarray,
             sim_weights: np.ndarray | None = None, indices: tuple[np.ndarray, np.ndarray] | None = None) -> Response:
    """The response of observable ``j`` from the simulation (``sim_weights`` replace the inputs' weights;
    ``indices``: the events' truth and reco bin indices, when already computed)."""
    w = inputs.sim_weights if sim_weights is None else sim_weights
    T, R = len(t_edges) - 1, len(r_edges) - 1
    t, r = indices if indices is not None else (bin_index(inputs.truth[:, j], t_edges),
                                                bin_index(inputs.reco[:, j], r_edges))
    real, rec = inputs.pass_truth, inputs.pass_reco
    generated = np.bincount(t[real], weights=w[real], minlength=T)
    both = real & rec
    migration = np.bincount(r[both] * T + t[both], weights=w[both], minlength=R * T).reshape(R, T)
    resp = np.divide(migration, generated[None, :], out=np.zeros_like(migration), where=generated[None, :] > 0)
    reco_all = np.bincount(r[rec], weights=w[rec], minlength=R)
    fakes = np.bincount(r[rec & ~real], weights=w[rec & ~real], minlength=R)
    fake_fraction = np.divide(fakes, reco_all, out=np.zeros(R), where=reco_all > 0)
    return Response(t_edges, r_edges, resp, resp.sum(axis=0), np.clip(fake_fraction, 0.0, 1.0), generated)


def observed_counts(inputs: UnfoldingInputs, j: int, r_edges: np.ndarray,
                    data_weights: np.ndarray | None = None) -> np.ndarray:
    w = inputs.data_weights if data_weights is None else data_weights
    return np.bincount(bin_index(inputs.data[:, j], r_edges), weights=w, minlength=len(r_edges) - 1)


@dataclass
class IBUResult:
    """Per observable: edges, unfolded counts (T,), bootstrap replicas (B, T); per-event weights (n, d) of
    the simulated truth (zero for fakes) and their bootstrap replicas (B, n, d)."""

    edges: list[np.ndarray]
    counts: list[np.ndarray]
    replicas: list[np.ndarray]
    weights: np.ndarray
    replica_weights: np.ndarray


def unfold_ibu(inputs: UnfoldingInputs, bins: int = 20, iterations: int = 4, bootstrap: int = 20,
               seed: int = 0, min_efficiency: float = 0.05) -> IBUResult:
    """IBU of every observable; ``bootstrap`` replicas resample data and simulation (Poisson(1) weights)."""
    t_edges, r_edges = truth_edges(inputs, bins), reco_edges(inputs, bins)
    n, d = inputs.truth.shape
    rng = np.random.default_rng(seed)
    factors = list(zip(poisson_weights(n, bootstrap, rng), poisson_weights(len(inputs.data), bootstrap, rng)))

    index = [(bin_index(inputs.truth[:, j], t_edges[j]), bin_index(inputs.reco[:, j], r_edges[j])) for j in range(d)]
    data_index = [bin_index(inputs.data[:, j], r_edges[j]) for j in range(d)]

    def one(j: int, ws: np.ndarray, wd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        resp = response(inputs, j, t_edges[j], r_edges[j], ws, indices=index[j])
        observed = np.bincount(data_index[j], weights=wd, minlength=len(r_edges[j]) - 1) * (1.0 - resp.fake_fraction)
        u = ibu(observed, resp.response, resp.efficiency, resp.prior, iterations, min_efficiency)
        scale = np.divide(u, resp.generated, out=np.zeros_like(u), where=resp.generated > 0)
        t = index[j][0]
        # per-event weights of the nominal simulated truth (a replica reweights the nominal sample)
        return u, np.where(inputs.pass_truth, scale[t] * inputs.sim_weights, 0.0)

    counts, reps = [], []
    weights = np.zeros((n, d))
    replica_weights = np.zeros((len(factors), n, d))
    for j in range(d):
        u, weights[:, j] = one(j, inputs.sim_weights, inputs.data_weights)
        counts.append(u)
        rep = []
        for b, (fs, fd) in enumerate(factors):
            ub, replica_weights[b, :, j] = one(j, inputs.sim_weights * fs, inputs.data_weights * fd)
            rep.append(ub)
        reps.append(np.array(rep).reshape(len(factors), len(u)))
    return IBUResult(t_edges, counts, reps, weights, replica_weights)
