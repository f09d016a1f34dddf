"""The ROC report of a tagger or an anomaly score: metrics.json, ROC + SIC figure, mass sculpting, index.html.

:func:`roc_report` computes everything first (:mod:`hepgen.metrics.roc`, :mod:`hepgen.metrics.decorrelation`)
and only then writes the report folder (:mod:`hepgen.report.folder`): ``metrics.json``,
``plots/roc_sic.png`` and ``.pdf`` (ROC as 1/ε_B against ε_S and SIC against ε_S, every signal on one
mplhep figure), with a mass ``plots/mass_sculpting.png``/``.pdf`` (the background's mass distribution uncut
and after cuts at fixed ε_B, on the very bins whose JSD the legend and metrics.json quote) and
``index.html``.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.style
import numpy as np
from matplotlib.figure import Figure

from hepgen.errors import ConfigError, DataError
from hepgen.metrics.bootstrap import MIN_EVENTS
from hepgen.metrics.classification import roc_curve
from hepgen.metrics.decorrelation import SCULPTING_BINS, mass_sculpting, sculpting_edges
from hepgen.metrics.roc import roc_summary, sic_curve
from hepgen.report.folder import ReportFolder, jsonable, report_problem
from hepgen.report.html import Page, Table
from hepgen.report.plots import STYLE, save_figure, series_colors

__all__ = ["mass_sculpting_figure", "plot_mass_sculpting", "plot_roc_sic", "roc_report", "roc_sic_figure"]

SculptEfficiencies = (0.5, 0.1, 0.01)


def _save_png_pdf(fig: Figure, out_png: Path) -> tuple[Path, Path]:
    png = save_figure(fig, out_png, pdf=True)
    return png, png.with_suffix(".pdf")


def plot_roc_sic(curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
                 sics: Mapping[str, tuple[np.ndarray, np.ndarray]], out_png: str | Path,
                 title: str | None = None) -> tuple[Path, Path]:
    """:func:`roc_sic_figure` written to ``out_png`` and the same name ending in ``.pdf``."""
    return _save_png_pdf(roc_sic_figure(curves, sics, title), Path(out_png))


def roc_sic_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
                   sics: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str | None = None) -> Figure:
    """Two panels: 1/ε_B (log) vs ε_S with the random line, and SIC = ε_S/√ε_B vs ε_S; ``curves[name]`` is
    (ε_B, ε_S), ``sics[name]`` (ε_S, SIC)."""
    colors = series_colors(max(len(curves), 1))
    with matplotlib.style.context(STYLE):
        # one legend for both panels, outside on the right: in the CMS style's large fonts a legend of ten scorers
        # inside each panel covered the curves and collapsed the constrained layout
        fig = Figure(figsize=(16, 6.5), layout="constrained")
        ax_roc, ax_sic = fig.subplots(1, 2)
        for color, (name, (eps_b, eps_s)) in zip(colors, curves.items()):
            eps_b, eps_s = np.asarray(eps_b, float), np.asarray(eps_s, float)
            ok = eps_b > 0
            ax_roc.plot(eps_s[ok], 1.0 / eps_b[ok], color=color, label=name)
            s_eff, sic = sics[name]
            ax_sic.plot(s_eff, sic, color=color, label=name)
        grid = np.linspace(1e-3, 1, 200)
        ax_roc.plot(grid, 1.0 / grid, ls="--", color="grey", label="random")
        ax_sic.plot(grid, np.sqrt(grid), ls="--", color="grey", label="random")
        ax_roc.set_yscale("log")
        ax_roc.set_xlabel(r"signal efficiency $\epsilon_S$")
        ax_roc.set_ylabel(r"background rejection $1/\epsilon_B$")
        ax_sic.set_xlabel(r"signal efficiency $\epsilon_S$")
        ax_sic.set_ylabel(r"significance improvement $\epsilon_S/\epsilon_B^{1/2}$")
        ax_sic.set_ylim(bottom=0)
        for ax in (ax_roc, ax_sic):
            ax.set_xlim(0, 1)
        fig.legend(*ax_roc.get_legend_handles_labels(), loc="outside right upper", fontsize="x-small",
                   frameon=False)
        if title:
            fig.suptitle(textwrap.fill(title, 90), fontsize="small")
    return fig


def plot_mass_sculpting(scores: np.ndarray, mass: np.ndarray, out_png: str | Path, weights: np.ndarray | None = None,
                        efficiencies: Sequence[float] = SculptEfficiencies, bins: int | np.ndarray = SCULPTING_BINS,
                        mass_label: str = "mass", title: str | None = None) -> tuple[Path, Path]:
    """:func:`mass_sculpting_figure` of :func:`~hepgen.metrics.decorrelation.mass_sculpting` on ``bins`` (a count:
    :func:`~hepgen.metrics.decorrelation.sculpting_edges`), written to ``out_png`` and ``.pdf``."""
    edges = np.asarray(bins, float) if np.ndim(bins) else sculpting_edges(mass, int(bins))
    sculpting = mass_sculpting(scores, mass, weights, efficiencies=efficiencies, bins=edges)
    fig = mass_sculpting_figure(scores, mass, sculpting, edges, weights, mass_label=mass_label, title=title)
    return _save_png_pdf(fig, Path(out_png))


def mass_sculpting_figure(scores: np.ndarray, mass: np.ndarray, sculpting: Mapping[str, Mapping[str, float]],
                          edges: np.ndarray, weights: np.ndarray | None = None, *, mass_label: str = "mass",
                          title: str | None = None) -> Figure:
    """The background's normalised mass distribution uncut and after each cut ``score >= threshold`` of
    ``sculpting`` (:func:`~hepgen.metrics.decorrelation.mass_sculpting` on the same ``edges``), its 1/JSD in
    the legend: the figure shows the bins the quoted JSD was computed on."""
    s, m = np.asarray(scores, float).ravel(), np.asarray(mass, float).ravel()
    w = np.ones(len(s)) if weights is None else np.asarray(weights, float)
    edges = np.asarray(edges, float)
    colors = series_colors(len(sculpting) + 1)
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(7, 6), layout="constrained")
        ax = fig.subplots()
        h, _ = np.histogram(m, edges, weights=w)
        ax.stairs(h / max(h.sum(), 1e-300) / np.diff(edges), edges, color="black", lw=2, label="no cut")
        for color, (eff, cut) in zip(colors[1:], sculpting.items()):
            keep = s >= cut["threshold"]
            hc, _ = np.histogram(m[keep], edges, weights=w[keep])
            if not hc.sum() > 0:
                continue
            label = rf"$\epsilon_B$ = {eff}"
            inverse = cut.get("inverse_jsd")
            if inverse is not None and math.isfinite(inverse):
                label += f" (1/JSD = {inverse:.3g})"
            ax.stairs(hc / hc.sum() / np.diff(edges), edges, color=color, lw=1.6, label=label)
        ax.set_xlabel(mass_label)
        ax.set_ylabel("background density (normalised)")
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * 1.35)
        ax.legend(fontsize="small")
        if title:
            ax.set_title(title, fontsize="small")
    return fig


def roc_report(background: np.ndarray, signals: Mapping[str, np.ndarray], report_dir: str | Path | None = None, *,
               background_weights: np.ndarray | None = None,
               signal_weights: Mapping[str, np.ndarray | None] | None = None,
               mass: np.ndarray | None = None, mass_label: str = "mass", n_bootstrap: int = 100, seed: int = 0,
               signal_efficiencies: Sequence[float] = (0.3, 0.5),
               background_efficiencies: Sequence[float] = SculptEfficiencies, title: str = "ROC report",
               meta: Sequence[str] = (), score_name: str = "score", extra: Mapping[str, Any] | None = None
               ) -> dict[str, Any]:
    """Metrics of each named signal against ``background`` (scores, higher = more signal-like) and the report.

    ``mass``: the background's (n_b,) mass for the sculpting figure and JSD at each ε_B in
    ``background_efficiencies``. ``extra``: further entries of metrics.json (the inputs). Returns the content of metrics.json (its
    ``notes`` say why an error is null); writes nothing without ``report_dir``.
    """
    if not signals:
        raise ConfigError("roc_report needs at least one signal sample")
    if report_dir is not None and report_problem(report_dir):
        raise DataError(f"report folder {report_dir}: {report_problem(report_dir)}.")
    sw = dict(signal_weights or {})
    result: dict[str, Any] = {"score": score_name, "n_bootstrap": int(n_bootstrap), "signals": {}}
    notes: list[str] = []
    curves, sics = {}, {}
    n_background = len(np.ravel(background))
    for name, s in signals.items():
        result["signals"][name] = roc_summary(s, background, signal_weights=sw.get(name),
                                              background_weights=background_weights,
                                              signal_efficiencies=signal_efficiencies, n_bootstrap=n_bootstrap,
                                              seed=seed)
        if n_bootstrap and min(len(np.ravel(s)), n_background) < MIN_EVENTS:
            notes.append(f"{name}: the bootstrap errors are null (undefined): {len(np.ravel(s))} signal and "
                         f"{n_background} background events, and a bootstrap needs at least {MIN_EVENTS} in each.")
        eps_b, eps_s, _ = roc_curve(s, background, sw.get(name), background_weights)
        curves[name] = (eps_b, eps_s)
        sics[name] = sic_curve(s, background, sw.get(name), background_weights)
    edges = None
    if mass is not None:
        edges = sculpting_edges(mass)
        result["mass_sculpting"] = {"variable": mass_label, "jsd_units": "bits (log2)", "edges": edges,
                                    "by_background_efficiency": mass_sculpting(
                                        background, mass, background_weights, efficiencies=background_efficiencies,
                                        bins=edges)}
    result = jsonable({**result, "notes": notes, **dict(extra or {})})
    if report_dir is None:
        return result
    tables = [Table("Per signal (errors: bootstrap standard deviation)",
                    ["signal", "AUC", "max SIC", "ε_S at max SIC",
                     *[f"1/ε_B at ε_S = {e:g}" for e in signal_efficiencies], "events"],
                    [[name, _pm(m, "auc"), _pm(m, "max_sic"), _pm(m, "eps_s_at_max_sic"),
                      *[_pm(m, f"rejection_at_eps_s_{e:g}") for e in signal_efficiencies], m["n_signal"]]
                     for name, m in result["signals"].items()])]
    with ReportFolder(report_dir) as report:
        report.save_figure(roc_sic_figure(curves, sics, title=title), "roc_sic.png",
                           "ROC (background rejection) and significance improvement", pdf=True)
        if mass is not None:
            sculpt = result["mass_sculpting"]["by_background_efficiency"]
            report.save_figure(mass_sculpting_figure(background, mass, sculpt, edges, background_weights,
                                                     mass_label=mass_label), "mass_sculpting.png",
                               f"background {mass_label} after cuts at fixed ε_B", pdf=True)
            tables.append(Table(f"Mass sculpting of the background ({mass_label}); JSD in bits, passing vs failing, "
                                f"on the {len(edges) - 1} bins of the figure",
                                ["ε_B", "threshold", "kept fraction", "JSD", "1/JSD"],
                                [[k, v["threshold"], v["efficiency"], v["jsd"], v["inverse_jsd"]]
                                 for k, v in sculpt.items()]))
        page = Page(title=title, meta=[*meta, f"score: {score_name}; higher = more signal-like",
                                       f"background events: {n_background}"], notes=notes, tables=tables)
        result = report.finish(result, page)
    return result


def _pm(metrics: Mapping[str, Any], key: str) -> str:
    value, err = metrics.get(key), metrics.get(f"{key}_err")
    if value is None:
        return "inf"
    return f"{value:.4g} ± {err:.2g}" if err is not None else f"{value:.4g}"
