"""The latents report of a VAE (``hepgen report latents``): traversals, KL per latent, latent × quantity matrices.

Writes through :class:`hepgen.report.folder.ReportFolder`::

    DIR/plots/traversals.png   the top-k latents by KL, each varied over ±span σ around the mean latent
                               (images: one row per latent; tabular events: each feature's change in units
                               of its standard deviation in the data)
    DIR/plots/kl.png           mean KL(q(z_l|x) ‖ N(0, 1)) per latent: which latents the VAE uses
    DIR/plots/mi.png           mutual information I(z_l; q_j) [nats], latents by falling KL × quantities
    DIR/plots/correlation.png  Pearson and Spearman correlations, the same layout
    DIR/metrics.json           :meth:`hepgen.evaluate.latents.LatentAnalysis.metrics` plus what was read

The numbers are computed in :mod:`hepgen.evaluate.latents` and :mod:`hepgen.evaluate.disentanglement`;
this module only draws and files them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.style
import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from hepgen.report.folder import ReportFolder
from hepgen.report.html import Page, Table
from hepgen.report.plots import STYLE, save_figure, series_colors, text_color_for

__all__ = ["latents_report", "plot_kl", "plot_latent_matrix", "plot_traversals"]


def _image(event: np.ndarray) -> np.ndarray | None:
    """A 2-D picture of one event (H, W) or (C, H, W) (channels summed), None for tabular events."""
    if event.ndim == 2:
        return event
    if event.ndim == 3:
        return event.sum(axis=0)
    return None


def plot_traversals(values: np.ndarray, traversals: np.ndarray, latents: Sequence[int], out_png: str | Path, *,
                    feature_names: Sequence[str] | None = None, feature_mean: np.ndarray | None = None,
                    feature_std: np.ndarray | None = None, span: float = 3.0) -> Path:
    """Traversals: ``values`` (k, steps) of latent ``latents[r]`` and the decoded ``traversals`` (k, steps, *event).

    Images: a k × steps grid, one colour scale for all (logarithmic over 4 decades when no value is negative).
    Tabular events: one panel per latent, (x̂_f − mean_f) / std_f of every feature f against the latent value.
    """
    k, steps = values.shape
    with matplotlib.style.context(STYLE):
        if k and _image(traversals[0, 0]) is not None:
            pictures = np.stack([[_image(e) for e in row] for row in traversals])
            top = float(pictures.max()) if pictures.size else 1.0
            nonneg = float(pictures.min()) >= 0 and top > 0
            norm = LogNorm(vmin=top * 1e-4, vmax=top) if nonneg else Normalize(float(pictures.min()), top)
            h, w = pictures.shape[-2:]
            cell = 1.6
            fig = Figure(figsize=(cell * steps * max(w / h, 0.5) + 1.5, cell * k + 0.8), layout="constrained")
            axes = np.atleast_2d(fig.subplots(k, steps, squeeze=False))
            im = None
            for r in range(k):
                for s in range(steps):
                    ax = axes[r, s]
                    pic = np.clip(pictures[r, s], top * 1e-4, None) if nonneg else pictures[r, s]
                    im = ax.imshow(pic, origin="lower", norm=norm, cmap="viridis", aspect="auto")
                    ax.set_xticks([])
                    ax.set_yticks([])
                    ax.minorticks_off()
                    if r == 0:
                        ax.set_title(f"{np.linspace(-span, span, steps)[s]:+.1f}σ", fontsize="x-small")
                    if s == 0:
                        ax.set_ylabel(f"z{latents[r]}", fontsize="small", loc="center")
            if im is not None:
                fig.colorbar(im, ax=axes, fraction=0.02, pad=0.01).set_label("decoded value", fontsize="small")
            fig.suptitle("latent traversals: the mean latent with one latent varied", fontsize="small")
        else:
            fig = Figure(figsize=(4.2 * max(k, 1), 4.2), layout="constrained")
            axes = np.atleast_1d(fig.subplots(1, max(k, 1), squeeze=False)[0])
            n_features = traversals.shape[-1] if traversals.ndim >= 3 else 0
            names = list(feature_names) if feature_names is not None else [f"x{f}" for f in range(n_features)]
            mean = np.zeros(n_features) if feature_mean is None else np.asarray(feature_mean, dtype=np.float64)
            std = np.ones(n_features) if feature_std is None else np.where(np.asarray(feature_std) > 0, feature_std, 1.0)
            colors = series_colors(max(n_features, 1))
            for r in range(k):
                ax = axes[r]
                for f in range(n_features):
                    ax.plot(values[r], (traversals[r, :, f] - mean[f]) / std[f], color=colors[f], label=names[f])
                ax.set_xlabel(f"z{latents[r]}", fontsize="small")
                ax.set_ylabel("(x̂ − mean) / std", fontsize="small")
                ax.tick_params(labelsize="x-small")
            if k and n_features <= 20:
                handles, labels = axes[0].get_legend_handles_labels()
                fig.legend(handles, labels, loc="outside right center", fontsize="xx-small")
        return save_figure(fig, out_png)


def plot_kl(kl: np.ndarray, traversed: Sequence[int], out_png: str | Path) -> Path:
    """Bar chart of the mean KL per latent (nats); the traversed latents in colour."""
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(max(6.0, 0.35 * len(kl) + 2), 4.5), layout="constrained")
        ax = fig.subplots()
        colors = ["#e76300" if l in set(traversed) else "#9c9ca1" for l in range(len(kl))]
        ax.bar(np.arange(len(kl)), kl, color=colors)
        ax.set_xticks(np.arange(len(kl)), labels=[f"z{l}" for l in range(len(kl))], rotation=90, fontsize="x-small")
        ax.minorticks_off()
        ax.set_ylabel("mean KL(q(z_l|x) ‖ N(0,1)) [nats]", fontsize="small")
        ax.set_xlabel("latent", fontsize="small")
        return save_figure(fig, out_png)


def plot_latent_matrix(panels: Sequence[tuple[str, np.ndarray, str, tuple[float, float]]], rows: Sequence[str],
                       columns: Sequence[str], out_png: str | Path) -> Path:
    """Heat maps latents (rows) × quantities (columns), one per ``(title, matrix, cmap, (lo, hi))``, values printed."""
    n_rows, n_cols = len(rows), len(columns)
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(len(panels) * (1.5 + 0.7 * max(n_cols, 2)) + 1.0, 3.0 + 0.45 * max(n_rows, 3)),
                     layout="constrained")
        for ax, (title, mat, cmap, (lo, hi)) in zip(np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)[0]),
                                                   panels, strict=True):
            im = ax.imshow(mat, cmap=cmap, vmin=lo, vmax=hi, aspect="auto")
            ax.set_title(title, fontsize="small")
            ax.set_xticks(range(n_cols), labels=list(columns), rotation=90, fontsize="x-small")
            ax.set_yticks(range(n_rows), labels=list(rows), fontsize="x-small")
            ax.minorticks_off()
            ax.tick_params(which="both", length=0, top=False, right=False)
            fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
            if n_rows * n_cols <= 400:
                rgba = im.cmap(im.norm(mat))
                for i in range(n_rows):
                    for j in range(n_cols):
                        ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize="xx-small",
                                color=text_color_for(rgba[i, j]))
        return save_figure(fig, out_png)


def latents_report(analysis: Any, report_dir: str | Path, *, title: str = "VAE latents",
                   meta: Sequence[str] = (), inputs: Mapping[str, Any] | None = None,
                   feature_names: Sequence[str] | None = None, feature_mean: np.ndarray | None = None,
                   feature_std: np.ndarray | None = None) -> dict[str, Any]:
    """Write the report of a :class:`hepgen.evaluate.latents.LatentAnalysis` to ``report_dir``; returns
    what metrics.json holds (``inputs``: what was read, recorded under ``"inputs"``)."""
    metrics = {**analysis.metrics(), "inputs": dict(inputs or {})}
    order = list(analysis.order)
    with ReportFolder(report_dir) as report:
        plot_traversals(analysis.values, analysis.traversals, analysis.traversed, report.figure_path("traversals.png"),
                        feature_names=feature_names, feature_mean=feature_mean, feature_std=feature_std,
                        span=analysis.span)
        report.add_figure("traversals.png", f"traversals of the {len(analysis.traversed)} latents with the largest KL "
                                            f"(±{analysis.span:g} σ of the aggregate posterior)", small=False)
        plot_kl(analysis.kl, analysis.traversed, report.figure_path("kl.png"))
        report.add_figure("kl.png", "mean KL per latent (nats): latents near 0 are unused")
        tables = [Table("latents by KL (nats)", ["latent", "KL", "mean", "σ"],
                        [[f"z{l}", float(analysis.kl[l]), float(analysis.mean[l]), float(analysis.scale[l])]
                         for l in order])]
        m = analysis.matrices
        if m is not None:
            rows = [f"z{l}" for l in order]
            mi = m.mi[order]
            plot_latent_matrix([("mutual information [nats]", mi, "viridis", (0.0, max(float(mi.max()), 1e-3)))],
                               rows, m.quantity_names, report.figure_path("mi.png"))
            report.add_figure("mi.png", "mutual information I(z_l; q) (KSG estimator), latents by falling KL")
            plot_latent_matrix([("Pearson", m.pearson[order], "RdBu_r", (-1.0, 1.0)),
                                ("Spearman", m.spearman[order], "RdBu_r", (-1.0, 1.0))],
                               rows, m.quantity_names, report.figure_path("correlation.png"))
            report.add_figure("correlation.png", "Pearson and Spearman correlations of latents and quantities")
            tables.append(Table("per quantity: the latent with the largest mutual information",
                                ["quantity", "best latent", "MI [nats]", "MI gap [nats]", "MIG", "Pearson",
                                 "Spearman"],
                                [[q, s["best_latent"], s["mi_max"], s["mi_gap"], s["mig"], s["pearson_best"],
                                  s["spearman_best"]] for q, s in m.summary.items()]))
        notes = [] if m is not None else ["no quantities were given: traversals and KL only"]
        page = Page(title=title, meta=[*meta, f"β = {analysis.beta:g}, {len(analysis.kl)} latents, "
                                              f"{len(analysis.codes)} events"],
                    notes=notes, tables=tables)
        return report.finish(metrics, page)
