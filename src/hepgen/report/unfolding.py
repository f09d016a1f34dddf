"""Unfolding report figures: per observable, the unfolded distribution with its bootstrap band, the data's
true truth when known, the prior (simulated truth) and the detector-level data, with ratio panels; 2-D
densities of a pair of observables; written as the report folder of every command (:mod:`hepgen.report.folder`).

Everything is drawn from histograms the caller computed (this layer knows no unfolding method): unit-area
densities on common truth-level edges, the band the standard deviation over bootstrap replicas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.style
import mplhep
import numpy as np
from matplotlib.figure import Figure

from hepgen.report.folder import ReportFolder, jsonable
from hepgen.report.html import Page, Table
from hepgen.report.plots import (
    CAND_COLOR,
    REF_COLOR,
    STYLE,
    axis_label,
    plot_density_2d,
    save_figure,
)

PRIOR_COLOR, DATA_COLOR, TRUTH_COLOR = "#94a4a2", "#832db6", "black"


def density(h: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts (bins,) -> unit-area density on ``edges``."""
    total = float(np.sum(h))
    return np.asarray(h, float) / ((total if total != 0 else 1.0) * np.diff(edges))


def plot_unfolded(out_png: str | Path, edges: np.ndarray, unfolded: np.ndarray, band: np.ndarray, *,
                  prior: np.ndarray, detector: np.ndarray | None = None, truth: np.ndarray | None = None,
                  truth_error: np.ndarray | None = None, name: str = "", unit: str | None = None,
                  method: str = "unfolded", annotation: str = "") -> Path:
    """One observable: densities (bins,) on ``edges`` of the unfolded result (with its ±1σ ``band``),
    the prior, the detector-level data and the data's true truth; below, the ratios to the true truth
    (or to the prior when the truth is not known), the band shaded."""
    centres = 0.5 * (edges[1:] + edges[:-1])
    ref = truth if truth is not None else prior
    ref_label = "data truth" if truth is not None else "prior"

    def ratio(a: np.ndarray) -> np.ndarray:
        return np.divide(a, ref, out=np.full_like(a, np.nan, dtype=float), where=ref > 0)

    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(7, 7), layout="constrained")
        fig.get_layout_engine().set(hspace=0.0, h_pad=0.06, w_pad=0.06)
        ax, rax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1)})
        mplhep.histplot(prior, edges, ax=ax, histtype="fill", color=PRIOR_COLOR, alpha=0.35, label="prior (sim truth)")
        if detector is not None:
            mplhep.histplot(detector, edges, ax=ax, histtype="step", color=DATA_COLOR, ls="--", label="data (reco)")
        if truth is not None:
            ax.errorbar(centres, truth, yerr=truth_error, fmt="o", ms=3, color=TRUTH_COLOR, label="data truth")
        ax.stairs(unfolded + band, edges, baseline=unfolded - band, fill=True, color=CAND_COLOR, alpha=0.3)
        mplhep.histplot(unfolded, edges, ax=ax, histtype="step", color=CAND_COLOR, label=method)
        ax.set_ylabel(f"density [1/{unit}]" if unit else "density")
        peak = max(float(np.max(unfolded + band)), float(np.max(prior)),
                   float(np.max(truth)) if truth is not None else 0.0)
        ax.set_ylim(0.0, 1.45 * peak if peak > 0 else None)
        ax.legend(loc="upper right", fontsize="small", title=annotation or None, title_fontsize="x-small")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
        r = ratio(unfolded)
        rb = np.divide(band, ref, out=np.zeros_like(band, dtype=float), where=ref > 0)
        rax.stairs(r + rb, edges, baseline=r - rb, fill=True, color=CAND_COLOR, alpha=0.3)
        rax.stairs(r, edges, color=CAND_COLOR)
        if truth is not None:
            rax.stairs(ratio(prior), edges, color=PRIOR_COLOR, ls=":")
        rax.axhline(1.0, color=REF_COLOR, lw=1)
        values = np.concatenate([r[np.isfinite(r)], [1.0]])
        off = float(np.max(np.abs(values - 1.0)))
        lo, hi = (0.75, 1.25) if off <= 0.2 else (0.5, 1.5) if off <= 0.45 else (0.0, 2.0)
        rax.set_ylim(lo, hi)
        rax.set_ylabel(f"/ {ref_label}", fontsize="small")
        rax.set_xlabel(axis_label(name or "observable", unit))
        rax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel("")
        return save_figure(fig, out_png)


def write_report(report_dir: str | Path, *, title: str, method: str, names: Sequence[str],
                 units: Mapping[str, str], edges: Sequence[np.ndarray], histograms: Sequence[Mapping[str, Any]],
                 metrics: Mapping[str, Any], pair: tuple[int, int] | None = None,
                 pair_events: Mapping[str, tuple[np.ndarray, np.ndarray | None]] | None = None,
                 pair_edges: tuple[np.ndarray, np.ndarray] | None = None, meta: Sequence[str] = (),
                 notes: Sequence[str] = ()) -> Path:
    """The report folder (:mod:`hepgen.report.folder`): figures under ``plots/``, ``metrics.json`` (``metrics``,
    NaN/inf as null, with the file list) and ``index.html``; returns the index path.

    ``histograms[j]``: densities on ``edges[j]`` under ``unfolded``, ``band``, ``prior`` and optionally
    ``detector``, ``truth``, ``truth_error``. ``pair_events``: ``{label: (events (n, 2), weights)}`` of the
    observables ``pair`` for 2-D panels (the unfolded result against the truth, or the prior)."""
    metrics = jsonable(metrics)
    with ReportFolder(report_dir) as report:
        for j, name in enumerate(names):
            h = histograms[j]
            png = f"unfolded_{j}_{_slug(name)}.png"
            per = metrics.get("observables", {}).get(name, {})
            note = ", ".join(f"{k} {per[k]:.3g}" for k in ("chi2_ndf", "w1") if per.get(k) is not None)
            plot_unfolded(report.figure_path(png), edges[j], h["unfolded"], h["band"], prior=h["prior"],
                          detector=h.get("detector"), truth=h.get("truth"), truth_error=h.get("truth_error"),
                          name=name, unit=units.get(name), method=method, annotation=note)
            report.add_figure(png, f"{name}: {method}", "unfolded distributions")
        if pair is not None and pair_events and pair_edges is not None:
            labels = list(pair_events)
            (ka, (a, wa)), (kb, (b, wb)) = (labels[0], pair_events[labels[0]]), (labels[1], pair_events[labels[1]])
            png = f"pair_{_slug(names[pair[0]])}_{_slug(names[pair[1]])}.png"
            plot_density_2d(a, b, report.figure_path(png), edges=pair_edges, ref_weights=wa, cand_weights=wb,
                            names=(names[pair[0]], names[pair[1]]),
                            units=(units.get(names[pair[0]]), units.get(names[pair[1]])), labels=(ka, kb))
            report.add_figure(png, f"{names[pair[0]]} vs {names[pair[1]]}: {ka} | {kb}", "2-D correlation")
        rows = [[name, *(metrics.get("observables", {}).get(name, {}).get(k) for k in
                         ("chi2_ndf", "chi2_ndf_prior", "w1", "w1_error", "w1_prior"))] for name in names]
        tables = [Table("per observable, against the data's true truth" if metrics.get("has_truth") else
                        "per observable (no data truth given: metrics need --data-truth)",
                        ["observable", "χ²/ndf", "χ²/ndf prior", "W1", "W1 error", "W1 prior"], rows)]
        if metrics.get("pairs"):
            tables.append(Table("2-D (pair of observables) against the data's true truth",
                                ["pair", "χ²/ndf", "χ²/ndf prior", "Δcorrelation", "Δcorrelation prior"],
                                [[k, v.get("chi2_ndf"), v.get("chi2_ndf_prior"), v.get("dcorr"), v.get("dcorr_prior")]
                                 for k, v in metrics["pairs"].items()]))
        report.finish(metrics, Page(title=title, meta=list(meta), notes=list(notes), tables=tables))
    return Path(report_dir) / "index.html"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)[:40] or "x"
