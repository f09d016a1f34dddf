"""Conditional-flow posterior unfolding (cINN style: Bellagente et al., SciPost Phys. 9 (2020) 074; the
iteration of Backes et al., SciPost Phys. 13 (2022)): a conditional neural spline flow p(x | y)
(``hepgen.NSF`` with context = the reco observables) trained on simulated pairs passing truth and reco,
sampled per observed event.

* The flow models the truth *relative to* its reco partner (:class:`Coder`): u_j = f_j(x_j) − f_j(y_j),
  f_j = log(· − lo_j) for positive columns spanning more than a factor 5 (pt, mass, width, multiplicity;
  lo_j just below a hard lower edge such as the generator's pt cut, else 0), else the identity (eta). The posterior of u is then a narrow, nearly y-independent bump (the resolution),
  not a 2 %-wide ridge across the whole eta range: with x itself as the flow's variable the eta
  posterior came out ~3x too wide (68 % coverage 0.75 at 20k events) and the unfolded eta/pt biased.
* Truth columns of integers (multiplicities) are dequantised (x + U(0, 1)) before f and floored on output.
* Efficiency and acceptance (``pass_reco`` False: not reconstructed, or outside the reco cuts): the
  posterior describes reconstructed events, so each unfolded sample x gets weight 1 / eps(x),
  eps(x) = P(pass_reco | x) from a gradient-boosted classifier on the simulated truth. Where eps(x) <
  ``min_efficiency`` (outside the acceptance: |eta| > 2.5 for ``hepgen data smear``) the data carry no
  information: those samples are dropped and that region is filled by the simulated truth there, scaled
  by the unfolded total inside (the prior's extrapolation, as :mod:`hepgen.unfolding.ibu` does). Events
  migrating into the acceptance (truth outside, reco inside) are in the training pairs, so the
  posterior puts their share of samples outside, and those are then the dropped ones.
* Fakes (``pass_truth`` False): each observed event is weighted by 1 − P(fake | y), a classifier of the
  simulated fakes against real reco events (fakes assumed as frequent, as a function of y, as simulated).
* Prior dependence: with ``iterations = k > 1`` the simulated truth is reweighted up to k − 1 times by a
  classifier between the unfolded sample and the simulated truth, and the flow fine-tuned on the
  reweighted pairs for ``max(2, epochs // 3)`` epochs (the engine's ``warm_start``: :func:`fine_tune`).
  The stopping rule: with ``tolerance > 0`` the iteration stops (before fine-tuning) once the weighted RMS
  of the change of the per-event reweighting since the previous iteration is below it
  (``extra["reweight_change"]`` holds that history, ``extra["iterations_run"]`` the flows used).
  Coverage is measured after every iteration on the held-out pairs weighted as the fine-tuned flow's
  training pairs were (``coverage_68_iteration_k``); ``coverage_68`` / ``coverage_95`` are the final one's.
* Bands: bootstrap replicas of the data (Poisson weights) with fresh posterior samples: the data's
  statistical uncertainty, not the flow's training uncertainty (an ensemble would need k fits).
* Calibration: :func:`coverage` of the central 68 % / 95 % intervals per observable on held-out
  simulated pairs (10 % of the pairs kept out of training), from ``coverage_samples`` draws per event.
* ``cache``: a dict shared between calls on the same simulation (and options) keeps the fitted flow and
  classifiers, so several data sets are unfolded with one training (:func:`fit_posterior`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hepgen.evaluate.classifiers import make_classifier
from hepgen.nn.rng import seeded  # noqa: F401  (unfolding seeds every draw on a fork of the RNG)
from hepgen.unfolding.inputs import UnfoldingInputs, integer_columns


def preprocessing(x: np.ndarray) -> list[str]:
    """``log`` for strictly positive columns spanning more than a factor 5, else ``standard``."""
    lo, hi = x.min(axis=0), x.max(axis=0)
    return ["log" if (lo[j] > 0 and hi[j] > 5 * lo[j]) else "standard" for j in range(x.shape[1])]


class Coder:
    """The modelled side ``x`` (truth for the posterior) relative to the conditioning side ``y``:

        u = f(x + U(0, 1) on integer columns) − f(y),   f(v) = log(v − lo) on :func:`preprocessing`'s log columns,
                                                        the identity elsewhere

    ``lo`` = 0, or just below a hard lower edge of ``x`` (a column whose density is flat up to its minimum,
    such as a generator-level pt cut: its 1 % quantile lies within a fifth of the way from the minimum to
    its 10 % quantile; lo = min − (q1 − min)), so the flow sees a soft tail instead of a cliff it would
    smear out. ``y − lo`` is floored at half its smallest positive training value before the log. The
    context given to the flow is f(y)."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.integer = integer_columns(x)
        xd = np.array(x, dtype=np.float64)
        xd[:, self.integer] += 1.0
        d = x.shape[1]
        self.log = np.array([k == "log" for k in preprocessing(xd)])
        self.lo = np.zeros(d)
        for j in np.flatnonzero(self.log & ~self.integer):
            mn = xd[:, j].min()
            q1, q10 = np.quantile(xd[:, j], [0.01, 0.1])
            if q10 > mn and (q1 - mn) < 0.2 * (q10 - mn):
                self.lo[j] = mn - max(q1 - mn, 1e-9 * abs(mn))
        self.floor = np.zeros(d)
        for j in np.flatnonzero(self.log):
            v = y[:, j] - self.lo[j]
            scale = np.median(xd[:, j]) - self.lo[j]
            self.floor[j] = max(0.5 * np.min(v[v > 0], initial=scale), 1e-3 * scale)

    def f(self, v: np.ndarray) -> np.ndarray:
        v = np.array(v, dtype=np.float64)
        v[:, self.log] = np.log(np.maximum(v[:, self.log] - self.lo[self.log], self.floor[self.log]))
        return v

    def dequantise(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = np.array(x, dtype=np.float64)
        x[:, self.integer] += rng.random((len(x), int(self.integer.sum())))
        return x

    def encode(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """u of ``x`` (dequantised here unless ``rng`` is None: ``x`` already continuous) given ``y``."""
        xd = self.dequantise(x, rng) if rng is not None else np.asarray(x, dtype=np.float64)
        return self.f(xd) - self.f(y)

    def decode_continuous(self, u: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The dequantised x of ``u`` given ``y``."""
        v = np.asarray(u, dtype=np.float64) + self.f(y)
        v[:, self.log] = np.exp(v[:, self.log]) + self.lo[self.log]
        return v

    def decode(self, u: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.quantise(self.decode_continuous(u, y))

    def quantise(self, x: np.ndarray) -> np.ndarray:
        x = np.array(x, dtype=np.float64)
        x[:, self.integer] = np.floor(x[:, self.integer])
        return x

    def log_det(self, xd: np.ndarray) -> np.ndarray:
        """log |du/dx| at dequantised ``xd``: (n,) (a density of u minus nothing, plus this = the density of x)."""
        return -np.log(np.maximum(np.asarray(xd, dtype=np.float64)[:, self.log] - self.lo[self.log], 1e-300)).sum(axis=1)

    def context(self, y: np.ndarray) -> np.ndarray:
        return self.f(y)


def _hgb(seed: int):
    return make_classifier("hgb", seed=seed, max_iter=100, max_leaf_nodes=15, min_samples_leaf=40)


def classifier_probability(x1: np.ndarray, x0: np.ndarray, predict: np.ndarray, w1: np.ndarray | None = None,
                           w0: np.ndarray | None = None, seed: int = 0, smooth: bool = False) -> np.ndarray:
    """P(class 1 | z) at ``predict`` from a gradient-boosted classifier of x1 (label 1) against x0 (label 0).

    ``smooth``: leaves of at least 1 % of the events (and 8 leaves per tree), for ratios carried beyond the
    training region, where the last leaf's estimate is all there is."""
    X = np.concatenate([x1, x0])
    y = np.concatenate([np.ones(len(x1)), np.zeros(len(x0))])
    w = np.concatenate([np.ones(len(x1)) if w1 is None else w1, np.ones(len(x0)) if w0 is None else w0])
    clf = (make_classifier("hgb", seed=seed, max_iter=100, max_leaf_nodes=8, min_samples_leaf=max(100, len(X) // 100))
           if smooth else _hgb(seed))
    return clf.fit(X, y, sample_weight=w / w.mean()).predict_proba(predict)[:, 1]


def efficiency_model(inputs: UnfoldingInputs, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """eps(x) = P(pass_reco | x) on the simulated truth, as a function of truth events (n, d) -> (n,)."""
    real = inputs.pass_truth
    x, y, w = inputs.truth[real], inputs.pass_reco[real], inputs.sim_weights[real]
    if y.all():
        return lambda t: np.ones(len(t))
    clf = _hgb(seed).fit(x, y, sample_weight=np.clip(w, 0, None) + 1e-12)
    return lambda t: clf.predict_proba(np.asarray(t, float))[:, 1]


def fake_model(inputs: UnfoldingInputs, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """P(fake | y), reco events (m, d) -> (m,): a classifier of the simulated fakes against the real
    reconstructed events (identically 0 without simulated fakes)."""
    rec = inputs.pass_reco
    fake = ~inputs.pass_truth[rec]
    if not fake.any():
        return lambda y: np.zeros(len(y))
    x1, x0 = inputs.reco[rec][fake], inputs.reco[rec][~fake]
    w1, w0 = inputs.sim_weights[rec][fake], inputs.sim_weights[rec][~fake]
    X, w = np.concatenate([x1, x0]), np.concatenate([w1, w0])
    clf = _hgb(seed).fit(X, np.concatenate([np.ones(len(x1)), np.zeros(len(x0))]), sample_weight=w / w.mean())
    return lambda y: clf.predict_proba(np.asarray(y, float))[:, 1]


def efficiency_corrected(x: np.ndarray, w: np.ndarray, efficiency: Callable[[np.ndarray], np.ndarray] | None,
                         prior_x: np.ndarray, prior_w: np.ndarray, prior_eps: np.ndarray,
                         min_efficiency: float, *, extrapolate: bool = True, seed: int = 0,
                         x_eps: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """From unfolded events of the reconstructed population (``x: (n, d)``, ``w: (n,)``) to the full truth:

    w -> w / eps(x) where eps(x) >= ``min_efficiency`` (``efficiency`` None: ``x`` and ``w`` are already
    corrected and cut by the caller); events with eps(x) < ``min_efficiency`` are dropped, and that region is
    filled with the prior's events there (``prior_x``, ``prior_w``; their efficiencies ``prior_eps``) scaled by
    (unfolded total inside) / (prior total inside). With ``extrapolate`` each filling event is also weighted
    by r(x) = p_unfolded(x) / p_prior(x), the density ratio learned inside (a gradient-boosted classifier of
    the unfolded against the prior's events there) and evaluated outside: the trees continue the ratio from
    the edge of the acceptance (learned where eps is at least half its maximum; ``x_eps``: the efficiencies of
    ``x`` when ``efficiency`` is None), so what the data say about the other observables (a steeper spectrum, another
    quark/gluon mix) reaches the events they could not see, as IBU's 1/eps per bin of one observable does.
    Without it, the region keeps the prior's shape in every observable."""
    e = efficiency(x) if efficiency is not None else x_eps
    if efficiency is not None:
        keep = e >= min_efficiency
        x, w, e = x[keep], w[keep] / e[keep], e[keep]
    outside = prior_eps < min_efficiency
    if outside.any() and (~outside).any():
        inside_w = prior_w[~outside]
        fill = prior_w[outside] * (w.sum() / inside_w.sum())
        if extrapolate and len(x):
            # learned on the plateau (eps >= half its maximum): at the edge of the acceptance the 1/eps of a
            # steep efficiency is least certain, and the trees would carry that edge outwards
            plateau = 0.5 * float(prior_eps.max())
            on = e >= plateau if e is not None else np.ones(len(x), bool)
            prior_on = prior_eps >= plateau
            prob = classifier_probability(x[on], prior_x[prior_on], prior_x[outside], w[on], prior_w[prior_on],
                                          seed=seed, smooth=True)
            prob = np.clip(prob, 1e-4, 1 - 1e-4)
            fill = fill * prob / (1 - prob) * prior_w[prior_on].sum() / w[on].sum()
        x, w = np.concatenate([x, prior_x[outside]]), np.concatenate([w, fill])
    return x, w


def fine_tune(flow: Any, u: np.ndarray, c: np.ndarray, w: np.ndarray, *, epochs: int, batch_size: int, lr: float,
              seed: int, device: str, quiet: bool) -> Any:
    """Continue the weighted maximum-likelihood training of the fitted conditional ``flow`` on ``u`` given
    ``c`` (the engine's ``warm_start``: its weights and fitted preprocessing kept, a fresh optimiser)."""
    flow.train()
    with seeded(seed):
        flow.fit(u.astype(np.float32), weights=w.astype(np.float32), context=c.astype(np.float32),
                 epochs=int(epochs), batch_size=int(batch_size), lr=float(lr), seed=seed, device=device, quiet=quiet,
                 warm_start=True)
    flow.eval()
    return flow


def train_posterior(x: np.ndarray, y: np.ndarray, w: np.ndarray, coder: Coder, *, seed: int, epochs: int,
                    transforms: int, hidden: Any, batch_size: int, lr: float, device: str, quiet: bool,
                    val: tuple[np.ndarray, np.ndarray] | None = None, rng_seed: int | None = None):
    """A conditional NSF of u = coder.encode(x, y) given coder.context(y), by weighted maximum likelihood."""
    from hepgen.flows import NSF

    rng = np.random.default_rng(seed if rng_seed is None else rng_seed)
    u = coder.encode(x, y, rng)
    kw: dict[str, Any] = {}
    if val is not None:
        kw = {"val": coder.encode(val[0], val[1], rng).astype(np.float32),
              "val_context": coder.context(val[1]).astype(np.float32)}
    with seeded(seed):
        flow = NSF(x.shape[1], context=y.shape[1], transforms=int(transforms), hidden=tuple(hidden),
                   preprocess="standard")
        flow.fit(u.astype(np.float32), weights=w.astype(np.float32), context=coder.context(y).astype(np.float32),
                 epochs=int(epochs), batch_size=int(batch_size), lr=float(lr), seed=seed, device=device, quiet=quiet,
                 **kw)
    flow.eval()
    return flow


def sample_posterior(flow, coder: Coder, y: np.ndarray, samples: int, seed: int, batch: int = 65536,
                     continuous: bool = False) -> np.ndarray:
    """``samples`` draws of x ~ p(x | y) per row of ``y: (m, d)``: (samples, m, d) in original units
    (``continuous``: the dequantised values, not floored)."""
    c = coder.context(y).astype(np.float32)
    rows = np.repeat(c[None], samples, axis=0).reshape(-1, c.shape[1])
    ys = np.repeat(np.asarray(y, dtype=np.float64)[None], samples, axis=0).reshape(-1, y.shape[1])
    with seeded(seed), torch.no_grad():
        u = np.concatenate([flow.sample(None, context=rows[i:i + batch]).cpu().numpy()
                            for i in range(0, len(rows), batch)]).astype(np.float64)
    x = coder.decode_continuous(u, ys)
    return (x if continuous else coder.quantise(x)).reshape(samples, len(y), -1)


def sample_and_log_prob(flow, coder: Coder, y: np.ndarray, samples: int, seed: int,
                        batch: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """(dequantised x (m * samples, d), log q(x | y) (m * samples,)), ``samples`` consecutive rows per event."""
    ys = np.repeat(np.asarray(y, dtype=np.float64), samples, axis=0)
    c = coder.context(ys).astype(np.float32)
    us, lps = [], []
    with seeded(seed), torch.no_grad():
        for i in range(0, len(c), batch):
            u, lp = flow.sample_and_log_prob(None, context=c[i:i + batch])
            us.append(u.cpu().numpy())
            lps.append(lp.cpu().numpy())
    u = np.concatenate(us).astype(np.float64)
    x = coder.decode_continuous(u, ys)
    return x, np.concatenate(lps).astype(np.float64) + coder.log_det(x)


def coverage(flow, coder: Coder, x: np.ndarray, y: np.ndarray, samples: int = 400, seed: int = 0,
             levels: tuple[float, ...] = (0.68, 0.95), weights: np.ndarray | None = None) -> dict[str, list[float]]:
    """Fraction of held-out true x inside the central ``level`` interval of their posterior, per observable.

    The interval is judged by the rank of x among ``samples`` posterior draws: u = P(draw < x) + V P(draw
    = x), V ~ U(0, 1) (randomised for the ties of integer columns), inside when (1 − level)/2 <= u <=
    (1 + level)/2, so a calibrated posterior gives the nominal level for discrete observables too.
    ``weights`` (m,): the held-out pairs' weights (after the prior-removal iterations, the simulation
    reweighted to the unfolded result: the fine-tuned posterior is judged on the population it describes)."""
    draws = sample_posterior(flow, coder, y, samples, seed)                     # (S, m, d)
    below = (draws < x[None]).mean(axis=0)
    ties = (draws == x[None]).mean(axis=0)
    u = below + ties * np.random.default_rng(seed + 1).random(below.shape)
    out: dict[str, list[float]] = {}
    for level in levels:
        lo_q, hi_q = (1 - level) / 2, (1 + level) / 2
        inside = ((u >= lo_q) & (u <= hi_q)).astype(float)
        out[f"{round(level * 100)}"] = [float(v) for v in np.average(inside, axis=0, weights=weights)]
    return out


@dataclass
class PosteriorFit:
    """What :func:`fit_posterior` learns from the simulation alone (reusable for several data sets)."""

    flow: Any
    coder: Coder
    efficiency: Callable[[np.ndarray], np.ndarray]
    fake: Callable[[np.ndarray], np.ndarray]
    train: np.ndarray
    test: np.ndarray
    coverage: dict[str, list[float]]


def simulation_key(inputs: UnfoldingInputs, **options: Any) -> tuple:
    """A fingerprint of the simulation (and the options) under which a cached fit may be reused."""
    return (inputs.truth.shape, float(inputs.truth.sum()), float(inputs.reco.sum()), float(inputs.sim_weights.sum()),
            int(inputs.pass_reco.sum()), int(inputs.pass_truth.sum()), tuple(sorted((k, str(v)) for k, v in options.items())))


def fit_posterior(inputs: UnfoldingInputs, *, seed: int = 0, quiet: bool = True, epochs: int = 30,
                  transforms: int = 4, hidden: Any = (64, 64), batch_size: int = 512, lr: float = 2e-3,
                  device: str = "auto", coverage_samples: int = 400, coverage_events: int = 3000) -> PosteriorFit:
    """Train the flow posterior, eps(x) and P(fake | y) on the simulation; coverage on the held-out pairs."""
    rng = np.random.default_rng(seed)
    both = inputs.pass_truth & inputs.pass_reco
    idx = np.flatnonzero(both)
    held = rng.random(len(idx)) < 0.1
    train, test = idx[~held], idx[held]
    coder = Coder(inputs.truth[idx], inputs.reco[idx])
    eps = efficiency_model(inputs, seed)
    fake_clf = fake_model(inputs, seed)
    flow = train_posterior(inputs.truth[train], inputs.reco[train], inputs.sim_weights[train], coder, seed=seed,
                           epochs=epochs, transforms=transforms, hidden=hidden, batch_size=batch_size, lr=lr,
                           device=device, quiet=quiet,
                           val=(inputs.truth[test], inputs.reco[test]) if len(test) > 1 else None)
    cov: dict[str, list[float]] = {}
    if len(test) > 10 and coverage_samples:
        sel = test[:int(coverage_events)]
        cov = coverage(flow, coder, inputs.truth[sel], inputs.reco[sel], samples=int(coverage_samples), seed=seed)
    return PosteriorFit(flow, coder, eps, fake_clf, train, test, cov)


def cached_fit(inputs: UnfoldingInputs, cache: dict | None, *, seed: int, quiet: bool, **options: Any) -> PosteriorFit:
    """:func:`fit_posterior` of ``inputs`` with ``options``, taken from / stored in ``cache`` when given."""
    key = ("posterior", seed, simulation_key(inputs, **options))
    if cache is not None and key in cache:
        return cache[key]
    fit = fit_posterior(inputs, seed=seed, quiet=quiet, **options)
    if cache is not None:
        cache[key] = fit
    return fit


def unfold_posterior(inputs: UnfoldingInputs, *, seed: int = 0, quiet: bool = True, iterations: int = 1,
                     bootstrap: int = 10, epochs: int = 30, samples: int = 1, transforms: int = 4,
                     hidden: Any = (64, 64), batch_size: int = 512, lr: float = 2e-3, device: str = "auto",
                     min_efficiency: float = 0.05, coverage_samples: int = 400, extrapolate: bool = True,
                     tolerance: float = 0.0, cache: dict | None = None) -> tuple[np.ndarray, np.ndarray, list, dict[str, Any]]:
    """(events, weights, bootstrap replicas, extra) of the posterior unfolding; see the module doc."""
    import copy

    from hepgen.metrics.bootstrap import poisson_weights

    fit = cached_fit(inputs, cache, seed=seed, quiet=quiet, epochs=epochs, transforms=transforms, hidden=hidden,
                     batch_size=batch_size, lr=lr, device=device, coverage_samples=coverage_samples)
    real = inputs.pass_truth
    eps_sim = fit.efficiency(inputs.truth[real])
    not_fake = 1.0 - fit.fake(inputs.data)

    def unfolded(flow, data_w: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
        draws = sample_posterior(flow, fit.coder, inputs.data, int(samples), s)
        x = draws.reshape(-1, inputs.features)
        w = np.tile(data_w * not_fake, int(samples)) / int(samples)
        return efficiency_corrected(x, w, fit.efficiency, inputs.truth[real], inputs.sim_weights[real], eps_sim,
                                    min_efficiency, extrapolate=extrapolate, seed=s + 3)

    flow = fit.flow
    events, ev_w = unfolded(flow, inputs.data_weights, seed + 101)
    history, coverages = [], [fit.coverage] if fit.coverage else []
    previous = np.ones(int(real.sum()))
    held = fit.test[:3000]
    run = 1
    for it in range(1, int(iterations)):  # reweight the simulated truth towards the unfolded sample, fine-tune
        p = classifier_probability(events, inputs.truth[real], inputs.truth[real], ev_w, inputs.sim_weights[real],
                                   seed=seed + it)
        p = np.clip(p, 1e-4, 1 - 1e-4)
        ratio = p / (1 - p) * inputs.sim_weights[real].sum() / ev_w.sum()
        # the stopping rule: the weighted RMS of the change of the per-event reweighting since the last iteration
        change = float(np.sqrt(np.average((ratio / previous - 1) ** 2, weights=inputs.sim_weights[real])))
        history.append(change)
        if tolerance and change < tolerance:
            break
        previous = ratio
        weights = inputs.sim_weights.copy()
        weights[real] = inputs.sim_weights[real] * ratio
        tr = fit.train
        u = fit.coder.encode(inputs.truth[tr], inputs.reco[tr], np.random.default_rng(seed + 7 + it))
        flow = fine_tune(copy.deepcopy(flow), u, fit.coder.context(inputs.reco[tr]), weights[tr],
                         epochs=max(2, int(epochs) // 3), batch_size=batch_size, lr=lr / 2, seed=seed + it,
                         device=device, quiet=quiet)
        events, ev_w = unfolded(flow, inputs.data_weights, seed + 101 + it)
        run += 1
        if coverage_samples and len(held) > 10:
            coverages.append(coverage(flow, fit.coder, inputs.truth[held], inputs.reco[held],
                                      samples=int(coverage_samples), seed=seed + it, weights=weights[held]))
    reps = [unfolded(flow, inputs.data_weights * factors, seed + 5000 + b)
            for b, factors in enumerate(poisson_weights(len(inputs.data), bootstrap, seed + 1))]
    # the coverage of the final posterior (after the last fine-tuning), and of every iteration's
    extra: dict[str, Any] = {f"coverage_{k}": np.array(v) for k, v in (coverages[-1] if coverages else {}).items()}
    for i, cov in enumerate(coverages):
        for k, v in cov.items():
            extra[f"coverage_{k}_iteration_{i + 1}"] = np.array(v)
    extra["iterations_run"] = np.array(run)
    if history:
        extra["reweight_change"] = np.array(history)
    return events, ev_w, reps, extra
