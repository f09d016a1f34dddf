"""A flow on the unit hypercube for integration and unweighted event generation (i-flow, Gao et al. 2020).

x = f⁻¹(z) + ½ with z uniform on [−½, ½]^d and f⁻¹ a chain of rational-quadratic spline couplings whose
box is exactly [−½, ½] (:func:`hepgen.flows.transforms.spline_coupling` with ``bound = 0.5``): q(x) =
|det ∂f/∂x| is a density on [0, 1]^d with no mass outside. The layers cycle through i-flow's binary masks
(:func:`binary_masks`): with 2⌈log₂ d⌉ layers every dimension is transformed ⌈log₂ d⌉ times, and for every
pair of dimensions once conditioned on the other (plain alternating masks condition dimension 0 on
dimension 2 never). Trained on an integrand f ≥ 0 (:mod:`hepgen.targets`) from its own draws, without
gradients of f (phase-space cuts are steps):

    kl        ∇ KL(f/I ‖ q) = −E_q[w ∇ log q] / I,      per-event loss −(w/w̄) log q(x)
    variance  ∇ Var_q(w)     = −E_q[w² ∇ log q],         per-event loss −(w²/⟨w²⟩) log q(x)

with w = f(x)/q(x) drawn without gradient and log q(x) re-evaluated with gradient (the batch means w̄,
⟨w²⟩ only set the scale; computed in log space, so weights far below the float range still count). The
variance (χ²) loss weighs the largest weights most and gives the better unweighting efficiency.
``anneal = K`` trains the first K steps on f^β with β rising geometrically from ``anneal_start`` to 1
(then on f): a broad f^β is found by a flow that starts uniform even in d = 16, where f's peaks cover
~1e-10 of the cube, and its modes are kept while they narrow (without it the flow may settle on one
peak of the camel and miss half the integral, as VEGAS does). Use the mode-covering ``kl`` loss there: the
χ² loss, led by the few largest weights, followed one peak of the 16-d camel even while annealing
(benchmarks/integration_vs_vegas.py: 0.52 ± 0.06 with χ², 0.990 ± 0.004 with KL, for 0.993). ``train_weight`` in metrics.csv is the
running integral estimate (of f, whatever β).
Then ∫f = E_q[w] (:meth:`HypercubeFlow.integrate`), and unweighted events come from accept–reject
against the maximum weight (:func:`hepgen.phasespace.integration.unweight`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepgen.errors import ConfigError
from hepgen.flows.model import FlowModel
from hepgen.flows.transforms import spline_coupling
from hepgen.models import register
from hepgen.nn.rng import seeded
from hepgen.targets import INTEGRANDS, Target, make_target
from hepgen.targets.user import UserIntegrand, load_function

LOSSES = ("kl", "variance")
#: float32 tensors kept per event, transform and transformed dimension while training (the spline's bin
#: widths, heights and derivatives and their intermediates, with gradients), measured ~0.75 at d = 100-200
FLOATS_PER_SPLINE_PARAMETER = 1.0


def binary_masks(d: int) -> list[Tensor]:
    """i-flow's masks for d >= 2: for each bit b < ⌈log₂ d⌉ the features whose index has bit b clear, then
    its complement: 2⌈log₂ d⌉ masks (True = conditions), in which every feature is transformed ⌈log₂ d⌉
    times and, for every pair i ≠ j, once conditioned on the other (their indices differ in some bit)."""
    idx = torch.arange(int(d))
    masks = []
    for b in range(max(1, math.ceil(math.log2(d)))):
        m = (idx >> b) % 2 == 0
        masks += [m, ~m]
    return masks


def coupling_parameters(dims: int, transforms: int, hidden: Sequence[int], bins: int) -> int:
    """Weights of the flow's conditioners: per layer an MLP from the conditioning dimensions through ``hidden``
    to 3·bins − 1 spline parameters per transformed dimension (computed without building the flow)."""
    masks = binary_masks(dims)
    total = 0
    for i in range(int(transforms)):
        conditioning = int(masks[i % len(masks)].sum())
        sizes = [conditioning, *(int(h) for h in hidden), (int(dims) - conditioning) * (3 * int(bins) - 1)]
        total += sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    return total


def training_memory(dims: int, batch_size: int, transforms: int, hidden: Sequence[int], bins: int) -> int:
    """Bytes a training step needs, roughly: the weights with their gradients and Adam's two moments (16 bytes
    each) plus the activations, batch × transforms × (dims × (3·bins − 1) + 4 Σ hidden) float32."""
    weights = 16 * coupling_parameters(dims, transforms, hidden, bins)
    per_event = int(transforms) * (int(dims) * (3 * int(bins) - 1) * FLOATS_PER_SPLINE_PARAMETER
                                   + 4 * sum(int(h) for h in hidden))
    return int(weights + 4 * int(batch_size) * per_event)


class CentredUniform(nn.Module):
    """U([−½, ½]^d): log density 0 inside, −inf outside."""

    def __init__(self, features: int):
        super().__init__()
        self.features = int(features)
        self.register_buffer("_anchor", torch.zeros(()))

    def log_prob(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        inside = (z.abs() <= 0.5).all(-1)
        return torch.where(inside, 0.0, -torch.inf).to(z.dtype)

    def sample_and_log_prob(self, n: int, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z = torch.rand(int(n), self.features, dtype=self._anchor.dtype, device=self._anchor.device) - 0.5
        return z, z.new_zeros(int(n))


@register
class HypercubeFlow(FlowModel):
    """Spline-coupling flow on [0, 1]^dims trained to an integrand (module doc).

    Args:
        target: the integrand: one of gaussian, camel, ring, eeqqg (:mod:`hepgen.targets`), a
            :class:`~hepgen.targets.Target` on the unit hypercube, or a function f(x): x (batch, d) -> (batch,)
            values >= 0, torch or NumPy (:mod:`hepgen.targets.user`).
        integrand: the user's function from a file, FILE.py:NAME (imported from that path only; the run records
            the path and sha256, and ``hepgen.load``/``hepgen sample`` need it given again).
        dims: dimensions d (default 2; eeqqg: 2; the user's integrand: required).
        width: peak width of gaussian / camel / ring (None: the target's default).
        ycut: eeqqg's resolution cut y_ij > ycut. alpha_s: eeqqg's strong coupling.
        transforms: coupling layers (masks alternate). hidden: conditioner MLP sizes. bins: spline bins.
        loss: "variance" (χ² of the weights) or "kl".
        anneal: steps trained on f^β, β from ``anneal_start`` up to 1 (module doc); 0: none.
    """

    cli_name = "hypercube-flow"
    data_free = True

    def __init__(self, target: str | Target | Callable[..., Any] = "camel", dims: int | None = None,
                 width: float | None = None, ycut: float = 0.01, alpha_s: float = 0.118, transforms: int | None = None,
                 hidden: Sequence[int] = (64, 64), bins: int = 16, loss: str = "variance", anneal: int = 0,
                 anneal_start: float = 0.01, integrand: str | None = None):
        self.user_code_: dict[str, Any] | None = None  # the user's file (path, name, sha256): the run records it
        self_target = self._make_target(target, dims, width, ycut, alpha_s, integrand)
        if self_target.dim < 2:
            raise ConfigError(f"hypercube-flow needs dims >= 2 (coupling layers), got {dims}")
        if loss not in LOSSES:
            raise ConfigError(f"hypercube-flow: loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        if isinstance(anneal, bool) or int(anneal) != anneal or anneal < 0:
            raise ConfigError(f"hypercube-flow: anneal must be an integer >= 0 (steps), got {anneal!r}")
        if not 0.0 < float(anneal_start) <= 1.0:
            raise ConfigError(f"hypercube-flow: anneal_start must be in (0, 1], got {anneal_start!r}")
        d = self_target.dim
        masks = binary_masks(d)
        transforms = 2 * len(masks) if transforms is None else transforms
        if int(transforms) < 1 or int(bins) < 1 or not hidden or any(int(h) < 1 for h in hidden):
            raise ConfigError(f"hypercube-flow needs transforms >= 1, bins >= 1 and positive hidden sizes (got "
                              f"transforms={transforms}, bins={bins}, hidden={list(hidden)})")
        super().__init__((d,), 0, "none")
        self.target = self_target
        self.dims, self.width, self.ycut, self.alpha_s = d, width, float(ycut), float(alpha_s)
        self._target_arg = target if isinstance(target, str) else "user"
        self.integrand = None  # never recorded: see get_config
        self.transforms, self.hidden, self.bins, self.loss = int(transforms), tuple(int(h) for h in hidden), int(bins), loss
        self._set_parts(CentredUniform(d), [spline_coupling(masks[i % len(masks)], self.hidden, 0, self.bins, 0.5)
                                            for i in range(self.transforms)])
        self.anneal, self.anneal_start = int(anneal), float(anneal_start)
        self.register_buffer("steps_", torch.zeros((), dtype=torch.long))  # training steps taken (for anneal)
        self.reset_parameters()

    def _make_target(self, target: Any, dims: int | None, width: float | None, ycut: float, alpha_s: float,
                     integrand: str | None) -> Target:
        """The integrand: a built-in name, the user's ``integrand`` file ``path.py:NAME``, a Target or a callable."""
        if integrand is not None:
            if not isinstance(integrand, str):
                raise ConfigError(f"hypercube-flow: integrand must be a path FILE.py:NAME, got {type(integrand).__name__}"
                                  "; pass a Python function as target=")
            function, source = load_function(integrand, "--integrand")
            self.user_code_ = {"option": "integrand", **source}
            return UserIntegrand(function, self._user_dims(dims), source)
        if isinstance(target, Target):
            if target.domain != "unit-hypercube":
                raise ConfigError(f"hypercube-flow: the target {target.name!r} is defined on {target.domain}, not on the "
                                  "unit hypercube")
            if dims is not None and int(dims) != target.dim:
                raise ConfigError(f"hypercube-flow: dims={dims} but the target {target.name!r} has {target.dim}")
            self.user_code_ = {"option": "target", "name": type(target).__qualname__}
            return target
        if callable(target):
            self.user_code_ = {"option": "target", "name": getattr(target, "__qualname__", type(target).__name__)}
            return UserIntegrand(target, self._user_dims(dims))
        if target == "user":
            raise ConfigError("hypercube-flow: target 'user' is the user's own integrand: give it, "
                              "integrand='my_f.py:NAME' (--integrand on the command line) or target=<the function>")
        if target not in INTEGRANDS:
            raise ConfigError(f"hypercube-flow: target must be one of {', '.join(INTEGRANDS)}, a function f(x) on "
                              f"[0, 1]^d (--integrand my_f.py:NAME) or a Target, got {target!r}")
        if target == "eeqqg":
            if dims is not None and int(dims) != 2:
                raise ConfigError(f"hypercube-flow: target 'eeqqg' has dims 2 (x1, x2), got dims={dims}")
            return make_target("eeqqg", ycut=ycut, alpha_s=alpha_s)
        return make_target(target, dims=2 if dims is None else dims, width=width)

    @staticmethod
    def _user_dims(dims: int | None) -> int:
        if dims is None:
            raise ConfigError("hypercube-flow: the user's integrand needs its dimension: give --dims D (dims=D)")
        return int(dims)

    def get_config(self) -> dict[str, Any]:
        # the user's own code is never named here: hepgen.load must not import it (the run records its path and
        # sha256 in config.yaml's user_code section, through hepgen.train.rundir)
        return {**super().get_config(), "target": self._target_arg if self.user_code_ is None else "user",
                "integrand": None}

    def user_code(self) -> dict[str, Any] | None:
        """The user's code this model evaluates: ``{"option", "path", "name", "sha256"}`` (path and sha256 only for
        a file given by path), or None for a built-in target; recorded by :meth:`hepgen.train.rundir.RunDir.save_model`."""
        return self.user_code_

    # -- checks before training -------------------------------------------------------------------------------
    def check_fit(self, batch_size: int, device: torch.device | str = "cpu", available: float | None = None) -> None:
        """The engine's call before training: refuse a batch whose training step cannot fit in the memory
        ``available`` (default: what the device has, :func:`hepgen.train.resources.available_memory`), and an
        integrand that is 0 (in float64) at every point of a first batch, where training would see only zeros."""
        from hepgen.train.resources import check_memory

        need = training_memory(self.dims, batch_size, self.transforms, self.hidden, self.bins)
        check_memory(need, f"hypercube-flow training (dims={self.dims}, {self.transforms} transforms, hidden "
                           f"{','.join(map(str, self.hidden))}, bins={self.bins}) at batch size {batch_size}",
                     "lower --batch-size, --dims, --transforms, --hidden or --bins", device, available)
        self.check_target(batch_size)

    @torch.no_grad()
    def check_target(self, n: int, seed: int = 0) -> None:
        """Refuse an integrand that is 0 at each of ``n`` points drawn from the flow (uniform before training):
        a ConfigError naming the target, its largest log f and the options that widen it."""
        with seeded(seed, self.device):
            x, _ = self.sample_internal(int(n))
        log_f = self.target.log_prob(x.double())
        if bool((torch.exp(log_f) > 0).any()):
            return
        top = float(log_f.max())
        options = (", ".join(f"{k}={v}" for k, v in self.target.get_config().items() if k != "name"))
        hint = {"eeqqg": "lower --ycut", "matrix-element": "loosen the --cut values or check the matrix element",
                "user": "check the integrand (it is 0 almost everywhere)"}.get(
            self.target.name, "widen the peaks (--width) or lower --dims")
        raise ConfigError(f"hypercube-flow: the integrand {self.target.name} ({options}) is 0 in float64 at every "
                          f"one of the {int(n)} points of a first batch (largest log f = {top:.4g}): the training "
                          f"would see only zeros and the integral estimate would be 0; {hint}")

    # -- the density on [0, 1]^d ---------------------------------------------------------------------------
    def log_prob_internal(self, u: Tensor, context: Tensor | None = None) -> Tensor:
        """log q(x): x (batch, d) in [0, 1]^d -> (batch,); −inf outside the cube."""
        return super().log_prob_internal(u - 0.5, context)

    def sample_internal(self, n: int, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(x (n, d), log q(x) (n,))."""
        v, log_q = super().sample_internal(n, context)
        return (v + 0.5).clamp(0.0, 1.0), log_q

    def training_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per-event loss (module doc) and ``weight`` w = f/q (its mean: the integral estimate)."""
        beta = self.beta()
        if self.training and torch.is_grad_enabled():
            with torch.no_grad():
                self.steps_ += 1
        with torch.no_grad():
            x, log_q = self.sample_internal(len(batch["w"]))
            log_f = self.target.log_prob(x.double())
            log_w = beta * log_f - log_q.double()
            log_c = log_w if self.loss == "kl" else 2.0 * log_w
            if torch.isfinite(log_c).any():  # c = w^p / mean(w^p), in log space
                c = torch.exp(log_c - torch.logsumexp(log_c, 0) + math.log(len(log_c))).to(x.dtype)
            else:  # no draw inside the support: nothing to learn from this batch
                c = torch.zeros_like(log_q)
        return {"loss": -c * self.log_prob_internal(x), "weight": torch.exp(log_f - log_q.double()).to(x.dtype)}

    def beta(self) -> float:
        """The exponent of f in the current training step: anneal_start^(1 − step/anneal), 1 after ``anneal``."""
        if self.anneal == 0 or int(self.steps_) >= self.anneal:
            return 1.0
        return self.anneal_start ** (1.0 - int(self.steps_) / self.anneal)

    # -- integration and events -----------------------------------------------------------------------------
    @torch.no_grad()
    def weighted_events(self, n: int, batch_size: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
        """(x (n, d), w = f(x)/q(x) (n,)) as float64 NumPy, from the current torch RNG."""
        xs, ws = [], []
        for start in range(0, int(n), int(batch_size)):
            x, log_q = self.sample_internal(min(int(batch_size), int(n) - start))
            ws.append(torch.exp(self.target.log_prob(x.double()) - log_q.double()).cpu().numpy())
            xs.append(x.cpu().double().numpy())
        return np.concatenate(xs), np.concatenate(ws)

    def sample_weighted(self, n: int, batch_size: int = 100_000) -> tuple[Tensor, dict[str, np.ndarray]]:
        """(x (n, d), {"weight": w (n,)}): weighted events, E[w] = ∫ f."""
        x, w = self.weighted_events(n, batch_size)
        return torch.as_tensor(x), {"weight": w}

    def integrate(self, n: int, seed: int | None = None, batch_size: int = 100_000) -> dict[str, float]:
        """∫ f over the cube from n calls: integral, error, variance per call, unweighting efficiency, ESS.

        ``seed``: draw on torch's RNG seeded with it, leaving the caller's RNG state as it was (None: draw
        from the current RNG, advancing it)."""
        from hepgen.phasespace.integration import summarise

        if seed is None:
            return summarise(self.weighted_events(n, batch_size)[1])
        with seeded(seed, self.device):
            return summarise(self.weighted_events(n, batch_size)[1])

    def sample_unweighted(self, n: int, seed: int = 0, batch_size: int = 100_000, calibration: int = 100_000,
                          quantile: float = 1.0) -> dict[str, Any]:
        """n unweighted events by accept–reject (:func:`hepgen.phasespace.integration.unweight`), drawn on
        torch's RNG seeded with ``seed`` (the caller's RNG state is left as it was)."""
        from hepgen.phasespace.integration import unweight

        with seeded(seed, self.device):
            return unweight(lambda k: self.weighted_events(k, batch_size), n, seed=seed, calibration=calibration,
                            quantile=quantile, batch_size=batch_size)

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "target_config": self.target.get_config()}



__all__ = ["CentredUniform", "HypercubeFlow"]
