"""Reports: :class:`ReportFolder` (the one owner of a ``--report DIR``: its layout is documented in
:mod:`hepgen.report.folder`), :func:`compare` (metrics dict + optional report) and reusable mplhep plots."""

from hepgen.report.compare import compare
from hepgen.report.folder import ReportFolder, dumps, jsonable, write_json
from hepgen.report.html import Gallery, Page, Table, render_html, write_index_html
from hepgen.report.image_features import image_feature_names, image_summary_features, mean_image
from hepgen.report.plots import (
    plot_correlation_matrices,
    plot_feature_histogram,
    plot_loss_curves,
    plot_mean_images,
    plot_roc_curves,
    save_figure,
    weighted_correlation,
)

__all__ = [
    "Gallery",
    "Page",
    "ReportFolder",
    "Table",
    "compare",
    "dumps",
    "image_feature_names",
    "image_summary_features",
    "jsonable",
    "mean_image",
    "plot_correlation_matrices",
    "plot_feature_histogram",
    "plot_loss_curves",
    "plot_mean_images",
    "plot_roc_curves",
    "render_html",
    "save_figure",
    "weighted_correlation",
    "write_index_html",
    "write_json",
]
