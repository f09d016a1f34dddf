"""The demo's shower panel: mean images per calorimeter layer, the simulator next to each surrogate.

:func:`mean_images` averages showers cell by cell; :func:`mean_image_figure` draws them as a grid
(one row per sample — the simulator first — one column per layer, a shared logarithmic colour
scale per layer, so a surrogate's deviations show as colour differences down a column);
:func:`shower_panel` writes that figure and returns the means. :func:`calo_panel` is the demo's entry
point: it simulates e+ showers (``hepgen data calo``), fits small calo-gan and calo-flow models
on them (seeded, through the API as ``hepgen fit calo-gan showers.h5 --context energy`` would),
samples each at the held-out simulator showers' energies and draws the panel (``quick=True``: a
few seconds on one core; the models are far from converged — ``benchmarks/calo_surrogates.py``
judges trained ones).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from hepgen.calo.shower_layout import LAYERS, Showers
from hepgen.errors import DataError
from hepgen.nn.rng import seeded
from hepgen.report.folder import write_json

__all__ = ["calo_panel", "mean_image_figure", "mean_images", "shower_panel"]

#: the demo's fits: (hyper-parameters, training settings) per surrogate, quick and full
DEMO_MODELS: dict[str, dict[bool, tuple[dict[str, Any], dict[str, Any]]]] = {
    "calo-gan": {True: ({"hidden": (64, 64), "critic_hidden": (64, 64)}, {"epochs": 2, "batch_size": 100, "lr": 5e-4}),
                 False: ({"hidden": (128, 128), "critic_hidden": (128, 128)},
                         {"epochs": 20, "batch_size": 128, "lr": 5e-4})},
    "calo-flow": {True: ({"cell_transforms": 2, "bins": 4, "cell_hidden": (64,)}, {"epochs": 1, "batch_size": 100}),
                  False: ({"cell_transforms": 4, "bins": 6}, {"epochs": 5, "batch_size": 128})},
}


def _layers(sample: Any, label: str) -> dict[str, np.ndarray]:
    layers = sample.layers if isinstance(sample, Showers) else sample
    if not isinstance(layers, Mapping) or set(LAYERS) - set(layers):
        got = sorted(layers) if isinstance(layers, Mapping) else type(layers).__name__
        raise DataError(f"shower panel: sample {label!r} must hold the layers {', '.join(LAYERS)}; got {got}")
    out = {}
    for name, shape in LAYERS.items():
        arr = np.asarray(layers[name], dtype=np.float64)
        if arr.ndim != 3 or tuple(arr.shape[1:]) != shape or not len(arr):
            raise DataError(f"shower panel: sample {label!r} layer {name} has shape {arr.shape}, expected "
                            f"(showers, {shape[0]}, {shape[1]})")
        out[name] = arr
    return out


def mean_images(samples: Mapping[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    """{label: {layer: mean cell energy (rows, cols) in MeV}} of showers {label: Showers or {layer: (n, r, c)}}."""
    return {label: {k: v.mean(axis=0) for k, v in _layers(s, label).items()} for label, s in samples.items()}


def mean_image_figure(means: Mapping[str, Mapping[str, np.ndarray]], floor: float = 1e-2) -> Figure:
    """Rows: samples (in the given order), columns: layers; log colour scale shared down each column.

    Cells whose mean is below ``floor`` MeV (noise-only cells average to about 0, possibly negative)
    are drawn in the floor's colour; the images hold the exact means."""
    import matplotlib

    base = matplotlib.colormaps["viridis"]
    # means <= 0 (noise-only cells) have no logarithm: drawn in the floor's colour
    cmap = base.with_extremes(bad=base(0.0), under=base(0.0))
    labels = list(means)
    fig = Figure(figsize=(3.2 * len(LAYERS) + 1.5, 2.4 * len(labels) + 0.6), layout="constrained")
    axes = fig.subplots(len(labels), len(LAYERS), squeeze=False)
    for j, name in enumerate(LAYERS):
        top = max(float(np.max(means[label][name])) for label in labels)
        norm = LogNorm(vmin=floor, vmax=max(top, 10 * floor))
        for i, label in enumerate(labels):
            ax = axes[i, j]
            image = ax.imshow(means[label][name], norm=norm, cmap=cmap, aspect="auto", origin="lower",
                              interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"{name} {LAYERS[name][0]}x{LAYERS[name][1]}")
            if j == 0:
                ax.set_ylabel(label)
        fig.colorbar(image, ax=axes[:, j], label="mean cell energy [MeV]", shrink=0.8)
    return fig


def shower_panel(samples: Mapping[str, Any], path: str | Path) -> dict[str, Any]:
    """Write the mean-image grid of ``samples`` (the reference first) to ``path``; returns ``{"figure",
    "means": {label: {layer: (rows, cols)}}, "mean_energy_mev": {label: {layer: mean layer energy}}}``."""
    from hepgen.files import atomic_path

    if not samples:
        raise DataError("shower panel: no samples to draw")
    means = mean_images(samples)
    fig = mean_image_figure(means)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format=path.suffix.lstrip(".") or "png")
    return {"figure": str(path), "means": means,
            "mean_energy_mev": {label: {k: float(v.sum()) for k, v in m.items()} for label, m in means.items()}}


def calo_panel(out_dir: str | Path, quick: bool = True, seed: int = 0) -> dict[str, Any]:
    """The demo's section: simulate, fit both surrogates, sample, draw; returns ``{"figures": [(caption, png)],
    ...numbers}`` and writes ``showers.json`` beside the figure."""

    from hepgen.calo.caloflow import CaloFlow
    from hepgen.calo.gan import CaloGAN
    from hepgen.data.generators import calo
    from hepgen.metrics.shower_observables import shower_features

    out = Path(out_dir)
    n_train, n_test = (600, 300) if quick else (5000, 2000)
    t0 = time.perf_counter()
    sim = calo.generate(n_train + n_test, seed=seed, particle="e+")
    train = Showers({k: sim[k][:n_train] for k in LAYERS}, sim["energy"][:n_train])
    test = Showers({k: sim[k][n_train:] for k in LAYERS}, sim["energy"][n_train:])
    times = {"simulate": time.perf_counter() - t0}
    samples: dict[str, Any] = {"simulator": test}
    response = {"simulator": float(shower_features(test.list(), test.energy)["response"].mean())}
    for name, cls in (("calo-gan", CaloGAN), ("calo-flow", CaloFlow)):
        params, settings = DEMO_MODELS[name][bool(quick)]
        t = time.perf_counter()
        model = cls(**params).fit(train.layers, context=train.energy, quiet=True, seed=seed, **settings)
        model.eval()
        with seeded(seed, model.device):
            s = model.sample(len(test), context=test.energy[:, None])
        samples[name] = {k: v.double().cpu().numpy() for k, v in s.items()}
        response[name] = float(shower_features([samples[name][k] for k in LAYERS], test.energy)["response"].mean())
        times[name] = time.perf_counter() - t
    panel = shower_panel(samples, out / "mean_images.png")
    result = {"particle": "e+", "n_train": n_train, "n_test": n_test, "mean_response": response,
              "mean_energy_mev": panel["mean_energy_mev"], "seconds": {k: round(v, 1) for k, v in times.items()}}
    write_json(out / "showers.json", result)
    caption = (f"e+ showers 1-100 GeV: mean cell energy per layer, the simulator (top) next to calo-gan and "
               f"calo-flow fitted on {n_train} showers (mean response: "
               + ", ".join(f"{k} {v:.3f}" for k, v in response.items()) + ")")
    return {"figures": [(caption, panel["figure"])], **result}
