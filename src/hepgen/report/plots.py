"""Reusable report figures in the mplhep (CMS) style, written atomically as PNG.

Figures are built as ``matplotlib.figure.Figure`` objects (Agg canvas, no pyplot state), so nothing
needs closing and no global backend or style is changed: the style applies only inside each call.
Every function returns the path of the PNG it wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
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
DPI = 100  # a 7-inch histogram is 700 px, wider than the report thumbnails (html.THUMBNAIL_PX)
#: bin counts chosen by :func:`bin_count` lie in this range
MIN_BINS, MAX_BINS = 10, 50


def bin_count(*samples: np.ndarray, weights: Sequence[np.ndarray | None] | None = None,
              quantile: float = 0.001, low: int = MIN_BINS, high: int = MAX_BINS) -> int:
    """Number of equal-width bins for histograms of 1-D ``samples`` drawn on one axis.

    The Freedman–Diaconis width ``h = 2 IQR / N^(1/3)`` over the central ``1 - 2 quantile`` of the
    pooled samples, with ``N`` the smallest effective sample size (Kish's ``(Σw)² / Σw²`` for
    weighted ones), so the noisier sample sets the resolution; then clipped to ``[low, high]``.
    A zero IQR (a spike, discrete data) falls back to ``√N`` bins. E.g. 625 Gaussian events: 20 bins.
    """
    if not samples:
        raise DataError("bin_count needs at least one sample.")
    weights = list(weights) if weights is not None else [None] * len(samples)
    sizes = []
    for x, w in zip(samples, weights, strict=True):
        if w is None:
            sizes.append(float(np.size(x)))
        else:
            w = np.abs(np.asarray(w, float))
            sizes.append(float(w.sum() ** 2 / (w**2).sum()) if (w**2).sum() > 0 else 0.0)
    n = max(min(sizes), 1.0)
    both = np.concatenate([np.ravel(np.asarray(x, float)) for x in samples])
    both = both[np.isfinite(both)]
    if both.size == 0:
        return low
    lo, q1, q3, hi = np.quantile(both, [quantile, 0.25, 0.75, 1 - quantile])
    iqr, span = q3 - q1, hi - lo
    k = np.ceil(span / (2.0 * iqr * n ** (-1.0 / 3.0))) if iqr > 0 and span > 0 else np.ceil(np.sqrt(n))
    return int(np.clip(k, min(low, high), high))


def axis_label(name: str, unit: str | None = None) -> str:
    """``"mass [GeV]"``, or the name alone without a unit."""
    return f"{name} [{unit}]" if unit else name


def text_color_for(rgba: Sequence[float]) -> str:
    """``"white"`` or ``"black"``, whichever contrasts more with the colour ``rgba`` (WCAG 2 contrast).

    Relative luminance ``L = 0.2126 R + 0.7152 G + 0.0722 B`` of the linearised sRGB channels; the
    contrast ratio with white is ``1.05 / (L + 0.05)`` and with black ``(L + 0.05) / 0.05``, so white
    wins below ``L ≈ 0.179``.
    """
    rgb = np.asarray(rgba, float)[:3]
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    lum = float(linear @ np.array([0.2126, 0.7152, 0.0722]))
    return "white" if 1.05 / (lum + 0.05) > (lum + 0.05) / 0.05 else "black"


def series_colors(n: int) -> list[tuple[float, float, float, float]]:
    """``n`` distinct colours: tab10 up to 10, tab20 up to 20, then evenly spaced hues of ``hsv``."""
    if n <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(n)]
    return [matplotlib.colormaps["hsv"](i / n) for i in range(n)]


def save_figure(fig: Figure, out_png: str | Path, pdf: bool = False) -> Path:
    """Write ``fig`` to ``out_png`` atomically (temporary file beside it, fsync, rename); with ``pdf`` also
    as vector graphics to the same name ending in ``.pdf``.

    Axis labels wider than the figure allows (a long feature name under a narrow panel) are first
    centred on their axis and then shrunk until they fit (:func:`fit_axis_labels`).
    """
    with _quiet_font_fallback():
        fit_axis_labels(fig)
        out_png = Path(out_png)
        with atomic_path(out_png, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=DPI)
        if pdf:
            with atomic_path(out_png.with_suffix(".pdf"), suffix=".pdf") as tmp:
                fig.savefig(tmp, format="pdf")
    return out_png


@contextmanager
def _quiet_font_fallback() -> Iterator[None]:
    """matplotlib's font manager logs "findfont: Font family ['cursive'] not found" (mathtext's default calligraphic
    family, looked up for any $...$ label) on a machine without such fonts, on the user's stderr and under -q too;
    it falls back to DejaVu Sans all the same. Its logger is raised to ERROR while a figure is laid out and saved."""
    logger = logging.getLogger("matplotlib.font_manager")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def fit_axis_labels(fig: Figure, smallest: float = 7.0) -> None:
    """Move and shrink the axis labels of ``fig`` that stick out of it, as laid out at :data:`DPI`.

    The CMS style aligns x labels to the right end and y labels to the top of their axis, so a label
    longer than the axis runs out of the figure; such a label is centred on its axis, then its font
    size is reduced in steps of 10 % down to ``smallest`` points until its box lies inside the figure.
    """
    fig.set_dpi(DPI)
    fig.draw_without_rendering()
    renderer = fig._get_renderer()
    box = fig.bbox

    def outside(label, margin: float = 3.0) -> bool:  # rendered glyphs overshoot their text box by ~2 px
        ext = label.get_window_extent(renderer)
        return (ext.x0 < box.x0 + margin or ext.x1 > box.x1 - margin or ext.y0 < box.y0 + margin
                or ext.y1 > box.y1 - margin)

    changed = True
    while changed:
        changed = False
        for ax in fig.axes:
            for axis, label in (("x", ax.xaxis.label), ("y", ax.yaxis.label)):
                if not label.get_text() or not outside(label):
                    continue
                if label.get_ha() != "center" and axis == "x" or label.get_va() not in ("center", "baseline") \
                        and axis == "y" and label.get_position()[1] != 0.5:
                    (ax.set_xlabel if axis == "x" else ax.set_ylabel)(label.get_text(), loc="center")
                    changed = True
                elif label.get_fontsize() > smallest:
                    label.set_fontsize(max(smallest, 0.9 * label.get_fontsize()))
                    changed = True
        if changed:
            fig.draw_without_rendering()


def plot_feature_histogram(
    ref: np.ndarray,
    cand: np.ndarray,
    out_png: str | Path,
    *,
    edges: np.ndarray,
    ref_weights: np.ndarray | None = None,
    cand_weights: np.ndarray | None = None,
    name: str = "",
    unit: str | None = None,
    ref_label: str = "reference",
    cand_label: str = "candidate",
    annotation: str = "",
) -> Path:
    """Unit-area histograms of one feature (ref filled, cand with sumw2 errors) and a cand/ref ratio panel.

    ``ref``: (n,), ``cand``: (m,), ``edges``: (bins + 1,). Negative weights are drawn as they are.
    With ``unit`` the x axis reads ``name [unit]`` and the density ``1/unit``. The ratio panel spans
    [0.5, 1.5] when every ratio lies within 50 % of one, else [0, 2]; ratios outside it (and bins where
    only the candidate has events, an infinite ratio) are drawn as triangles at the panel's edge
    pointing the way they leave it; bins empty in both samples are not drawn.
    """
    h_r, v_r, _ = weighted_histogram(ref, [edges], weights=ref_weights)
    h_c, v_c, _ = weighted_histogram(cand, [edges], weights=cand_weights)
    width = np.diff(edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    norm_r = (h_r.sum() or 1.0) * width
    norm_c = (h_c.sum() or 1.0) * width
    d_r, e_r = h_r / norm_r, np.sqrt(v_r) / norm_r
    d_c, e_c = h_c / norm_c, np.sqrt(v_c) / norm_c
    filled = d_r != 0
    ratio = np.divide(d_c, d_r, out=np.full_like(d_c, np.nan), where=filled)
    ratio[~filled & (d_c != 0)] = np.inf
    r_err = np.divide(np.hypot(e_c, np.nan_to_num(ratio, posinf=0.0) * e_r), np.abs(d_r),
                      out=np.zeros_like(d_c), where=filled)
    both = filled & (d_c != 0)
    off = float(np.max(np.abs(ratio[both] - 1.0))) if both.any() else 0.0
    lo, hi = (0.5, 1.5) if off <= 0.5 else (0.0, 2.0)
    inside = np.isfinite(ratio) & (ratio > lo) & (ratio < hi)
    above = ratio >= hi  # includes +inf
    below = np.isfinite(ratio) & (ratio <= lo)
    margin = 0.06 * (hi - lo)
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(7, 7), layout="constrained")
        fig.get_layout_engine().set(hspace=0.0, h_pad=0.06, w_pad=0.06)  # glyphs overshoot their boxes by ~2 px
        ax, rax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1)})
        mplhep.histplot(d_r, edges, ax=ax, histtype="fill", color=REF_COLOR, alpha=0.35, label=ref_label)
        mplhep.histplot(d_r, edges, ax=ax, histtype="step", color=REF_COLOR, yerr=e_r)
        mplhep.histplot(d_c, edges, ax=ax, histtype="step", color=CAND_COLOR, yerr=e_c, label=cand_label)
        ax.set_ylabel(f"density [1/{unit}]" if unit else "density")
        ax.legend(loc="upper right", fontsize="small", title=annotation or None, title_fontsize="x-small")
        peak = max(float(np.max(d_r + e_r)), float(np.max(d_c + e_c)))
        ax.set_ylim(min(0.0, float(np.min(d_r)), float(np.min(d_c))), 1.45 * peak if peak > 0 else None)  # legend room
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
        rax.errorbar(centres[inside], ratio[inside], yerr=r_err[inside], xerr=0.5 * width[inside], fmt="o",
                     ms=3, lw=1, color=CAND_COLOR)
        for mask, y, marker, gid in ((above, hi - margin, "^", "ratio-above"), (below, lo + margin, "v", "ratio-below")):
            (line,) = rax.plot(centres[mask], np.full(int(mask.sum()), y), ls="none", marker=marker, ms=6,
                               color=CAND_COLOR)
            line.set_gid(gid)
        rax.axhline(1.0, color=REF_COLOR, lw=1)
        rax.set_ylim(lo, hi)
        rax.set_yticks([0.75, 1.0, 1.25] if off <= 0.5 else [0.5, 1.0, 1.5])  # clear of the top panel's labels
        rax.set_ylabel("cand/ref", fontsize="small")
        rax.set_xlabel(axis_label(name or "feature", unit))
        rax.set_xlim(edges[0], edges[-1])
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
    """Correlation matrices of ref and cand side by side, and their difference; ``ref``: (n, d), ``cand``: (m, d).

    Up to 8 features each cell shows its value, in white or black by the cell colour's luminance
    (:func:`text_color_for`).
    """
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
            if d <= 8:  # the value in each cell, white on dark cells and black on light ones
                rgba = im.cmap(im.norm(mat))
                digits = 2 if hi == 1 else max(2, 1 - int(np.floor(np.log10(hi))))  # differences: 2 significant
                for i in range(d):
                    for j in range(d):
                        ax.text(j, i, f"{mat[i, j]:.{digits}f}", ha="center", va="center", fontsize="xx-small",
                                color=text_color_for(rgba[i, j]))
        return save_figure(fig, out_png)


def plot_density_2d(
    ref: np.ndarray,
    cand: np.ndarray,
    out_png: str | Path,
    *,
    edges: tuple[np.ndarray, np.ndarray],
    ref_weights: np.ndarray | None = None,
    cand_weights: np.ndarray | None = None,
    names: Sequence[str] = ("x0", "x1"),
    units: Sequence[str | None] = (None, None),
    labels: tuple[str, str] = ("reference", "candidate"),
) -> Path:
    """Unit-volume 2-D histograms of two-feature events, reference and candidate side by side.

    ``ref``: (n, 2), ``cand``: (m, 2), ``edges``: (x edges, y edges), the same bins for both panels,
    which share one colour scale (``density = counts / (Σw · Δx Δy)``; empty bins are white).
    """
    ref, cand = np.asarray(ref, float), np.asarray(cand, float)
    if ref.ndim != 2 or ref.shape[1] != 2 or cand.ndim != 2 or cand.shape[1] != 2:
        raise DataError(f"a 2-D density needs events of shape (n, 2); got {ref.shape} and {cand.shape}.")
    area = np.outer(np.diff(edges[0]), np.diff(edges[1]))
    dens = []
    for x, w in ((ref, ref_weights), (cand, cand_weights)):
        h, _, _ = weighted_histogram(x, list(edges), weights=w)
        dens.append(h / ((h.sum() or 1.0) * area))
    hi = max(float(dens[0].max()), float(dens[1].max()), 1e-300)
    norm = Normalize(0.0, hi)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(14, 6.2), layout="constrained")
        axes = fig.subplots(1, 2, sharex=True, sharey=True)
        for ax, d, title in zip(axes, dens, labels, strict=True):
            mesh = ax.pcolormesh(edges[0], edges[1], np.ma.masked_equal(d.T, 0.0), norm=norm, cmap=cmap)
            ax.set_title(title, fontsize="medium")
            ax.set_xlabel(axis_label(names[0], units[0]))
            ax.set_ylabel(axis_label(names[1], units[1]))
        fig.colorbar(mesh, ax=list(axes), fraction=0.046, pad=0.02, label="density")
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
    logarithmic when a panel's values are all positive and span more than two decades. A column and its
    ``val_`` twin share one colour (training solid, validation dashed) and no two other series share one
    (:func:`series_colors`: tab10, then tab20); with more than six series the legend goes beside the panel.
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
    bases = list(dict.fromkeys(_train_name(k) for k in curves))
    color = dict(zip(bases, series_colors(len(bases)), strict=True))
    legend_cols = [0 if len(g) <= 6 else -(-len(g) // 14) for g in groups]  # 0: inside the panel
    widths = [8 + 3 * c for c in legend_cols]
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(sum(widths), 6.5), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(groups), width_ratios=widths))
        for ax, group, beside in zip(axes, groups, legend_cols, strict=True):
            finite_all = []
            for name, values in group.items():
                ok = np.isfinite(values) & np.isfinite(epoch)
                ax.plot(epoch[ok], values[ok], marker="o" if ok.sum() < 30 else None, ms=4, label=name,
                        color=color[_train_name(name)], ls="--" if name.startswith("val_") else "-")
                finite_all.append(values[ok])
            vals = np.concatenate(finite_all)
            if vals.size and vals.min() > 0 and vals.max() / vals.min() > 100:
                ax.set_yscale("log")
            ax.set_xlabel("epoch")
            ax.set_ylabel("loss" if group is losses else "metric")
            if beside:
                ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                          ncols=beside)
            else:
                ax.legend(fontsize="small")
        return save_figure(fig, out_png)


def _train_name(column: str) -> str:
    """``val_critic_loss`` -> ``critic_loss``: a validation column and its training twin share a colour."""
    return column.removeprefix("val_")


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
