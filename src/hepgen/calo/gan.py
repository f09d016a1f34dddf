"""CaloGAN: a conditional WGAN-GP over the three calorimeter layers given the incident energy.

    (r, s_0, s_1, s_2) = G(z, c),  c = ((ln E − ln 10) / ln 10, further context standardised)
    cells_k = 1000 E · r_k · s_k + σ_noise · N(0, 1)          [MeV];  r_k = softplus(·): layer energy / E_inc,
                                                                     s_k = softmax over the cells of layer k
    critic D(T(x), c) with T(x) = [asinh(x / (1000 E) / cell_scale) per cell, asinh(E_k / (1000 E) / layer_scale)]

Design (issue 13): one trunk MLP over (z, c) with a head per layer — the trunk carries the
correlations between layers (the layer energies and the response, which the evaluation weighs most
and a network per layer would have to learn through a shared latent), the heads give each layer its
own geometry (CaloGAN's per-layer generators) at 504 cells in all. The energy is explicit: each
head predicts the layer's share of the incident energy and a normalised shape, so the response
E_dep/E_inc follows the conditioning energy by construction rather than by regression through 504
unconstrained outputs. The simulator's electronic noise (Gaussian, ``noise`` MeV per cell) is a known
detector property: it is added to generated cells, in training too, so the critic sees noisy showers
on both sides. The critic works on a compressed, energy-normalised view (asinh: linear near 0 where
the noise lives, logarithmic for the bright core), the gradient penalty on that view.

Context: the first column is the incident energy in GeV (``--context energy``); further columns
(e.g. a one-hot particle type, detector parameters) are conditions too. The simulator writes one
particle per file, so the default is one model per particle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from hepgen.calo.showers import LAYERS
from hepgen.errors import ConfigError
from hepgen.gans.adversarial import Adversarial
from hepgen.gans.networks import MLPCritic
from hepgen.nn.mlp import MLP, activation

LOG10 = math.log(10.0)


def energy_condition(energy: Tensor) -> Tensor:
    """(ln E − ln 10) / ln 10 for E in GeV: −1 at 1 GeV, 1 at 100 GeV: (batch,) -> (batch, 1)."""
    return ((torch.log(energy.clamp_min(1e-6)) - LOG10) / LOG10)[:, None]


class LayerGenerator(nn.Module):
    """G: z (batch, latent), c (batch, cond) -> (fractions (batch, K), [shapes (batch, cells_k)] summing to 1)."""

    def __init__(self, latent: int, shapes: Mapping[str, Sequence[int]], hidden: Sequence[int], cond: int,
                 act: str = "leaky_relu"):
        super().__init__()
        self.names = list(shapes)
        self.cells = [int(np.prod(s)) for s in shapes.values()]
        self.trunk = nn.Sequential(MLP(latent, hidden[-1], hidden[:-1], context=cond, activation=act), activation(act))
        self.fraction = nn.Linear(hidden[-1] + cond, len(self.cells))
        self.heads = nn.ModuleList(nn.Linear(hidden[-1] + cond, n) for n in self.cells)

    def forward(self, z: Tensor, c: Tensor) -> tuple[Tensor, list[Tensor]]:
        h = torch.cat([self.trunk[1](self.trunk[0](z, c)), c], dim=1)
        fractions = F.softplus(self.fraction(h) - 2.6)  # starts near 0.07 a layer: a response of 0.2
        return fractions, [torch.softmax(head(h), dim=1) for head in self.heads]


class CaloGAN(Adversarial):
    """Conditional WGAN-GP for showers of the calo generator's layout (module doc).

    Args:
        shapes: {layer name: (rows, cols)} (default: the calo generator's three layers).
        context: context columns, the first the incident energy in GeV (1: energy only).
        latent: size of z. hidden: generator trunk sizes. critic_hidden: critic sizes.
        critic_steps: critic steps per generator step. noise: electronic noise added per cell (MeV).
        cell_scale, layer_scale: the asinh scales of the critic's view (fractions of E_inc).
        lr_critic, lr_generator, betas, ema, gp_weight: see :class:`hepgen.gans.adversarial.Adversarial`.
    """

    cli_name = "calo-gan"

    def __init__(self, shapes: Mapping[str, Sequence[int]] | None = None, context: int = 1, latent: int = 32,
                 hidden: Sequence[int] = (256, 256, 256), critic_hidden: Sequence[int] = (256, 256, 256),
                 critic_steps: int = 5, noise: float = 1.0, cell_scale: float = 1e-4, layer_scale: float = 1e-2,
                 lr_critic: float | None = None, lr_generator: float | None = None,
                 betas: Sequence[float] = (0.5, 0.9), ema: float = 0.99, gp_weight: float = 10.0,
                 preprocess: Any = "none"):
        self.shapes = {str(k): [int(s) for s in v] for k, v in (shapes or LAYERS).items()}
        if int(context) < 1:
            raise ConfigError("calo-gan is conditional on the incident energy: fit it with --context energy "
                              "(context=1, the energy in GeV first)")
        if preprocess != "none":
            raise ConfigError("calo-gan normalises showers itself (by the incident energy); preprocess must be 'none'")
        super().__init__(self.shapes, int(context), "none")
        self.latent = int(latent)
        self.hidden, self.critic_hidden = tuple(int(h) for h in hidden), tuple(int(h) for h in critic_hidden)
        if self.latent < 1 or not self.hidden or not self.critic_hidden or min(self.hidden + self.critic_hidden) < 1:
            raise ConfigError("calo-gan: latent and the hidden sizes must be positive")
        if float(noise) < 0 or float(cell_scale) <= 0 or float(layer_scale) <= 0:
            raise ConfigError("calo-gan: noise must be >= 0 and cell_scale, layer_scale > 0")
        self.noise, self.cell_scale, self.layer_scale = float(noise), float(cell_scale), float(layer_scale)
        self._init_training("wgan-gp", critic_steps, lr_critic, lr_generator, betas, ema, 0.01, gp_weight)
        cond = self.context
        cells = sum(int(np.prod(s)) for s in self.shapes.values())
        self.generator = LayerGenerator(self.latent, self.shapes, self.hidden, cond)
        self.critic = MLPCritic(cells + len(self.shapes), self.critic_hidden, cond)
        self._finish_init()

    @classmethod
    def from_data(cls, event_shape: Any, context: int, **params: Any) -> CaloGAN:
        if not isinstance(event_shape, dict):
            raise ConfigError(f"calo-gan models showers of several layers (an HDF5 file or group holding "
                              f"{', '.join(LAYERS)}); this data has single-array events of shape {event_shape}")
        return cls(shapes=event_shape, context=context, **params)

    # -- conditions and the critic's view --------------------------------------------------------
    def _conditions(self, c: Tensor) -> tuple[Tensor, Tensor]:
        """(incident energy (batch,) in GeV, the networks' condition (batch, context)) from a preprocessed context."""
        raw = self.context_preprocessor.inverse(c)
        energy = raw[:, 0]
        cond = torch.cat([energy_condition(energy), c[:, 1:]], dim=1)
        return energy, cond

    def _view(self, cells: Sequence[Tensor], energy: Tensor) -> Tensor:
        """T(x): (batch, cells + layers), cells in MeV normalised by 1000 E and compressed with asinh."""
        scale = 1000.0 * energy[:, None]
        flat = [x.reshape(len(x), -1) / scale for x in cells]
        sums = torch.stack([f.sum(1) for f in flat], dim=1)
        return torch.cat([torch.asinh(torch.cat(flat, 1) / self.cell_scale), torch.asinh(sums / self.layer_scale)], 1)

    def _generate(self, z: Tensor, energy: Tensor, cond: Tensor, sampler: nn.Module | None = None) -> list[Tensor]:
        fractions, shapes = (sampler or self.generator)(z, cond)
        out = []
        for k, (name, s) in enumerate(zip(self.shapes, shapes)):
            cells = (1000.0 * energy[:, None] * fractions[:, k:k + 1]) * s
            if self.noise > 0:
                cells = cells + self.noise * torch.randn_like(cells)
            out.append(cells.reshape(len(z), *self.shapes[name]))
        return out

    # -- the engine's steps ------------------------------------------------------------------------
    def player_step(self, player: str, batch: dict[str, Any]) -> dict[str, Tensor]:
        self._sync()
        energy, cond = self._conditions(batch["context"])
        real = self._view([batch["x"][k] for k in self.shapes], energy)
        z = self.draw_latent(len(energy))
        if player == "critic":
            with torch.no_grad():
                fake = self._view(self._generate(z, energy, cond), energy)
            return self._critic_losses(real, fake, cond, penalty=True)
        if player == "generator":
            f = self.critic(self._view(self._generate(z, energy, cond), energy), cond)
            self._ema_pending = True
            return {"loss": self.adversarial_loss.generator(f), "d_fake": f.detach()}
        raise ConfigError(f"{type(self).__name__} has players 'critic' and 'generator', not {player!r}")

    def validation_step(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        self._sync()
        energy, cond = self._conditions(batch["context"])
        real = self._view([batch["x"][k] for k in self.shapes], energy)
        fake = self._view(self._generate(self.draw_latent(len(energy)), energy, cond), energy)
        out = self._critic_losses(real, fake, cond, penalty=False)
        out["critic_loss"] = out.pop("loss")
        out["generator_loss"] = self.adversarial_loss.generator(self.critic(fake, cond))
        # the mean response of generated showers over that of the batch: 1 when the energy scale is right
        out["response_ratio"] = (fake[:, -len(self.shapes):].sinh().sum(1) / real[:, -len(self.shapes):].sinh().sum(1)
                                 .mean().clamp_min(1e-9))
        return out

    # -- public API ----------------------------------------------------------------------------------
    def rsample(self, n: int | None, context: Any = None, z: Tensor | None = None) -> dict[str, Tensor]:
        """Differentiable showers {layer: (n, rows, cols)} in MeV given the context (the energy in GeV first).

        Gradients reach ``context`` (a tensor with requires_grad) and the generator weights. A context
        (n, c) gives one shower per row; one row broadcasts to ``n``.
        """
        if n is None:
            n = int(torch.as_tensor(context).reshape(-1, self.context).shape[0])
        c = self.context_to_internal(context, int(n))
        energy, cond = self._conditions(c)
        z = self.draw_latent(int(n)) if z is None else self._as_tensor(z)
        return dict(zip(self.shapes, self._generate(z, energy, cond, self._sampler())))

    @torch.no_grad()
    def sample(self, n: int | None, context: Any = None) -> dict[str, Tensor]:
        """n showers {layer: (n, rows, cols)} in MeV (the EMA generator)."""
        return self.rsample(n, context)

    def critic_output(self, x: Mapping[str, Any], context: Any = None) -> Tensor:
        """D(T(x), c) on showers in MeV: (batch,)."""
        x = self.to_internal(x)
        n = len(next(iter(x.values())))
        energy, cond = self._conditions(self.context_to_internal(context, n))
        return self.critic(self._view([x[k] for k in self.shapes], energy), cond)

    @torch.no_grad()
    def score(self, x: Mapping[str, Any], context: Any = None) -> Tensor:
        """−D(x): high where the critic finds a shower unlike the training showers: (batch,)."""
        return -self.critic_output(x, context)
