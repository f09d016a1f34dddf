"""A normalizing flow for lattice field configurations of any action, trained by reverse KL without data.

Albergo, Kanwar & Shanahan, PRD 100 (2019) 034515: φ = f⁻¹(z), z ~ N(0, I) on the V sites of a periodic
lattice of 1, 2 or 3 dimensions (any shape, e.g. (32,), (16, 16), (8, 8, 8) or (4, 16)), f⁻¹ a chain of
``layers`` coupling layers with checkerboard masks of alternating parity, each transforming the sites of one
colour given the other colour through a convolutional conditioner with periodic boundaries
(:class:`hepgen.flows.transforms.ConvCoupling`), affine (y = x e^s + t) or rational-quadratic spline (where
affine couplings saturate). Training minimises

    KL(q ‖ p) = E_{φ~q}[log q(φ) + S(φ)] + log Z       (per-event loss log q(φ) + S(φ), reparameterised)

for the action S of a :class:`hepgen.targets.Target` (``log_prob = −S``), a plain function φ (batch, *shape)
-> S (batch,) in differentiable torch, or the user's file (``action="my_action.py:S"``, ``hepgen fit
lattice-flow --action my_action.py:S --shape 16,16``: imported from that path only; the run records the path
and sha256 and never imports it on its own). Exactness comes afterwards: the flow is the proposal of an
independence Metropolis–Hastings chain, or its samples are reweighted by w = exp(−S)/q (:mod:`hepgen.lattice.mcmc`).

Training aids: ``ess_draws`` fresh proposals after every epoch give the Kish effective sample size per draw
(``val_ess`` in metrics.csv; ``monitor="val_ess"`` keeps the epoch with the highest), and ``init_from`` (a run
directory or ``pretrained:NAME`` of a flow with the same layers) starts from its weights: the conditioners are
convolutions, independent of the lattice's size, so a flow trained at L = 8 starts the L = 12 training.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hepgen.errors import ConfigError, DataError, HepgenError
from hepgen.export import ExportGraph, GraphModule, Port, event_ports
from hepgen.flows.distributions import StandardNormal
from hepgen.flows.model import FlowModel
from hepgen.flows.transforms import AffineTransformer, ConvCoupling, SplineTransformer, checkerboard_mask
from hepgen.metrics.sampling import effective_sample_size_from_log_weights
from hepgen.models import register
from hepgen.nn.rng import seeded
from hepgen.targets import Target
from hepgen.options import excerpt
from hepgen.targets.user import UserAction, check_action, load_function

KINDS = ("affine", "spline")
#: float32 values kept per site, coupling layer and event while training, beyond the conditioner's outputs: four
#: per hidden channel (the padded input, convolution and activation outputs, their gradients), measured at
#: L = 64-256 with channels (16, 16) (about 4 kB per site and event at 8 layers), plus a few for the field
FLOATS_PER_CHANNEL = 4
FLOATS_PER_SITE = 16
#: site-events (events × sites) per pass through the couplings when sampling or evaluating log q without a gradient
#: (MCMC proposals, reweighting, the ESS): bounds a pass's float32 temporaries (a few MB) whatever the block size, so
#: that they stay in the heap (:func:`hepgen.memory.warm_heap`, called by :func:`hepgen.lattice.mcmc.propose`)
#: instead of being mapped and page-faulted afresh at every layer (a third of a proposal's time at L = 12 in blocks of 1024); as fast as one pass
#: when nothing faults (one thread, 8 spline layers of (16, 16): 4.8-5.3 µs per site and proposal at L = 8-16)
PASS_SITES = 32_768
#: the seed of the draws that measure the ESS after each epoch (the same draws every epoch: epochs compare fairly)
ESS_SEED = 20_191_515


def training_memory_sites(sites: int, batch_size: int, layers: int = 8, channels: Sequence[int] = (16, 16),
                          kind: str = "affine", bins: int = 8) -> int:
    """Bytes a reverse-KL training step of a lattice flow on ``sites`` sites needs, roughly (without building it):
    batch × sites × layers × (4 Σ channels + the conditioner's outputs per site + 16) float32 values, the
    activations kept for the backward pass, which dominate (the weights are a few kB)."""
    outputs = 2 if kind == "affine" else 3 * int(bins) + 1
    per_site = int(layers) * (FLOATS_PER_CHANNEL * sum(int(c) for c in channels) + outputs + FLOATS_PER_SITE)
    return 4 * int(batch_size) * int(sites) * per_site


class _LatticeSampleGraph(GraphModule):
    """z (batch, *shape) standard normal noise -> (φ (batch, *shape), log q(φ) (batch,)): the flow's base is N(0, I)
    on the sites in a flat vector, so the noise is flattened before and the field reshaped after the chain."""

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        m = self.model
        flat = z.reshape(z.shape[0], -1)
        phi, ladj_inv = m.transform.inverse(flat, None)
        return phi.reshape(z.shape), m.base.log_prob(flat) - ladj_inv


#: the lattice of a flow given a function or an action file without ``shape`` (a Target brings its own)
DEFAULT_SHAPE = (8, 8)


@register
class LatticeFlow(FlowModel):
    """Flow on configurations of a periodic lattice for the user's action, data-free (module doc).

    Args:
        action: the user's action S in a file, FILE.py:NAME: S takes the fields φ, a float torch tensor (batch,
            *shape), and returns the action S(φ) (batch,) (the density is exp(−S) on the periodic lattice),
            finite and differentiable in torch (the flow is trained through its gradient). The run records the
            file's path and sha256 and never imports it on its own: give it again to sample (``--action``). In
            Python also the function or a Target itself.
        shape: the lattice's sites per axis, 1 to 3 axes of >= 2 sites (e.g. 32; 16,16; 6,10; 4,4,4).
        target: Python only, instead of ``action``: a :class:`~hepgen.targets.Target` (``log_prob = −S``) or a
            function S(φ).
        layers: coupling layers (checkerboard parity alternating).
        channels: hidden channels of each conditioner's convolutions.
        kernel_size: odd kernel side of the convolutions (periodic boundaries).
        kind: "affine" or "spline" couplings.
        bins: spline bins. tail_bound: spline box [-B, B] (identity outside).
        activation: hidden activation of the conditioners.
        z2: propose from the Z₂-symmetrised q_s(φ) = ½[q(φ) + q(−φ)] (a random global sign flip of each draw;
            exact for MH and reweighting only when S(−φ) = S(φ), which is checked before training).
        equivariant: Z₂-equivariant affine couplings (f(−φ) = −f(φ): odd shifts, even scales, tanh conditioners;
            :class:`~hepgen.flows.transforms.ConvCoupling` ``odd``): q(−φ) = q(φ) by construction, so a proposal
            needs one pass through the flow instead of the two of ``z2``.
        ess_draws: proposals drawn after every epoch for the Kish ESS per draw (``val_ess``; 0: none).
        init_from: a run directory or ``pretrained:NAME`` of a lattice flow with the same layers, channels, kernel
            and kind, whose weights start the training (any lattice size: a flow trained at L = 8 starts L = 12).
    """

    cli_name = "lattice-flow"
    data_free = True
    #: the logged quantities where higher is better (the engine maximises them when monitored)
    higher_is_better = ("val_ess",)

    def __init__(self, action: str | None = None, shape: Sequence[int] = DEFAULT_SHAPE,
                 target: Target | Callable[..., Any] | None = None, layers: int = 8, channels: Sequence[int] = (16, 16),
                 kernel_size: int = 3, kind: str = "affine", bins: int = 8, tail_bound: float = 4.0,
                 activation: str = "leaky_relu", z2: bool = False, equivariant: bool = False, ess_draws: int = 1024,
                 init_from: str | None = None):
        self.user_code_: dict[str, Any] | None = None
        target = self._make_target(action, shape, target)
        self._build(target, layers, channels, kernel_size, kind, bins, tail_bound, activation, z2, ess_draws,
                    init_from, equivariant)
        self.shape = list(self.lattice)
        self.action = self.target_arg = None  # never recorded: see get_config

    def _make_target(self, action: str | None, shape: Sequence[int], target: Any) -> Target:
        """The action: the user's file ``path.py:NAME``, a Target or a callable S(φ) on ``shape``."""
        if action is not None and target is not None:
            raise ConfigError("lattice-flow: give the action once, action='my_action.py:S' (--action) or target=")
        option = "target"
        if action is not None and not isinstance(action, str) and (isinstance(action, Target) or callable(action)):
            action, target, option = None, action, "action"  # in Python the function or Target itself, as action=
        if isinstance(target, str):
            raise ConfigError(f"lattice-flow: target={excerpt(target)} takes a Python function S(phi) or a Target; "
                              "an action in a file is given as --action FILE.py:NAME (in Python action='FILE.py:NAME')")
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),)
        if isinstance(shape, str) or not isinstance(shape, (list, tuple)):
            raise ConfigError(f"lattice-flow: shape must be the lattice's sites per axis, e.g. 16,16; got {shape!r}")
        if action is not None:
            if not isinstance(action, str):
                raise ConfigError(f"lattice-flow: action must be a path FILE.py:NAME, a function S(phi) or a Target, "
                                  f"got {type(action).__name__}")
            function, source = load_function(action, "--action")
            self.user_code_ = {"option": "action", **source}
            return UserAction(function, shape, source)
        if isinstance(target, Target):
            if target.domain != "real":
                raise ConfigError(f"lattice-flow: the target {target.name!r} is defined on {target.domain}, not on "
                                  "real fields")
            given = tuple(int(n) for n in shape)
            if given != DEFAULT_SHAPE and given != tuple(int(n) for n in target.event_shape):
                raise ConfigError(f"lattice-flow: shape {list(given)} is not the target's event_shape "
                                  f"{list(target.event_shape)} ({type(target).__qualname__}); a Target brings its "
                                  "own lattice: leave shape out")
            self.user_code_ = {"option": option, "name": type(target).__qualname__}
            return target
        if callable(target):
            self.user_code_ = {"option": option, "name": getattr(target, "__qualname__", type(target).__name__)}
            return UserAction(target, shape)
        raise ConfigError("lattice-flow needs the action S(φ): on the command line --action my_action.py:S --shape "
                          "16,16; in Python action='my_action.py:S' or target=<a function or Target>")

    def _build(self, target: Target, layers: int, channels: Sequence[int], kernel_size: int, kind: str, bins: int,
               tail_bound: float, activation: str, z2: bool, ess_draws: int, init_from: str | None,
               equivariant: bool = False) -> None:
        name = self.cli_name
        lattice = tuple(int(n) for n in target.event_shape)
        if not 1 <= len(lattice) <= 3 or min(lattice) < 2:
            raise ConfigError(f"{name}: a periodic lattice of 1, 2 or 3 axes of >= 2 sites, got shape {list(lattice)}")
        if int(layers) < 2 or int(kernel_size) < 1 or int(kernel_size) % 2 == 0:
            raise ConfigError(f"{name} needs layers >= 2 (both colours) and an odd kernel_size, got layers={layers}, "
                              f"kernel_size={kernel_size}")
        if kind not in KINDS:
            raise ConfigError(f"{name}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if not channels or any(int(c) < 1 for c in channels):
            raise ConfigError(f"{name}: channels must be positive channel counts, got {list(channels)}")
        if equivariant and kind != "affine":
            raise ConfigError(f"{name}: equivariant (Z2-odd) couplings are affine; use --kind affine or drop "
                              "--equivariant")
        if isinstance(ess_draws, bool) or int(ess_draws) != ess_draws or ess_draws < 0:
            raise ConfigError(f"{name}: ess_draws must be an integer >= 0, got {ess_draws!r}")
        if int(kernel_size) // 2 > min(lattice):
            raise ConfigError(f"{name}: kernel_size {kernel_size} reaches further than the lattice's {min(lattice)} "
                              "sites")
        super().__init__(lattice, 0, "none")
        self.target, self.lattice = target, lattice
        self.layers, self.channels, self.kernel_size = int(layers), tuple(int(c) for c in channels), int(kernel_size)
        self.kind, self.bins, self.tail_bound, self.activation = kind, int(bins), float(tail_bound), activation
        self.z2, self.ess_draws, self.equivariant = bool(z2), int(ess_draws), bool(equivariant)
        shape = (1, *lattice)
        transforms = []
        for i in range(self.layers):
            transformer = AffineTransformer() if kind == "affine" else SplineTransformer(self.bins, self.tail_bound)
            try:
                transforms.append(ConvCoupling(shape, checkerboard_mask(shape, i % 2, len(lattice)), transformer,
                                               self.channels, kernel_size=self.kernel_size, activation=activation,
                                               padding_mode="circular", spatial_dims=len(lattice),
                                               odd=self.equivariant))
            except ValueError as exc:
                raise ConfigError(f"{name}: {exc}") from None
        self._set_parts(StandardNormal(math.prod(lattice)), transforms)
        self.init_from = None  # never recorded as a parameter (hepgen.load must not read another run): extra_state
        self.initialised_from_: str | None = None
        self._initial: dict[str, Tensor] | None = self._read_initial(init_from) if init_from is not None else None
        if init_from is not None:
            self.initialised_from_ = str(init_from)
        self.reset_parameters()

    # -- warm starts --------------------------------------------------------------------------------------------
    def _read_initial(self, source: str) -> dict[str, Tensor]:
        """The parameters of the flow in ``source`` (a run directory or pretrained:NAME), checked to fit this one."""
        from hepgen.models import resolve_run
        from hepgen.train.rundir import RunDir

        run = RunDir(resolve_run(source))
        if not run.model_path.is_file():
            raise ConfigError(f"{self.cli_name}: init_from {source}: no model.pt there (a run directory written by "
                              "'hepgen fit' or pretrained:NAME)")
        config = run.read_config()
        state = run.load_model_state(config.get("model"))
        return self._matching(state, f"init_from {source} ({config.get('model')})")

    def _matching(self, state: dict[str, Tensor], what: str) -> dict[str, Tensor]:
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
        # the other flow's couplings beyond this one's (more --layers) would be dropped silently otherwise
        known = set(self.state_dict())
        extra = [k for k in state if k.startswith("transform.") and k not in known]
        if extra and not missing:
            k = extra[0]
            raise ConfigError(f"{self.cli_name}: {what} does not have this flow's layers (parameter {k}: this flow "
                              f"none, that one {tuple(state[k].shape)}); give the same --layers, --channels, "
                              "--kernel-size, --kind, --bins and --equivariant (or not)")
        if missing:
            k = missing[0]
            got = tuple(state[k].shape) if k in state else "none"
            raise ConfigError(f"{self.cli_name}: {what} does not have this flow's layers (parameter {k}: this flow "
                              f"{tuple(own[k].shape)}, that one {got}); give the same --layers, --channels, "
                              "--kernel-size, --kind, --bins and --equivariant (or not)")
        return {k: state[k].detach().clone() for k in own}

    def copy_weights_from(self, other: torch.nn.Module) -> LatticeFlow:
        """Take the conditioners' weights of ``other`` (a lattice flow with the same layers, on any lattice size
        of the same dimension), keeping this lattice's masks; then ``fit(..., warm_start=True)`` continues from
        them. Returns self."""
        state = self._matching(dict(other.named_parameters()), f"the flow {type(other).__name__}")
        with torch.no_grad():
            for k, p in self.named_parameters():
                p.copy_(state[k].to(p.device, p.dtype))
        return self

    def reset_parameters(self) -> None:
        """Fresh weights (identity flow), or those of ``init_from`` when given."""
        super().reset_parameters()
        initial = getattr(self, "_initial", None)
        if initial is not None:
            with torch.no_grad():
                for k, p in self.named_parameters():
                    p.copy_(initial[k].to(p.device, p.dtype))

    # -- the user's code, the config ------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        # the user's code is never named here: hepgen.load must not import it (config.yaml's user_code section
        # records its path and sha256, through hepgen.train.rundir)
        config = super().get_config()
        config.pop("target", None)
        return {**config, "action": None}

    def user_code(self) -> dict[str, Any] | None:
        """The user's action this model evaluates: ``{"option", "path", "name", "sha256"}``, or None for a
        built-in target; recorded by :meth:`hepgen.train.rundir.RunDir.save_model`."""
        return self.user_code_

    def extra_state(self) -> dict[str, Any]:
        state = {**super().extra_state(), "target": {"name": self.target.name, **self.target.get_config()}}
        if self.initialised_from_ is not None:
            state["initialised_from"] = self.initialised_from_
        return state

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.initialised_from_ = state.get("initialised_from")

    # -- checks before training -------------------------------------------------------------------------------
    def check_fit(self, batch_size: int, device: torch.device | str = "cpu", available: float | None = None) -> None:
        """The engine's call before training: refuse a batch whose training step cannot fit in the memory
        ``available`` (default: what the device has), and ``z2`` with an action that is not even in φ."""
        from hepgen.train.resources import check_memory

        need = training_memory_sites(math.prod(self.lattice), batch_size, self.layers, self.channels, self.kind,
                                     self.bins)
        what, hint = self._memory_words()
        check_memory(need, f"{what}, {self.layers} layers, channels {','.join(map(str, self.channels))}) with batch "
                           f"size {batch_size}", hint, device, available)
        self.check_target()

    def _memory_words(self) -> tuple[str, str]:
        """(what is trained, what to lower) for the memory check's message."""
        return (f"{self.cli_name} training on a {'x'.join(map(str, self.lattice))} lattice ({math.prod(self.lattice)} "
                "sites",
                "lower --batch-size or --shape (or --layers, --channels)")

    def check_target(self, n: int = 16) -> None:
        """On ``n`` N(0, 1) fields: S is a finite torch tensor of shape (n,) that carries φ's gradient (for any
        target: a user's Target subclass has no checks of its own), and S(−φ) = S(φ) when ``z2`` is on; a
        DataError names the target otherwise. The caller's RNG is left alone."""
        with seeded(0):
            phi = torch.randn(n, *self.lattice, dtype=torch.float64)
        user = isinstance(self.target, UserAction)
        what = self.target.label if user else f"target {type(self.target).__qualname__}"
        x = phi.clone().requires_grad_(True)
        with torch.enable_grad():
            try:
                s = self.action_of(x)
            except HepgenError:
                raise
            except Exception as exc:  # noqa: BLE001 - the user's code failing is a user error, named
                raise DataError(f"{what} raised {type(exc).__name__} on a field of shape {tuple(x.shape)}: "
                                f"{excerpt(str(exc), 120)}") from None
            check_action(s, x, what, column=user)
        if self.z2:
            with torch.no_grad():
                s, flipped = self.target.log_prob(phi), self.target.log_prob(-phi)
            if not torch.allclose(s, flipped, rtol=1e-6, atol=1e-6 * float(s.abs().max() + 1)):
                raise ConfigError(f"{self.cli_name}: z2 proposes each field with both signs, which is exact only for "
                                  f"an action with S(-phi) = S(phi); {getattr(self.target, 'label', self.target.name)} "
                                  f"differs by {float((s - flipped).abs().max()):.3g} on a N(0, 1) field; drop --z2")

    # -- the density on configurations (*shape) -------------------------------------------------------------------
    def _rows_per_pass(self, context: Tensor | None) -> int | None:
        """Events per pass through the couplings when no gradient is taken (see :data:`PASS_SITES`); None: one pass."""
        if torch.is_grad_enabled() or context is not None:
            return None
        rows = PASS_SITES // math.prod(self.lattice)
        # a multiple of 16 events: torch's vectorised kernels then see the same lanes as in one pass, and the
        # results are bitwise those of one pass (a scalar tail may differ in the last bit)
        return rows - rows % 16 if rows >= 16 else max(1, rows)

    def log_prob_internal(self, u: Tensor, context: Tensor | None = None) -> Tensor:
        """log q(φ): φ (batch, *shape) -> (batch,)."""
        flat = u.reshape(u.shape[0], -1)
        rows = self._rows_per_pass(context)
        if rows is None or len(flat) <= rows:
            return super().log_prob_internal(flat, context)
        return torch.cat([super(LatticeFlow, self).log_prob_internal(part) for part in flat.split(rows)])

    def sample_internal(self, n: int, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(φ (n, *shape), log q(φ) (n,)), reparameterised; the same draws of the noise whether or not a gradient
        is taken (all n at once from the base, then through the chain in passes of :data:`PASS_SITES` sites)."""
        rows = self._rows_per_pass(context)
        if rows is None or n <= rows:
            u, log_q = super().sample_internal(n, context)
            return u.reshape(n, *self.lattice), log_q
        z, log_pz = self.base.sample_and_log_prob(n)
        parts = [self.transform.inverse(part) for part in z.split(rows)]
        u = torch.cat([part[0] for part in parts])
        return u.reshape(n, *self.lattice), log_pz - torch.cat([part[1] for part in parts])

    def action_of(self, phi: Tensor) -> Tensor:
        """S(φ) = −log p̃(φ): (batch, *shape) -> (batch,)."""
        action = getattr(self.target, "action", None)
        return action(phi) if action is not None else -self.target.log_prob(phi)

    def training_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Reverse KL per draw: log q(φ) + S(φ) (its mean is KL(q‖p) − log Z); also S."""
        phi, log_q = self.sample_internal(len(batch["w"]))
        s = self.action_of(phi)
        return {"loss": log_q + s, "action": s.detach()}

    def epoch_metrics(self) -> dict[str, float]:
        """After every epoch (the engine's call): ``ess``, the Kish effective sample size per draw of ``ess_draws``
        proposals (the same seeded draws each epoch; the training's RNG is left alone), and ``kl``, their mean of
        log q − log p̃ (KL − log Z)."""
        if not self.ess_draws:
            return {}
        from hepgen.lattice.mcmc import propose

        with seeded(ESS_SEED, self.device):
            _, log_p, log_q = propose(self, self.ess_draws, batch_size=min(self.ess_draws, 4096))
        log_w = log_p - log_q
        if not np.isfinite(log_w).all():
            return {"ess": 0.0, "kl": float("inf")}
        return {"ess": float(effective_sample_size_from_log_weights(log_w)), "kl": float(-log_w.mean())}

    # -- export ---------------------------------------------------------------------------------------------
    def export_graph(self, what: str) -> ExportGraph:
        """ONNX graphs on whole configurations: ``sample`` z (batch, *shape) N(0, I) noise -> (φ, log q(φ)), the
        flow's own q (not the Z₂-symmetrised proposal); ``log_prob``/``score`` φ (batch, *shape) -> log q(φ)."""
        if what != "sample":
            return super().export_graph(what)
        ports = event_ports(self)
        noise = Port("z", self.lattice, "standard normal N(0, I) noise, one value per site")
        return ExportGraph(_LatticeSampleGraph(self), [noise], [ports.x, ports.log_prob])

    # -- exact sampling from the flow's proposals --------------------------------------------------------------
    @torch.no_grad()
    def sample_weighted(self, n: int, batch_size: int = 10_000) -> tuple[Tensor, dict[str, np.ndarray]]:
        """(φ (n, *shape), {"log_weight": log w = −S(φ) − log q(φ) (n,)}): reweight with w (self-normalised);
        q is the proposal density (q_s when ``z2``)."""
        from hepgen.lattice.mcmc import propose

        phi, log_p, log_q = propose(self, n, batch_size)
        return torch.as_tensor(phi), {"log_weight": log_p - log_q}

    def sample_mcmc(self, n: int, seed: int = 0, batch_size: int = 10_000) -> dict[str, Any]:
        """An independence Metropolis–Hastings chain of ``n`` steps with this flow as the proposal:
        configurations, M, S, acceptance, τ_int (see :func:`hepgen.lattice.mcmc.flow_mcmc`)."""
        from hepgen.lattice.mcmc import flow_mcmc

        return flow_mcmc(self, n, seed=seed, batch_size=batch_size)


__all__ = ["LatticeFlow", "training_memory_sites"]
