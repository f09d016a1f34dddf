"""StyleGAN2 for physics images (Karras et al. 2019, 2020): jet images, calorimeter layers, conditioned through w.

    w = f(z, c)                     mapping network (8 layers), a continuous condition c (the energy) enters here
    x̃ = G(w, noise)                modulated/demodulated convolutions from a learned constant, per-pixel noise
    critic   ℓ_D = softplus(−D(x)) + softplus(D(x̃))  [+ (γ/2) k_R1 ‖∇ₓ D(x)‖² on every k_R1-th critic step]
    generator ℓ_G = softplus(−D(x̃))  [+ λ k_PL (‖J_wᵀ y‖ − a)² on every k_PL-th generator step]

with the networks of :mod:`hepgen.gans.style_networks`. The two regularisers are *lazy* (StyleGAN2 §3.1): R1 on
the real events every ``r1_interval`` critic steps and the path-length penalty every ``pl_interval`` generator
steps, each scaled by its interval so that its mean weight is that of a penalty on every step (the Adam
hyper-parameters are not adjusted for it). Path length: y ~ N(0, I) / √(H W) an image of noise, J_wᵀ y = ∇_w ⟨x̃, y⟩
per event (summed over the layers' copies of w, as StyleGAN2), a the running mean of ‖J_wᵀ y‖ (decay ``pl_decay``).
Style mixing: with probability ``style_mixing`` a batch's events take the w of a second z from a random layer on.
The step counts, the running means a and w̄ are buffers, saved in checkpoints: a resumed fit continues them.

Truncation trick: ``sample(n, truncation=ψ)`` draws w' = w̄(c) + ψ (w − w̄(c)), with w̄ the running mean of the
generated w (an EMA over training, decay ``w_avg_decay``); for a conditional model w̄(c) is the EMA linear regression
of w on the condition, so ψ trades diversity against fidelity *at a fixed energy* rather than pulling every event
towards the average energy. ψ = 1: no truncation; ψ = 0: the mean w's image, every event gets w̄(c) and the
per-pixel noise at its mean, zero (so one image per condition; noise passed in explicitly is used as given).
``hepgen sample RUN --truncation ψ``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepgen.data.preprocess import PreprocessSpec
from hepgen.errors import ConfigError
from hepgen.export import ExportGraph, GraphModule, Port, event_ports, refusal
from hepgen.gans.adversarial import Adversarial, ImageEvents, frozen
from hepgen.gans.style_networks import ResidualCritic, StyleGenerator
from hepgen.models import register


def check_truncation(truncation: Any, who: str) -> float:
    """ψ as a float (None: no truncation, ψ = 1, as big-gan spells it); NaN, infinite or non-numeric values are a
    ConfigError naming ``who``."""
    if truncation is None:
        return 1.0
    try:
        psi = float(truncation)
    except (TypeError, ValueError):
        raise ConfigError(f"{who}: truncation ψ must be a number, got {str(truncation)[:40]!r}") from None
    if not math.isfinite(psi) or psi < 0:
        raise ConfigError(f"{who}: truncation ψ must be a finite number >= 0 (1: none, 0: the mean w), got {psi}")
    return psi


class _StyleSampleGraph(GraphModule):
    """z (batch, latent), noise (batch, noise_size) [, c] -> x = T⁻¹(G(z, T_c(c), noise)) at ψ = 1."""

    def __init__(self, model: StyleGAN, generator: nn.Module):
        super().__init__(model)
        self.generator = generator

    def forward(self, z: Tensor, noise: Tensor, c: Tensor | None = None) -> tuple[Tensor]:
        return (self.model.preprocessor.inverse(self.generator(z, self.ctx(c), noise)),)


@register
class StyleGAN(ImageEvents, Adversarial):
    """StyleGAN2 for images (batch, C, H, W) or (batch, H, W) of any size, optionally conditioned through w.

    Args:
        shape: event shape (C, H, W) or (H, W); non-square and odd sizes work (3×96, 12×6; see
            :mod:`hepgen.gans.style_networks` for how the constant, the stages and the crop are chosen).
        latent: size of z. style: size of w (and of the mapping network's layers).
        mapping_layers: layers of the mapping network z → w (8 in StyleGAN).
        mapping_lr: learning-rate multiplier of the mapping network (0.01 in StyleGAN).
        channels: feature maps at the lowest resolution (the constant input and the critic's last layers), halved at
            every ×2 stage. min_channels: the floor of that halving (the width at the highest resolutions).
        kernel_size: odd kernel side of the convolutions.
        upsamples: at most this many ×2 stages per axis (the constant input is the image shrunk that many times).
        context: size of a continuous condition (e.g. the incident energy): embedded, normalised and concatenated
            to z before the mapping network; the critic projects it onto its last features.
        loss: adversarial loss (non-saturating logistic, as StyleGAN2; see :mod:`hepgen.gans.losses`).
        critic_steps: critic steps per generator step.
        r1_weight: γ of the R1 penalty (γ/2) ‖∇ₓ D(x)‖² on real events (0: none).
        r1_interval: the R1 penalty is computed on every this-many-th critic step (lazy regularisation).
        pl_weight: λ of the path-length penalty (0: none).
        pl_interval: the path-length penalty is computed on every this-many-th generator step.
        pl_decay: decay of the running mean path length a (the mean moves by this fraction per step).
        style_mixing: probability that a batch mixes the styles of two z from a random layer on.
        w_avg_decay: decay of the running mean w̄ used by the truncation trick.
        minibatch_std: group size of the critic's minibatch standard deviation layer (0: none; then each event's
            critic score depends on that event alone, and the score exports to ONNX).
        betas: Adam betas of both players ((0, 0.99) as in StyleGAN2).
        lr_critic, lr_generator, ema, clip, gp_weight: see :class:`hepgen.gans.adversarial.Adversarial`.
        preprocess: pixel preprocessing (one kind for the whole image).
    """

    cli_name = "style-gan"

    def __init__(self, shape: Sequence[int], latent: int = 64, style: int = 128, mapping_layers: int = 8,
                 mapping_lr: float = 0.01, channels: int = 64, min_channels: int = 16, kernel_size: int = 3,
                 upsamples: int = 3,
                 context: int = 0, loss: str = "non-saturating", critic_steps: int = 1, r1_weight: float = 1.0,
                 r1_interval: int = 16, pl_weight: float = 2.0, pl_interval: int = 4, pl_decay: float = 0.01,
                 style_mixing: float = 0.9, w_avg_decay: float = 0.995, minibatch_std: int = 4,
                 lr_critic: float | None = None, lr_generator: float | None = None,
                 betas: Sequence[float] = (0.0, 0.99), ema: float = 0.99, clip: float = 0.01,
                 gp_weight: float = 10.0, preprocess: PreprocessSpec = "standard"):
        shape = tuple(int(s) for s in shape)
        if len(shape) not in (2, 3) or min(shape) < 1:
            raise ConfigError(f"style-gan models images (C, H, W) or (H, W) of positive sides, got shape {shape}")
        super().__init__(shape, context, preprocess)
        self.shape = shape
        for name, value in (("latent", latent), ("style", style), ("mapping_layers", mapping_layers),
                            ("channels", channels), ("min_channels", min_channels), ("r1_interval", r1_interval),
                            ("pl_interval", pl_interval)):
            if int(value) < 1:
                raise ConfigError(f"style-gan: {name} must be a positive integer, got {value}")
        for name, value in (("upsamples", upsamples), ("minibatch_std", minibatch_std)):
            if int(value) < 0:
                raise ConfigError(f"style-gan: {name} must be >= 0, got {value}")
        for name, value in (("r1_weight", r1_weight), ("pl_weight", pl_weight)):
            if not float(value) >= 0 or not math.isfinite(float(value)):
                raise ConfigError(f"style-gan: {name} must be a finite number >= 0, got {value}")
        for name, value in (("pl_decay", pl_decay), ("style_mixing", style_mixing)):
            if not 0.0 <= float(value) <= 1.0:
                raise ConfigError(f"style-gan: {name} must be in [0, 1], got {value}")
        if not 0.0 <= float(w_avg_decay) < 1.0:
            raise ConfigError(f"style-gan: w_avg_decay is the decay of the running mean of w, in [0, 1); got "
                              f"{w_avg_decay}")
        if not float(mapping_lr) > 0:
            raise ConfigError(f"style-gan: mapping_lr must be positive, got {mapping_lr}")
        self.latent, self.style, self.mapping_layers = int(latent), int(style), int(mapping_layers)
        self.mapping_lr, self.kernel_size = float(mapping_lr), int(kernel_size)
        self.channels, self.min_channels = int(channels), int(min_channels)
        self.upsamples, self.minibatch_std = int(upsamples), int(minibatch_std)
        self.r1_weight, self.r1_interval = float(r1_weight), int(r1_interval)
        self.pl_weight, self.pl_interval, self.pl_decay = float(pl_weight), int(pl_interval), float(pl_decay)
        self.style_mixing, self.w_avg_decay = float(style_mixing), float(w_avg_decay)
        self._init_training(loss, critic_steps, lr_critic, lr_generator, betas, ema, clip, gp_weight)
        try:
            self.generator = StyleGenerator(shape, self.latent, self.style, self.context, self.mapping_layers,
                                            self.mapping_lr, self.channels, self.min_channels, self.kernel_size,
                                            self.upsamples, self.w_avg_decay)
            self.critic = ResidualCritic(shape, self.channels, self.min_channels, self.context, self.kernel_size,
                                         self.upsamples, self.minibatch_std)
        except ValueError as exc:
            raise ConfigError(f"{self.cli_name}: {exc}") from None
        # lazy regularisation counters and the running mean path length: saved and resumed with the weights
        self.register_buffer("critic_updates", torch.zeros((), dtype=torch.int64))
        self.register_buffer("generator_updates", torch.zeros((), dtype=torch.int64))
        self.register_buffer("pl_mean", torch.zeros(()))
        self._finish_init()

    def reset_parameters(self) -> None:
        """Re-draw both networks; the counters, the running means (w̄, a) and the EMA generator start afresh."""
        self.generator.mapping.reset_average()
        with torch.no_grad():
            for buffer in (self.critic_updates, self.generator_updates, self.pl_mean):
                buffer.zero_()
        super().reset_parameters()

    @property
    def noise_size(self) -> int:
        """Per-pixel noise values one image takes, over every noise layer."""
        return int(self.generator.synthesis.noise_size)

    # -- training ------------------------------------------------------------------------------------------------
    def _training_styles(self, n: int, c: Tensor | None, update_average: bool) -> Tensor:
        """ws (n, num_ws, style) for a training batch: fresh z, style mixing, the running w̄ updated if asked."""
        mapping, num_ws = self.generator.mapping, self.generator.synthesis.num_ws
        w = mapping(self.draw_latent(n), c)
        if update_average:
            mapping.update_average(w, c)
        ws = w[:, None].repeat(1, num_ws, 1)
        if self.style_mixing > 0 and float(torch.rand(())) < self.style_mixing:
            cutoff = int(torch.randint(1, num_ws, ()))
            ws[:, cutoff:] = mapping(self.draw_latent(n), c)[:, None]
        return ws

    def _images(self, ws: Tensor) -> Tensor:
        return self.generator.synthesis(ws).reshape(ws.shape[0], *self.shape)

    def player_step(self, player: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per-event losses (batch,): the critic's with the lazy R1 term, the generator's with the lazy path length."""
        self._sync()
        x, c = batch["x"], batch.get("context")
        n = x.shape[0]
        if player == "critic":
            step = int(self.critic_updates)
            self.critic_updates += 1
            with torch.no_grad():
                fake = self._images(self._training_styles(n, c, update_average=False))
            out = self._critic_losses(x, fake, c, penalty=True)
            if self.r1_weight > 0 and step % self.r1_interval == 0:
                real = x.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(self.critic(real, c).sum(), real, create_graph=True)
                r1 = grad.square().reshape(n, -1).sum(1)
                out["loss"] = out["loss"] + (0.5 * self.r1_weight * self.r1_interval) * r1
                out["r1"] = r1.detach()
            return out
        if player == "generator":
            step = int(self.generator_updates)
            self.generator_updates += 1
            ws = self._training_styles(n, c, update_average=True)
            fake = self._images(ws)
            with frozen(self.critic):  # its weight gradients would be discarded
                f = self.critic(fake, c)
            loss = self.adversarial_loss.generator(f)
            out = {"d_fake": self._prob(f).detach()}
            if self.pl_weight > 0 and step % self.pl_interval == 0:
                pixels = fake.shape[-1] * fake.shape[-2]
                y = torch.randn_like(fake) / math.sqrt(pixels)
                (grad,) = torch.autograd.grad((fake * y).sum(), ws, create_graph=True)
                lengths = grad.square().sum(2).mean(1).sqrt()
                with torch.no_grad():
                    self.pl_mean.lerp_(lengths.detach().mean().to(self.pl_mean.dtype), self.pl_decay)
                penalty = (lengths - self.pl_mean).square()
                loss = loss + (self.pl_weight * self.pl_interval) * penalty
                out.update(path_length=lengths.detach(), pl_penalty=penalty.detach())
            self._ema_pending = True
            return {"loss": loss, **out}
        raise ConfigError(f"{type(self).__name__} has players 'critic' and 'generator', not {player!r}")

    # -- public API -------------------------------------------------------------------------------------------------
    def rsample(self, n: int, context: Tensor | np.ndarray | None = None, z: Tensor | None = None,
                noise: Tensor | None = None, truncation: float | None = 1.0) -> Tensor:
        """Differentiable images (n, *event_shape) in the original units (the EMA generator when ``ema`` > 0).

        ``z``: (n, latent) latents, ``noise``: (n, noise_size) per-pixel noise (default: fresh N(0, 1) draws, z
        first); ``truncation``: ψ of the truncation trick, w' = w̄(c) + ψ (w − w̄(c)) (1 or None: none; 0: the mean
        w's image, the drawn noise zeroed too; module doc).
        """
        n = int(n)
        psi = check_truncation(truncation, self.cli_name)
        c = self.context_to_internal(context, n)
        z = self.draw_latent(n) if z is None else self._as_tensor(z)
        if noise is None:
            noise = torch.randn(n, self.noise_size, device=self.device, dtype=self.dtype)
            if psi == 0.0:  # the mean image: the noise at its mean (drawn all the same, so the RNG stream is unmoved)
                noise.zero_()
        return self.to_external(self._sampler()(z, c, self._as_tensor(noise), psi))

    @torch.no_grad()
    def sample(self, n: int, context: Tensor | np.ndarray | None = None, truncation: float | None = 1.0) -> Tensor:
        """n images (n, *event_shape) in the original units; ``truncation`` ψ as in :meth:`rsample`."""
        return self.rsample(n, context, truncation=truncation)

    def mean_w(self, context: Tensor | np.ndarray | None = None, n: int = 1) -> Tensor:
        """The running mean w̄ (1, style), or w̄(c) (n, style) for a conditional model, that ψ truncates towards."""
        c = self.context_to_internal(context, n)
        return self._sampler().mapping.mean(c)

    # -- ONNX export ---------------------------------------------------------------------------------------------------
    def export_graph(self, what: str) -> ExportGraph:
        """``sample``: z (batch, latent), noise (batch, noise_size) [, c] -> x at ψ = 1 (the EMA generator);
        ``score``: −D(T(x), T_c(c)) when the critic has no minibatch-std layer (``minibatch_std=0``); no density."""
        if what == "score" and self.minibatch_std > 0:
            raise refusal(self, what, f"its critic's minibatch standard deviation layer (minibatch_std="
                                      f"{self.minibatch_std}) makes each event's score depend on the other events of "
                                      "its group, which a graph with a free batch size cannot reproduce; export --what "
                                      "sample, or train with minibatch_std=0 to export the score")
        if what != "sample":
            return super().export_graph(what)
        ports = event_ports(self)
        generator = self.generator_ema if self.generator_ema is not None else self.generator
        inputs = [Port("z", (self.latent_size,), "standard normal N(0, I) latent noise"),
                  Port("noise", (self.noise_size,), "standard normal N(0, 1) per-pixel noise of every layer, "
                                                   "flattened and concatenated (sample draws it after z)"),
                  *ports.context]
        return ExportGraph(_StyleSampleGraph(self, generator), inputs, [ports.x])
