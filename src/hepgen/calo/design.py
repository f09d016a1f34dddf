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
calo simulator, else ``points`` designs of ``showers`` each; E uniform in the energy range), refreshes the
flow on every simulated shower inside the box (the first iteration trains it from fresh weights; each later
one simulates ``refresh_showers`` per design and continues from the last surrogate's weights and
preprocessing, the engine's warm start, for ``warm_epochs``), and takes Adam steps on ψ (in the unit box
coordinates) until ψ reaches the edge of the inner box ψ ± ``margin``·``trust`` (it leaves the trusted
region: refresh) or ``steps`` are done, with a step size proportional to the box.
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
from hepgen.options import Option, check_options, excerpt, parse_named_range

__all__ = ["SURROGATE", "CaloSimulator", "DesignStudy", "Parameter", "ResolutionObjective", "optimise_design",
           "parse_parameter", "surrogate_settings"]

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
        try:
            self.energies = tuple(float(e) for e in energies)
        except (TypeError, ValueError):
            raise ConfigError(f"the objective's energies must be positive GeV values, got {excerpt(energies)}") from None
        if not self.energies or not all(math.isfinite(e) and e > 0 for e in self.energies):
            raise ConfigError(f"the objective's energies must be positive, finite GeV values, got "
                              f"{excerpt(list(energies))}")
        costs = check_options({"per_metre": per_metre, "per_lead": per_lead},
                              {"per_metre": Option(0.01, low=0), "per_lead": Option(0.0, low=0)},
                              owner="the design objective")
        self.per_metre, self.per_lead = float(costs["per_metre"]), float(costs["per_lead"])

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


#: the surrogate flow's options (``DesignStudy(surrogate=...)``, ``hepgen design --option``), checked before any
#: simulation: the flow (its hyper-parameters) and its training by the engine. ``warm_epochs``: epochs of each refresh
#: after the first, which continues from the previous surrogate's weights (default: ``epochs``; the design benchmark
#: turned back with half as many on half the new showers);
#: ``device``: the engine's (``auto``: a GPU when there is one).
SURROGATE: dict[str, Option] = {
    "flow": Option("nsf", choices=("nsf", "maf")), "transforms": Option(3, low=1), "hidden": Option((64, 64), low=1),
    "bins": Option(8, low=2), "tail_bound": Option(5.0, low=0, low_open=True), "epochs": Option(20, low=1),
    "warm_epochs": Option(None, kind=int, low=1), "batch_size": Option(256, low=1),
    "lr": Option(2e-3, low=0, low_open=True), "device": Option("auto"),
}
_TRAINING = ("epochs", "warm_epochs", "batch_size", "lr", "device")


def surrogate_settings(options: Mapping[str, Any] | None) -> tuple[type, dict[str, Any], dict[str, Any]]:
    """(flow class, its hyper-parameters, its training settings) of a ``surrogate`` mapping, every value checked
    (:data:`SURROGATE`; a ConfigError naming the option) before anything is simulated."""
    from hepgen.flows.zoo import MAF, NSF
    from hepgen.train.engine import resolve_device

    given = check_options(dict(options or {}), SURROGATE, owner="the design surrogate", fill=False)
    kind = given.pop("flow", "nsf")
    if kind == "maf" and {"bins", "tail_bound"} & set(given):
        raise ConfigError("the design surrogate: bins and tail_bound are options of the spline flow (flow=nsf), "
                          "not of flow=maf")
    train = {k: given.pop(k) for k in _TRAINING if k in given}
    defaults = {k: SURROGATE[k].default for k in ("transforms", "hidden")}
    if kind == "nsf":
        defaults |= {k: SURROGATE[k].default for k in ("bins", "tail_bound")}
    train = {k: SURROGATE[k].default for k in _TRAINING} | train
    if train["warm_epochs"] is None:
        train["warm_epochs"] = train["epochs"]
    resolve_device(train["device"])  # an unknown or absent device is refused now, not after simulating
    return (NSF if kind == "nsf" else MAF), {**defaults, **given}, train


def _fit_flow(model: Any, context: np.ndarray, x: np.ndarray, train: Mapping[str, Any], seed: int,
              warm: bool) -> Any:
    """Train the surrogate p(x | ψ, ln E) with the engine: ``epochs`` from fresh weights, or ``warm_epochs``
    continuing from its current weights and preprocessing (``warm_start``: a refresh around a moved design)."""
    for param in model.parameters():  # frozen while the design steps through it
        param.requires_grad_(True)
    model.fit(x.astype(np.float32), context=context.astype(np.float32),
              epochs=train["warm_epochs"] if warm else train["epochs"], batch_size=train["batch_size"],
              lr=train["lr"], seed=seed, device=train["device"], quiet=True, warm_start=warm)
    for param in model.parameters():
        param.requires_grad_(False)
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
        refresh_showers: showers per design at each later iteration, whose warm-started surrogate already knows
            the response and also trains on the earlier showers inside its box (default: ``showers``).
        trust, min_trust: the trust box half-width and its lower limit, fractions of each range.
        steps, lr: Adam steps on ψ (unit coordinates) per iteration and their rate.
        margin: the steps stay within ψ ± margin·trust (the surrogate is least reliable at its box's edges).
        iterations: most surrogate refreshes. budget: most simulated showers (None: no limit).
        samples: surrogate samples per energy in the objective. features: how many of FEATURES to model (1-3).
        surrogate: flow options (:data:`SURROGATE`: flow "nsf"/"maf", transforms, hidden, bins, tail_bound; its
            training: epochs, warm_epochs, batch_size, lr, device). The first iteration trains the flow from fresh
            weights for ``epochs``; each later one refreshes it, continuing from its weights and preprocessing
            (the engine's ``warm_start``), for ``warm_epochs`` on the showers of the moved trust box.
        seed: the seed of the designs sampled, the simulator and the flow.
    """

    def __init__(self, parameters: Sequence[Parameter | str], start: Mapping[str, float] | None = None,
                 simulator: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None,
                 objective: ResolutionObjective | None = None, energy: tuple[float, float] | None = None,
                 points: int = 6, showers: int = 1000, refresh_showers: int | None = None, trust: float = 0.15,
                 min_trust: float = 0.02,
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
        energy = (min(e), max(e)) if energy is None else energy
        try:
            self.energy = (float(energy[0]), float(energy[1]))
        except (TypeError, ValueError, IndexError):
            raise ConfigError(f"--energy must be MIN:MAX GeV, got {excerpt(energy)}") from None
        if not (math.isfinite(self.energy[1]) and 0 < self.energy[0] <= self.energy[1]):
            raise ConfigError(f"--energy must be MIN:MAX with 0 < MIN <= MAX < inf GeV, got {self.energy}")
        settings = check_options(
            {"points": points, "showers": showers, "refresh_showers": refresh_showers, "steps": steps, "iterations": iterations, "samples": samples,
             "features": features, "trust": trust, "min_trust": min_trust, "lr": lr, "margin": margin,
             "budget": budget, "seed": seed},
            {"points": Option(6, low=1), "showers": Option(1000, low=10),
             "refresh_showers": Option(None, kind=int, low=10), "steps": Option(60, low=1),
             "iterations": Option(8, low=1), "samples": Option(2000, low=10),
             "features": Option(1, low=1, high=len(FEATURES)),
             "trust": Option(0.15, low=0, low_open=True, high=0.5), "min_trust": Option(0.02, low=0, low_open=True),
             "lr": Option(0.02, low=0, low_open=True), "margin": Option(0.6, low=0, low_open=True, high=1),
             "budget": Option(None, kind=int, low=1), "seed": Option(0)},
            owner="the design study")
        if settings["min_trust"] > settings["trust"]:
            raise ConfigError(f"min_trust ({settings['min_trust']}) must not exceed --trust ({settings['trust']})")
        per_iteration = settings["points"] * settings["showers"]
        if settings["budget"] is not None and settings["budget"] < per_iteration:
            raise ConfigError(f"--budget {settings['budget']} is below one iteration's {per_iteration} showers "
                              f"(--points x --showers)")
        self.margin = float(settings["margin"])
        self.points, self.showers, self.steps, self.iterations = (settings[k] for k in ("points", "showers", "steps",
                                                                                       "iterations"))
        self.samples, self.features = settings["samples"], settings["features"]
        self.trust, self.min_trust, self.lr = float(settings["trust"]), float(settings["min_trust"]), float(settings["lr"])
        self.budget = settings["budget"]
        self.refresh_showers = settings["refresh_showers"] if settings["refresh_showers"] is not None else self.showers
        self.surrogate = dict(surrogate or {})
        self._flow, self._flow_params, self._training = surrogate_settings(self.surrogate)
        try:  # the flow's hyper-parameters, checked by building it once (a few kB) before any simulation
            self._new_flow()
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"the design surrogate: {exc}") from None
        seed = settings["seed"]
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

    def _new_flow(self) -> Any:
        """A fresh surrogate p(x | ψ, ln E): ``features`` dimensions, context the parameters and ln E."""
        return self._flow(self.features, context=len(self.parameters) + 1, **self._flow_params)

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

    def _simulate(self, low: np.ndarray, high: np.ndarray, rng: np.random.Generator, seed: int, showers: int) -> None:
        """``points * showers`` showers in the box: one design per shower (simulate_box) or ``points`` designs."""
        n = self.points * showers
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
                energy, x = self.simulator(design, showers, self.energy[0], self.energy[1], seed + k)
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
            showers = self.showers if it == 0 else self.refresh_showers
            need = self.points * showers
            if self.budget is not None and self.showers_ + need > self.budget:
                self.stopped_ = "budget"
                break
            low, high = np.clip(u - trust, 0.0, 1.0), np.clip(u + trust, 0.0, 1.0)
            self._simulate(low, high, rng, self.seed * 100_003 + it * 101, showers)
            context, x = self._training_set(low, high)
            # the first surrogate from fresh weights, each refresh continues from the last (warm start)
            warm = it > 0
            self.model_ = _fit_flow(self.model_ if warm else self._new_flow(), context, x, self._training,
                                    self.seed + it, warm)
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
                "settings": {"points": self.points, "showers": self.showers, "refresh_showers": self.refresh_showers,
                             "trust": self.trust, "steps": self.steps,
                             "lr": self.lr, "margin": self.margin, "iterations": self.iterations, "budget": self.budget,
                             "samples": self.samples, "energy": list(self.energy), "seed": self.seed,
                             "surrogate": {"flow": self._flow.cli_name, **self._flow_params,
                                           **{k: v for k, v in self._training.items() if k != "device"}}}}


def _floats(design: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in design.items()}


def optimise_design(parameters: Sequence[Parameter | str], **options: Any) -> DesignStudy:
    """``DesignStudy(parameters, **options).fit()``."""
    return DesignStudy(parameters, **options).fit()
