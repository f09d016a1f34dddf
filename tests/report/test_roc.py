"""The ROC/SIC figure stays readable with many scorers: one legend, outside both panels, inside the figure."""

import numpy as np

from hepgen.metrics.classification import roc_curve
from hepgen.metrics.roc import sic_curve
from hepgen.report.plots import fit_axis_labels
from hepgen.report.roc import roc_sic_figure


def test_ten_scorers_get_one_legend_beside_the_panels_inside_the_figure():
    rng = np.random.default_rng(0)
    background = rng.normal(0, 1, 2000)
    curves, sics = {}, {}
    for i in range(10):
        signal = rng.normal(0.3 * (i + 1), 1, 2000)
        eps_b, eps_s, _ = roc_curve(signal, background)
        curves[f"scorer_{i}"], sics[f"scorer_{i}"] = (eps_b, eps_s), sic_curve(signal, background)
    fig = roc_sic_figure(curves, sics, title="top jets as anomalies; scorers trained on 50000 QCD jets "
                                             "(supervised: labels), seed 1, a title longer than the figure is wide")
    fit_axis_labels(fig)  # draws at the saving resolution
    renderer = fig._get_renderer()
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 1 and len(legends[0].get_texts()) == 11  # ten scorers and the random line
    box, figure = legends[0].get_window_extent(renderer), fig.bbox
    assert figure.x0 <= box.x0 and box.x1 <= figure.x1 + 1 and figure.y0 <= box.y0 and box.y1 <= figure.y1 + 1
    for ax in fig.axes:  # it covers no curve
        panel = ax.get_window_extent(renderer)
        assert box.x0 >= panel.x1 or box.x1 <= panel.x0 or box.y0 >= panel.y1 or box.y1 <= panel.y0
        assert panel.width > 0.3 * figure.width / 2 and panel.height > 0.5 * figure.height  # nothing collapsed
    title = fig._suptitle.get_window_extent(renderer)
    assert figure.x0 <= title.x0 and title.x1 <= figure.x1
