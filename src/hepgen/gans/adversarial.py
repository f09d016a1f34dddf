"""What every generator-versus-critic model shares: players, losses per step, EMA and weight clipping.

    θ* = argmin_θ max_φ V(φ, θ),   alternating steps: the critic on every batch, the generator on
    every ``critic_steps``-th batch (the engine's ``Player.every``), with their own learning rates (TTUR).

A subclass builds two networks in preprocessed units: ``self.generator(z, c) -> x̃`` with
z ~ N(0, I) of size ``latent``, and ``self.critic(x, c) -> (batch,)``. This base turns them into
the engine's per-event losses (see :mod:`hepgen.gans.losses`), logs the diagnostics (``d_real``,
``d_fake``: mean σ(D) for probabilistic losses, mean raw D otherwise; ``wasserstein`` = D(x) − D(x̃)
and ``gradient_penalty`` for WGANs) and samples.

Two updates happen *after* an optimiser step, which the engine does not call back for; both are
applied lazily at the start of the next player step and whenever the model is switched to
``eval()`` (the engine does so after every epoch), so they never miss a step:

* weight clipping (``loss="wgan"``): every critic parameter is clamped to [−clip, clip] before the
  critic or the generator reads it, which is the same as clipping right after the critic's step;
* the exponential moving average of the generator weights (``ema`` = decay), warmed up:
  θ_ema ← d_t · θ_ema + (1 − d_t) · θ after the t-th generator step (t = 0, 1, ...), with
  d_t = min(decay, (1 + t) / (10 + t)), so that a short fit is not averaged with the initial weights
  (d_t reaches 0.99 after ~900 steps). ``sample`` uses θ_ema. The count t is the buffer ``ema_updates``.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepgen.errors import ConfigError
from hepgen.export import ExportGraph, GraphModule, Port, event_ports, refusal
from hepgen.gans.losses import AdversarialLoss, get_loss, gradient_penalty
from hepgen.models import Model, Player, refuse_several_arrays


def reset_module(module: nn.Module) -> None:
    """Re-draw every parameter of ``module`` from the torch RNG, spectral-normalised layers included.

    ``nn.Linear.reset_parameters`` on a parametrised layer writes into the computed weight and
    leaves the stored ``original`` untouched, so those layers are re-initialised here by hand.
    """
    for m in module.modules():
        par = getattr(m, "parametrizations", None)
        if par is not None and "weight" in par:
            w = par.weight.original
            with torch.no_grad():
                nn.init.kaiming_uniform_(w, a=math.sqrt(5))
                if getattr(m, "bias", None) is not None:
                    fan_in = w[0].numel()
                    bound = 1 / math.sqrt(fan_in) if fan_in else 0.0
                    nn.init.uniform_(m.bias, -bound, bound)
                for sub in par.weight:  # spectral norm's power-iteration vectors
                    for name in ("_u", "_v"):
                        buf = getattr(sub, name, None)
                        if buf is not None:
                            buf.copy_(nn.functional.normalize(torch.randn_like(buf), dim=0))
        elif m is not module and hasattr(m, "reset_parameters") and not list(m.children()):
            m.reset_parameters()


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """``module``'s parameters as constants while inside (their requires_grad restored after).

    For a generator step's pass through the critic: the gradients still flow to the generator, but autograd no
    longer computes the critic's weight gradients, which that step would discard (the critic's optimiser clears
    them before its own step). The same losses and generator gradients, about a third less backward work.
    """
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


class _GeneratorGraph(GraphModule):
    """z (batch, latent) standard normal [, c] -> x = T⁻¹(G(z, T_c(c))) (batch, *event_shape)."""

    def __init__(self, model: Adversarial, generator: nn.Module):
        super().__init__(model)
        self.generator = generator

    def forward(self, z: Tensor, c: Tensor | None = None) -> tuple[Tensor]:
        return (self.model.preprocessor.inverse(self.generator(z, self.ctx(c))),)


class _CriticGraph(GraphModule):
    """x [, c] -> score = −D(T(x), T_c(c)) (batch,)."""

    def forward(self, x: Tensor, c: Tensor | None = None) -> tuple[Tensor]:
        return (-self.model.critic(self.model.preprocessor(x), self.ctx(c)),)


class ImageEvents:
    """The ``from_data`` of the image GANs (conv-gan, style-gan, stack-gan): events of shape (C, H, W) or
    (H, W), anything else refused with the shape named."""

    cli_name: str
    #: where a user with tabular events should go instead
    tabular_hint = "use gan for tabular events"

    @classmethod
    def from_data(cls, event_shape: tuple[int, ...], context: int, **params: Any) -> Any:
        refuse_several_arrays(cls.cli_name, event_shape)
        if len(event_shape) not in (2, 3):
            raise ConfigError(f"{cls.cli_name} models images (batch, C, H, W) or (batch, H, W); this data has "
                              f"events of shape {tuple(event_shape)} ({cls.tabular_hint})")
        return cls(event_shape, context=context, **params)


class Adversarial(Model):
    """Base of the GAN family (not registered). Subclasses set ``self.generator`` and ``self.critic``
    in ``__init__`` and then call :meth:`_finish_init`.

    Args (shared by every GAN):
        loss: a name of :data:`hepgen.gans.losses.LOSSES`.
        critic_steps: critic steps per generator step (k).
        lr_critic, lr_generator: learning rates of the two players (None: the fit ``lr``).
        betas: Adam betas of both players ((0.5, 0.9) as in WGAN-GP).
        ema: decay of the generator's exponential moving average (0: no EMA), warmed up as above.
        clip: weight-clipping bound c for ``loss="wgan"``.
        gp_weight: λ of the gradient penalty for ``loss="wgan-gp"``.

    GAN losses say little about sample quality, so ``fit`` picks no epoch by a loss unless asked
    (``monitor`` defaults to None: keep the last epoch); ``monitor="w1"`` picks the epoch whose samples
    are closest to the validation events. ``fit(x, diagnostics=[...])``: callables ``d(model) -> dict``
    (:mod:`hepgen.gans.diagnostics`: ``ModeCoverage``, ``GridDivergence``, ``GeneratorGradNorms``) that
    the engine evaluates after every epoch and logs as ``val_<name>`` in ``history_`` and
    ``metrics.csv``; they need validation events; ``monitor="val_grid_js"`` then picks an epoch by one.
    """

    fit_defaults = {"monitor": None}
    #: the generator step passes through the critic :func:`frozen` (no critic weight gradients: faster, the same
    #: numbers); families opt in, the MLP and conv GANs keep their graph as it was
    freeze_critic_in_generator_step = False

    def _init_training(self, loss: str, critic_steps: int, lr_critic: float | None, lr_generator: float | None,
                       betas: Any, ema: float, clip: float, gp_weight: float) -> None:
        self.loss = loss
        self.adversarial_loss: AdversarialLoss = get_loss(loss)
        if int(critic_steps) < 1:
            raise ConfigError(f"critic_steps must be >= 1, got {critic_steps}")
        if not 0.0 <= float(ema) < 1.0:
            raise ConfigError(f"ema is the decay of the moving average and must be in [0, 1), got {ema}")
        for name, lr in (("lr_critic", lr_critic), ("lr_generator", lr_generator)):
            if lr is not None and not float(lr) > 0:
                raise ConfigError(f"{name} must be positive, got {lr}")
        self.critic_steps = int(critic_steps)
        self.lr_critic = None if lr_critic is None else float(lr_critic)
        self.lr_generator = None if lr_generator is None else float(lr_generator)
        self.betas = tuple(float(b) for b in betas)
        if len(self.betas) != 2:
            raise ConfigError(f"betas takes two numbers (beta1, beta2), got {betas}")
        self.ema = float(ema)
        self.clip = float(clip)
        self.gp_weight = float(gp_weight)

    def _finish_init(self) -> None:
        """Call at the end of a subclass ``__init__``, after ``generator`` and ``critic`` exist."""
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False) if self.ema > 0 else None
        if self.generator_ema is not None:  # saved and resumed with the weights
            self.register_buffer("ema_updates", torch.zeros((), dtype=torch.int64))
        self._ema_pending = False
        self.reset_parameters()

    # -- parameters ------------------------------------------------------------------------------
    @property
    def latent_size(self) -> int:
        return int(self.latent)

    def reset_parameters(self) -> None:
        """Re-draw generator and critic from the torch RNG; the EMA starts as a copy of the generator."""
        reset_module(self.generator)
        reset_module(self.critic)
        if self.generator_ema is not None:
            self.generator_ema.load_state_dict(self.generator.state_dict())
            self.ema_updates.zero_()
        self._ema_pending = False

    def players(self) -> list[Player]:
        """The critic steps on every batch, the generator on every ``critic_steps``-th one."""
        return [
            Player("critic", list(self.critic.parameters()), lr=self.lr_critic, every=1, betas=self.betas),
            Player("generator", list(self.generator.parameters()), lr=self.lr_generator, every=self.critic_steps,
                   betas=self.betas),
        ]

    def train(self, mode: bool = True) -> Adversarial:
        if not mode:
            self._sync()
        return super().train(mode)

    @torch.no_grad()
    def _sync(self) -> None:
        """Apply the pending post-step updates: weight clipping and the generator EMA."""
        if self.adversarial_loss.lipschitz == "clip":
            for p in self.critic.parameters():
                p.clamp_(-self.clip, self.clip)
        if self._ema_pending and self.generator_ema is not None:
            t = int(self.ema_updates)
            decay = min(self.ema, (1.0 + t) / (10.0 + t))
            for q, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
                q.lerp_(p.detach(), 1.0 - decay)
            self.ema_updates += 1
            for q, p in zip(self.generator_ema.buffers(), self.generator.buffers()):
                q.copy_(p)
        self._ema_pending = False

    # -- the engine's steps ----------------------------------------------------------------------
    def draw_latent(self, n: int) -> Tensor:
        """z ~ N(0, I): (n, latent)."""
        return torch.randn(n, self.latent_size, device=self.device, dtype=self.dtype)

    def _prob(self, d: Tensor) -> Tensor:
        return torch.sigmoid(d) if self.adversarial_loss.probabilistic else d

    def player_step(self, player: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per-event losses and diagnostics (batch,) of the ``critic`` or the ``generator``."""
        self._sync()
        x, c = batch["x"], batch.get("context")
        if player == "critic":
            with torch.no_grad():
                fake = self.generator(self.draw_latent(x.shape[0]), c)
            return self._critic_losses(x, fake, c, penalty=True)
        if player == "generator":
            fake = self.generator(self.draw_latent(x.shape[0]), c)
            with frozen(self.critic) if self.freeze_critic_in_generator_step else contextlib.nullcontext():
                f = self.critic(fake, c)
            self._ema_pending = True
            return {"loss": self.adversarial_loss.generator(f), "d_fake": self._prob(f).detach()}
        raise ConfigError(f"{type(self).__name__} has players 'critic' and 'generator', not {player!r}")

    def _critic_losses(self, x: Tensor, fake: Tensor, c: Tensor | None, penalty: bool,
                       critic: nn.Module | None = None) -> dict[str, Tensor]:
        """Per-event loss and diagnostics of ``critic`` (default ``self.critic``; a StackGAN's stage-I critic)."""
        critic = self.critic if critic is None else critic
        r, f = critic(x, c), critic(fake, c)
        loss = self.adversarial_loss.critic(r, f)
        out: dict[str, Tensor] = {}
        if self.adversarial_loss.lipschitz == "penalty" and penalty:
            gp = gradient_penalty(critic, x, fake, c, self.gp_weight)
            loss = loss + gp
            out["gradient_penalty"] = gp.detach()
        out.update(loss=loss, d_real=self._prob(r).detach(), d_fake=self._prob(f).detach())
        if self.adversarial_loss.wasserstein:
            out["wasserstein"] = (r - f).detach()
        return out

    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Critic and generator losses on held-out events (no gradient penalty: it needs gradients)."""
        self._sync()
        x, c = batch["x"], batch.get("context")
        fake = self.generator(self.draw_latent(x.shape[0]), c)
        out = self._critic_losses(x, fake, c, penalty=False)
        out["critic_loss"] = out.pop("loss")
        out["generator_loss"] = self.adversarial_loss.generator(self.critic(fake, c))
        return out

    # -- public API --------------------------------------------------------------------------------
    def _sampler(self) -> nn.Module:
        self._sync()
        return self.generator_ema if self.generator_ema is not None else self.generator

    def rsample(self, n: int, context: Tensor | np.ndarray | None = None, z: Tensor | None = None) -> Tensor:
        """Differentiable samples in the original units: (n, *event_shape).

        Gradients flow to ``context`` (a tensor with requires_grad, original units) and to the
        generator weights, e.g. to optimise detector parameters through a conditional generator.
        ``z``: an optional (n, latent) latent batch (default: fresh N(0, I) draws).
        """
        n = int(n)
        c = self.context_to_internal(context, n)
        z = self.draw_latent(n) if z is None else self._as_tensor(z)
        return self.to_external(self._sampler()(z, c))

    @torch.no_grad()
    def sample(self, n: int, context: Tensor | np.ndarray | None = None) -> Tensor:
        """n events in the original units (EMA generator when ``ema`` > 0): (n, *event_shape)."""
        return self.rsample(n, context)

    def critic_output(self, x: Tensor | np.ndarray, context: Tensor | np.ndarray | None = None) -> Tensor:
        """The critic's raw output D(x) (a logit for probabilistic losses) on original-unit events: (batch,)."""
        x = self._as_tensor(x)
        return self.critic(self.to_internal(x), self.context_to_internal(context, x.shape[0]))

    @torch.no_grad()
    def score(self, x: Tensor | np.ndarray, context: Tensor | np.ndarray | None = None) -> Tensor:
        """Anomaly score −D(x): high where the critic finds the event unlike the training data: (batch,)."""
        return -self.critic_output(x, context)

    # -- ONNX export -----------------------------------------------------------------------------------
    def export_graph(self, what: str) -> ExportGraph:
        """What :func:`hepgen.export.export` traces: ``sample`` z (batch, latent) [, c] -> x = T⁻¹(G(z, T_c(c)))
        (the EMA generator when there is one), ``score`` x [, c] -> −D(T(x), T_c(c)); no density."""
        if what == "log_prob":
            raise refusal(self, what, "a GAN is an implicit model: it draws events but has no density; export "
                                      "--what sample (the generator) or --what score (−critic)")
        ports = event_ports(self)
        if what == "sample":
            generator = self.generator_ema if self.generator_ema is not None else self.generator
            noise = Port("z", (self.latent_size,), "standard normal N(0, I) latent noise")
            return ExportGraph(_GeneratorGraph(self, generator), [noise, *ports.context], [ports.x])
        return ExportGraph(_CriticGraph(self), [ports.x, *ports.context], [Port("score", (), "−D(x), the critic")])
