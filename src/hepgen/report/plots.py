"""Reusable report figures in the mplhep (CMS) style, written atomically as PNG.

Figures are built as ``matplotlib.figure.Figure`` objects (Agg canvas, no pyplot state), so nothing
needs closing and no global backend or style is changed: the style applies only inside each call.
Every function returns the path of the PNG it wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import matplotlib.style
import mplhep
import numpy as np
from matplotlib.colors import LogNorm, Normalize, TwoSlopeNorm
from matplotlib.figure import Figure

from hepgen.errors import DataError
from hepgen.metrics.histograms import weighted_histogram
from hepgen.files import atomic_path

STYLE = mplhep.style.CMS
REF_COLOR, CAND_COLOR = "#3f90da", "#e76300"
DPI = 80


def save_figure(fig: Figure, out_png: str | Path) -> Path:
    """Write ``fig`` to ``out_png`` atomically (temporary file beside it, fsync, rename)."""
    out_png = Path(out_png)
    with atomic_path(out_png, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return out_png


def plot_feature_histogram(
    ref: np.ndarray,
    cand: np.ndarray,
    out_png: str | Path,
    *,
    edges: np.ndarray,
    ref_weights: np.ndarray | None = None,
    cand_weights: np.ndarray | None = None,
    name: str = "",
    ref_label: str = "reference",
    cand_label: str = "candidate",
    annotation: str = "",
) -> Path:
    """Unit-area histograms of one feature (ref filled, cand with sumw2 errors) and a cand/ref ratio panel.

    ``ref``: (n,), ``cand``: (m,), ``edges``: (bins + 1,). Negative weights are drawn as they are.
    """
    h_r, v_r, _ = weighted_histogram(ref, [edges], weights=ref_weights)
    h_c, v_c, _ = weighted_histogram(cand, [edges], weights=cand_weights)
    width = np.diff(edges)
    norm_r = (h_r.sum() or 1.0) * width
    norm_c = (h_c.sum() or 1.0) * width
    d_r, e_r = h_r / norm_r, np.sqrt(v_r) / norm_r
    d_c, e_c = h_c / norm_c, np.sqrt(v_c) / norm_c
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(7, 7))
        ax, rax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1), "hspace": 0.05})
        fig.subplots_adjust(left=0.17, right=0.96, top=0.96, bottom=0.11)
        mplhep.histplot(d_r, edges, ax=ax, histtype="fill", color=REF_COLOR, alpha=0.35, label=ref_label)
        mplhep.histplot(d_r, edges, ax=ax, histtype="step", color=REF_COLOR, yerr=e_r)
        mplhep.histplot(d_c, edges, ax=ax, histtype="step", color=CAND_COLOR, yerr=e_c, label=cand_label)
        ax.set_ylabel("density")
        ax.legend(loc="upper right", fontsize="small", title=annotation or None, title_fontsize="x-small")
        ax.set_ylim(bottom=min(0.0, float(np.min(d_r)), float(np.min(d_c))))
        filled = d_r != 0
        ratio = np.divide(d_c, d_r, out=np.ones_like(d_c), where=filled)
        r_err = np.divide(np.hypot(e_c, ratio * e_r), np.abs(d_r), out=np.zeros_like(d_c), where=filled)
        mplhep.histplot(ratio, edges, ax=rax, histtype="errorbar", yerr=r_err, color=CAND_COLOR)
        rax.axhline(1.0, color=REF_COLOR, lw=1)
        both = filled & (d_c != 0)
        off = float(np.max(np.abs(ratio[both] - 1.0))) if both.any() else 0.0
        rax.set_ylim(*((0.5, 1.5) if off <= 0.5 else (0.0, 2.0)))
        rax.set_yticks([0.75, 1.0, 1.25] if off <= 0.5 else [0.5, 1.0, 1.5])  # clear of the top panel's labels
        rax.set_ylabel("cand/ref", fontsize="small")
        rax.set_xlabel(name or "feature")
        ax.set_xlabel("")
        return save_figure(fig, out_png)


def weighted_correlation(x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted Pearson correlation (d, d) of ``x``: (n, d); signed weights allowed.

    Constant features get correlation 0 with the others (1 on the diagonal).
    """
    w = np.ones(len(x)) if weights is None else np.asarray(weights, float)
    total = w.sum()
    if total == 0:
        raise DataError("correlation: the weights sum to zero.")
    centred = x - (w @ x) / total
    cov = (centred * w[:, None]).T @ centred / total
    scale = np.sqrt(np.clip(np.diag(cov), 0, None))
    denom = np.outer(scale, scale)
    corr = np.divide(cov, denom, out=np.zeros_like(cov), where=denom > 0)
    np.fill_diagonal(corr, 1.0)
    return np.clip(corr, -1.0, 1.0)


def plot_correlation_matrices(
    ref: np.ndarray,
    cand: np.ndarray,
    out_png: str | Path,
    *,
    names: Sequence[str] | None = None,
    ref_weights: np.ndarray | None = None,
    cand_weights: np.ndarray | None = None,
) -> Path:
    """Correlation matrices of ref and cand side by side, and their difference; ``ref``: (n, d), ``cand``: (m, d)."""
    c_r, c_c = weighted_correlation(ref, ref_weights), weighted_correlation(cand, cand_weights)
    d = c_r.shape[0]
    panels = [("reference", c_r, "RdBu_r", (-1, 1)), ("candidate", c_c, "RdBu_r", (-1, 1))]
    diff = c_c - c_r
    lim = max(float(np.abs(diff).max()), 1e-3)
    panels.append(("candidate − reference", diff, "PuOr_r", (-lim, lim)))
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(18, 6.2), layout="constrained")
        for ax, (title, mat, cmap, (lo, hi)) in zip(fig.subplots(1, 3), panels, strict=True):
            im = ax.imshow(mat, cmap=cmap, vmin=lo, vmax=hi, origin="upper")
            ax.set_title(title, fontsize="medium")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
            if d <= 20:
                tick_labels = list(names) if names is not None else [str(t) for t in range(d)]
                ax.set_xticks(range(d), labels=tick_labels, rotation=90, fontsize="x-small")
                ax.set_yticks(range(d), labels=tick_labels, fontsize="x-small")
            else:
                ax.set_xticks([])
                ax.set_yticks([])
            ax.minorticks_off()
            if d <= 8:
                for i in range(d):
                    for j in range(d):
                        ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize="xx-small")
        return save_figure(fig, out_png)


def plot_mean_images(
    ref_mean: np.ndarray,
    cand_mean: np.ndarray,
    out_png: str | Path,
    *,
    labels: tuple[str, str] = ("reference", "candidate"),
) -> Path:
    """Mean images side by side with their difference, one row per channel; images (H, W) or (C, H, W).

    Reference and candidate share one colour scale, logarithmic when no pixel is negative and the
    positive ones span more than two decades (as for jet images; empty pixels then take the lowest
    colour); the difference uses a diverging scale centred on zero.
    """
    r = np.asarray(ref_mean, float)
    c = np.asarray(cand_mean, float)
    r, c = (r[None], c[None]) if r.ndim == 2 else (r, c)
    if r.shape != c.shape or r.ndim != 3:
        raise DataError(f"mean images must both be (H, W) or (C, H, W); got {r.shape} and {c.shape}.")
    n_ch = r.shape[0]
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(16, 5.2 * n_ch), layout="constrained")
        axes = np.atleast_2d(fig.subplots(n_ch, 3))
        for ch in range(n_ch):
            lo, hi = float(min(r[ch].min(), c[ch].min())), float(max(r[ch].max(), c[ch].max()))
            both = np.concatenate([r[ch].ravel(), c[ch].ravel()])
            lo_pos = float(both[both > 0].min()) if (both > 0).any() else 0.0
            use_log = lo >= 0 and lo_pos > 0 and hi / lo_pos > 100
            norm = LogNorm(max(lo_pos, hi * 1e-6), hi) if use_log else Normalize(lo, hi if hi > lo else lo + 1)
            cmap = matplotlib.colormaps["viridis"].with_extremes(bad=matplotlib.colormaps["viridis"](0.0),
                                                                 under=matplotlib.colormaps["viridis"](0.0))
            for ax, img, title in ((axes[ch, 0], r[ch], labels[0]), (axes[ch, 1], c[ch], labels[1])):
                shown = np.ma.masked_less_equal(img, 0.0) if use_log else img
                im = ax.imshow(shown, norm=norm, cmap=cmap, origin="upper")
                ax.set_title(f"{title}" + (f" (channel {ch})" if n_ch > 1 else ""), fontsize="medium")
            fig.colorbar(im, ax=axes[ch, :2].tolist(), fraction=0.046, pad=0.02)
            diff = c[ch] - r[ch]
            lim = max(float(np.abs(diff).max()), 1e-12)
            im = axes[ch, 2].imshow(diff, norm=TwoSlopeNorm(0.0, -lim, lim), cmap="RdBu_r", origin="upper")
            axes[ch, 2].set_title(f"{labels[1]} − {labels[0]}", fontsize="medium")
            fig.colorbar(im, ax=axes[ch, 2], fraction=0.046, pad=0.02)
            for ax in axes[ch]:
                ax.set_xticks([])
                ax.set_yticks([])
                ax.minorticks_off()
        return save_figure(fig, out_png)


def plot_loss_curves(history: Sequence[Mapping[str, float | None]], out_png: str | Path) -> Path:
    """Every numeric column of a training history (the rows of ``metrics.csv``) against ``epoch``.

    Columns with "loss" in the name go in the left panel, other metrics (``w1``, ``fpd``, ``val_kl`` ...)
    in a right panel; ``time``, ``lr`` and ``step`` are not drawn. Missing values are skipped. The y axis is
    logarithmic when a panel's values are all positive and span more than two decades.
    """
    rows = list(history)
    if not rows or "epoch" not in rows[0]:
        raise DataError("a training history needs rows with an 'epoch' entry; got none")
    names: list[str] = []
    for r in rows:
        names += [k for k in r if k not in names and k != "epoch"]
    columns = {k: np.array([_to_float(r.get(k)) for r in rows]) for k in names}
    epoch = np.array([_to_float(r["epoch"]) for r in rows])
    skip = {"time", "lr", "step"}
    curves = {k: v for k, v in columns.items() if k not in skip and np.isfinite(v).any()}
    if not curves:
        raise DataError(f"no loss or metric column with numbers besides {sorted(skip | {'epoch'})}.")
    losses = {k: v for k, v in curves.items() if "loss" in k}
    others = {k: v for k, v in curves.items() if "loss" not in k}
    groups = [g for g in (losses, others) if g]
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(8 * len(groups), 6.5), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(groups)))
        for ax, group in zip(axes, groups, strict=True):
            finite_all = []
            for name, values in group.items():
                ok = np.isfinite(values) & np.isfinite(epoch)
                ax.plot(epoch[ok], values[ok], marker="o" if ok.sum() < 30 else None, ms=4, label=name)
                finite_all.append(values[ok])
            vals = np.concatenate(finite_all)
            if vals.size and vals.min() > 0 and vals.max() / vals.min() > 100:
                ax.set_yscale("log")
            ax.set_xlabel("epoch")
            ax.set_ylabel("loss" if group is losses else "metric")
            ax.legend(fontsize="small")
        return save_figure(fig, out_png)


def plot_roc_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], out_png: str | Path
) -> Path:
    """Background rejection 1/ε_B (log) against ε_S for named ``(eps_b, eps_s)`` ROC curves, with the random line."""
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(7, 6.5), layout="constrained")
        ax = fig.subplots()
        for label, (eps_b, eps_s) in curves.items():
            eps_b, eps_s = np.asarray(eps_b, float), np.asarray(eps_s, float)
            ok = eps_b > 0
            ax.plot(eps_s[ok], 1.0 / eps_b[ok], label=label)
        grid = np.linspace(1e-3, 1, 200)
        ax.plot(grid, 1.0 / grid, ls="--", color="grey", label="random")
        ax.set_yscale("log")
        ax.set_xlabel(r"signal efficiency $\epsilon_S$")
        ax.set_ylabel(r"background rejection $1/\epsilon_B$")
        ax.legend(fontsize="small")
        return save_figure(fig, out_png)


def _to_float(text: str | float | None) -> float:
    try:
        return float(text) if text not in (None, "") else np.nan
    except ValueError:
        return np.nan
