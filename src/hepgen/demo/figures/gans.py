"""The GAN-Lab-style picture of a 2-D GAN: what the critic sees and where it pushes the generator.

Main panel: the critic's decision map D(x) on a grid (σ(D) = P(real) for probabilistic losses, raw D
for Wasserstein/hinge/least-squares) as background, real and generated events on top, and arrows
−∂ℓ_G/∂x̃ at generated points (the direction in which the generator loss moves each sample, in the
original units). Side panels: KL(data‖model) and JS(data, model) on a histogram grid per epoch (the
``GridDivergence`` diagnostic, :func:`hepgen.metrics.kl_js_from_samples`), mean D(real), D(fake)
and the Wasserstein estimate per epoch, and mode coverage per epoch. A second figure shows the
decision map, points and arrows at a few epochs over training (:class:`Snapshots`).

:func:`gan_lab_figure` is the demo's entry point: it trains a WGAN-GP on the 8-Gaussian ring and
writes both figures (``quick=True``: under a minute on one core).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from hepgen.errors import ConfigError
from hepgen.gans.diagnostics import (
    GridDivergence,
    ModeCoverage,
    grid_range,
    sample_seeded,
)
from hepgen.report.folder import write_json

#: the ring of the demo and the tests: 8 Gaussians of σ = 0.1 on a circle of radius 2
RING_SIGMA = 0.1


def decision_map(model: Any, range: Sequence[tuple[float, float]], resolution: int = 100
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
    with torch.enable_grad():
        loss = model.adversarial_loss.generator(model.critic(model.to_internal(x))).sum()
        (grad,) = torch.autograd.grad(loss, x)
    return -grad.double().cpu().numpy()


class Snapshots:
    """Per-epoch diagnostic that records, at the chosen ``epochs``, the critic's decision map on the grid
    ``range``, ``n`` generated events and the generator arrows at the first ``arrows`` of them.

    ``model.fit(x, diagnostics=[Snapshots(range, epochs=(1, 5, 20))])``; ``frames`` holds dicts with
    keys ``epoch, xs, ys, dmap, fake, arrows``. It logs nothing (returns {}).
    """

    def __init__(self, range: Sequence[tuple[float, float]], epochs: Sequence[int], n: int = 1000,
                 arrows: int = 100, resolution: int = 60, seed: int = 0):
        self.range, self.epochs = [tuple(map(float, r)) for r in range], {int(e) for e in epochs}
        self.n, self.arrows, self.resolution, self.seed = int(n), int(arrows), int(resolution), int(seed)
        self.frames: list[dict[str, Any]] = []
        self._epoch = 0

    def __call__(self, model: Any) -> dict[str, float]:
        self._epoch += 1
        if self._epoch in self.epochs:
            fake = sample_seeded(model, self.n, self.seed)
            xs, ys, dmap = decision_map(model, self.range, self.resolution)
            self.frames.append({"epoch": self._epoch, "xs": xs, "ys": ys, "dmap": dmap, "fake": fake,
                                "arrows": generator_arrows(model, fake[: self.arrows])})
        return {}


def _draw_map(ax: Any, fig: Figure, xs: np.ndarray, ys: np.ndarray, dmap: np.ndarray, real: np.ndarray,
              fake: np.ndarray, vec: np.ndarray, probabilistic: bool, colorbar: bool = True) -> None:
    mesh = ax.pcolormesh(xs, ys, dmap, cmap="RdBu_r", shading="auto",
                         vmin=0 if probabilistic else None, vmax=1 if probabilistic else None)
    if colorbar:
        fig.colorbar(mesh, ax=ax, label="D(x) = P(real)" if probabilistic else "critic D(x)")
    ax.scatter(real[:, 0], real[:, 1], s=3, c="#1b7837", label="data", alpha=0.6)
    ax.scatter(fake[:, 0], fake[:, 1], s=3, c="#762a83", label="generated", alpha=0.6)
    sub = fake[: len(vec)]
    width = xs[-1] - xs[0]
    scale = np.abs(vec).max() / (0.08 * width) + 1e-12
    ax.quiver(sub[:, 0], sub[:, 1], vec[:, 0], vec[:, 1], color="k", alpha=0.7, width=0.003,
              angles="xy", scale_units="xy", scale=scale)
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")


def draw_gan_lab(out_png: str | Path, model: Any, data: Any, n: int = 2000, arrows: int = 200,
                 resolution: int = 100, seed: int = 0, range: Sequence[tuple[float, float]] | None = None,
                 title: str | None = None) -> Path:
    """Draw the GAN-Lab figure of a fitted 2-D ``model`` against ``data`` (n, 2) into ``out_png``.

    The side panels read ``model.history_``: ``val_grid_kl``/``val_grid_js`` (from a ``GridDivergence``
    diagnostic), the critic's means and Wasserstein estimate, and ``val_modes_hit``/``val_high_quality``
    (from ``ModeCoverage``); panels without data are left out.
    """
    from hepgen.report.plots import save_figure

    data = np.asarray(data, dtype=float)
    if data.ndim != 2 or data.shape[1] != 2 or model.event_shape != (2,):
        raise ConfigError(f"the GAN-Lab figure is for 2-D events; got data {data.shape} and a model of event shape "
                          f"{model.event_shape}")
    rng = np.random.default_rng(seed)
    real = data[rng.choice(len(data), size=min(n, len(data)), replace=False)]
    fake = sample_seeded(model, n, seed)
    box = list(range) if range is not None else grid_range(np.concatenate([real, fake]), pad=0.05)
    xs, ys, dmap = decision_map(model, box, resolution)
    vec = generator_arrows(model, fake[:arrows])

    history = model.history_ or []
    has = lambda key: bool(history) and key in history[0]
    panels = [p for p, ok in (("div", has("val_grid_js")), ("critic", has("train_critic_d_real")),
                              ("modes", has("val_modes_hit"))) if ok]
    fig = Figure(figsize=(6.5 + 4.2 * len(panels), 6))
    axes = fig.subplots(1, 1 + len(panels), squeeze=False,
                        gridspec_kw={"width_ratios": [1.45] + [1] * len(panels)})[0]
    probabilistic = model.adversarial_loss.probabilistic
    _draw_map(axes[0], fig, xs, ys, dmap, real, fake, vec, probabilistic)
    axes[0].legend(loc="upper right", fontsize=8, markerscale=3)
    axes[0].set_title(title or f"{model.cli_name} ({model.loss}): critic map and generator gradients", fontsize=10)
    epochs = [r["epoch"] for r in history]
    for ax, panel in zip(axes[1:], panels):
        if panel == "div":
            ax.plot(epochs, [r["val_grid_kl"] for r in history], "o-", ms=3, label="KL(data‖model)")
            ax.plot(epochs, [r["val_grid_js"] for r in history], "s-", ms=3, label="JS(data, model)")
            ax.axhline(np.log(2), color="grey", ls=":", lw=1, label="ln 2 (JS maximum)")
            ax.set_yscale("log")
            ax.set_ylabel("divergence on the grid [nats]")
        elif panel == "critic":
            for key, label in (("train_critic_d_real", "D(real)"), ("train_critic_d_fake", "D(fake)"),
                               ("train_critic_wasserstein", "W1 estimate")):
                if has(key):
                    ax.plot(epochs, [r[key] for r in history], label=label)
            ax.set_ylabel("mean critic output")
        else:
            ax.plot(epochs, [r["val_modes_hit"] for r in history], "o-", ms=3, label="modes hit")
            ax.set_ylabel("modes hit")
            twin = ax.twinx()
            twin.plot(epochs, [r["val_high_quality"] for r in history], color="#e76300", label="within 3σ")
            twin.set_ylim(0, 1)
            twin.set_ylabel("fraction of samples within 3σ of a mode")
            twin.legend(loc="lower right", fontsize=8)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8, loc="upper left" if panel == "modes" else "best")
    fig.tight_layout()
    return save_figure(fig, out_png)


def draw_snapshots(out_png: str | Path, frames: Sequence[dict[str, Any]], data: Any, probabilistic: bool,
                   n: int = 1000, seed: int = 0) -> Path:
    """One panel per :class:`Snapshots` frame: decision map, data, generated events and generator arrows."""
    from hepgen.report.plots import save_figure

    if not frames:
        raise ConfigError("no snapshots were recorded (are the snapshot epochs within the training epochs?)")
    data = np.asarray(data, dtype=float)
    real = data[np.random.default_rng(seed).choice(len(data), size=min(n, len(data)), replace=False)]
    fig = Figure(figsize=(4.2 * len(frames), 4.4))
    axes = fig.subplots(1, len(frames), squeeze=False)[0]
    for ax, f in zip(axes, frames):
        _draw_map(ax, fig, f["xs"], f["ys"], f["dmap"], real, f["fake"], f["arrows"], probabilistic,
                  colorbar=False)
        ax.set_title(f"epoch {f['epoch']}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_png)


def ring_settings(quick: bool) -> dict[str, Any]:
    """The WGAN-GP set-up of the demo, the tests and the benchmark on the 8-Gaussian ring (σ = 0.1,
    radius 2): critic 64×64, generator 256×256, k = 5 critic steps, TTUR (critic 1e-2, generator 1e-3),
    generator EMA 0.99, λ = 10, batches of 256. The full schedule (120 epochs of 32000 events, ~2900 generator
    steps) reaches 8/8 modes with more than 80% of the samples within 3σ; on the ``quick`` schedule
    (40 epochs) the modes may or may not have formed yet, depending on the seed."""
    model = {"latent": 8, "hidden": (64, 64), "generator_hidden": (256, 256), "loss": "wgan-gp", "critic_steps": 5,
             "lr_critic": 1e-2, "lr_generator": 1e-3, "ema": 0.99,
             "gp_weight": 10.0}  # as measured (the dense GAN's default became 5 in issue 25)
    train = {"epochs": 40 if quick else 120, "batch_size": 256}
    return {"n": 32000, "sigma": RING_SIGMA, "model": model, "train": train}


def gan_lab_figure(out_dir: str | Path, quick: bool = False, seed: int = 1, epochs: int | None = None
                   ) -> dict[str, Any]:
    """Train a WGAN-GP on the 8-Gaussian ring (σ = 0.1) and write the GAN-Lab figures into ``out_dir``.

    Writes ``gan_lab.png`` (final critic map, generated points, generator arrows; KL/JS, critic means
    and mode coverage per epoch), ``gan_lab_training.png`` (the map at four epochs), ``gan_lab.json``
    (this summary) and the run directory ``run_wgan_gp/`` (model, metrics.csv with the per-epoch
    diagnostics). Returns ``{"figures": [...], "run", "modes_hit", "modes", "high_quality", "kl", "js",
    "epochs", "wall_time_s", "settings"}``: final values on 5000 samples drawn with ``seed + 1``.
    ``quick``: 40 instead of 120 epochs (< 1 min on one core); ``epochs`` overrides the number of epochs.
    When the modes form varies with the seed (epoch 15 to 50; see benchmarks/gan_quality.py): with the
    default seed 1 all eight have formed by epoch 20, so the quick figure already shows them.
    """
    from hepgen.data.generators.toys import eight_gaussian_centres, eight_gaussians
    from hepgen.gans.diagnostics import mode_coverage
    from hepgen.gans.gan import GAN
    from hepgen.metrics import kl_js_from_samples

    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = ring_settings(quick)
    if epochs is not None:
        settings["train"]["epochs"] = int(epochs)
    sigma, epochs = settings["sigma"], settings["train"]["epochs"]
    data = eight_gaussians(settings["n"], np.random.default_rng(seed), std=sigma).astype(np.float32)
    box = [(-3.0, 3.0), (-3.0, 3.0)]
    grid = GridDivergence(data, bins=40, range=box, n=4000, seed=seed)
    shots = Snapshots(box, epochs=sorted({1, max(1, epochs // 8), max(1, epochs // 3), epochs}), seed=seed)
    centres = eight_gaussian_centres()
    model = GAN(2, **settings["model"])
    run = out / "run_wgan_gp"
    if run.exists():
        import shutil

        shutil.rmtree(run)
    model.fit(data, seed=seed, lr=1e-3, quiet=True, val_fraction=0.05, run_dir=run, **settings["train"],
              diagnostics=[ModeCoverage(centres, sigma, n=2000, seed=seed), grid, shots])
    main = draw_gan_lab(out / "gan_lab.png", model, data, seed=seed, range=box,
                        title=f"WGAN-GP on the 8-Gaussian ring after {epochs} epochs")
    frames = draw_snapshots(out / "gan_lab_training.png", shots.frames, data, model.adversarial_loss.probabilistic,
                            seed=seed)
    fake = sample_seeded(model, 5000, seed + 1)
    hit, good = mode_coverage(fake, centres, sigma)
    kl, js = kl_js_from_samples(data, fake, bins=40, range=box)
    summary = {"figures": [str(main), str(frames)], "run": str(run), "modes_hit": hit, "modes": len(centres),
               "high_quality": good, "kl": kl, "js": js, "epochs": epochs, "wall_time_s": round(time.perf_counter() - start, 1),
               "settings": {**settings, "model": {k: list(v) if isinstance(v, tuple) else v
                                                  for k, v in settings["model"].items()}}}
    write_json(out / "gan_lab.json", summary)
    return summary
