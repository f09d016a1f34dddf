"""Diagnostics of adversarial training: mode coverage, vanishing gradients, critic estimates, KL/JS over training.

    mode coverage      a sample is "high quality" if it lies within 3σ of its nearest mode; a mode is hit
                       when it holds at least ``min_fraction`` of the samples as high-quality samples
    generator grad     ‖∂ E[ℓ_G(D(G(z)))] / ∂θ‖, for any generator loss, against the current critic
    critic estimate    E_p[D(x)] − E_q[D(y)] for a critic trained by the engine on two samples
                       (:class:`CriticEstimate`; Wasserstein losses: ≈ W1(p, q)); mean σ(D) for
                       probabilistic ones (→ ½ when p = q)
    grid divergences   KL and JS between histograms of data and samples on a fixed grid

Per-epoch diagnostics: ``model.fit(x, diagnostics=[ModeCoverage(centres, σ), GridDivergence(x)])``
evaluates each one after every epoch (in the validation pass, so it needs validation events) and
the engine logs its values in ``history_`` and ``metrics.csv`` as ``val_<name>``: ``val_modes_hit``,
``val_high_quality``, ``val_grid_kl``, ``val_grid_js``, ``val_grad_norm_<loss>``. A diagnostic is any
callable ``d(model) -> dict[str, float]``; the engine already logs the losses, mean D(real), D(fake),
the Wasserstein estimate and the generator's gradient norm of every step (``train_generator_grad_norm``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepgen.errors import ConfigError, DataError
from hepgen.gans.losses import get_loss, gradient_penalty
from hepgen.models import Model, Player
from hepgen.nn.rng import seeded


def mode_coverage(samples: Any, centres: Any, sigma: float, min_fraction: float | None = None) -> tuple[int, float]:
    """(modes hit, high-quality fraction: the share of samples within 3σ of their nearest mode).

    samples: (n, d); centres: (k, d); sigma: the modes' standard deviation. A mode is hit when at
    least ``min_fraction`` of all samples lie within 3σ of it (default: a quarter of its fair share, 1/(4k)).
    """
    x = np.asarray(samples, dtype=float)
    c = np.asarray(centres, dtype=float)
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1] or len(x) == 0:
        raise DataError(f"mode_coverage needs samples (n, d) and centres (k, d) of the same d; got {x.shape} "
                        f"and {c.shape}")
    if not np.isfinite(x).all():
        raise DataError(f"mode_coverage: samples contain NaN or inf (first bad row {np.where(~np.isfinite(x))[0][0]})")
    dist = np.sqrt(((x[:, None, :] - c[None, :, :]) ** 2).sum(-1))
    nearest, d = dist.argmin(1), dist.min(1)
    good = d < 3.0 * sigma
    share = min_fraction if min_fraction is not None else 0.25 / len(c)
    counts = np.bincount(nearest[good], minlength=len(c))
    return int((counts >= share * len(x)).sum()), float(good.mean())


def generator_grad_norm(model: Any, n: int = 1024, loss: str | None = None, context: Any = None) -> float:
    """‖∇_θ mean ℓ_G‖ of the generator parameters θ against the current critic (the vanishing-gradient
    diagnostic); ``loss`` overrides the model's generator loss (e.g. ``minimax`` vs ``non-saturating``)."""
    generator_loss = get_loss(loss).generator if loss is not None else model.adversarial_loss.generator
    params = [p for p in model.generator.parameters() if p.requires_grad]
    c = model.context_to_internal(context, n)
    f = model.critic(model.generator(model.draw_latent(n), c), c)
    grads = torch.autograd.grad(generator_loss(f).mean(), params)
    return float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))


def sample_seeded(model: Any, n: int, seed: int) -> np.ndarray:
    """n samples (n, ...) as float64 NumPy, drawn under ``seed`` without moving the global torch RNG."""
    with seeded(seed, getattr(model, "device", None)), torch.no_grad():  # must not shift the training RNG stream
        return model.sample(n).detach().cpu().double().numpy()


class ModeCoverage:
    """Per-epoch diagnostic: :func:`mode_coverage` of ``n`` model samples (drawn with a fixed seed).

    ``ModeCoverage(centres (k, d), sigma)(model) -> {"modes_hit", "high_quality"}``.
    """

    def __init__(self, centres: Any, sigma: float, n: int = 2000, seed: int = 0, min_fraction: float | None = None):
        self.centres = np.asarray(centres, dtype=float)
        if self.centres.ndim != 2:
            raise DataError(f"ModeCoverage needs mode centres of shape (k, d), got {self.centres.shape}")
        self.sigma, self.n, self.seed, self.min_fraction = float(sigma), int(n), int(seed), min_fraction

    def __call__(self, model: Any) -> dict[str, float]:
        hit, good = mode_coverage(sample_seeded(model, self.n, self.seed), self.centres, self.sigma,
                                  self.min_fraction)
        return {"modes_hit": float(hit), "high_quality": good}


class GeneratorGradNorms:
    """Per-epoch diagnostic: :func:`generator_grad_norm` against the current critic for several generator
    losses (default minimax and non-saturating, the vanishing-gradient comparison) -> ``{"grad_norm_<loss>"}``.
    For models with one generator and one critic (GAN, ConvGAN and their presets)."""

    def __init__(self, losses: Sequence[str] = ("minimax", "non-saturating"), n: int = 1024, seed: int = 0):
        for name in losses:
            get_loss(name)
        self.losses, self.n, self.seed = tuple(losses), int(n), int(seed)

    def __call__(self, model: Any) -> dict[str, float]:
        out = {}
        for name in self.losses:
            with seeded(self.seed, model.device), torch.enable_grad():
                out[f"grad_norm_{name.replace('-', '_')}"] = generator_grad_norm(model, self.n, loss=name)
        return out


class CriticEstimate(Model):
    """A critic trained alone, by the engine, to tell real events from fake ones: the critic estimate.

    ``CriticEstimate(critic, fake, loss)``: ``critic`` an ``nn.Module`` (batch, d) -> (batch,) (e.g.
    :class:`hepgen.gans.networks.MLPCritic`), ``fake`` a fixed sample (m, d) or a sampler ``n -> (n, d)``
    (fresh generator draws at every step). ``fit(real, ...)`` trains it on batches of the real events against
    as many fake ones (``loss``'s critic objective; the gradient penalty for ``wgan-gp``, weight clipping to
    ±``clip`` for ``wgan``; Adam with ``betas``), and :meth:`estimate` evaluates it on full samples:
    E[D(real)] − E[D(fake)] for Wasserstein losses (≈ W1), mean σ(D) over both samples for probabilistic ones
    (½ when it cannot tell them apart), else E[D(real)]. Not a generative model: the CLI does not fit it.
    """

    cli_name = "critic-estimate"
    fit_defaults = {"monitor": None, "val_fraction": 0.0}

    def __init__(self, critic: nn.Module, fake: Tensor | Callable[[int], Tensor], loss: str = "wgan-gp",
                 features: int | None = None, betas: Sequence[float] = (0.5, 0.9), clip: float = 0.01,
                 gp_weight: float = 10.0):
        self.spec = get_loss(loss)
        if features is None:
            if callable(fake):
                raise ConfigError("CriticEstimate: give features= (the event size) with a sampler as fake")
            features = int(torch.as_tensor(fake).shape[1])
        super().__init__((int(features),), 0, "none")
        self.critic, self.fake, self.loss = critic, fake, loss
        self.betas, self.clip, self.gp_weight = tuple(float(b) for b in betas), float(clip), float(gp_weight)

    def players(self) -> list[Player]:
        return [Player("critic", list(self.critic.parameters()), betas=self.betas)]

    def _draw(self, n: int) -> Tensor:
        fake = self.fake(n) if callable(self.fake) else self.fake[torch.randint(len(self.fake), (n,))]
        return torch.as_tensor(fake).to(device=self.device, dtype=self.dtype)

    @torch.no_grad()
    def _clip(self) -> None:
        if self.spec.lipschitz == "clip":
            for p in self.critic.parameters():
                p.clamp_(-self.clip, self.clip)

    def player_step(self, player: str, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The critic's per-event loss on a batch of real events and as many fake ones."""
        self._clip()  # the clipping of the previous step (weights stay in [-clip, clip])
        x = batch["x"]
        y = self._draw(len(x))
        value = self.spec.critic(self.critic(x), self.critic(y))
        if self.spec.lipschitz == "penalty":
            value = value + gradient_penalty(self.critic, x, y, weight=self.gp_weight)
        return {"loss": value}

    def on_fit_end(self, events: Any) -> None:
        self._clip()

    @torch.no_grad()
    def estimate(self, real: Tensor) -> float:
        """The critic estimate on the full samples (class doc)."""
        real = torch.as_tensor(real).to(device=self.device, dtype=self.dtype)
        fake = self._draw(len(real)) if callable(self.fake) else torch.as_tensor(self.fake).to(real)
        r, f = self.critic(real), self.critic(fake)
        if self.spec.wasserstein:
            return float(r.mean() - f.mean())
        if self.spec.probabilistic:
            return float(torch.cat([torch.sigmoid(r), torch.sigmoid(f)]).mean())
        return float(r.mean())


def train_critic(critic: nn.Module, real: Tensor, fake: Tensor | Callable[[int], Tensor], loss: str = "wgan-gp",
                 steps: int = 2000, lr: float = 1e-3, batch_size: int = 256, betas: Sequence[float] = (0.5, 0.9),
                 clip: float = 0.01, gp_weight: float = 10.0, seed: int = 0, device: str = "auto") -> float:
    """Train ``critic`` alone to tell ``real`` (n, d) from ``fake`` ((m, d) or a sampler n -> (n, d)) for about
    ``steps`` batches (whole epochs of ``real`` through the engine, seeded with ``seed``) and return its
    estimate on the full samples (:class:`CriticEstimate`). ``critic`` is trained in place (weights re-drawn)."""
    real = torch.as_tensor(real)
    if real.ndim != 2 or len(real) < 2:
        raise DataError(f"train_critic needs real events (n, d) with n >= 2, got shape {tuple(real.shape)}")
    model = CriticEstimate(critic, fake, loss, features=real.shape[1], betas=betas, clip=clip, gp_weight=gp_weight)
    batches = math.ceil(len(real) / int(batch_size))
    model.fit(real, epochs=max(1, math.ceil(int(steps) / batches)), batch_size=int(batch_size), lr=lr, seed=seed,
              device=device, quiet=True)
    return model.estimate(real)


def grid_range(x: np.ndarray, pad: float = 0.1) -> list[tuple[float, float]]:
    """Per-feature (low, high) of ``x`` (n, d) widened by ``pad`` of the span on each side."""
    lo, hi = x.min(0), x.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return [(float(a - pad * s), float(b + pad * s)) for a, b, s in zip(lo, hi, span)]


class GridDivergence:
    """KL(data‖model) and JS(data, model) of histograms on a fixed grid, after every epoch.

    ``n`` samples of the model (fixed seed) are histogrammed with the data on a ``bins`` per axis
    grid over ``range`` (default: the data's range padded by 10%) and
    :func:`hepgen.metrics.kl_js_from_samples` gives (KL, JS) in nats. Two uses:

    * diagnostic, ``model.fit(x, diagnostics=[GridDivergence(x)])``: logs ``val_grid_kl``, ``val_grid_js``;
    * engine monitor, ``model.fit(x, monitor=GridDivergence(x))``: returns JS (the kept model is the
      epoch of lowest JS).

    Either way ``history`` holds ``{"epoch", "kl", "js"}`` rows.
    """

    __name__ = "grid_js"

    def __init__(self, data: Any, bins: int = 50, range: Sequence[tuple[float, float]] | None = None,  # noqa: A002
                 n: int = 5000, seed: int = 0):
        self.data = np.asarray(data, dtype=float)
        self.bins, self.n, self.seed = int(bins), int(n), int(seed)
        self.range = list(range) if range is not None else grid_range(self.data)
        self.history: list[dict[str, float]] = []

    def evaluate(self, model: Any) -> dict[str, float]:
        """{"grid_kl", "grid_js"} of the model now; appends a row to ``history``."""
        from hepgen.metrics import kl_js_from_samples

        fake = sample_seeded(model, self.n, self.seed).reshape(self.n, -1)
        kl, js = kl_js_from_samples(self.data, fake, bins=self.bins, range=self.range)
        self.history.append({"epoch": len(self.history) + 1, "kl": kl, "js": js})
        return {"grid_kl": kl, "grid_js": js}

    def __call__(self, model: Any, val: Any = None) -> float:
        """The engine-monitor call: JS (lower is better)."""
        return self.evaluate(model)["grid_js"]
