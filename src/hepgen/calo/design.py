"""Detector design by gradient descent through a local generative surrogate (Shirobokov et al. 2020).

The design ψ is a few continuous parameters of the calorimeter simulator (``hepgen data calo``'s
``absorber_mm``, ``active_mm``, ``layer_{0,1,2}_mm``), each in a box [low, high]. The objective is

    C(ψ) = (1/J) Σ_j σ(r | ψ, E_j) / ⟨r | ψ, E_j⟩  +  cost(ψ),      r = E_vis / E_inc

the mean relative energy resolution at the energies E_j (default 10, 20, 30, 40, 50 GeV; σ and the mean
of the summed visible energy, leakage and noise included) plus a material cost,
``cost = per_metre · depth[m] + per_lead · lead[100 g/cm²]`` (:class:`ResolutionObjective`). The simulator
is not differentiable; a conditional generator g(z | ψ, E) — a neural spline flow on the response r (and
optionally the layer shares) with context (ψ, ln E) — is, through its reparameterised ``rsample``:

    ∇_ψ C ≈ ∇_ψ [ (1/J) Σ_j std_m(g(z_m | ψ, E_j)) / mean_m(g(z_m | ψ, E_j)) ] + ∇_ψ cost(ψ)

with the base draws z_m fixed per iteration (common random numbers: a smooth, deterministic surrogate
objective). The surrogate is trusted only near where it was trained (L-GSO, arXiv:2002.04632): each
iteration samples designs uniformly in the trust box ψ ± ``trust``·(high − low) (one per shower with the
calo simulator, else ``points`` designs of ``showers`` each; E uniform in the energy range), retrains the flow on every simulated shower
inside the box, and takes Adam steps on ψ (in the unit box coordinates) until ψ reaches the edge of the inner box
ψ ± ``margin``·``trust`` (it leaves the trusted region: refresh) or ``steps`` are done, with a step size proportional to the box.
When an iteration moves ψ less than a quarter of the box, or turns back against the previous move (an
overshot minimum), the box halves (refinement); the study stops after ``iterations``, below
``min_trust`` or when the next iteration would exceed ``budget`` simulated showers. ``showers_`` counts
every shower the method simulated (the simulator calls compared with a grid or Bayesian optimisation).

    study = DesignStudy(["absorber_mm=0.5:3", "layer_1_mm=200:1000"], budget=40_000).fit()
    study.design_, study.showers_, study.measure(study.design_, 2000)   # C(ψ*) with the simulator

Any simulator with the :class:`CaloSimulator` call signature (design, n, energy_min, energy_max, seed) ->
(energy (n,), features (n, f), response first) plugs in, e.g. a closed-form toy in the tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hepgen.data.generators import calo as calo_generator
from hepgen.errors import ConfigError, DataError
from hepgen.nn.rng import seeded
from hepgen.options import parse_named_range

__all__ = ["CaloSimulator", "DesignStudy", "Parameter", "ResolutionObjective", "optimise_design", "parse_parameter"]

FEATURES = ("response", "share_0", "share_1")


@dataclass(frozen=True)
class Parameter:
    """A design parameter of the simulator and its box: ``name`` (a ``calo.DESIGN`` key, mm), ``low``, ``high``."""

    name: str
    low: float
    high: float

    def to_unit(self, value: Any) -> Any:
        return (value - self.low) / (self.high - self.low)

    def from_unit(self, u: Any) -> Any:
        return self.low + u * (self.high - self.low)


def parse_parameter(spec: str | Parameter | Sequence[Any], valid: Sequence[str] | None = None,
                    what: str = "--param") -> Parameter:
    """``"absorber_mm=0.5:3"`` (or a Parameter, or (name, low, high)) -> Parameter; ConfigError naming ``what``."""
    valid = list(calo_generator.DESIGN) if valid is None else list(valid)
    if isinstance(spec, Parameter):
        name, low, high = spec.name, spec.low, spec.high
    elif isinstance(spec, str):  # the one NAME=LOW:HIGH grammar (hepgen.options)
        name, (low, high) = parse_named_range(spec, what, allow_equal=True)
    else:
        name, low, high = spec
    if name not in valid:
        raise ConfigError(f"{what} {name!r} is not a design parameter; valid: {', '.join(valid)}")
    limits = calo_generator.DESIGN_LIMITS.get(name, (-math.inf, math.inf))
    if not (math.isfinite(low) and math.isfinite(high) and limits[0] <= low < high <= limits[1]):
        raise ConfigError(f"{what} {name}={low}:{high}: need {limits[0]} <= LOW < HIGH <= {limits[1]} (mm)")
    return Parameter(name, float(low), float(high))


class CaloSimulator:
    """The ``hepgen data calo`` simulator at a design: per shower the response and the layer shares.

    ``__call__(design, n, energy_min, energy_max, seed)`` -> (energy (n,) GeV, features (n, 3)): the
    calibrated response r = E_vis/(f_em(ψ) E_inc) (visible over incident GeV, every cell summed, noise
    included, divided by the design's shower sampling fraction) and the shares E_0/E_vis, E_1/E_vis.
    ``simulate_box`` draws a design per shower in a box (what the design study uses). ``fixed``: further generator options held fixed (e.g. ``active_mm``).
    ``showers`` and ``calls`` count what was simulated.
    """

    features = FEATURES

    def __init__(self, particle: str = "e+", noise: float = 1.0, max_spots: int = 4000,
                 fixed: Mapping[str, Any] | None = None):
        self.particle, self.noise, self.max_spots = particle, float(noise), int(max_spots)
        self.fixed = dict(fixed or {})
        calo_generator.generate(1, particle=particle, noise=noise, max_spots=max_spots, **self.fixed)  # checks options
        self.showers = 0
        self.calls = 0

    def options(self, design: Mapping[str, float]) -> dict[str, Any]:
        return {"particle": self.particle, "noise": self.noise, "max_spots": self.max_spots, **self.fixed,
                **{k: float(v) for k, v in design.items()}}

    def __call__(self, design: Mapping[str, float], n: int, energy_min: float, energy_max: float,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
        out = calo_generator.generate(int(n), seed=int(seed), energy_min=energy_min, energy_max=energy_max,
                                      **self.options(design))
        self.showers += int(n)
        self.calls += 1
        return out["energy"], shower_features(out, self._sampling_fraction(design))

    def simulate_box(self, low: Mapping[str, float], high: Mapping[str, float], n: int, energy_min: float,
                     energy_max: float, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """``n`` showers, each at its own design drawn uniformly in [low, high] (the generator's ``vary``):
        ({name: (n,)}, energy (n,), features (n, 3))."""
        vary = ",".join(f"{k}={low[k]!r}:{high[k]!r}" for k in low if high[k] > low[k])
        fixed = {k: float(low[k]) for k in low if not high[k] > low[k]}
        out = calo_generator.generate(int(n), seed=int(seed), energy_min=energy_min, energy_max=energy_max,
                                      vary=vary or None, **self.options(fixed))
        self.showers += int(n)
        self.calls += 1
        design = {k: (out[k] if k in out else np.full(int(n), fixed[k])) for k in low}
        return design, out["energy"], shower_features(out, self._sampling_fraction(design))

    def _sampling_fraction(self, design: Mapping[str, Any]) -> Any:
        keys = {k: v for k, v in {**self.fixed, **design}.items() if k in calo_generator.DESIGN}
        return calo_generator.design_quantities(**keys)["f_em"]


def shower_features(showers: Mapping[str, np.ndarray], sampling_fraction: Any = 1.0) -> np.ndarray:
    """(n, 3): response E_vis/(f E_inc) and the shares of layer_0 and layer_1 of the visible energy (cells in MeV).

    ``sampling_fraction`` f (scalar or (n,)): the calibration of the design; C is invariant under it (σ/mean
    per design), but a surrogate learns the calibrated response, ~1 over the whole box, far better.
    """
    layers = np.stack([np.asarray(showers[f"layer_{i}"], dtype=np.float64).reshape(len(showers["energy"]), -1).sum(1)
                       for i in range(3)], axis=1) / 1000.0
    total = layers.sum(1)
    safe = np.where(np.abs(total) > 1e-9, total, 1e-9)
    return np.stack([total / (np.asarray(showers["energy"], dtype=np.float64) * sampling_fraction), layers[:, 0] / safe,
                     layers[:, 1] / safe], axis=1)


class ResolutionObjective:
    """C(ψ) = mean_j σ(r|E_j)/⟨r|E_j⟩ + per_metre · depth[m] + per_lead · lead[100 g/cm²] (module doc).

    The cost is a closed form of the full design (the simulator's defaults fill the parameters not
    optimised), written with + − × ÷ only, so it takes floats or tensors (differentiable).
    """

    def __init__(self, energies: Sequence[float] = (10.0, 20.0, 30.0, 40.0, 50.0), per_metre: float = 0.01,
                 per_lead: float = 0.0):
        self.energies = tuple(float(e) for e in energies)
        if not self.energies or min(self.energies) <= 0:
            raise ConfigError(f"the objective's energies must be positive GeV values, got {list(energies)}")
        if per_metre < 0 or per_lead < 0:
            raise ConfigError(f"the material cost weights must be >= 0, got per_metre={per_metre}, per_lead={per_lead}")
        self.per_metre, self.per_lead = float(per_metre), float(per_lead)

    def cost(self, design: Mapping[str, Any]) -> Any:
        d = {**calo_generator.DESIGN, **design}
        depth = d["layer_0_mm"] + d["layer_1_mm"] + d["layer_2_mm"]
        lead = 0.1 * depth * d["absorber_mm"] / (d["absorber_mm"] + d["active_mm"]) * calo_generator.LEAD["density"]
        return self.per_metre * depth / 1000.0 + self.per_lead * lead / 100.0

    @staticmethod
    def resolution(response: Any) -> Any:
        """σ/mean per row of ``response`` (J, m) (numpy or torch): (J,)."""
        if isinstance(response, Tensor):
            return response.std(dim=1) / response.mean(dim=1)
        response = np.asarray(response, dtype=np.float64)
        return response.std(axis=1, ddof=1) / response.mean(axis=1)

    def measure(self, simulator: Callable[..., tuple[np.ndarray, np.ndarray]], design: Mapping[str, float],
                showers: int, seed: int = 0) -> dict[str, Any]:
        """C(ψ) with the simulator: ``showers`` at each energy. {"objective", "resolution" (J,), "cost"}."""
        rows = []
        for j, energy in enumerate(self.energies):
            rows.append(simulator(design, int(showers), energy, energy, seed * 1000 + j)[1][:, 0])
        resolution = self.resolution(np.stack(rows))
        cost = float(self.cost(design))
        return {"objective": float(resolution.mean() + cost), "resolution": resolution.tolist(), "cost": cost}


def _fit_flow(context: np.ndarray, x: np.ndarray, options: Mapping[str, Any], seed: int) -> Any:
    """A conditional flow p(x | ψ, ln E): ``flow`` "nsf" (default; transforms, hidden, bins, tail_bound) or
    "maf" (affine: for one feature a heteroscedastic Gaussian), trained ``epochs`` by the engine."""
    from hepgen.flows.zoo import MAF, NSF

    params = dict(options)
    kind = str(params.pop("flow", "nsf"))
    if kind not in ("nsf", "maf"):
        raise ConfigError(f"the surrogate flow must be 'nsf' or 'maf', got {kind!r}")
    defaults = {"transforms": 3, "hidden": (64, 64)} | ({"bins": 8, "tail_bound": 5.0} if kind == "nsf" else {})
    params = {**defaults, **params}
    epochs = int(params.pop("epochs", 20))
    batch = int(params.pop("batch_size", 256))
    lr = float(params.pop("lr", 2e-3))
    model = (NSF if kind == "nsf" else MAF)(x.shape[1], context=context.shape[1], **params)
    model.fit(x.astype(np.float32), context=context.astype(np.float32), epochs=epochs, batch_size=batch, lr=lr,
              seed=seed, device="cpu", quiet=True)
    return model


class DesignStudy:
    """Minimise C(ψ) over the box of ``parameters`` by L-GSO (module doc); ``fit()`` returns self.

    Args:
        parameters: Parameters or ``"name=low:high"`` strings (mm).
        start: {name: value} (default: the simulator's defaults, clipped into the box).
        simulator: a :class:`CaloSimulator` (default) or any callable with its signature.
        objective: a :class:`ResolutionObjective` (default: 10-50 GeV, 0.01 per metre of depth).
        energy: (min, max) GeV of the surrogate's training showers (default: the objective's energies).
        points, showers: designs sampled per iteration and showers simulated at each; a simulator with
            ``simulate_box`` (CaloSimulator) instead draws one design per shower for the points x showers.
        trust, min_trust: the trust box half-width and its lower limit, fractions of each range.
        steps, lr: Adam steps on ψ (unit coordinates) per iteration and their rate.
        margin: the steps stay within ψ ± margin·trust (the surrogate is least reliable at its box's edges).
        iterations: most surrogate refreshes. budget: most simulated showers (None: no limit).
        samples: surrogate samples per energy in the objective. features: how many of FEATURES to model (1-3).
        surrogate: flow options (flow "nsf"/"maf", transforms, hidden, bins, epochs, batch_size, lr).
        seed: the seed of the designs sampled, the simulator and the flow.
    """

    def __init__(self, parameters: Sequence[Parameter | str], start: Mapping[str, float] | None = None,
                 simulator: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None,
                 objective: ResolutionObjective | None = None, energy: tuple[float, float] | None = None,
                 points: int = 6, showers: int = 1000, trust: float = 0.15, min_trust: float = 0.02,
                 steps: int = 60, lr: float = 0.02, iterations: int = 8, budget: int | None = None,
                 samples: int = 2000, features: int = 1, surrogate: Mapping[str, Any] | None = None, seed: int = 0,
                 margin: float = 0.6,
                 valid: Sequence[str] | None = None, verbose: bool = False):
        self.parameters = [parse_parameter(p, valid) for p in parameters]
        if not self.parameters:
            raise ConfigError("a design study needs at least one --param NAME=LOW:HIGH")
        names = [p.name for p in self.parameters]
        if len(set(names)) != len(names):
            raise ConfigError(f"--param names a parameter twice: {names}")
        self.simulator = simulator if simulator is not None else CaloSimulator()
        self.objective = objective if objective is not None else ResolutionObjective()
        e = self.objective.energies
        self.energy = (float(min(e)), float(max(e))) if energy is None else (float(energy[0]), float(energy[1]))
        if not 0 < self.energy[0] <= self.energy[1]:
            raise ConfigError(f"--energy must be MIN:MAX with 0 < MIN <= MAX GeV, got {self.energy}")
        checks = {"points": (points, 1), "showers": (showers, 10), "steps": (steps, 1), "iterations": (iterations, 1),
                  "samples": (samples, 10)}
        for key, (value, low) in checks.items():
            if int(value) != value or value < low:
                raise ConfigError(f"--{key} must be an integer >= {low}, got {value!r}")
        if not 0 < min_trust <= trust <= 0.5:
            raise ConfigError(f"--trust must lie in (0, 0.5] and min_trust in (0, trust]; got {trust}, {min_trust}")
        if not 1 <= int(features) <= len(FEATURES):
            raise ConfigError(f"features must be 1-{len(FEATURES)} (of {', '.join(FEATURES)}), got {features}")
        if budget is not None and budget < int(points) * int(showers):
            raise ConfigError(f"--budget {budget} is below one iteration's {int(points) * int(showers)} showers "
                              f"(--points x --showers)")
        if lr <= 0:
            raise ConfigError(f"--lr must be positive, got {lr}")
        if not 0 < margin <= 1:
            raise ConfigError(f"margin must lie in (0, 1], got {margin}")
        self.margin = float(margin)
        self.points, self.showers, self.steps, self.iterations = int(points), int(showers), int(steps), int(iterations)
        self.samples, self.features, self.trust, self.min_trust, self.lr = (int(samples), int(features), float(trust),
                                                                             float(min_trust), float(lr))
        self.budget = None if budget is None else int(budget)
        self.surrogate = dict(surrogate or {})
        self.seed, self.verbose = int(seed), bool(verbose)
        self.extra_: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        defaults = {**calo_generator.DESIGN, **(start or {})}
        unknown = sorted(set(start or {}) - set(names))
        if unknown:
            raise ConfigError(f"--start {unknown[0]!r} is not one of the optimised parameters {names}")
        self.start = {}
        for p in self.parameters:
            value = float(defaults.get(p.name, (p.low + p.high) / 2))
            if start and p.name in start and not p.low <= value <= p.high:
                raise ConfigError(f"--start {p.name}={value} lies outside its box [{p.low}, {p.high}]")
            self.start[p.name] = min(max(value, p.low), p.high)

    # -- coordinates ----------------------------------------------------------------------------------------------
    def to_unit(self, design: Mapping[str, float]) -> np.ndarray:
        return np.array([p.to_unit(float(design[p.name])) for p in self.parameters])

    def from_unit(self, u: Any) -> dict[str, Any]:
        return {p.name: p.from_unit(u[i]) for i, p in enumerate(self.parameters)}

    # -- the surrogate objective -------------------------------------------------------------------------------------
    def surrogate_objective(self, u: Tensor, model: Any = None, seed: int | None = None) -> Tensor:
        """C through the surrogate at unit coordinates ``u`` (k,), differentiable; fixed base draws per ``seed``."""
        model = self.model_ if model is None else model
        seed = self.seed if seed is None else seed
        design = self.from_unit(u)
        psi = torch.stack([design[p.name] for p in self.parameters]).to(torch.float32)
        energies = torch.tensor(self.objective.energies, dtype=torch.float32)
        m, j = self.samples, len(energies)
        context = torch.cat([psi.expand(j * m, -1), torch.log(energies).repeat_interleave(m)[:, None]], dim=1)
        with seeded(seed, model.device):
            x = model.rsample(j * m, context.to(model.device))
        response = x[:, 0].reshape(j, m)
        return self.objective.resolution(response).mean() + self.objective.cost(design)

    def gradient(self, design: Mapping[str, float], model: Any = None, seed: int | None = None) -> dict[str, float]:
        """∂C/∂ψ through the surrogate at ``design`` ({name: mm}), per mm."""
        u = torch.tensor(self.to_unit(design), dtype=torch.float64, requires_grad=True)
        self.surrogate_objective(u, model, seed).backward()
        return {p.name: float(u.grad[i]) / (p.high - p.low) for i, p in enumerate(self.parameters)}

    # -- the loop ----------------------------------------------------------------------------------------------------------
    def _check(self, energy: np.ndarray, x: Any, where: str) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != len(energy) or x.shape[1] < self.features:
            raise DataError(f"the simulator returned features of shape {x.shape} for {len(energy)} showers; "
                            f"expected (n, >= {self.features})")
        bad = ~np.isfinite(x[:, :self.features]).all(1)
        if bad.any():
            raise DataError(f"the simulator returned NaN/inf features {where}, row {int(np.argmax(bad))}")
        return x[:, :self.features]

    def _simulate(self, low: np.ndarray, high: np.ndarray, rng: np.random.Generator, seed: int) -> None:
        """``points * showers`` showers in the box: one design per shower (simulate_box) or ``points`` designs."""
        n = self.points * self.showers
        if hasattr(self.simulator, "simulate_box"):
            lo, hi = self.from_unit(low), self.from_unit(high)
            design, energy, x = self.simulator.simulate_box({k: float(v) for k, v in lo.items()},
                                                            {k: float(v) for k, v in hi.items()}, n,
                                                            self.energy[0], self.energy[1], seed)
            u = np.stack([p.to_unit(np.asarray(design[p.name], dtype=np.float64)) for p in self.parameters], axis=1)
            self.history_.append((u, np.asarray(energy, dtype=np.float64), self._check(energy, x, "in the box")))
            self.calls_ += 1
        else:
            for k in range(self.points):
                point = rng.uniform(low, high)
                design = self.from_unit(point)
                energy, x = self.simulator(design, self.showers, self.energy[0], self.energy[1], seed + k)
                self.history_.append((np.broadcast_to(point, (len(energy), len(point))),
                                      np.asarray(energy, dtype=np.float64), self._check(energy, x, f"at {design}")))
                self.calls_ += 1
        self.showers_ += n

    def add_showers(self, design: Mapping[str, np.ndarray], energy: np.ndarray, features: np.ndarray) -> DesignStudy:
        """Showers simulated elsewhere (per-shower design columns, e.g. ``hepgen data calo --option vary=...``)
        join the training set of every trust box they fall in; they are not counted in ``showers_``."""
        u = np.stack([p.to_unit(np.asarray(design[p.name], dtype=np.float64)) for p in self.parameters], axis=1)
        energy = np.asarray(energy, dtype=np.float64).reshape(-1)
        self.extra_.append((u, energy, self._check(energy, features, "in the added showers")))
        return self

    def _training_set(self, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        contexts, xs = [], []
        for u, energy, x in [*self.history_, *self.extra_]:
            inside = np.all((u >= low - 1e-12) & (u <= high + 1e-12), axis=1)
            if inside.any():
                psi = np.stack([p.from_unit(u[inside, i]) for i, p in enumerate(self.parameters)], axis=1)
                contexts.append(np.column_stack([psi, np.log(energy[inside])]))
                xs.append(x[inside])
        return np.concatenate(contexts), np.concatenate(xs)

    def fit(self) -> DesignStudy:
        """Run the local-surrogate descent from ``start``; sets ``design_``, ``path_``, ``showers_``, ``model_``."""
        rng = np.random.default_rng(self.seed)
        self.history_ = []
        u = self.to_unit(self.start)
        trust = self.trust
        self.path_: list[dict[str, Any]] = []
        self.showers_ = 0
        self.calls_ = 0
        self.stopped_ = "iterations"
        last_move = np.zeros_like(u)
        for it in range(self.iterations):
            need = self.points * self.showers
            if self.budget is not None and self.showers_ + need > self.budget:
                self.stopped_ = "budget"
                break
            low, high = np.clip(u - trust, 0.0, 1.0), np.clip(u + trust, 0.0, 1.0)
            self._simulate(low, high, rng, self.seed * 100_003 + it * 101)
            context, x = self._training_set(low, high)
            self.model_ = _fit_flow(context, x, self.surrogate, self.seed + it)
            for param in self.model_.parameters():
                param.requires_grad_(False)
            start = u.copy()
            psi = torch.tensor(u, dtype=torch.float64, requires_grad=True)
            optimiser = torch.optim.Adam([psi], lr=self.lr * trust / self.trust)  # steps shrink with the box
            # Steps stay in the inner part of the box, where the surrogate saw showers on every side.
            lo_t = torch.tensor(np.clip(u - self.margin * trust, 0.0, 1.0))
            hi_t = torch.tensor(np.clip(u + self.margin * trust, 0.0, 1.0))
            value = float("nan")
            left = False
            for _ in range(self.steps):
                optimiser.zero_grad()
                c = self.surrogate_objective(psi, seed=self.seed + it)
                c.backward()
                value = float(c.detach())
                optimiser.step()
                with torch.no_grad():
                    psi.copy_(torch.minimum(torch.maximum(psi, lo_t), hi_t))
                    at_edge = ((psi <= lo_t) & (lo_t > 0)) | ((psi >= hi_t) & (hi_t < 1))
                if bool(at_edge.any()):
                    left = True
                    break
            u = psi.detach().numpy().copy()
            moved = float(np.max(np.abs(u - start)))
            reversed_ = float(np.dot(u - start, last_move)) < 0.0
            last_move = u - start
            self.path_.append({"iteration": it, "design": _floats(self.from_unit(start)),
                               "next": _floats(self.from_unit(u)), "surrogate_objective": value, "trust": trust,
                               "showers": self.showers_, "training_showers": len(x), "left_trust_region": left,
                               "reversed": reversed_})
            if self.verbose:
                print(f"iteration {it}: {self.from_unit(start)} -> {self.from_unit(u)}, C_surrogate {value:.5f}, "
                      f"trust {trust:.3f}, showers {self.showers_}", flush=True)
            # Refine where the surrogate is trusted but moves little, or turns back (it overshot a minimum).
            if (not left and moved < 0.25 * trust) or reversed_:
                trust /= 2.0
                if trust < self.min_trust:
                    self.stopped_ = "converged"
                    break
        else:
            self.stopped_ = "iterations"
        if not self.path_:
            raise ConfigError(f"--budget {self.budget} leaves no iteration")
        self.design_ = {k: float(v) for k, v in self.from_unit(u).items()}
        return self

    def measure(self, design: Mapping[str, float] | None = None, showers: int = 2000, seed: int = 12345) -> dict[str, Any]:
        """C(ψ) measured with the simulator (``showers`` at each objective energy); not counted in ``showers_``."""
        design = self.design_ if design is None else design
        before = (getattr(self.simulator, "showers", None), getattr(self.simulator, "calls", None))
        result = self.objective.measure(self.simulator, design, showers, seed)
        if before[0] is not None:  # an evaluation of the result, not a call of the method
            self.simulator.showers, self.simulator.calls = before
        return result

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-able values: design_, path_, showers_, calls_, the settings."""
        return {"design": self.design_, "start": self.start, "showers": self.showers_, "calls": self.calls_,
                "stopped": self.stopped_, "path": self.path_,
                "parameters": [{"name": p.name, "low": p.low, "high": p.high} for p in self.parameters],
                "objective": {"energies": list(self.objective.energies), "per_metre": self.objective.per_metre,
                              "per_lead": self.objective.per_lead},
                "settings": {"points": self.points, "showers": self.showers, "trust": self.trust, "steps": self.steps,
                             "lr": self.lr, "margin": self.margin, "iterations": self.iterations, "budget": self.budget,
                             "samples": self.samples, "energy": list(self.energy), "seed": self.seed}}


def _floats(design: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in design.items()}


def optimise_design(parameters: Sequence[Parameter | str], **options: Any) -> DesignStudy:
    """``DesignStudy(parameters, **options).fit()``."""
    return DesignStudy(parameters, **options).fit()
