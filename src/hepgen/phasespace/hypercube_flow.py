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

Three options from MadNIS (Heimel et al., arXiv 2212.06172, 2311.01548), each off by default:

- ``vegas_calls = N``: before training, the ``vegas`` package adapts a grid to f with N calls, and the grid
  becomes the flow's first, frozen layer (:class:`~hepgen.phasespace.vegas_grid.VegasGrid`): the flow starts as
  the VEGAS sampler and the splines learn what the grid cannot (correlations, peaks off the axes).
- ``buffer_steps = K``: after each fresh batch (f called), K optimisation steps reuse stored events of the last
  ``buffer_batches`` fresh batches: x, f(x) and the density g(x) they were drawn from, with importance weights
  relative to g (the gradients of both losses are expectations over q, re-weighted to g). ``calls_`` counts
  every integrand call of a fit (the VEGAS grid's, the zero check's, the fresh batches'); buffered steps make none.
- ``channels = C > 1`` (multi-channel): one flow conditioned on the channel (a one-hot context) gives C
  densities q_c, and channel weights α_c(x) ≥ 0, Σ_c α_c = 1 (a softmax of an MLP of x, or of C trainable
  constants) split f = Σ_c α_c f. An event is drawn from channel c with probability p_c, with weight
  w = α_c(x) f(x) / (p_c q_c(x)), so E[w] = Σ_c ∫ α_c f = ∫ f whatever α and p, and unweighting works on w as on
  one sampler. Trained on the multi-channel variance: with M_c = E_{q_c}[(α_c f/q_c)²] and the optimal p_c ∝ √M_c,
  Var w = (Σ_c √M_c)² − I², whose gradient Σ_c ∇M_c/√M_c is estimated from (α_c f/q_c)² (2∇log α_c − ∇log q_c)
  on channel-c events (drawn C-uniformly in training); p_c ∝ √M_c is kept as a running average. With
  ``loss = "kl"`` the flows learn −(α_c f/q_c) ∇log q_c (q_c towards α_c f) and α still the variance. Useful for
  integrands with several peaks or resonances, where one channel may follow each.

And one from importance sampling's own toolbox: ``defensive = α > 0`` (Hesterberg's defensive mixture, Technometrics
37 (1995) 185) samples from q_α = (1 − α) q + α q₀ with q₀ the VEGAS grid alone (uniform points through its map; the
uniform density without a grid). Training is unchanged (q is trained); only the sampler's density changes, and
with it every weight: w = f/q_α ≤ f/(α q₀) is bounded by the grid's own weights over α wherever the flow's density
falls short, which is what sets the largest weights (and so the unweighting efficiency) of a trained flow: on the
camel at d = 4 (3e5 training calls, 1e6 events) ⟨w⟩/max w went from 0.040 to 0.114, 0.143, 0.186 for α = 0.01,
0.03, 0.1 while ⟨w⟩/w_(0.999) rose from 0.374 to 0.397 (benchmarks/phase_space.py). With channels the mixture is
over Σ_c p_c q_c, and each event's weight is f/q_α (no channel weights α_c).
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
from hepgen.nn.mlp import MLP
from hepgen.nn.rng import seeded
from hepgen.options import excerpt
from hepgen.phasespace.vegas_grid import VegasGrid, adapt_grid
from hepgen.targets import INTEGRANDS, Target, make_target
from hepgen.targets.user import UserIntegrand, load_function

LOSSES = ("kl", "variance")
CHANNEL_WEIGHTS = ("network", "constant")
#: weight of the newest batch in the running second moments M_c of the channels
MOMENT_DECAY = 0.1
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
        target: the integrand: one of gaussian, camel, ring, breit-wigner, eeqqg (:mod:`hepgen.targets`), a
            :class:`~hepgen.targets.Target` on the unit hypercube, or a function f(x): x (batch, d) -> (batch,)
            values >= 0, torch or NumPy (:mod:`hepgen.targets.user`).
        integrand: the user's function from a file, FILE.py:NAME (imported from that path only; the run records
            the path and sha256, and ``hepgen.load``/``hepgen sample`` need it given again).
        dims: dimensions d (default 2; breit-wigner: 3; eeqqg: 2; the user's integrand: required).
        width: peak width of gaussian / camel / ring (None: the target's default).
        ycut: eeqqg's resolution cut y_ij > ycut. alpha_s: eeqqg's strong coupling.
        transforms: coupling layers (masks alternate). hidden: conditioner MLP sizes. bins: spline bins.
        loss: "variance" (χ² of the weights) or "kl".
        anneal: steps trained on f^β, β from ``anneal_start`` up to 1 (module doc); 0: none.
        vegas_calls: integrand calls with which the vegas package adapts a grid, the flow's first (frozen) layer,
            before training; 0: no VEGAS layer. vegas_bins: the grid's increments per dimension.
            vegas_iterations: VEGAS adaptation passes over those calls.
        buffer_steps: optimisation steps on stored events (x, f, proposal density) after each fresh batch,
            reusing integrand calls (0: every step calls f). buffer_batches: fresh batches kept for them.
        channels: multi-channel sampling with this many channels (1: one). channel_weights: how α_c(x) is
            learned, "network" (a softmax of an MLP of x) or "constant" (a softmax of C trainable numbers).
        defensive: the fraction α in [0, 1) of events the sampler draws from the VEGAS grid alone (uniform without
            one): the density becomes (1 − α) q + α q₀ (module doc); training is unchanged. 0: the flow alone.
    """

    cli_name = "hypercube-flow"
    data_free = True

    def __init__(self, target: str | Target | Callable[..., Any] = "camel", dims: int | None = None,
                 width: float | None = None, ycut: float = 0.01, alpha_s: float = 0.118, transforms: int | None = None,
                 hidden: Sequence[int] = (64, 64), bins: int = 16, loss: str = "variance", anneal: int = 0,
                 anneal_start: float = 0.01, integrand: str | None = None, vegas_calls: int = 0,
                 vegas_bins: int = 64, vegas_iterations: int = 10, buffer_steps: int = 0, buffer_batches: int = 4,
                 channels: int = 1, channel_weights: str = "network", defensive: float = 0.0):
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
        for key, value, low in (("vegas_calls", vegas_calls, 0), ("vegas_bins", vegas_bins, 1),
                                ("vegas_iterations", vegas_iterations, 1), ("buffer_steps", buffer_steps, 0),
                                ("buffer_batches", buffer_batches, 1), ("channels", channels, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ConfigError(f"hypercube-flow: {key} must be an integer >= {low}, got {value!r}")
        if 0 < vegas_calls < 2 * vegas_iterations:
            raise ConfigError(f"hypercube-flow: vegas_calls={vegas_calls} is below 2 calls per VEGAS iteration "
                              f"(vegas_iterations={vegas_iterations}); give more calls or 0 for no VEGAS layer")
        if isinstance(defensive, bool) or not isinstance(defensive, (int, float, np.floating, np.integer)) \
                or not 0.0 <= float(defensive) < 1.0:
            raise ConfigError(f"hypercube-flow: defensive must be a fraction in [0, 1), got {defensive!r}")
        if channel_weights not in CHANNEL_WEIGHTS:
            raise ConfigError(f"hypercube-flow: channel_weights must be one of {', '.join(CHANNEL_WEIGHTS)}, got "
                              f"{channel_weights!r}")
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
        self.vegas_calls, self.vegas_bins, self.vegas_iterations = int(vegas_calls), int(vegas_bins), int(vegas_iterations)
        self.buffer_steps, self.buffer_batches = int(buffer_steps), int(buffer_batches)
        self.channels, self.channel_weights = int(channels), channel_weights
        self.defensive = float(defensive)
        context = self.channels if self.channels > 1 else 0
        layers = [spline_coupling(masks[i % len(masks)], self.hidden, context, self.bins, 0.5)
                  for i in range(self.transforms)]
        self.grid = VegasGrid(d, self.vegas_bins) if self.vegas_calls > 0 else None
        self._set_parts(CentredUniform(d), ([self.grid] if self.grid is not None else []) + layers)
        if self.channels > 1:  # α_c(x) = softmax of these logits (module doc)
            self.alpha_net = (MLP(d, self.channels, self.hidden) if channel_weights == "network"
                              else nn.Parameter(torch.zeros(self.channels)))
            self.register_buffer("log_moments_", torch.full((self.channels,), math.nan, dtype=torch.float64))
        self.anneal, self.anneal_start = int(anneal), float(anneal_start)
        self.register_buffer("steps_", torch.zeros((), dtype=torch.long))  # training steps taken (for anneal)
        #: integrand calls made while fitting (all fits of this model): the VEGAS grid's, the zero check's and the
        #: fresh batches'; buffered steps make none. A plain number (config.yaml's fitted section), not a buffer,
        #: so that restoring the best epoch's weights does not roll it back (a resumed fit counts from its resume)
        self.calls_ = 0
        self.register_buffer("vegas_calls_", torch.zeros((), dtype=torch.long))  # spent on the grid (0: not adapted)
        self._buffer: list[dict[str, Tensor]] = []  # the last fresh batches, for buffered steps
        self._step_in_cycle = 0
        self.reset_parameters()

    def _make_target(self, target: Any, dims: int | None, width: float | None, ycut: float, alpha_s: float,
                     integrand: str | None) -> Target:
        """The integrand: a built-in name, the user's ``integrand`` file ``path.py:NAME``, a Target or a callable."""
        if integrand is not None:
            if isinstance(target, Target) or callable(target) or target not in ("camel", "user"):
                raise ConfigError(f"hypercube-flow: integrand={excerpt(integrand)} and target="
                                  f"{excerpt(getattr(target, 'name', target))} name two integrands; give one of them")
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
        default_dims = 3 if target == "breit-wigner" else 2
        return make_target(target, dims=default_dims if dims is None else dims, width=width)

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
        log_f = self.log_f(x)
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

    # -- fitting hooks --------------------------------------------------------------------------------------
    def reset_parameters(self) -> None:
        """Re-draw the weights (the flow starts as the identity, the channel weights near uniform), and forget the
        VEGAS grid and the buffer: a new fit adapts afresh. ``calls_`` keeps counting (every fit's calls)."""
        super().reset_parameters()
        if self.channels > 1:
            with torch.no_grad():
                if isinstance(self.alpha_net, nn.Parameter):
                    self.alpha_net.zero_()
                self.log_moments_.fill_(math.nan)
        if self.grid is not None:
            self.grid.set_edges(torch.linspace(0.0, 1.0, self.vegas_bins + 1, dtype=torch.float64)
                                .expand(self.dims, -1))
            self.vegas_calls_.zero_()
        self._buffer, self._step_in_cycle = [], 0

    def on_fit_start(self, events: Any) -> None:
        """Adapt the VEGAS grid (``vegas_calls`` > 0) before the first step, unless this model already has one (a
        warm start keeps it); its seed comes from the fit's RNG, so a seeded fit is reproducible."""
        if self.grid is None or int(self.vegas_calls_) > 0:
            return
        seed = int(torch.randint(0, 2**31 - 1, (1,)))

        def f(x: np.ndarray) -> np.ndarray:
            return self.target(torch.as_tensor(x, dtype=torch.float64)).cpu().numpy()

        edges, made = adapt_grid(f, self.dims, self.vegas_calls, self.vegas_iterations, self.vegas_bins, seed=seed)
        self.grid.set_edges(edges)
        self.vegas_calls_.fill_(made)
        self.calls_ += int(made)

    def log_f(self, x: Tensor) -> Tensor:
        """log f(x) in float64, counted in ``calls_`` (the calls of fitting)."""
        self.calls_ += len(x)
        return self.target.log_prob(x.double())

    # -- the density on [0, 1]^d ---------------------------------------------------------------------------
    def _one_hot(self, channel: Tensor) -> Tensor | None:
        dtype = next(self.transform.parameters()).dtype
        return None if self.channels == 1 else nn.functional.one_hot(channel, self.channels).to(dtype)

    def channel_log_prob(self, x: Tensor, channel: Tensor | None = None) -> Tensor:
        """log q_c(x) of each event's channel: x (batch, d) in [0, 1]^d, channel (batch,) long (None: one channel)."""
        context = None if channel is None else self._one_hot(channel)
        return super().log_prob_internal(x - 0.5, context)

    def channel_sample(self, channel: Tensor | None, n: int | None = None) -> tuple[Tensor, Tensor]:
        """(x (n, d), log q_c(x) (n,)) drawn from each event's channel (channel (n,) long; None: n from the one)."""
        context = None if channel is None else self._one_hot(channel)
        v, log_q = super().sample_internal(len(channel) if channel is not None else int(n), context)
        return (v + 0.5).clamp(0.0, 1.0), log_q

    def log_alpha(self, x: Tensor) -> Tensor:
        """log α_c(x) of every channel: x (batch, d) -> (batch, channels), Σ_c α_c = 1 (multi-channel only)."""
        logits = self.alpha_net(x) if isinstance(self.alpha_net, nn.Module) else self.alpha_net.expand(len(x), -1)
        return torch.log_softmax(logits, -1)

    def channel_probabilities(self) -> Tensor:
        """p_c ∝ √M_c from the running second moments (uniform before training): (channels,) float64."""
        log_m = self.log_moments_
        if not bool(torch.isfinite(log_m).all()):
            return torch.full((self.channels,), 1.0 / self.channels, dtype=torch.float64, device=log_m.device)
        return torch.softmax(0.5 * log_m, 0)

    def log_prob_internal(self, u: Tensor, context: Tensor | None = None) -> Tensor:
        """log q(x) of the sampler: x (batch, d) in [0, 1]^d -> (batch,); −inf outside the cube. With channels,
        log Σ_c p_c q_c(x); with ``defensive`` = α, log((1 − α) q(x) + α q₀(x)) (module doc)."""
        if self.defensive == 0.0:
            return self._flow_log_prob(u)
        return torch.logaddexp(math.log1p(-self.defensive) + self._flow_log_prob(u),
                               math.log(self.defensive) + self._defence_log_prob(u).to(u.dtype))

    def sample_internal(self, n: int, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(x (n, d), log q(x) (n,)) from the sampler: with channels from the mixture Σ_c p_c q_c, with
        ``defensive`` = α a Binomial(n, α) share from the grid alone (module doc), in random order."""
        if self.defensive == 0.0:
            return self._flow_sample(n)
        n = int(n)
        k = int(torch.distributions.Binomial(n, torch.tensor(self.defensive)).sample())
        x_flow, log_flow = self._flow_sample(n - k)
        x_def = self._defence_sample(k).to(x_flow.dtype)
        x = torch.cat([x_flow, x_def])
        log_q_flow = torch.cat([log_flow, self._flow_log_prob(x_def)])
        log_q = torch.logaddexp(math.log1p(-self.defensive) + log_q_flow,
                                math.log(self.defensive) + self._defence_log_prob(x).to(log_q_flow.dtype))
        order = torch.randperm(n, device=x.device)
        return x[order], log_q[order]

    def _defence_log_prob(self, x: Tensor) -> Tensor:
        """log q₀(x): the VEGAS grid's density (uniform points through its map), 0 (uniform) without a grid."""
        if self.grid is None:
            return torch.zeros(len(x), dtype=torch.float64, device=x.device)
        return self.grid.invmap(x.double())[1]

    def _defence_sample(self, n: int) -> Tensor:
        y = torch.rand(n, self.dims, dtype=torch.float64, device=self.steps_.device)
        return y if self.grid is None else self.grid.map(y)[0]

    def _flow_log_prob(self, u: Tensor) -> Tensor:
        if self.channels == 1:
            return self.channel_log_prob(u)
        p = self.channel_probabilities().to(u.dtype)
        parts = [torch.log(p[c]) + self.channel_log_prob(u, torch.full((len(u),), c, dtype=torch.long, device=u.device))
                 for c in range(self.channels)]
        return torch.logsumexp(torch.stack(parts, -1), -1)

    def _flow_sample(self, n: int) -> tuple[Tensor, Tensor]:
        if self.channels == 1:
            return self.channel_sample(None, n)
        x, _ = self.channel_sample(self._draw_channels(int(n)))
        return x, self._flow_log_prob(x)

    def _draw_channels(self, n: int) -> Tensor:
        p = self.channel_probabilities()
        return torch.multinomial(p.float().cpu(), int(n), replacement=True).to(self.steps_.device)

    # -- training ---------------------------------------------------------------------------------------------
    def training_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per-event loss (module doc) and ``weight`` w = f/q (its mean: the integral estimate; on a buffered step
        the fresh batch's weights are not redrawn: the stored events' f/g)."""
        beta = self.beta()
        training = self.training and torch.is_grad_enabled()
        if training:
            with torch.no_grad():
                self.steps_ += 1
        n = len(batch["w"])
        buffered = training and self.buffer_steps > 0 and self._step_in_cycle > 0 and bool(self._buffer)
        with torch.no_grad():
            if buffered:  # stored events: x, channel, log f, log g (the density they were drawn from)
                stored = {k: torch.cat([b[k] for b in self._buffer]) for k in self._buffer[0]}
                pick = torch.randint(0, len(stored["x"]), (n,), device=stored["x"].device)
                x, channel, log_f, log_g = (stored[k][pick] for k in ("x", "channel", "log_f", "log_g"))
                channel = channel if self.channels > 1 else None
            else:
                channel = (torch.arange(n, device=self.steps_.device) % self.channels if self.channels > 1 else None)
                x, log_g = self.channel_sample(channel, n)
                log_f = self.log_f(x)
                if training and self.buffer_steps > 0:
                    self._buffer = (self._buffer + [{"x": x, "channel": channel if channel is not None else
                                                     torch.zeros(n, dtype=torch.long, device=x.device),
                                                     "log_f": log_f, "log_g": log_g.double()}])[-self.buffer_batches:]
            if training and self.buffer_steps > 0:
                self._step_in_cycle = (self._step_in_cycle + 1) % (self.buffer_steps + 1)
        log_q = self.channel_log_prob(x, channel)  # with gradient
        log_alpha = (self.log_alpha(x).gather(1, channel[:, None])[:, 0] if channel is not None
                     else torch.zeros_like(log_q))
        with torch.no_grad():
            # log of α_c f^β / g (the weight with respect to the proposal) and of α_c f^β / q (the current one)
            log_af = beta * log_f + log_alpha.double()
            log_w_g = log_af - log_g.double()
            log_w_q = log_af - log_q.double()
            if self.loss == "kl":  # ∇KL ∝ −E_g[(α f/g) ∇log q]
                log_c = log_w_g
            else:  # ∇E_q[w²] = −E_g[(α f)²/(q g) ∇log q]
                log_c = log_w_q + log_w_g
            log_v = log_w_q + log_w_g  # the variance coefficient, for α
            if channel is not None:
                log_v = self._moment_scaled(log_v, channel, training and not buffered)
                if self.loss != "kl":
                    log_c = log_v
            c, v = _normalised(log_c, x.dtype), _normalised(log_v, x.dtype)
            weight = torch.exp(log_f + log_alpha.double() - log_g.double()
                               + (math.log(self.channels) if channel is not None else 0.0)).to(x.dtype)
        loss = -c * log_q
        if channel is not None:
            loss = loss + 2.0 * v * log_alpha
        return {"loss": loss, "weight": weight}

    @torch.no_grad()
    def _moment_scaled(self, log_v: Tensor, channel: Tensor, update: bool) -> Tensor:
        """log_v − ½ log M_c (the multi-channel variance's gradient, module doc), updating the running M_c from a
        fresh batch's (α_c f/q_c)² when ``update``."""
        if update:
            for c in range(self.channels):
                sel = log_v[channel == c]
                if len(sel) == 0 or not bool(torch.isfinite(sel).any()):
                    continue
                new = torch.logsumexp(sel, 0) - math.log(len(sel))
                old = self.log_moments_[c]
                self.log_moments_[c] = new if not bool(torch.isfinite(old)) else torch.logaddexp(
                    old + math.log1p(-MOMENT_DECAY), new + math.log(MOMENT_DECAY))
        log_m = self.log_moments_.to(log_v.device)
        if not bool(torch.isfinite(log_m).all()):
            return log_v
        return log_v - 0.5 * log_m[channel]

    def beta(self) -> float:
        """The exponent of f in the current training step: anneal_start^(1 − step/anneal), 1 after ``anneal``."""
        if self.anneal == 0 or int(self.steps_) >= self.anneal:
            return 1.0
        return self.anneal_start ** (1.0 - int(self.steps_) / self.anneal)

    # -- integration and events -----------------------------------------------------------------------------
    @torch.no_grad()
    def weighted_events(self, n: int, batch_size: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
        """(x (n, d), w (n,)) as float64 NumPy, from the current torch RNG: w = f(x)/q(x), or with channels
        w = α_c(x) f(x)/(p_c q_c(x)) for an event of channel c drawn with probability p_c, or with ``defensive``
        w = f(x)/q_α(x) (module doc)."""
        xs, ws = [], []
        for start in range(0, int(n), int(batch_size)):
            k = min(int(batch_size), int(n) - start)
            if self.defensive > 0.0 or self.channels == 1:  # w = f/q of the sampler's density
                x, log_q = self.sample_internal(k) if self.defensive > 0.0 else self.channel_sample(None, k)
                log_w = self.target.log_prob(x.double()) - log_q.double()
            else:
                channel = self._draw_channels(k)
                x, log_q = self.channel_sample(channel)
                log_p = torch.log(self.channel_probabilities())[channel]
                log_alpha = self.log_alpha(x).gather(1, channel[:, None])[:, 0].double()
                log_w = self.target.log_prob(x.double()) + log_alpha - log_q.double() - log_p
            ws.append(torch.exp(log_w).cpu().numpy())
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
        return {**super().extra_state(), "target_config": self.target.get_config(), "calls": int(self.calls_)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.calls_ = int(state.get("calls") or 0)



def _normalised(log_c: Tensor, dtype: torch.dtype) -> Tensor:
    """c / mean(c) from log c (batch,), in log space (weights far below the float range still count); zeros
    when no event has c > 0 (nothing to learn from this batch)."""
    if not bool(torch.isfinite(log_c).any()):
        return torch.zeros(len(log_c), dtype=dtype, device=log_c.device)
    return torch.exp(log_c - torch.logsumexp(log_c, 0) + math.log(len(log_c))).to(dtype)


__all__ = ["CentredUniform", "HypercubeFlow"]
