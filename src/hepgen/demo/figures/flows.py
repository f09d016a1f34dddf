"""The 2-D toy gallery: a flow trained on each toy density, its learned density as a heat-map next to the data.

    density(x) = exp(model.log_prob(x)) on a grid of bin centres;  mass = Σ density · Δx Δy

For each toy (two moons, 8 Gaussians, checkerboard, rings, spirals from :mod:`hepgen.data.generators.toys`)
the flow is fitted with the engine (``model.fit``), scored on held-out events (test NLL in nats), and its
density evaluated on the plotted box. The grid mass is checked against the probability of the box
estimated from the flow's own samples, which the heat-map's normalisation must reproduce.

Writes ``flow_gallery.png`` (top row: data histograms; bottom row: learned densities, mplhep style) and
``flow_gallery.json`` (per toy: test NLL, grid mass, box probability from samples, fit time).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.style
import numpy as np
import torch
from matplotlib.figure import Figure

from hepgen.data.generators import toys as toy_data
from hepgen.errors import ConfigError
from hepgen.models import model_class
from hepgen.report.plots import STYLE, save_figure
from hepgen.nn.rng import seeded
from hepgen.report.folder import write_json

#: gallery name -> (toy generator name, options, title). 8 Gaussians use std 0.1: the generator's default
#: 0.02 (the mode-collapse benchmark) is narrower than a heat-map pixel.
TOYS: dict[str, tuple[str, dict[str, Any], str]] = {
    "moons": ("moons", {}, "two moons"),
    "8gaussians": ("eight-gaussians", {"std": 0.1}, "8 Gaussians"),
    "checkerboard": ("checkerboard", {}, "checkerboard"),
    "rings": ("rings", {}, "rings"),
    "spirals": ("spirals", {}, "spirals"),
}
ALIASES = {"eight-gaussians": "8gaussians", "two-moons": "moons"}

#: (events, epochs, hyper-parameters by model) for the full gallery and the quick one (all five toys in about
#: 30 s of one core). Splines get 16 bins on [-3, 3]: the standardised toys lie within ±2.5.
SETTINGS = {
    False: (30_000, 25, {"nsf": {"transforms": 4, "hidden": (128, 128), "bins": 16, "tail_bound": 3.0},
                         "default": {"transforms": 6, "hidden": (128, 128)}}),
    True: (16_000, 8, {"nsf": {"transforms": 3, "hidden": (128, 128), "bins": 16, "tail_bound": 3.0},
                       "default": {"transforms": 4, "hidden": (128, 128)}}),
}


def density_grid(model, extent: Sequence[float], bins: int = 200,
                 batch: int = 65_536) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """exp(log p) of a 2-D model on the centres of a ``bins`` × ``bins`` grid over (x0, x1, y0, y1).

    Returns (x edges (bins + 1,), y edges (bins + 1,), density (bins, bins) indexed [y, x]); the grid's
    probability mass is ``density.sum() * Δx * Δy``.
    """
    x0, x1, y0, y1 = (float(v) for v in extent)
    xe, ye = np.linspace(x0, x1, bins + 1), np.linspace(y0, y1, bins + 1)
    xc, yc = 0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1])
    gx, gy = np.meshgrid(xc, yc)
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    with torch.no_grad():
        logp = torch.cat([model.log_prob(points[i:i + batch]).double().cpu()
                          for i in range(0, len(points), batch)]).numpy()
    return xe, ye, np.exp(logp).reshape(bins, bins)


def grid_mass(xe: np.ndarray, ye: np.ndarray, density: np.ndarray) -> float:
    """Σ density · Δx Δy (midpoint rule) for :func:`density_grid`'s output."""
    return float(density.sum() * (xe[1] - xe[0]) * (ye[1] - ye[0]))


def _extent(x: np.ndarray, pad: float = 0.15) -> tuple[float, float, float, float]:
    """A square box around the data, padded by ``pad`` of its width on each side."""
    lo, hi = x.min(0), x.max(0)
    centre, half = 0.5 * (lo + hi), 0.5 * float((hi - lo).max()) * (1.0 + 2.0 * pad)
    return (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half)


def _resolve_toys(names: Sequence[str]) -> list[str]:
    out = []
    for name in names:
        key = ALIASES.get(name, name)
        if key not in TOYS:
            raise ConfigError(f"unknown toy {name!r} for the flow gallery; choose from {', '.join(TOYS)}")
        out.append(key)
    if not out:
        raise ConfigError("the flow gallery needs at least one toy")
    return out


def fit_toy(name: str, model: str = "nsf", *, quick: bool = False, epochs: int | None = None,
            events: int | None = None, seed: int = 0, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``model`` (a CLI name: nsf, maf, realnvp, iaf) on toy ``name``; returns the model, data and numbers.

    Keys: ``model``, ``train`` (n, 2), ``test`` (n, 2), ``extent``, ``test_nll`` (nats), ``fit_s`` (CPU seconds).
    """
    key = _resolve_toys([name])[0]
    toy, options, _ = TOYS[key]
    n_default, epochs_default, hyper = SETTINGS[bool(quick)]
    n = int(events or n_default)
    train = toy_data.generate(n, seed=seed, name=toy, **options)["x"]
    test = toy_data.generate(max(n // 4, 2000), seed=seed + 1, name=toy, **options)["x"]
    cls = model_class(model)
    kwargs = dict(hyper.get(cls.cli_name, hyper["default"]))
    kwargs.update(params or {})
    flow = cls.from_data((2,), 0, **kwargs)
    if not hasattr(flow, "log_prob"):
        raise ConfigError(f"the flow gallery needs a density model; {model!r} has no log_prob")
    start = time.process_time()
    flow.fit(train, epochs=int(epochs or epochs_default), batch_size=256, lr=3e-3, scheduler="cosine",
             seed=seed, quiet=True, device="cpu")
    fit_s = time.process_time() - start
    with torch.no_grad():
        test_nll = float(-flow.log_prob(test).double().mean())
    return {"name": key, "model": flow, "train": train, "test": test, "extent": _extent(train),
            "test_nll": test_nll, "fit_s": fit_s}


def toy_gallery(out_dir: str | Path, toys: Sequence[str] = ("moons", "8gaussians", "checkerboard", "rings", "spirals"),
                model: str = "nsf", epochs: int | None = None, quick: bool = False, *, bins: int | None = None,
                events: int | None = None, seed: int = 0, params: dict[str, Any] | None = None) -> Path:
    """Fit ``model`` to each 2-D toy and save the data next to the learned density; returns the PNG's path.

    Args:
        out_dir: directory for ``flow_gallery.png`` and ``flow_gallery.json``.
        toys: any of moons, 8gaussians, checkerboard, rings, spirals.
        model: a flow's CLI name (nsf, maf, iaf, realnvp).
        epochs: training epochs (default 25, quick 8).
        quick: small data and networks: all five toys in under a minute on one core.
        bins: heat-map grid size per axis (default 200, quick 120). events: training events per toy.
        seed: seeds data and training. params: extra hyper-parameters of the model.
    """
    names = _resolve_toys(toys)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bins = int(bins or (120 if quick else 200))
    summary: dict[str, Any] = {"model": model, "quick": bool(quick), "toys": {}}
    panels = []
    for name in names:
        result = fit_toy(name, model, quick=quick, epochs=epochs, events=events, seed=seed, params=params)
        flow, extent = result["model"], result["extent"]
        xe, ye, density = density_grid(flow, extent, bins)
        with seeded(seed, flow.device):
            samples = flow.sample(50_000).double().cpu().numpy()
        inside = ((samples[:, 0] >= extent[0]) & (samples[:, 0] <= extent[1])
                  & (samples[:, 1] >= extent[2]) & (samples[:, 1] <= extent[3]))
        summary["toys"][name] = {"test_nll": result["test_nll"], "grid_mass": grid_mass(xe, ye, density),
                                 "box_probability": float(inside.mean()), "extent": list(map(float, extent)),
                                 "bins": bins, "fit_cpu_s": round(result["fit_s"], 2),
                                 "train_events": len(result["train"])}
        panels.append((name, result["train"], xe, ye, density, result["test_nll"]))
    png = _plot(panels, out_dir / "flow_gallery.png", model)
    write_json(out_dir / "flow_gallery.json", summary)
    return png


def _plot(panels: list, out_png: Path, model: str) -> Path:
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(4.2 * len(panels), 8.6), layout="constrained")
        axes = np.asarray(fig.subplots(2, len(panels), squeeze=False))
        for j, (name, data, xe, ye, density, nll) in enumerate(panels):
            top, bottom = axes[0, j], axes[1, j]
            top.hist2d(data[:, 0], data[:, 1], bins=[xe[::2], ye[::2]], cmap="viridis")
            top.set_title(f"{TOYS[name][2]}: data", fontsize="small")
            bottom.pcolormesh(xe, ye, density, cmap="viridis", shading="flat")
            bottom.set_title(f"{model}: NLL {nll:.2f} nats", fontsize="small")
            for ax in (top, bottom):
                ax.set_xlim(xe[0], xe[-1])
                ax.set_ylim(ye[0], ye[-1])
                ax.set_aspect("equal")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.minorticks_off()
        return save_figure(fig, out_png)


__all__ = ["TOYS", "density_grid", "fit_toy", "grid_mass", "toy_gallery"]
