"""The ROC report of a tagger or an anomaly score: metrics.json, ROC + SIC figure, mass sculpting, index.html.

:func:`roc_report` computes everything first (:mod:`hepgen.metrics.roc`, :mod:`hepgen.metrics.decorrelation`)
and only then writes ``DIR/metrics.json``, ``DIR/roc_sic.png`` and ``.pdf`` (ROC as 1/ε_B against ε_S and
SIC against ε_S, every signal on one mplhep figure), with a mass ``DIR/mass_sculpting.png``/``.pdf``
(the background's mass distribution uncut and after cuts at fixed ε_B) and ``DIR/index.html``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.style
import numpy as np
from matplotlib.figure import Figure

from hepgen.errors import ConfigError
from hepgen.files import atomic_path, atomic_write_text
from hepgen.metrics.classification import roc_curve
from hepgen.metrics.decorrelation import efficiency_threshold, mass_sculpting
from hepgen.metrics.roc import roc_summary, sic_curve
from hepgen.report.html import Gallery, Page, Table, write_index_html
from hepgen.report.plots import STYLE, save_figure, series_colors

__all__ = ["plot_mass_sculpting", "plot_roc_sic", "roc_report"]

SculptEfficiencies = (0.5, 0.1, 0.01)


def _save_png_pdf(fig: Figure, out_png: Path) -> tuple[Path, Path]:
    png = save_figure(fig, out_png)
    pdf = out_png.with_suffix(".pdf")
    with atomic_path(pdf, suffix=".pdf") as tmp:
        fig.savefig(tmp, format="pdf")
    return png, pdf


def plot_roc_sic(curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
                 sics: Mapping[str, tuple[np.ndarray, np.ndarray]], out_png: str | Path,
                 title: str | None = None) -> tuple[Path, Path]:
    """Two panels: 1/ε_B (log) vs ε_S with the random line, and SIC = ε_S/√ε_B vs ε_S; PNG and PDF."""
    out_png = Path(out_png)
    colors = series_colors(max(len(curves), 1))
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(13, 6), layout="constrained")
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
            ax.legend(fontsize="small")
        if title:
            fig.suptitle(title, fontsize="medium")
        return _save_png_pdf(fig, out_png)


def plot_mass_sculpting(scores: np.ndarray, mass: np.ndarray, out_png: str | Path, weights: np.ndarray | None = None,
                        efficiencies: Sequence[float] = SculptEfficiencies, bins: int = 40,
                        mass_label: str = "mass", jsd: Mapping[str, Mapping[str, float]] | None = None,
                        title: str | None = None) -> tuple[Path, Path]:
    """The background's normalised mass distribution uncut and after ``score >= t`` at each ε_B; PNG and PDF."""
    out_png = Path(out_png)
    s, m = np.asarray(scores, float).ravel(), np.asarray(mass, float).ravel()
    w = np.ones(len(s)) if weights is None else np.asarray(weights, float)
    edges = np.linspace(np.quantile(m, 0.001), np.quantile(m, 0.999) + 1e-9, bins + 1)
    colors = series_colors(len(efficiencies) + 1)
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(7, 6), layout="constrained")
        ax = fig.subplots()
        h, _ = np.histogram(m, edges, weights=w, density=False)
        ax.stairs(h / max(h.sum(), 1e-300) / np.diff(edges), edges, color="black", lw=2, label="no cut")
        for color, eff in zip(colors[1:], efficiencies):
            t = efficiency_threshold(s, eff, w)
            keep = s >= t
            hc, _ = np.histogram(m[keep], edges, weights=w[keep])
            if not hc.sum() > 0:
                continue
            label = rf"$\epsilon_B$ = {eff:g}"
            if jsd and f"{eff:g}" in jsd and math.isfinite(jsd[f"{eff:g}"]["inverse_jsd"]):
                label += f" (1/JSD = {jsd[f'{eff:g}']['inverse_jsd']:.3g})"
            ax.stairs(hc / hc.sum() / np.diff(edges), edges, color=color, lw=1.6, label=label)
        ax.set_xlabel(mass_label)
        ax.set_ylabel("background density (normalised)")
        ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * 1.35)
        ax.legend(fontsize="small")
        if title:
            ax.set_title(title, fontsize="small")
        return _save_png_pdf(fig, out_png)


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


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
    ``background_efficiencies``. ``extra``: further entries of metrics.json (the inputs). Returns the content of metrics.json; writes nothing without ``report_dir``.
    """
    if not signals:
        raise ConfigError("roc_report needs at least one signal sample")
    sw = dict(signal_weights or {})
    result: dict[str, Any] = {"score": score_name, "n_bootstrap": int(n_bootstrap), "signals": {}}
    curves, sics = {}, {}
    for name, s in signals.items():
        result["signals"][name] = roc_summary(s, background, signal_weights=sw.get(name),
                                              background_weights=background_weights,
                                              signal_efficiencies=signal_efficiencies, n_bootstrap=n_bootstrap,
                                              seed=seed)
        eps_b, eps_s, _ = roc_curve(s, background, sw.get(name), background_weights)
        curves[name] = (eps_b, eps_s)
        sics[name] = sic_curve(s, background, sw.get(name), background_weights)
    if mass is not None:
        result["mass_sculpting"] = {"variable": mass_label, "jsd_units": "bits (log2)",
                                    "by_background_efficiency": mass_sculpting(
                                        background, mass, background_weights, efficiencies=background_efficiencies)}
    result = _json_ready({**result, **dict(extra or {})})
    if report_dir is None:
        return result
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=2) + "\n")
    plot_roc_sic(curves, sics, out / "roc_sic.png", title=title)
    figures = [("ROC (background rejection) and significance improvement", "roc_sic.png")]
    tables = [Table("Per signal (errors: bootstrap standard deviation)",
                    ["signal", "AUC", "max SIC", "ε_S at max SIC",
                     *[f"1/ε_B at ε_S = {e:g}" for e in signal_efficiencies], "events"],
                    [[name, _pm(m, "auc"), _pm(m, "max_sic"), _pm(m, "eps_s_at_max_sic"),
                      *[_pm(m, f"rejection_at_eps_s_{e:g}") for e in signal_efficiencies], m["n_signal"]]
                     for name, m in result["signals"].items()])]
    if mass is not None:
        sculpt = result["mass_sculpting"]["by_background_efficiency"]
        plot_mass_sculpting(background, mass, out / "mass_sculpting.png", background_weights,
                            efficiencies=background_efficiencies, mass_label=mass_label,
                            jsd={k: {"inverse_jsd": v["inverse_jsd"] if v["inverse_jsd"] is not None else math.inf}
                                 for k, v in sculpt.items()})
        figures.append((f"background {mass_label} after cuts at fixed ε_B", "mass_sculpting.png"))
        tables.append(Table(f"Mass sculpting of the background ({mass_label}); JSD in bits, passing vs failing",
                            ["ε_B", "threshold", "kept fraction", "JSD", "1/JSD"],
                            [[k, v["threshold"], v["efficiency"], v["jsd"], v["inverse_jsd"]]
                             for k, v in sculpt.items()]))
    links = [("metrics.json", "metrics.json"), ("roc_sic.pdf", "roc_sic.pdf")]
    if mass is not None:
        links.append(("mass_sculpting.pdf", "mass_sculpting.pdf"))
    write_index_html(out, Page(title=title, meta=[*meta, f"score: {score_name}; higher = more signal-like",
                                                  f"background events: {len(np.ravel(background))}"],
                               tables=tables, galleries=[Gallery("Figures", figures)], links=links))
    return result


def _pm(metrics: Mapping[str, Any], key: str) -> str:
    value, err = metrics.get(key), metrics.get(f"{key}_err")
    if value is None:
        return "inf"
    return f"{value:.4g} ± {err:.2g}" if err is not None else f"{value:.4g}"
