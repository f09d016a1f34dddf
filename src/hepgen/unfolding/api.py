"""``hepgen.unfold(method, sim_truth, sim_reco, data, ...)``: one entry point for the four methods, reading the
user's files, checking them, unfolding, computing the metrics against the data's truth when it is known,
and writing the unfolded output and the report.

Every method's result is a weighted truth-level sample (:class:`UnfoldingResult`): IBU and OmniFold
reweight the simulated truth (IBU one weight column per observable), the flow posterior and the
marginal-likelihood method draw new truth events. Bootstrap replicas of the same form give the bands.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.errors import ConfigError, DataError
from hepgen.options import Option, check_options, convert, excerpt
from hepgen.unfolding.inputs import UnfoldingInputs, check_inputs, check_response, truth_edges

METHODS = ("ibu", "omnifold", "posterior", "marginal")


def _positive(default: float, help: str) -> Option:
    return Option(default, kind=float, low=0, low_open=True, help=help)


def _count(default: int | None, low: int, help: str) -> Option:
    return Option(default, kind=int, low=low, help=help)


_BOOTSTRAP = "replicas for the uncertainty band: 0 (none) or at least 2"
_EFFICIENCY = ("truth regions with an efficiency below this (outside the acceptance) take the prior's shape "
               "scaled to the unfolded total")
_EXTRAPOLATE = Option(True, kind=bool, help="outside the acceptance, weight the prior's events by the unfolded/prior "
                                            "density ratio learned inside and continued across the edge (else the "
                                            "prior's shape there)")
_DEVICE = Option("auto", kind=str, help="where the flows train: auto (the engine's default), cpu, cuda, cuda:N or mps")
_FLOW = {"transforms": _count(4, 1, "spline transforms of each flow"),
         "hidden": Option((64, 64), kind=tuple, item=int, low=1, help="hidden layer widths of each flow"),
         "device": _DEVICE, "extrapolate": _EXTRAPOLATE, "coverage_samples": _count(400, 0, "posterior draws per held-out event for the "
                                                                "coverage check (0: none)")}
#: each method's options (``iterations``, ``bootstrap`` ...) as :class:`hepgen.options.Option` schemas: types,
#: bounds and defaults, checked by :func:`check_method_options` before any data is read; unknown options are
#: refused. ``min_efficiency`` is in [0, 1) for IBU (0: D'Agostini's IBU, every bin unfolded) and in (0, 1)
#: for the flows (their 1/eps(x) weights need eps bounded away from 0).
OPTIONS: dict[str, dict[str, Option]] = {
    "ibu": {"iterations": _count(4, 1, "IBU iterations"), "bootstrap": _count(20, 0, _BOOTSTRAP),
            "min_efficiency": Option(0.05, kind=float, low=0, high=1, high_open=True, help=_EFFICIENCY)},
    "omnifold": {"iterations": _count(3, 1, "OmniFold iterations (step 1 and step 2 each)"),
                 "bootstrap": _count(4, 0, _BOOTSTRAP),
                 "folds": _count(2, 2, "cross-fitting folds of each classifier"),
                 "extrapolate": Option(True, kind=bool, help="step 1b: events that fail reco take the truth-level "
                                                              "expectation of the step-1 pull (a classifier on the "
                                                              "truth of the events that pass), instead of no update")},
    "posterior": {"iterations": _count(1, 1, "prior-removal iterations, at most (1: none)"),
                  "tolerance": Option(0.0, kind=float, low=0, help="stop iterating once the RMS change of the "
                                                                     "simulation's reweighting is below this (0: "
                                                                     "run every iteration)"),
                  "bootstrap": _count(10, 0, _BOOTSTRAP), "epochs": _count(30, 1, "flow training epochs"),
                  "samples": _count(1, 1, "posterior draws per observed event"), **_FLOW,
                  "batch_size": _count(512, 1, "training batch size"), "lr": _positive(2e-3, "learning rate"),
                  "min_efficiency": Option(0.05, kind=float, low=0, high=1, low_open=True, high_open=True,
                                           help=_EFFICIENCY)},
    "marginal": {"bootstrap": _count(3, 0, _BOOTSTRAP),
                 "epochs": _count(30, 1, "epochs of the simulation-only flows (detector model, prior)"),
                 "unfold_epochs": _count(30, 1, "epochs of the marginal-likelihood training"),
                 "proposals": _count(16, 1, "importance-sampling proposals per observed event"),
                 "samples": Option(None, kind=int, low=1, help="draws of the truth flow (none: as many as the "
                                                                "simulated truth)"),
                 **_FLOW, "batch_size": _count(256, 1, "marginal-likelihood batch size"),
                 "lr": _positive(3e-4, "marginal-likelihood learning rate"),
                 "min_efficiency": Option(0.05, kind=float, low=0, high=1, low_open=True, high_open=True,
                                          help=_EFFICIENCY),
                 "posterior_epochs": Option(None, kind=int, low=1, help="epochs of the proposal flow (none: epochs)"),
                 "posterior_batch_size": _count(512, 1, "batch size of the proposal flow, detector model and prior"),
                 "posterior_lr": _positive(2e-3, "learning rate of the proposal flow"),
                 "output": Option("posterior", kind=str, choices=("posterior", "flow"),
                                  help="posterior: the empirical-Bayes posterior of the data; flow: draws of p_theta"),
                 "efficiency": Option("tree", kind=str, choices=("tree", "mlp"),
                                      help="tree: eps(x) of the posterior's boosted-tree classifier in the likelihood "
                                           "and log Z(theta) on the simulated truth reweighted by p_theta / p_prior; "
                                           "mlp: a smooth differentiable MLP eps_psi and log Z by rsample (the old "
                                           "likelihood, biased at sharp acceptance edges)"),
                 "z_samples": _count(1024, 1, "simulated truth events per step in the estimate of log Z(theta)")},
}
#: ``unfold``'s own settings beside the method's options
SETTINGS: dict[str, Option] = {"bins": _count(20, 2, "truth bins per observable"),
                               "seed": _count(0, 0, "seed of every draw (classifiers, flows, bootstrap replicas)")}


def check_method_options(method: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Every option of ``method`` (the given ones converted and checked against :data:`OPTIONS`, the defaults
    for the rest), or a ConfigError naming the option and (an excerpt of) its value. ``None`` stands for the
    default. Runs before any data is read or any model trained."""
    if method not in METHODS:
        raise ConfigError(f"unknown unfolding method {excerpt(method)}; choose one of {', '.join(METHODS)}")
    schema = OPTIONS[method]
    owner = f"unfolding method {method!r}"
    given = {k: v for k, v in options.items() if v is not None or k not in schema or schema[k].default is None}
    opts = check_options(given, schema, owner)
    if opts["bootstrap"] == 1:
        raise ConfigError(f"option 'bootstrap' of {owner} must be 0 (no band) or at least 2 replicas, got 1")
    if "device" in opts:
        from hepgen.train.engine import resolve_device

        try:
            resolve_device(opts["device"])
        except ConfigError as exc:
            raise ConfigError(f"option 'device' of {owner}: {exc}") from None
    return opts

#: how each method treats efficiency < 1, acceptance cuts and fakes (stated in every report; details in the
#: method's module docstring)
HANDLING: dict[str, str] = {
    "ibu": ("efficiency and acceptance: 1/eps_j per truth bin (eps_j = P(pass_reco | truth bin j)); truth bins with "
            "eps_j < min_efficiency (outside the acceptance) take the prior's shape scaled to the measured total; "
            "fakes: each reco bin scaled by 1 - f_i, the simulated fake fraction of that bin"),
    "omnifold": ("efficiency and acceptance: simulated events failing pass_reco sit out step 1 (keeping their weight) "
                 "and receive the data's information through step 2 on their truth; fakes: in step 1 (the data hold "
                 "fakes too), not in step 2, their weight fixed at 1 (the fake rate taken as simulated)"),
    "posterior": ("efficiency and acceptance: each sample x weighted 1/eps(x) (a classifier P(pass_reco | x)); where "
                  "eps(x) < min_efficiency the prior fills in, scaled to the unfolded total; fakes: each observed "
                  "event weighted 1 - P(fake | y) (a classifier on the simulated reco)"),
    "marginal": ("efficiency and acceptance: inside the likelihood, p(y, pass | x) = eps(x) p_phi(y | x) with eps the "
                 "boosted-tree P(pass_reco | x) and log Z(theta) = log E_theta[eps] from the simulated truth reweighted "
                 "by p_theta / p_prior (efficiency=mlp: a smooth MLP eps_psi, Z by rsample); where eps(x) < "
                 "min_efficiency the prior fills in; fakes: each observed event weighted 1 - P(fake | y)"),
}


@dataclass
class UnfoldingResult:
    """``events: (N, d)`` truth-level events and ``weights: (N,)`` (or ``(N, d)``, one column per observable
    for IBU); ``replicas``: bootstrap ``(events, weights)``; ``edges``: truth-level bins per observable;
    ``metrics``: against the data's truth when given (else only what needs no truth)."""

    method: str
    inputs: UnfoldingInputs
    events: np.ndarray
    weights: np.ndarray
    replicas: list[tuple[np.ndarray, np.ndarray]]
    edges: list[np.ndarray]
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return self.inputs.names

    def observable(self, j: int, replica: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(values (N,), weights (N,)) of observable ``j`` (of a bootstrap replica)."""
        events, weights = (self.events, self.weights) if replica is None else self.replicas[replica]
        return events[:, j], weights[:, j] if weights.ndim == 2 else weights

    def histogram(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """(unit-area density, its bootstrap standard deviation) of observable ``j`` on ``edges[j]``."""
        dens = _density(*self.observable(j), self.edges[j])
        reps = np.array([_density(*self.observable(j, b), self.edges[j]) for b in range(len(self.replicas))])
        return dens, (reps.std(axis=0, ddof=1) if len(reps) > 1 else np.zeros_like(dens))

    def write(self, out: str | os.PathLike) -> Path:
        """Write the unfolded output (see :func:`unfold`)."""
        from hepgen.data import io

        arrays: dict[str, np.ndarray] = {}
        if self.method in ("ibu", "omnifold"):
            arrays["truth"] = self.events.astype(np.float64)
            arrays["weights"] = self.weights.astype(np.float64)
        else:
            arrays["events"] = self.events.astype(np.float64)
            arrays["weights"] = self.weights.astype(np.float64)
        if self.method == "ibu":
            for j, name in enumerate(self.names):
                arrays[f"edges_{name}"] = self.edges[j]
                arrays[f"unfolded_{name}"] = self.extra[f"counts_{name}"]
                arrays[f"error_{name}"] = self.extra[f"error_{name}"]
        arrays.update({k: v for k, v in self.extra.items() if not k.startswith(("counts_", "error_"))})
        suffix = Path(str(out).split(":")[0]).suffix.lower()
        if suffix in (".h5", ".hdf5", ".hdf"):
            flat: dict[str, np.ndarray] = {}
            for key, a in arrays.items():
                if key in ("truth", "events") or (key == "weights" and a.ndim == 2):
                    flat.update({f"{key}/{c}": a[:, j] for j, c in enumerate(self.names)})
                else:
                    flat[key] = a
            attrs = {"/": {"method": self.method, "observables": list(self.names)}}
            return io.write(out, flat, attrs=attrs)
        if suffix == ".npz":
            return io.write(out, arrays)
        raise ConfigError(f"unfolded output {out}: write .h5 (recommended) or .npz (several arrays of different "
                          "lengths: edges, counts, events, weights)")


def _density(x: np.ndarray, w: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Unit-area density on ``edges``, values beyond them in the outer bins."""
    from hepgen.metrics.histograms import density_histogram

    return density_histogram(x, edges, w, overflow=True)[0]


# -- reading the user's files ---------------------------------------------------------------------------
def _is_spec(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def _read_table(spec: Any) -> Any:
    """A DATA argument opened once (``hepgen.data.io.read``: every column, their units), or None for an array.
    Finiteness is checked on the columns used (:func:`check_inputs`), not on the others a table may carry."""
    from hepgen.data import io

    return io.read(spec, dtype=np.float64, check_finite=False) if _is_spec(spec) else None


def _flag_or_column(value: Any, table: Any, table_spec: Any, role: str) -> tuple[Any, str | None, str]:
    """(array or None, the column of the table it names (to leave out of the features), its label): a flag or
    weight given as an array, as a column name of ``table`` (read already) or as its own FILE:KEY."""
    from hepgen.data import io
    from hepgen.data.sources import is_column_name

    if value is None or not _is_spec(value):
        return value, None, role
    if is_column_name(value):
        name = str(value).strip()
        if table is None:
            raise ConfigError(f"{role}={excerpt(value)} names a column, but that table is an array; pass the flags as "
                              "an array or FILE:KEY")
        return table.column(name), name, f"column '{name}' of {table_spec}"
    return io.read_column(value), None, str(value)


def _features(spec: Any, table: Any, exclude: list[str | None], role: str, names: list[str] | None = None,
              ref: str | None = None, strict: bool = True) -> tuple[np.ndarray, list[str] | None, str, dict[str, str]]:
    """(events (n, d) float64, column names, label, units) of a table: with ``names`` those columns (a missing
    one is a DataError, or with ``strict=False`` every column but ``exclude``), else every column but ``exclude``."""
    if table is None:
        return np.asarray(spec, dtype=np.float64), None, role, {}
    label = str(spec)
    data, have = table.data, table.columns
    if data.ndim != 2:
        raise DataError(f"{label} holds events of shape {data.shape[1:]}; unfolding needs a table "
                        "(events, observables)")
    if have is None:
        return data, None, label, table.units
    if names is not None:
        missing = [c for c in names if c not in have]
        if missing and strict:
            raise DataError(f"{label} has no column '{missing[0]}' of {ref} (its columns: {', '.join(have)}); "
                            f"the {role} must have the observables of {ref}")
        if not missing:
            return data[:, [have.index(c) for c in names]], list(names), label, table.units
    keep = [c for c in have if c not in exclude]
    return data[:, [have.index(c) for c in keep]], keep, label, table.units


def read_inputs(sim_truth: Any, sim_reco: Any, data: Any, *, pass_truth: Any = None, pass_reco: Any = None,
                sim_weights: Any = None, data_weights: Any = None, data_truth: Any = None,
                pass_data: Any = None, pass_data_truth: Any = None) -> UnfoldingInputs:
    """Arrays or ``path[:key]`` specs -> checked :class:`UnfoldingInputs`.

    Flags and weights are arrays, ``FILE:KEY`` specs or column names: ``pass_reco``, ``sim_weights`` of
    ``sim_reco``; ``pass_truth`` of ``sim_truth``; ``data_weights``, ``pass_data`` of ``data``;
    ``pass_data_truth`` of ``data_truth``. ``data`` (and ``data_truth``) are read by the column names of
    ``sim_reco`` (``sim_truth``) when both are named; a missing column is a DataError naming it.
    ``pass_data`` / ``pass_data_truth`` select the observed events / the data's real truth rows (as
    ``hepgen data smear`` writes them, every row with its flags). Each file argument is opened once."""
    truth_t, reco_t, data_t = _read_table(sim_truth), _read_table(sim_reco), _read_table(data)
    pr, pr_col, pr_lab = _flag_or_column(pass_reco, reco_t, sim_reco, "pass_reco")
    ws, ws_col, ws_lab = _flag_or_column(sim_weights, reco_t, sim_reco, "sim_weights")
    pt, pt_col, pt_lab = _flag_or_column(pass_truth, truth_t, sim_truth, "pass_truth")
    truth, truth_names, truth_lab, t_units = _features(sim_truth, truth_t, [pt_col], "sim_truth")
    # the reco observables by the truth's names when the reco table has them (it may hold flags and more)
    reco, reco_names, reco_lab, units = _features(sim_reco, reco_t, [pr_col, ws_col], "sim_reco", truth_names,
                                                  str(sim_truth), strict=False)
    wd, wd_col, wd_lab = _flag_or_column(data_weights, data_t, data, "data_weights")
    pd, pd_col, pd_lab = _flag_or_column(pass_data, data_t, data, "pass_data")
    d, d_names, data_lab, _ = _features(data, data_t, [wd_col, pd_col], "data", reco_names, reco_lab)
    dt = dt_lab = dt_names = None
    if data_truth is not None:
        dt_t = _read_table(data_truth)
        pdt, pdt_col, _ = _flag_or_column(pass_data_truth, dt_t, data_truth, "pass_data_truth")
        dt, dt_names, dt_lab, _ = _features(data_truth, dt_t, [pdt_col], "data truth", truth_names, truth_lab)
        if pdt is not None:
            dt = dt[_as_flags(pdt, len(dt), str(pass_data_truth))]
    elif pass_data_truth is not None:
        raise ConfigError("pass_data_truth selects rows of data_truth; give data_truth too")
    if pd is not None:
        sel = _as_flags(pd, len(d), pd_lab)
        d = d[sel]
        if wd is not None:
            wd = np.asarray(wd, dtype=np.float64)
            if len(wd) != len(sel):
                raise DataError(f"{wd_lab} has {len(wd)} weights for {len(sel)} rows of {data_lab}")
            wd = wd[sel]
    names = truth_names or reco_names
    units = {**t_units, **units}
    labels = {"sim_truth": truth_lab, "sim_reco": reco_lab, "data": data_lab, "pass_truth": pt_lab,
              "pass_reco": pr_lab, "sim_weights": ws_lab, "data_weights": wd_lab, "data_truth": dt_lab or "data_truth"}
    return check_inputs(truth, reco, d, pass_truth=pt, pass_reco=pr, sim_weights=ws, data_weights=wd,
                        data_truth=dt, names=names, units=units, labels=labels, columns={
                            "sim_truth": truth_names, "sim_reco": reco_names, "data": d_names,
                            "data_truth": dt_names})


def _as_flags(x: Any, n: int, label: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1 or len(a) != n:
        raise DataError(f"{label} must hold one flag per row ({n}); got shape {a.shape}")
    return a.astype(np.float64) > 0.5


# -- the methods ---------------------------------------------------------------------------------------
def run_method(method: str, inputs: UnfoldingInputs, *, bins: int = 20, seed: int = 0,
               quiet: bool = True, cache: dict | None = None, **options: Any) -> UnfoldingResult:
    """Unfold ``inputs`` with ``method`` (one of :data:`METHODS`) and its ``options`` (:data:`OPTIONS`).

    ``cache``: a dict shared between calls that unfold several data sets with the same simulation: the
    flows' simulation-only fits (the posterior p(x | y), the detector model, eps(x), the prior flow) are
    trained once and reused (the marginal method reuses the posterior method's flow as its proposal).
    The options and the inputs are checked (:func:`check_method_options`, :func:`check_response`) before
    anything is trained; the caller's global torch and numpy RNGs are left as they were."""
    from hepgen.metrics.bootstrap import poisson_weights

    opts = check_method_options(method, options)
    bins = convert("bins", bins, SETTINGS["bins"], "unfold")
    seed = convert("seed", seed, SETTINGS["seed"], "unfold")
    check_response(inputs, bins)
    edges = truth_edges(inputs, bins)
    real = inputs.pass_truth
    if method == "ibu":
        from hepgen.unfolding.ibu import unfold_ibu

        r = unfold_ibu(inputs, bins=bins, iterations=opts["iterations"], bootstrap=opts["bootstrap"], seed=seed,
                       min_efficiency=opts["min_efficiency"])
        extra = {}
        for j, name in enumerate(inputs.names):
            extra[f"counts_{name}"] = r.counts[j]
            extra[f"error_{name}"] = (r.replicas[j].std(axis=0, ddof=1) if len(r.replicas[j]) > 1
                                      else np.zeros_like(r.counts[j]))
        reps = [(inputs.truth[real], rw[real]) for rw in r.replica_weights]
        return UnfoldingResult(method, inputs, inputs.truth[real], r.weights[real], reps, r.edges, extra=extra)
    if method == "omnifold":
        from hepgen.unfolding.omnifold import omnifold

        kw = {"iterations": opts["iterations"], "folds": opts["folds"], "extrapolate": opts["extrapolate"]}
        nu = omnifold(inputs, seed=seed, **kw)
        reps = []
        # replicas resample the data and the simulation (Poisson(1) weights on both, as IBU's do), with fresh
        # classifier seeds: the band holds the simulation's statistics and the classifiers' noise too
        sim_factors = poisson_weights(len(inputs.truth), opts["bootstrap"], seed + 18)
        for b, factors in enumerate(poisson_weights(len(inputs.data), opts["bootstrap"], seed + 17)):
            ws = inputs.sim_weights * sim_factors[b]
            nub = omnifold(inputs, seed=seed + 7919 * (b + 1), data_weights=inputs.data_weights * factors,
                           sim_weights=ws, **kw)
            reps.append((inputs.truth[real], (ws * nub)[real]))
        return UnfoldingResult(method, inputs, inputs.truth[real], (inputs.sim_weights * nu)[real], reps, edges,
                               extra={"nu": nu})
    if method == "posterior":
        from hepgen.unfolding.posterior import unfold_posterior

        events, weights, reps, extra = unfold_posterior(inputs, seed=seed, quiet=quiet, cache=cache, **opts)
        return UnfoldingResult(method, inputs, events, weights, reps, edges, extra=extra)
    from hepgen.unfolding.marginal import unfold_marginal

    events, weights, reps, extra = unfold_marginal(inputs, seed=seed, quiet=quiet, cache=cache, **opts)
    return UnfoldingResult(method, inputs, events, weights, reps, edges, extra=extra)


# -- metrics --------------------------------------------------------------------------------------------
def default_pair(names: list[str]) -> tuple[int, int] | None:
    """The 2-D pair of the report: (mass, width) when present, else the first two observables."""
    if len(names) < 2:
        return None
    if "mass" in names and "width" in names:
        return names.index("mass"), names.index("width")
    return 0, 1


def compute_metrics(result: UnfoldingResult, pair: tuple[int, int] | None = None, pair_bins: int = 8) -> dict:
    """χ²/ndf (unit-area histograms on the result's edges, bootstrap variance of the result plus the
    truth's sumw2) and W1 (with its bootstrap error) per observable against the data's true truth, the
    prior's values for reference; a 2-D χ²/ndf and the change of the correlation coefficient of ``pair``
    (for IBU, which unfolds one observable at a time, the simulated truth under the first observable's
    weights: ``weights_of``). The 2-D variance is the bootstrap variance, plus, for IBU, whose replicas
    reweight the fixed simulated sample, that sample's sumw2 (OmniFold's replicas resample the simulation)."""
    from hepgen.metrics.two_sample import wasserstein_1d

    inp = result.inputs
    out: dict[str, Any] = {"method": result.method, "has_truth": inp.data_truth is not None, "observables": {},
                           "n_sim": len(inp.truth), "n_data": len(inp.data), "bootstrap": len(result.replicas)}
    if inp.data_truth is None:
        return out
    t, tw = inp.data_truth, inp.data_truth_weights
    prior_x, prior_w = inp.truth[inp.pass_truth], inp.sim_weights[inp.pass_truth]
    for j, name in enumerate(inp.names):
        e = result.edges[j]
        dens, band = result.histogram(j)
        th, tv = _hist_var(t[:, j], tw, e)
        ph, pv = _hist_var(prior_x[:, j], prior_w, e)
        chi2 = _chi2(dens, band**2, th, tv)
        chi2_prior = _chi2(ph, pv, th, tv)
        x, w = result.observable(j)
        w1 = wasserstein_1d(x, t[:, j], w, tw)
        w1_reps = []
        for b in range(len(result.replicas)):
            xb, wb = result.observable(j, b)
            w1_reps.append(wasserstein_1d(xb, t[:, j], wb, tw))
        out["observables"][name] = {"chi2_ndf": chi2, "chi2_ndf_prior": chi2_prior, "w1": w1,
                                    "w1_error": float(np.std(w1_reps, ddof=1)) if len(w1_reps) > 1 else None,
                                    "w1_prior": wasserstein_1d(prior_x[:, j], t[:, j], prior_w, tw)}
    if pair is not None:
        a, b = pair
        # IBU unfolds one observable at a time: its 2-D is the simulated truth under the first observable's weights
        ev_w = result.weights if result.weights.ndim == 1 else result.weights[:, a]
        reps_2d = [(x, w if w.ndim == 1 else w[:, a]) for x, w in result.replicas]
        e2 = [np.unique(np.quantile(prior_x[:, k], np.linspace(0.002, 0.998, pair_bins + 1))) for k in (a, b)]
        key = f"{inp.names[a]}:{inp.names[b]}"

        def h2(x, w):
            from hepgen.metrics.histograms import weighted_histogram

            x = np.stack([np.clip(x[:, a], e2[0][0], e2[0][-1]), np.clip(x[:, b], e2[1][0], e2[1][-1])], 1)
            h, v, _ = weighted_histogram(x, e2, weights=w)
            return h / h.sum(), v / h.sum() ** 2

        rh, rv = h2(result.events, ev_w)
        if len(reps_2d) > 1:
            # IBU's replicas reweight the same simulated events: add that sample's own noise (sumw2); OmniFold's
            # replicas resample the simulation itself
            fixed = rv if result.method == "ibu" else 0.0
            rv = np.var([h2(*rep)[0] for rep in reps_2d], axis=0, ddof=1) + fixed
        th2, tv2 = h2(t, tw)
        ph2, pv2 = h2(prior_x, prior_w)
        def corr(x: np.ndarray, w: np.ndarray) -> float:
            c = np.cov(x[:, a], x[:, b], aweights=np.clip(w, 0, None))
            return float(c[0, 1] / np.sqrt(c[0, 0] * c[1, 1]))

        ct = corr(t, tw)
        out["pairs"] = {key: {"chi2_ndf": _chi2(rh, rv, th2, tv2), "chi2_ndf_prior": _chi2(ph2, pv2, th2, tv2),
                              "dcorr": corr(result.events, ev_w) - ct, "dcorr_prior": corr(prior_x, prior_w) - ct,
                              "corr_truth": ct, **({"weights_of": inp.names[a]} if result.weights.ndim == 2 else {})}}
    return out


def _hist_var(x: np.ndarray, w: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from hepgen.metrics.histograms import density_histogram

    return density_histogram(x, edges, w, overflow=True)


def _chi2(h1: np.ndarray, v1: np.ndarray, h2: np.ndarray, v2: np.ndarray) -> float:
    from hepgen.metrics.histograms import chi2_from_histograms

    chi2, ndf = chi2_from_histograms(h1, v1, h2, v2)
    return chi2 / max(ndf - 1, 1)


# -- the entry point ------------------------------------------------------------------------------------
def unfold(method: str, sim_truth: Any, sim_reco: Any, data: Any, *, pass_truth: Any = None, pass_reco: Any = None,
           sim_weights: Any = None, data_weights: Any = None, data_truth: Any = None, pass_data: Any = None,
           pass_data_truth: Any = None, bins: int = 20, seed: int = 0, report_dir: str | os.PathLike | None = None,
           out: str | os.PathLike | None = None, quiet: bool = True, **options: Any) -> UnfoldingResult:
    """Unfold ``data`` (observed reco events) with the detector response of the simulation.

    ``method``: ``"ibu"`` (binned, per observable), ``"omnifold"`` (per-event weights of the simulated
    truth), ``"posterior"`` (a conditional flow p(x | y) sampled per observed event) or ``"marginal"``
    (a truth flow fitted to the observed-data likelihood). Inputs are arrays or ``path[:key]`` specs,
    flags/weights also column names (see :func:`read_inputs`). ``options``: the method's (see
    :data:`OPTIONS`: iterations, bootstrap, epochs ...; ``None``: the default), checked with ``bins`` and
    ``seed`` before any file is opened (a ConfigError naming the option). ``out``: ``.h5`` (or ``.npz``) with ``truth`` and
    ``weights`` (IBU: one weight column per observable, plus ``edges_*``, ``unfolded_*``, ``error_*``
    per observable; OmniFold: ``nu``) or, for the flows, ``events`` and ``weights``. ``report_dir``:
    figures, ``metrics.json`` and ``index.html``. Nothing is written unless every check passed and the
    unfolding succeeded.
    """
    options = check_method_options(method, options)  # every option checked before any file is opened
    bins = convert("bins", bins, SETTINGS["bins"], "unfold")
    seed = convert("seed", seed, SETTINGS["seed"], "unfold")
    if out is not None and Path(str(out).split(":")[0]).suffix.lower() not in (".h5", ".hdf5", ".hdf", ".npz"):
        raise ConfigError(f"unfolded output {out}: write .h5 (recommended) or .npz")
    inputs = read_inputs(sim_truth, sim_reco, data, pass_truth=pass_truth, pass_reco=pass_reco,
                         sim_weights=sim_weights, data_weights=data_weights, data_truth=data_truth,
                         pass_data=pass_data, pass_data_truth=pass_data_truth)
    result = run_method(method, inputs, bins=bins, seed=seed, quiet=quiet, **options)
    pair = default_pair(inputs.names)
    result.metrics = compute_metrics(result, pair)
    if out is not None:
        result.write(out)
    if report_dir is not None:
        write_report(result, report_dir, pair)
    return result


def write_report(result: UnfoldingResult, report_dir: str | os.PathLike, pair: tuple[int, int] | None = None) -> Path:
    """The report of ``result`` (see :mod:`hepgen.report.unfolding`)."""
    from hepgen.report.unfolding import write_report as _write

    inp = result.inputs
    hists = []
    prior_x, prior_w = inp.truth[inp.pass_truth], inp.sim_weights[inp.pass_truth]
    for j, e in enumerate(result.edges):
        dens, band = result.histogram(j)
        h = {"unfolded": dens, "band": band, "prior": _density(prior_x[:, j], prior_w, e),
             "detector": _density(inp.data[:, j], inp.data_weights, e)}
        if inp.data_truth is not None:
            th, tv = _hist_var(inp.data_truth[:, j], inp.data_truth_weights, e)
            h["truth"], h["truth_error"] = th, np.sqrt(tv)
        hists.append(h)
    pair_events = pair_edges = None
    if pair is not None and result.weights.ndim == 1:
        a, b = pair
        ref = ((inp.data_truth[:, [a, b]], inp.data_truth_weights) if inp.data_truth is not None
               else (prior_x[:, [a, b]], prior_w))
        pair_events = {("data truth" if inp.data_truth is not None else "prior"): ref,
                       result.method: (result.events[:, [a, b]], result.weights)}
        pair_edges = (result.edges[a], result.edges[b])
    meta = [f"method: {result.method}", (f"simulation: {inp.labels.get('sim_truth')} / {inp.labels.get('sim_reco')} "
             f"({len(inp.truth)} events, {int(inp.pass_reco.sum())} reconstructed, {int((~inp.pass_truth).sum())} fakes)"),
            f"data: {inp.labels.get('data')} ({len(inp.data)} events)",
            f"bands: ±1σ over {len(result.replicas)} bootstrap replicas",
            f"efficiency, acceptance, fakes: {HANDLING[result.method]}"]
    return _write(report_dir, title=f"unfolding: {result.method}", method=result.method, names=inp.names,
                  units=inp.units, edges=result.edges, histograms=hists, metrics=result.metrics, pair=pair,
                  pair_events=pair_events, pair_edges=pair_edges, meta=meta)
