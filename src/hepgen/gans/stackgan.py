"""StackGAN (Zhang et al. 2017): a coarse-to-fine generator in two stages, with a critic at each resolution.

    stage I    x̃₁ = G₁(z, c)                               (batch, C, ⌈H/f⌉, ⌈W/f⌉)   the coarse image
    stage II   x̃  = up(x̃₁) + R([up(x̃₁), c])                (batch, C, H, W)          refined, conditioned on x̃₁ and c
    critics    D₁(x₁, c) on x₁ = avgpool_f(x) (the real image at the coarse resolution),  D(x, c) on full images

``up`` is nearest-neighbour upsampling to (H, W) and R a stack of "same" convolutions whose last layer
starts at zero, so an untrained stage II passes stage I's image through. In the paper the condition is
a text embedding; **physics data have no text**, so here the condition is the physics one: the context
columns (``--context``) — the incident energy or particle type of a calorimeter shower, the jet pT of
a jet image — enter both stages (concatenated to z in G₁, as constant channels in R) and both critics.

Training on the engine's hooks (no ``fit`` of its own): four players, ``critic_1`` / ``generator_1``
(stage I against D₁) and ``critic_2`` / ``generator_2`` (stage II against D, on stage I's detached output).
For the first ``stage_one_epochs`` epochs stage II sits out (the engine's ``Player.every = 0``, added
for this staged schedule); afterwards both stages train, or with ``freeze_stage_one`` only stage II, as
in the paper. ``sample`` runs both stages (the EMA generator when ``ema`` > 0); ``score`` is −D(x), the
full-resolution critic. ONNX: ``export --what sample`` (z [, c] -> x, both stages) and ``--what score``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hepgen.data.preprocess import PreprocessSpec
from hepgen.errors import ConfigError
from hepgen.gans.adversarial import Adversarial, ImageEvents, frozen, reset_module
from hepgen.gans.networks import ConvCritic, ConvGenerator
from hepgen.models import Player, register
from hepgen.nn.conv import image_shape
from hepgen.nn.mlp import activation as make_activation


def coarse_shape(shape: Sequence[int], factor: int) -> tuple[int, ...]:
    """The stage-I event shape: each side of (H, W) or (C, H, W) divided by ``factor``, rounded up."""
    shape = tuple(int(s) for s in shape)
    *channels, h, w = shape
    return (*channels, -(-h // factor), -(-w // factor))


class _ZeroConv2d(nn.Conv2d):
    """A convolution whose weights and bias (re)start at zero: stage II begins as the identity on up(x̃₁)."""

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)


class Refiner(nn.Module):
    """Stage II: coarse (batch, *coarse) [+ context (batch, c)] -> up(coarse) + R([up(coarse), c]) (batch, *shape)."""

    def __init__(self, shape: Sequence[int], channels: Sequence[int], context: int = 0, kernel_size: int = 3,
                 act: str = "relu"):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same padding), got {kernel_size}")
        if not channels or any(int(c) < 1 for c in channels):
            raise ValueError(f"refine_channels must list at least one positive channel count, got {list(channels)}")
        self.shape, self.image = tuple(int(s) for s in shape), image_shape(shape)
        self.context = int(context)
        c, pad = self.image[0], kernel_size // 2
        layers: list[nn.Module] = []
        c_in = c + self.context
        for c_out in channels:
            layers += [nn.Conv2d(c_in, int(c_out), kernel_size, padding=pad), nn.BatchNorm2d(int(c_out)),
                       make_activation(act)]
            c_in = int(c_out)
        layers.append(_ZeroConv2d(c_in, c, kernel_size, padding=pad))
        self.net = nn.Sequential(*layers)

    def forward(self, coarse: Tensor, context: Tensor | None = None) -> Tensor:
        b = coarse.shape[0]
        _, h, w = self.image
        up = F.interpolate(coarse.reshape(b, self.image[0], *coarse.shape[-2:]), size=(h, w), mode="nearest")
        inputs = up
        if self.context:
            if context is None:
                raise ConfigError("this StackGAN is conditional; pass context=")
            inputs = torch.cat([up, context[:, :, None, None].expand(b, self.context, h, w)], dim=1)
        return (up + self.net(inputs)).reshape(b, *self.shape)


class StackedGenerator(nn.Module):
    """G(z, c) = stage2(stage1(z, c), c): z (batch, latent) [+ c] -> (batch, *shape); :meth:`stages` gives both."""

    def __init__(self, stage1: nn.Module, stage2: Refiner):
        super().__init__()
        self.stage1, self.stage2 = stage1, stage2

    def coarse(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        """Stage I: (batch, *coarse_shape)."""
        return self.stage1(z, context)

    def refine(self, coarse: Tensor, context: Tensor | None = None) -> Tensor:
        """Stage II on a given coarse image: (batch, *shape)."""
        return self.stage2(coarse, context)

    def stages(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(coarse image, refined image)."""
        coarse = self.coarse(z, context)
        return coarse, self.refine(coarse, context)

    def forward(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        return self.stages(z, context)[1]


@register
class StackGAN(ImageEvents, Adversarial):
    """Two-stage, coarse-to-fine GAN for images (batch, C, H, W) or (batch, H, W) (module docstring).

    Args:
        shape: event shape (C, H, W) or (H, W): 40×40 jet images, a calorimeter layer (12×12, 3×96 ...).
        latent: size of the noise vector z (stage I only).
        coarse_factor: stage I works at ⌈H/f⌉ × ⌈W/f⌉ (4: 10×10 for 40×40 jet images).
        channels: conv channels of stage I's generator (mirrored) and of both critics.
        refine_channels: channels of stage II's convolutions (at full resolution).
        stage_one_epochs: epochs that train stage I alone before stage II starts.
        freeze_stage_one: stop training stage I once stage II starts (Zhang et al.'s schedule).
        context: size of the physical condition (energy, particle type, jet pT; there is no text here).
        loss, critic_steps, kernel_size, width, conditioning, spectral_norm, lr_critic, lr_generator, betas,
        ema, clip, gp_weight, preprocess: as for :class:`hepgen.gans.ConvGAN` (both stages and critics).
    """

    cli_name = "stack-gan"

    def __init__(self, shape: Sequence[int], latent: int = 64, coarse_factor: int = 4,
                 channels: Sequence[int] = (32, 64), refine_channels: Sequence[int] = (32, 32),
                 stage_one_epochs: int = 5, freeze_stage_one: bool = False, loss: str = "non-saturating",
                 critic_steps: int = 1, context: int = 0, kernel_size: int = 3, width: int = 64,
                 conditioning: str = "concat", spectral_norm: bool = False, lr_critic: float | None = None,
                 lr_generator: float | None = None, betas: Sequence[float] = (0.5, 0.9), ema: float = 0.0,
                 clip: float = 0.01, gp_weight: float = 10.0, preprocess: PreprocessSpec = "standard"):
        super().__init__(tuple(int(s) for s in shape), context, preprocess)
        for name, value in (("latent", latent), ("coarse_factor", coarse_factor), ("width", width)):
            if int(value) < 1:
                raise ConfigError(f"{self.cli_name}: {name} must be positive, got {value!r}")
        *_, height, width_px = (int(v) for v in shape)
        one_pixel = coarse_shape(shape, max(int(coarse_factor), 1))[-2:] == (1, 1)
        if int(coarse_factor) > 1 and one_pixel and (height, width_px) != (1, 1):
            raise ConfigError(f"{self.cli_name}: coarse_factor {coarse_factor} leaves stage I one pixel of a {height}x"
                              f"{width_px} image; choose at most {max(height, width_px) - 1}")
        if int(stage_one_epochs) < 0:
            raise ConfigError(f"{self.cli_name}: stage_one_epochs must be >= 0, got {stage_one_epochs!r}")
        self.shape, self.latent, self.coarse_factor = tuple(int(s) for s in shape), int(latent), int(coarse_factor)
        self.channels, self.refine_channels = tuple(int(c) for c in channels), tuple(int(c) for c in refine_channels)
        self.stage_one_epochs, self.freeze_stage_one = int(stage_one_epochs), bool(freeze_stage_one)
        self.kernel_size, self.width = int(kernel_size), int(width)
        self.conditioning, self.spectral_norm = conditioning, bool(spectral_norm)
        self._init_training(loss, critic_steps, lr_critic, lr_generator, betas, ema, clip, gp_weight)
        try:
            image_shape(self.shape)
            self.coarse_shape = coarse_shape(self.shape, self.coarse_factor)
            stage1 = ConvGenerator(self.latent, self.coarse_shape, self.channels, self.context,
                                   kernel_size=self.kernel_size)
            stage2 = Refiner(self.shape, self.refine_channels, self.context, self.kernel_size)
            critic = dict(conditioning=conditioning, spectral_norm=self.spectral_norm, kernel_size=self.kernel_size,
                          width=self.width)
            self.critic_coarse = ConvCritic(self.coarse_shape, self.channels, self.context, **critic)
            self.critic = ConvCritic(self.shape, self.channels, self.context, **critic)
        except ValueError as exc:
            raise ConfigError(f"{self.cli_name}: {exc}") from None
        self.generator = StackedGenerator(stage1, stage2)
        self.register_buffer("epoch_", torch.zeros((), dtype=torch.int64))  # the schedule's clock, resumed too
        self._finish_init()

    # -- parameters and the schedule -------------------------------------------------------------
    def reset_parameters(self) -> None:
        """Re-draw both stages and both critics (stage II's last layer starts at zero); EMA = the generator."""
        self._full_resolution_layout(torch.contiguous_format)  # the same draws as ever, weight by weight
        reset_module(self.critic_coarse)
        super().reset_parameters()
        self._full_resolution_layout(torch.channels_last)

    def _full_resolution_layout(self, memory_format: torch.memory_format) -> None:
        """Stage II and the full-resolution critic keep their 4-d weights in ``memory_format``.

        Channels-last weights make their convolutions (and batch norms) run channels-last, about 20 % faster per
        stage-II step on one CPU thread for 40×40 images in a profile (not a committed benchmark); the values, and so the function, are the same. Stage I
        and its critic, at 1/4 resolution, gain nothing and stay as they are.
        """
        stages = [self.generator.stage2, self.critic]
        if self.generator_ema is not None:
            stages.append(self.generator_ema.stage2)
        for module in stages:
            module.to(memory_format=memory_format)

    @torch.no_grad()
    def _sync(self) -> None:
        if self.adversarial_loss.lipschitz == "clip":
            for p in self.critic_coarse.parameters():
                p.clamp_(-self.clip, self.clip)
        super()._sync()

    def on_epoch_start(self, epoch: int) -> None:
        self.epoch_.fill_(int(epoch))

    def train(self, mode: bool = True) -> StackGAN:
        """As every module; a frozen stage I (``freeze_stage_one`` in stage II) stays in eval mode, so that its
        batch-norm statistics do not drift while stage II trains on its images."""
        super().train(mode)
        if mode and self.freeze_stage_one and self.stage() == 2:
            self.generator.stage1.eval()
        return self

    def on_fit_end(self, events: Any) -> None:
        if int(self.epoch_) <= self.stage_one_epochs:
            warnings.warn(f"{self.cli_name}: the fit ended at epoch {int(self.epoch_)}, before stage II started (after "
                          f"stage_one_epochs={self.stage_one_epochs}): samples are stage I's images upsampled. Train "
                          "longer or lower stage_one_epochs.", UserWarning, stacklevel=2)

    def stage(self) -> int:
        """1 while stage I trains alone (the first ``stage_one_epochs`` epochs), then 2."""
        return 1 if int(self.epoch_) <= self.stage_one_epochs else 2

    def players(self) -> list[Player]:
        """Each stage's critic on every batch and generator on every ``critic_steps``-th; a stage not training
        this epoch has ``every = 0`` (the engine reads players() again after each ``on_epoch_start``)."""
        two = self.stage() == 2
        one = not (two and self.freeze_stage_one)
        k = self.critic_steps
        return [
            Player("critic_1", list(self.critic_coarse.parameters()), lr=self.lr_critic, every=int(one), betas=self.betas),
            Player("generator_1", list(self.generator.stage1.parameters()), lr=self.lr_generator, every=k * int(one),
                   betas=self.betas),
            Player("critic_2", list(self.critic.parameters()), lr=self.lr_critic, every=int(two), betas=self.betas),
            Player("generator_2", list(self.generator.stage2.parameters()), lr=self.lr_generator, every=k * int(two),
                   betas=self.betas),
        ]

    # -- the engine's steps ----------------------------------------------------------------------
    def downsample(self, x: Tensor) -> Tensor:
        """The real image at stage I's resolution: f×f average pooling (adaptive at ragged edges), (batch, *coarse)."""
        c, h, w = image_shape(self.coarse_shape)
        img = x.reshape(x.shape[0], *image_shape(self.shape))
        return F.adaptive_avg_pool2d(img, (h, w)).reshape(x.shape[0], *self.coarse_shape)

    def player_step(self, player: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per-event losses (batch,) of ``critic_1``, ``generator_1`` (stage I), ``critic_2``, ``generator_2`` (stage II)."""
        self._sync()
        x, c = batch["x"], batch.get("context")
        z = self.draw_latent(x.shape[0])
        g = self.generator
        if player == "critic_1":
            with torch.no_grad():
                fake = g.coarse(z, c)
            return self._critic_losses(self.downsample(x), fake, c, penalty=True, critic=self.critic_coarse)
        if player == "critic_2":
            with torch.no_grad():
                fake = g(z, c)
            return self._critic_losses(x, fake, c, penalty=True)
        if player in ("generator_1", "generator_2"):
            if player == "generator_1":
                fake, critic = g.coarse(z, c), self.critic_coarse
            else:
                with torch.no_grad():
                    coarse = g.coarse(z, c)
                fake, critic = g.refine(coarse, c), self.critic
            with frozen(critic):  # its weight gradients would be discarded
                f = critic(fake, c)
            self._ema_pending = True
            return {"loss": self.adversarial_loss.generator(f), "d_fake": self._prob(f).detach()}
        raise ConfigError(f"{type(self).__name__} has players critic_1, generator_1, critic_2 and generator_2, "
                          f"not {player!r}")

    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Both stages' critic and generator losses on held-out events (no gradient penalty): stage I's prefixed
        ``coarse_``."""
        self._sync()
        x, c = batch["x"], batch.get("context")
        coarse, fine = self.generator.stages(self.draw_latent(x.shape[0]), c)
        out = {f"coarse_{k}": v for k, v in self._critic_losses(self.downsample(x), coarse, c, penalty=False,
                                                                 critic=self.critic_coarse).items()}
        out["coarse_critic_loss"] = out.pop("coarse_loss")
        out["coarse_generator_loss"] = self.adversarial_loss.generator(self.critic_coarse(coarse, c))
        fine_out = self._critic_losses(x, fine, c, penalty=False)
        fine_out["critic_loss"] = fine_out.pop("loss")
        fine_out["generator_loss"] = self.adversarial_loss.generator(self.critic(fine, c))
        return {**out, **fine_out}

    # -- public API --------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_stages(self, n: int, context: Any = None) -> tuple[Tensor, Tensor]:
        """(stage I's coarse images (n, *coarse_shape), the refined images (n, *shape)) from the same z, both in
        the original units (the coarse one through the preprocessing of its upsampled image, then pooled back)."""
        n = int(n)
        c = self.context_to_internal(context, n)
        coarse, fine = self._sampler().stages(self.draw_latent(n), c)
        up = self._sampler().stage2
        b = coarse.shape[0]
        _, h, w = up.image
        lifted = F.interpolate(coarse.reshape(b, up.image[0], *coarse.shape[-2:]), size=(h, w), mode="nearest")
        coarse_x = self.downsample(self.to_external(lifted.reshape(b, *self.shape)))
        return coarse_x, self.to_external(fine)
