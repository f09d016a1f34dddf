"""The report of a detector design study (``hepgen design ... --report DIR``), from its result dict.

Written through :class:`hepgen.report.folder.ReportFolder` (the layout of every report): ``metrics.json``
(the result, as ``-o`` writes it), ``plots/design.png`` (the gradient path through the design box and the
surrogate's C(ψ) against the simulated showers), ``index.html``, and ``result.json``, the same numbers under
the name this report used before it had the common layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib.style
from matplotlib.figure import Figure

from hepgen.report.folder import ReportFolder
from hepgen.report.html import Page, Table
from hepgen.report.plots import STYLE

__all__ = ["design_figure", "write_design_report"]


def design_figure(result: Mapping[str, Any]) -> Figure:
    """Left: the design after each iteration in the box of the first two parameters (one parameter: against the
    iteration); right: the surrogate's C(ψ) against the simulated showers so far."""
    names = [p["name"] for p in result["parameters"]]
    path = result["path"]
    points = [[step["design"][n] for n in names] for step in path] + [[result["design"][n] for n in names]]
    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(13, 6), layout="constrained")
        ax1, ax2 = fig.subplots(1, 2)
        if len(names) >= 2:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            ax1.plot(xs, ys, "o-", color="C0", label="gradient path")
            ax1.plot(xs[-1], ys[-1], "*", ms=14, color="C3", label="result")
            ax1.set_xlabel(f"{names[0]} [mm]")
            ax1.set_ylabel(f"{names[1]} [mm]")
            par = result["parameters"]
            ax1.set_xlim(par[0]["low"], par[0]["high"])
            ax1.set_ylim(par[1]["low"], par[1]["high"])
            ax1.legend(fontsize="small")
        else:
            ax1.plot(range(len(points)), [p[0] for p in points], "o-")
            ax1.set_xlabel("iteration")
            ax1.set_ylabel(f"{names[0]} [mm]")
        ax2.plot([s["showers"] for s in path], [s["surrogate_objective"] for s in path], "o-")
        ax2.set_xlabel("simulated showers")
        ax2.set_ylabel(r"C($\psi$) through the surrogate")
    return fig


def write_design_report(result: Mapping[str, Any], report_dir: str | Path, title: str = "detector design") -> dict:
    """The report folder of a design ``result`` (:meth:`hepgen.calo.design.DesignStudy.to_dict` plus the
    command's additions); returns what metrics.json holds."""
    names = [p["name"] for p in result["parameters"]]
    start, design = result.get("start") or {}, result["design"]
    tables = [Table("Design parameters [mm]", ["parameter", "low", "high", "start", "result"],
                    [[p["name"], p["low"], p["high"], start.get(p["name"]), design[p["name"]]]
                     for p in result["parameters"]]),
              Table("Iterations", ["iteration", "simulated showers", "training showers", "C(ψ) surrogate",
                                   "trust", *names],
                    [[s.get("iteration"), s.get("showers"), s.get("training_showers"), s.get("surrogate_objective"),
                      s.get("trust"), *[s["design"][n] for n in names]] for s in result["path"]])]
    measured = result.get("measured")
    if measured:
        tables.append(Table("C(ψ) measured with the simulator", ["design", "C(ψ)", "cost"],
                            [[k, v.get("objective"), v.get("cost")] for k, v in measured.items()]))
    meta = [f"{result.get('showers')} simulated showers in {result.get('calls')} simulator calls; "
            f"stopped by: {result.get('stopped')}"]
    with ReportFolder(report_dir) as report:
        report.save_figure(design_figure(result), "design.png", "gradient path and surrogate objective", small=False)
        report.write_json("result.json", result)
        metrics = report.finish(result, Page(title=title, meta=meta, notes=list(result.get("notes", [])),
                                             tables=tables))
    return metrics
