"""The GAN-Lab-style picture of a 2-D GAN: what the critic sees and where it pushes the generator.

Left panel: the critic's decision map D(x) on a grid (σ(D) for probabilistic losses, raw D for
Wasserstein/hinge/least-squares) as background, real events and generated events on top, and
arrows −∂ℓ_G/∂x̃ at generated points (the direction the generator loss moves each sample, in the
original units). Right panels: KL(data‖model) and JS(data, model) on a histogram grid per epoch
(:class:`hepgen.gans.diagnostics.GridDivergence`), and the mean D(real), D(fake) per epoch.

:func:`gan_lab_demo` trains a small GAN on the 8-Gaussian ring and draws the figure (< 60 s on a CPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from hepgen.errors import ConfigError
from hepgen.gans.diagnostics import GridDivergence, grid_range


def decision_map(model: Any, range: Sequence[tuple[float, float]], resolution: int = 100  # noqa: A002
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xs (r,), ys (r,), D (r, r)) — the critic on a regular grid in the original units, rows along y."""
    xs = np.linspace(*range[0], resolution)
    ys = np.linspace(*range[1], resolution)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.stack([gx.ravel(), gy.ravel()], 1)
    with torch.no_grad():
        d = model.critic_output(grid)
        d = torch.sigmoid(d) if model.adversarial_loss.probabilistic else d
    return xs, ys, d.reshape(resolution, resolution).double().cpu().numpy()


def generator_arrows(model: Any, fake: np.ndarray) -> np.ndarray:
    """−∂ℓ_G/∂x̃ at generated points x̃ (n, 2), original units: (n, 2)."""
    x = torch.as_tensor(fake, dtype=model.dtype, device=model.device).requires_grad_(True)
    loss = model.adversarial_loss.generator(model.critic(model._internal(x))).sum()
    (grad,) = torch.autograd.grad(loss, x)
    return -grad.double().cpu().numpy()


def gan_lab_figure(out_png: str | Path, model: Any, data: Any, divergences: Sequence[dict[str, float]] | None = None,
                   n: int = 2000, arrows: int = 200, resolution: int = 100, seed: int = 0,
                   title: str | None = None) -> Path:
    """Draw the GAN-Lab figure of a fitted 2-D ``model`` against ``data`` (n, 2) into ``out_png``.

    divergences: the rows of a :class:`GridDivergence` monitor's ``history`` (KL/JS panel omitted if None).
    """
    from hepgen.report.plots import save_figure

    data = np.asarray(data, dtype=float)
    if data.ndim != 2 or data.shape[1] != 2 or model.event_shape != (2,):
        raise ConfigError(f"the GAN-Lab figure is for 2-D events; got data {data.shape} and a model of event shape "
                          f"{model.event_shape}")
    rng = np.random.default_rng(seed)
    real = data[rng.choice(len(data), size=min(n, len(data)), replace=False)]
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    fake = model.sample(n).detach().cpu().double().numpy()
    torch.set_rng_state(state)
    box = grid_range(np.concatenate([real, fake]), pad=0.05)
    xs, ys, dmap = decision_map(model, box, resolution)
    sub = fake[:arrows]
    vec = generator_arrows(model, sub)

    panels = 1 + (divergences is not None) + bool(model.history_)
    fig = Figure(figsize=(6.5 + 4.5 * (panels - 1), 6))
    axes = fig.subplots(1, panels, squeeze=False, gridspec_kw={"width_ratios": [1.45] + [1] * (panels - 1)})[0]
    ax = axes[0]
    probabilistic = model.adversarial_loss.probabilistic
    mesh = ax.pcolormesh(xs, ys, dmap, cmap="RdBu_r", shading="auto",
                         vmin=0 if probabilistic else None, vmax=1 if probabilistic else None)
    fig.colorbar(mesh, ax=ax, label="D(x) = P(real)" if probabilistic else "critic D(x)")
    ax.scatter(real[:, 0], real[:, 1], s=3, c="#1b7837", label="data", alpha=0.6)
    ax.scatter(fake[:, 0], fake[:, 1], s=3, c="#762a83", label="generated", alpha=0.6)
    ax.quiver(sub[:, 0], sub[:, 1], vec[:, 0], vec[:, 1], color="k", alpha=0.7, width=0.003,
              angles="xy", scale_units="xy", scale=np.abs(vec).max() / (0.08 * (box[0][1] - box[0][0])) + 1e-12)
    ax.set_xlim(*box[0])
    ax.set_ylim(*box[1])
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")
    ax.legend(loc="upper right", fontsize=8, markerscale=3)
    ax.set_title(title or f"{model.cli_name} ({model.loss}): critic map and generator gradients", fontsize=10)
    k = 1
    if divergences is not None:
        ax = axes[k]
        k += 1
        epochs = [r["epoch"] for r in divergences]
        ax.plot(epochs, [r["kl"] for r in divergences], "o-", ms=3, label="KL(data‖model)")
        ax.plot(epochs, [r["js"] for r in divergences], "s-", ms=3, label="JS(data, model)")
        ax.axhline(np.log(2), color="grey", ls=":", lw=1, label="ln 2 (JS maximum)")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("divergence on the grid [nats]")
        ax.legend(fontsize=8)
    if model.history_:
        ax = axes[k]
        epochs = [r["epoch"] for r in model.history_]
        for key, label in (("train_critic_d_real", "D(real)"), ("train_critic_d_fake", "D(fake)"),
                           ("train_critic_wasserstein", "W1 estimate")):
            if key in model.history_[0]:
                ax.plot(epochs, [r[key] for r in model.history_], label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean critic output")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out_png)


def gan_lab_demo(out_png: str | Path, loss: str = "wgan-gp", epochs: int = 30, n: int = 20000, seed: int = 0,
                 **params: Any) -> dict[str, Any]:
    """Train a small GAN on the 8-Gaussian ring (σ = 0.1) and draw :func:`gan_lab_figure`; returns a
    summary: the figure path, final KL/JS and mode coverage (modes hit, fraction within 3σ)."""
    from hepgen.data.generators.toys import eight_gaussian_centres, eight_gaussians
    from hepgen.gans.diagnostics import mode_coverage
    from hepgen.gans.gan import GAN

    sigma = 0.1
    data = eight_gaussians(n, np.random.default_rng(seed), std=sigma).astype(np.float32)
    settings = {"latent": 8, "hidden": (64, 64), "critic_steps": 2 if loss.startswith("wgan") else 1, **params}
    model = GAN(2, loss=loss, **settings)
    monitor = GridDivergence(data, bins=40, n=4000, seed=seed)
    model.fit(data, epochs=epochs, batch_size=256, lr=1e-3, seed=seed, quiet=True, val_fraction=0,
              monitor=monitor)
    path = gan_lab_figure(out_png, model, data, monitor.history, seed=seed)
    torch.manual_seed(seed)
    hit, good = mode_coverage(model.sample(5000).cpu().numpy(), eight_gaussian_centres(), sigma)
    last = monitor.history[-1]
    return {"figure": str(path), "kl": last["kl"], "js": last["js"], "modes_hit": hit, "fraction_within_3sigma": good}
