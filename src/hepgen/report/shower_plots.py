"""Shower report figures: feature histograms with ratio panels in bins of E_inc, and response and resolution
against E_inc for the reference and the candidate on one plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.style
import numpy as np
from matplotlib.figure import Figure

from hepgen.report.plots import (
    CAND_COLOR,
    REF_COLOR,
    STYLE,
    plot_feature_histogram,
    save_figure,
)

__all__ = ["plot_feature_in_energy_bins", "plot_response"]


def plot_feature_in_energy_bins(ref: np.ndarray, cand: np.ndarray, ref_energy: np.ndarray, cand_energy: np.ndarray,
                                edges: Sequence[float], out_dir: str | Path, name: str, unit: str | None = None,
                                bins: int = 30, ref_weights: np.ndarray | None = None,
                                cand_weights: np.ndarray | None = None) -> list[Path]:
    """One histogram with a cand/ref ratio panel per E_inc bin ``[edges[i], edges[i+1])``; files ``name_E<i>.png``.

    ``ref_weights``/``cand_weights``: per-shower weights (n,) and (m,), or None."""
    out = []
    for i in range(len(edges) - 1):
        in_r = (ref_energy >= edges[i]) & (ref_energy < edges[i + 1])
        in_c = (cand_energy >= edges[i]) & (cand_energy < edges[i + 1])
        r, c = ref[in_r], cand[in_c]
        wr = None if ref_weights is None else ref_weights[in_r]
        wc = None if cand_weights is None else cand_weights[in_c]
        if len(r) < 2 or len(c) < 2:
            continue
        lo, hi = np.percentile(np.concatenate([r, c]), [0.5, 99.5])
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        out.append(plot_feature_histogram(r, c, Path(out_dir) / f"{name}_E{i}.png", edges=np.linspace(lo, hi, bins + 1),
                                          ref_weights=wr, cand_weights=wc, name=name, unit=unit,
                                          annotation=f"{edges[i]:g} ≤ E_inc < {edges[i + 1]:g} GeV"))
    return out


def plot_response(ref: Mapping[str, np.ndarray], cand: Mapping[str, np.ndarray], out_png: str | Path,
                  ref_label: str = "reference", cand_label: str = "candidate") -> Path:
    """Mean response E_dep/E_inc (top) and resolution σ/E (bottom) against E_inc, both samples on one plot.

    ``ref``, ``cand``: :func:`hepgen.metrics.shower_observables.response_in_bins` results.
    """
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(7, 8), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True)
        for data, color, label, marker in ((ref, REF_COLOR, ref_label, "o"), (cand, CAND_COLOR, cand_label, "s")):
            top.errorbar(data["centre"], data["mean"], yerr=data["mean_err"], fmt=marker, color=color, ms=4, label=label)
            bottom.errorbar(data["centre"], data["resolution"], yerr=data["resolution_err"], fmt=marker, color=color,
                            ms=4, label=label)
        top.set_ylabel("mean E_dep / E_inc")
        bottom.set_ylabel("σ(E_dep) / E_dep")
        bottom.set_xlabel("E_inc [GeV]")
        top.legend(fontsize="small")
        return save_figure(fig, out_png)
