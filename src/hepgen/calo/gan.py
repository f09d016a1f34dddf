"""CaloGAN: a conditional WGAN-GP over the three calorimeter layers given the incident energy.

    (r, s_0, s_1, s_2) = G(z, c),  c = ((ln E − ln 10) / ln 10, further context standardised)
    cells_k = 1000 E · r_k · s_k + σ_noise · N(0, 1)          [MeV];  r_k = softplus(·): layer energy / E_inc,
                                                                     s_k = softmax over the cells of layer k
    critic D(T(x), c) with T(x) = [asinh(x / (1000 E) / cell_scale) per cell, asinh(E_k / (1000 E) / layer_scale)]

Design (issue 13): one trunk MLP over (z, c) with a head per layer — the trunk carries the
correlations between layers (the layer energies and the response, which the evaluation weighs most
and a network per layer would have to learn through a shared latent), the heads give each layer its
own geometry (CaloGAN's per-layer generators) at 504 cells in all. The energy is explicit, as in
CaloGAN: each head predicts the layer's share of the incident energy r_k and a normalised shape s_k
(the softmax is the logit-space treatment of the sparse cells: empty cells sit at large negative
logits), so the response E_dep/E_inc follows the conditioning energy by construction rather than
by regression through 504 unconstrained outputs. The simulator's electronic noise (Gaussian,
``noise`` MeV per cell) is a known detector property: it is added to generated cells, in training
too, so the critic sees noisy showers on both sides (on a CaloChallenge geometry the default is no
noise: its Geant4 voxels have none, and noise on the generated side only would tell them apart). The
critic works on a compressed, energy-normalised view (asinh: linear near 0 where the noise lives,
logarithmic for the bright core), the gradient penalty on that view.

Energy scale (what an adversarial loss alone gets wrong in a short fit — the response was 66 % low):

* warm start (``on_fit_start``, up to 20,000 training showers): the fraction layer starts at the
  training showers' mean layer fractions as a cubic in t = (ln E − ln 10)/ln 10 (least squares
  through 12 bins of t, in softplus⁻¹ space; the fraction layer sees t, t², t³), each layer's
  logits at the log of its mean shape (noise averages out, so empty cells start near zero). The
  generator starts as the mean shower at every energy and the critic only has to teach it the
  fluctuations.
* the per-layer energy term, added to the generator loss with weight ``energy_weight``: the batch
  sorted by E_inc is cut into groups of ``energy_group`` showers; per group g and column j (the
  layer fractions r_k and their sum, the response), in units of the batch's real mean s_j,

      L_E = mean_g Σ_j [ (mean_g r̃_j − mean_g r_j)² − var_g(r̃_j) / |g| ] / s_j²

  (r̃ generated at the group's energies, r real). The second term removes the generated sample's
  own variance from the expected squared gap, so the gradient is unbiased for that of
  Σ_j (μ̃_j(E) − μ_j(E))² and the term does not shrink the showers' fluctuations.

``sample`` is a fast path of ``rsample`` (same distribution, no graph): one matrix product for all
layers' logits (the heads are column blocks of one linear layer), softmax, scaling and noise in
place into the output arrays, and no preprocessing round trip for an energy-only context.

Context: the first column is the incident energy in GeV (``--context energy``); further columns
(e.g. a one-hot particle type, detector parameters) are conditions too. The simulator writes one
particle per file, so the default is one model per particle.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from hepgen.calo.monitor import ShowerMonitors
from hepgen.calo.shower_layout import IncidentEnergyChecks, layer_shapes, shower_geometry, shower_model_from_data
from hepgen.errors import ConfigError
from hepgen.gans.adversarial import Adversarial
from hepgen.gans.networks import MLPCritic
from hepgen.models import register
from hepgen.nn.functional import asinh
from hepgen.nn.mlp import MLP, activation

LOG10 = math.log(10.0)


def energy_condition(energy: Tensor) -> Tensor:
    """(ln E − ln 10) / ln 10 for E in GeV: −1 at 1 GeV, 1 at 100 GeV: (batch,) -> (batch, 1)."""
    return ((torch.log(energy.clamp_min(1e-6)) - LOG10) / LOG10)[:, None]


class LayerGenerator(nn.Module):
    """G: z (batch, latent), c (batch, cond) -> (fractions (batch, K), [shapes (batch, cells_k)] summing to 1).

    The per-layer heads are the column blocks of one linear layer over all cells (one matrix product).
    """

    def __init__(self, latent: int, shapes: Mapping[str, Sequence[int]], hidden: Sequence[int], cond: int,
                 act: str = "leaky_relu"):
        super().__init__()
        self.names = list(shapes)
        self.cells = [int(np.prod(s)) for s in shapes.values()]
        self.trunk = nn.Sequential(MLP(latent, hidden[-1], hidden[:-1], context=cond, activation=act), activation(act))
        self.fraction = nn.Linear(hidden[-1] + cond + 2, len(self.cells))  # + t², t³ of the energy condition t
        self.heads = nn.Linear(hidden[-1] + cond, sum(self.cells))
        ends = np.cumsum([0, *self.cells])
        self._blocks = [slice(int(a), int(b)) for a, b in itertools.pairwise(ends)]

    def blocks(self) -> list[slice]:
        """The cell columns of each layer in the heads' output."""
        return self._blocks

    def logits(self, z: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """(fractions (batch, K), the cell logits of every layer (batch, cells))."""
        h = torch.cat([self.trunk[1](self.trunk[0](z, c)), c], dim=1)
        t = c[:, :1]
        fractions = F.softplus(self.fraction(torch.cat([h, t * t, t * t * t], 1)) - 2.6)  # near 0.07 a layer at init
        return fractions, self.heads(h)

    def forward(self, z: Tensor, c: Tensor) -> tuple[Tensor, list[Tensor]]:
        fractions, logits = self.logits(z, c)
        return fractions, [torch.softmax(logits[:, b], dim=1) for b in self.blocks()]


@register
class CaloGAN(ShowerMonitors, IncidentEnergyChecks, Adversarial):
    """Conditional WGAN-GP for showers of the calo generator's layout (module doc).

    Args:
        shapes: {layer name: (rows, cols)} (default: the calo generator's three layers).
        context: context columns, the first the incident energy in GeV (1: energy only).
        latent: size of z. hidden: generator trunk sizes. critic_hidden: critic sizes.
        critic_steps: critic steps per generator step. noise: electronic noise added per cell (MeV); default
            1 (the simulator's), 0 with a ``geometry`` (the CaloChallenge's Geant4 voxels carry no noise).
        cell_scale, layer_scale: the asinh scales of the critic's view (fractions of E_inc).
        energy_weight, energy_group: weight of the per-layer energy term and the showers per E_inc group
            (module doc); energy_weight=0 trains on the adversarial loss alone.
        lr_critic, lr_generator, betas, ema, gp_weight: see :class:`hepgen.gans.adversarial.Adversarial`.
        geometry: a CaloChallenge binning XML (``binning.xml[:particle]``, or the geometry a run recorded): the
            layers are its (angular, radial) bins ``layer_<id>`` and ``hepgen sample`` writes the CaloChallenge
            layout (incident_energies, showers in MeV); the run records its content. None: the simulator's layers.

    ``fit(..., monitor="fpd" or "auc", monitor_every=K)`` keeps the epoch whose showers are closest to the
    validation showers by the high-level FPD or classifier AUC (:mod:`hepgen.calo.monitor`).
    Incident energies must be positive GeV values in training and sampling; ``sample``/``rsample`` refuse energies
    far outside the training range (``energy_range_``) unless called with ``extrapolate=True``.
    """

    cli_name = "calo-gan"

    def __init__(self, shapes: Mapping[str, Sequence[int]] | None = None, context: int = 1, latent: int = 32,
                 hidden: Sequence[int] = (256, 256, 256), critic_hidden: Sequence[int] = (256, 256, 256),
                 critic_steps: int = 5, noise: float | None = None, cell_scale: float = 1e-4, layer_scale: float = 1e-2,
                 lr_critic: float | None = None, lr_generator: float | None = None,
                 betas: Sequence[float] = (0.5, 0.9), ema: float = 0.99, gp_weight: float = 10.0,
                 energy_weight: float = 10.0, energy_group: int = 16, geometry: Mapping[str, Any] | str | None = None,
                 preprocess: Any = "none"):
        self.geometry, shapes = shower_geometry("calo-gan", geometry, shapes)
        self.shapes = layer_shapes("calo-gan", shapes, context, preprocess, "normalises showers itself (by the incident energy)")
        super().__init__(self.shapes, int(context), "none")
        self.latent = int(latent)
        self.hidden, self.critic_hidden = tuple(int(h) for h in hidden), tuple(int(h) for h in critic_hidden)
        if self.latent < 1 or not self.hidden or not self.critic_hidden or min(self.hidden + self.critic_hidden) < 1:
            raise ConfigError("calo-gan: latent and the hidden sizes must be positive")
        if noise is None:  # the simulator's electronic noise; a CaloChallenge geometry's Geant4 voxels have none
            noise = 1.0 if self.geometry is None else 0.0
        if float(noise) < 0 or float(cell_scale) <= 0 or float(layer_scale) <= 0:
            raise ConfigError("calo-gan: noise must be >= 0 and cell_scale, layer_scale > 0")
        self.noise, self.cell_scale, self.layer_scale = float(noise), float(cell_scale), float(layer_scale)
        if float(energy_weight) < 0 or int(energy_group) < 2:
            raise ConfigError(f"calo-gan: energy_weight must be >= 0 and energy_group >= 2, got {energy_weight} "
                              f"and {energy_group}")
        self.energy_weight, self.energy_group = float(energy_weight), int(energy_group)
        self._init_training("wgan-gp", critic_steps, lr_critic, lr_generator, betas, ema, 0.01, gp_weight)
        cond = self.context
        cells = sum(int(np.prod(s)) for s in self.shapes.values())
        self.generator = LayerGenerator(self.latent, self.shapes, self.hidden, cond)
        self.critic = MLPCritic(cells + len(self.shapes), self.critic_hidden, cond)
        self._finish_init()

    from_data = classmethod(shower_model_from_data)

    def on_fit_start(self, events: Any) -> None:
        """Start the generator at the mean shower of (up to 20,000 of) the training showers (module doc)."""
        if events is None or not len(events):
            return
        self._record_energy_range(events)
        part = events.rows(0, min(len(events), 20_000))  # the first showers, in memory or streamed from disk
        c = self.context_preprocessor(self._as_tensor(np.asarray(part["context"])))
        energy, cond = self._conditions(c)
        with torch.no_grad():
            flat = [self._as_tensor(np.asarray(part["x"][k])).reshape(len(energy), -1) for k in self.shapes]
            fractions = torch.stack([f.sum(1) for f in flat], 1) / (1000.0 * energy[:, None])
            # the mean layer fractions: a cubic in the energy condition in softplus⁻¹ space (12 bins in ln E)
            t = cond[:, 0]
            edges = torch.linspace(float(t.min()), float(t.max()), 13, dtype=t.dtype, device=t.device)
            rows, targets = [], []
            for lo, hi in itertools.pairwise(edges):
                inside = (t >= lo) & (t <= hi)
                if inside.sum() < 5:
                    continue
                mean = fractions[inside].mean(0).clamp(1e-6, 10.0)
                m = t[inside].mean()
                rows.append(torch.stack([torch.ones_like(m), m, m * m, m * m * m]))
                targets.append(mean + torch.log(-torch.expm1(-mean)) + 2.6)  # softplus⁻¹(r) + 2.6
            gen = self.generator
            hidden = gen.fraction.in_features - self.context - 2
            if len(rows) >= 4:  # a cubic in t through the bins' means: columns t, t², t³ of the fraction layer
                coef = torch.linalg.lstsq(torch.stack(rows), torch.stack(targets)).solution  # (4, K)
                gen.fraction.bias.copy_(coef[0])
                gen.fraction.weight[:, hidden].copy_(coef[1])
                gen.fraction.weight[:, -2:].copy_(coef[2:].T)
                gen.fraction.weight[:, hidden + 1:-2].zero_()
                gen.fraction.weight[:, :hidden].mul_(0.1)
            for block, f in zip(gen.blocks(), flat):
                shape = f.mean(0)  # the noise averages out: empty cells start near 0
                shape = shape.clamp_min(1e-7 * shape.sum().abs().clamp_min(1e-12))
                gen.heads.bias[block].copy_(torch.log(shape / shape.sum()))
            if self.generator_ema is not None:
                self.generator_ema.load_state_dict(gen.state_dict())

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
        return torch.cat([asinh(torch.cat(flat, 1) / self.cell_scale), asinh(sums / self.layer_scale)], 1)

    def _generate(self, z: Tensor, energy: Tensor, cond: Tensor, sampler: nn.Module | None = None,
                  with_fractions: bool = False) -> Any:
        """Generated showers [layer (batch, rows, cols)] in MeV (and the layer fractions r (batch, K))."""
        fractions, shapes = (sampler or self.generator)(z, cond)
        scale = 1000.0 * energy[:, None] * fractions
        out = []
        for k, (name, s) in enumerate(zip(self.shapes, shapes)):
            cells = scale[:, k:k + 1] * s
            if self.noise > 0:
                cells = cells + self.noise * torch.randn_like(cells)
            out.append(cells.reshape(len(z), *self.shapes[name]))
        return (out, fractions) if with_fractions else out

    def _energy_loss(self, fake: Tensor, real: Tensor, energy: Tensor) -> Tensor:
        """The per-layer energy term (module doc): 0-dim, its gradient unbiased for ∇ Σ (μ_fake − μ_real)²."""
        cols_f = torch.cat([fake, fake.sum(1, keepdim=True)], 1)
        cols_r = torch.cat([real, real.sum(1, keepdim=True)], 1)
        scale = cols_r.mean(0).abs().clamp_min(1e-4).detach()
        order = torch.argsort(energy)
        loss, groups = cols_f.new_zeros(()), 0
        for idx in torch.split(order, self.energy_group):
            if len(idx) < 2:
                continue
            f, r = cols_f[idx] / scale, cols_r[idx] / scale
            gap = (f.mean(0) - r.mean(0)) ** 2 - f.var(0) / len(idx)
            loss, groups = loss + gap.sum(), groups + 1
        return loss / max(groups, 1)

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
            cells, fractions = self._generate(z, energy, cond, with_fractions=True)
            f = self.critic(self._view(cells, energy), cond)
            self._ema_pending = True
            loss = self.adversarial_loss.generator(f)
            out = {"d_fake": f.detach()}
            if self.energy_weight > 0:
                k = len(self.shapes)
                real_fractions = torch.sinh(real[:, -k:]) * self.layer_scale
                energy_loss = self._energy_loss(fractions, real_fractions, energy)
                loss = loss + self.energy_weight * energy_loss
                out["energy_loss"] = energy_loss.detach().expand(len(f))
            return {"loss": loss, **out}
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
    def rsample(self, n: int | None, context: Any = None, z: Tensor | None = None,
                extrapolate: bool = False) -> dict[str, Tensor]:
        """Differentiable showers {layer: (n, rows, cols)} in MeV given the context (the energy in GeV first).

        Gradients reach ``context`` (a tensor with requires_grad) and the generator weights. A context
        (n, c) gives one shower per row; one row broadcasts to ``n``. ``extrapolate``: allow energies far
        outside the training range.
        """
        if n is None:
            n = int(torch.as_tensor(context).reshape(-1, self.context).shape[0])
        c = self.context_to_internal(context, int(n))
        energy, cond = self._conditions(c)
        self._check_energy(energy, extrapolate)
        z = self.draw_latent(int(n)) if z is None else self._as_tensor(z)
        return dict(zip(self.shapes, self._generate(z, energy, cond, self._sampler())))

    @torch.inference_mode()
    def sample(self, n: int | None, context: Any = None, extrapolate: bool = False) -> dict[str, Tensor]:
        """n showers {layer: (n, rows, cols)} in MeV (the EMA generator); ``extrapolate`` as in :meth:`rsample`.

        The fast path of :meth:`rsample` (same distribution, no graph): one matrix product for every
        layer's logits, softmax, scaling and noise in place into the output arrays.
        """
        if n is None:
            n = int(torch.as_tensor(context).reshape(-1, self.context).shape[0])
        n = int(n)
        sampler = self._sampler()
        weight = sampler.heads.weight
        if self.context == 1 and context is not None:  # the energy alone: no preprocessing round trip
            energy = torch.as_tensor(context).to(device=weight.device, dtype=weight.dtype).reshape(-1)
            if energy.numel() not in (1, n):
                self.context_to_internal(context, n)  # raises the usual error
            self._check_energy(energy, extrapolate)
            energy = energy.expand(n)
            cond = energy_condition(energy)
        else:
            energy, cond = self._conditions(self.context_to_internal(context, n))
            self._check_energy(energy, extrapolate)
        z = torch.randn(n, self.latent, device=weight.device, dtype=weight.dtype)
        fractions, logits = sampler.logits(z, cond)
        scale = fractions.mul_(1000.0 * energy[:, None])  # layer energies (n, K) in MeV
        out = {}
        for k, (name, block) in enumerate(zip(self.shapes, sampler.blocks())):
            part = logits[:, block]
            part = part.sub_(part.amax(1, keepdim=True)).exp_()
            factor = scale[:, k:k + 1] / part.sum(1, keepdim=True)
            cells = torch.empty(n, block.stop - block.start, dtype=logits.dtype, device=logits.device)
            if self.noise > 0:
                cells.normal_(0.0, self.noise).addcmul_(part, factor)
            else:
                torch.mul(part, factor, out=cells)
            out[name] = cells.view(n, *self.shapes[name])
        return out

    def critic_output(self, x: Mapping[str, Any], context: Any = None) -> Tensor:
        """D(T(x), c) on showers in MeV: (batch,)."""
        x = self.to_internal(x)
        n = len(next(iter(x.values())))
        energy, cond = self._conditions(self.context_to_internal(context, n))
        self._check_energy(energy, extrapolate=True)  # physical; a score judges showers at any energy
        return self.critic(self._view([x[k] for k in self.shapes], energy), cond)

    @torch.no_grad()
    def score(self, x: Mapping[str, Any], context: Any = None) -> Tensor:
        """−D(x): high where the critic finds a shower unlike the training showers: (batch,)."""
        return -self.critic_output(x, context)
