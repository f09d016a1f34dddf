"""The report of a fidelity–diversity curve (:func:`hepgen.evaluate.truncation.truncation_curve`): a figure of
precision, density, recall and coverage against ψ beside FPD against coverage, a table of every row, and
metrics.json (``"curve"``: the rows, ``"inputs"``: what was read). Written through
:class:`hepgen.report.folder.ReportFolder`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.report.folder import ReportFolder
from hepgen.report.html import Page, Table
from hepgen.report.plots import STYLE, series_colors

COLUMNS = ("precision", "density", "recall", "coverage")


def _label(psi: float | None) -> str:
    return "off" if psi is None else f"{psi:g}"


def plot_curve(rows: Sequence[Mapping[str, Any]]) -> Any:
    """The figure: the four k-NN numbers per ψ (left, "off" at the right end) and FPD against coverage (right)."""
    import matplotlib.pyplot as plt

    with plt.style.context(STYLE):
        fig, (left, right) = plt.subplots(1, 2, figsize=(14, 6))
        xs = np.arange(len(rows))
        for name, color in zip(COLUMNS, series_colors(len(COLUMNS))):
            left.plot(xs, [r[name] for r in rows], "o-", color=color, label=name)
        left.set_xticks(xs, [_label(r["truncation"]) for r in rows])
        left.set_xlabel("truncation ψ")
        left.set_ylabel("fraction")
        left.legend(fontsize="small")
        cov = [r["coverage"] for r in rows]
        fpd = [r["fpd"] for r in rows]
        right.plot(cov, fpd, "o-", color="k")
        for r in rows:
            right.annotate(f"ψ={_label(r['truncation'])}", (r["coverage"], r["fpd"]), fontsize="small",
                           xytext=(4, 4), textcoords="offset points")
        right.xaxis.set_major_locator(plt.MaxNLocator(4))
        right.yaxis.set_major_locator(plt.MaxNLocator(5))
        right.set_xlabel("coverage (diversity)")
        right.set_ylabel("FPD (lower: closer)")
        fig.tight_layout()
    return fig


def truncation_report(rows: Sequence[Mapping[str, Any]], report_dir: str | Path, *, title: str,
                      meta: Sequence[str] = (), inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write the curve's report folder to ``report_dir``; returns what metrics.json holds."""
    metrics = {"curve": [dict(r) for r in rows], "inputs": dict(inputs or {})}
    with ReportFolder(report_dir) as report:
        report.save_figure(plot_curve(rows), "truncation.png", "precision, density, recall and coverage against the "
                           "truncation ψ; FPD against coverage (each point one ψ)", small=False)
        header = ["ψ", "FPD", "± FPD", "AUC", *COLUMNS]
        table = Table("the fidelity–diversity curve", header,
                      [[_label(r["truncation"]), r["fpd"], r["fpd_error"], r["auc"], *[r[c] for c in COLUMNS]]
                       for r in rows])
        page = Page(title=title, meta=list(meta), tables=[table])
        return report.finish(metrics, page)


__all__ = ["plot_curve", "truncation_report"]
