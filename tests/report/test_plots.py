"""The report figures: what they draw is checked against numpy, by catching each Figure before it is saved."""

import numpy as np
import pytest
from matplotlib.colors import LogNorm

import matplotlib
import matplotlib.image

import hepgen.report.plots as plots
from hepgen.errors import DataError


@pytest.fixture
def figures(monkeypatch):
    """Every Figure the plot functions save, in order (they are still written to disk)."""
    caught = []
    original = plots.save_figure

    def catch(fig, out_png):
        caught.append(fig)
        return original(fig, out_png)

    monkeypatch.setattr(plots, "save_figure", catch)
    return caught


def _errorbar_y(container):
    return container.lines[0].get_ydata()


def _marker(ax, gid):
    return next(line for line in ax.lines if line.get_gid() == gid)


@pytest.fixture
def layouts(monkeypatch):
    """(figure, boxes of its axes) as laid out for saving, right after save_figure fitted its labels.

    The boxes are measured there, inside the plot's style context: text extents depend on the font
    that rcParams resolve at drawing time (DejaVu Sans outside the CMS style is wider)."""
    caught = []
    original = plots.fit_axis_labels

    def catch(fig, *args, **kwargs):
        original(fig, *args, **kwargs)
        renderer = fig._get_renderer()
        caught.append((fig, [(ax.get_xlabel(), ax.get_tightbbox(renderer)) for ax in fig.axes]))

    monkeypatch.setattr(plots, "fit_axis_labels", catch)
    return caught


def _assert_inside(fig, boxes, png):
    """Every axes with its tick labels, axis labels, offset text, title and legend lies inside the figure,
    and no ink touches the PNG's outermost pixels (what is cut off in a browser)."""
    box = fig.bbox
    for name, b in boxes:
        assert box.x0 - 0.5 <= b.x0 and b.x1 <= box.x1 + 0.5 and box.y0 - 0.5 <= b.y0 and b.y1 <= box.y1 + 0.5, (
            f"{name!r}: {b} outside {box}")
    image = matplotlib.image.imread(png)[..., :3]
    frame = np.concatenate([image[:2].reshape(-1, 3), image[-2:].reshape(-1, 3), image[:, :2].reshape(-1, 3),
                            image[:, -2:].reshape(-1, 3)])
    assert frame.min() == 1.0, f"{png}: something is drawn on the image's edge"


def test_feature_histogram_densities_and_ratio_panel_equal_numpy(tmp_path, figures):
    rng = np.random.default_rng(0)
    ref, cand = rng.normal(size=2000), rng.normal(0.3, 1.2, size=1500)
    w_ref, w_cand = rng.uniform(0.5, 1.5, 2000), rng.uniform(0.2, 2.0, 1500)
    edges = np.linspace(-2.5, 2.5, 21)
    path = plots.plot_feature_histogram(ref, cand, tmp_path / "h.png", edges=edges, ref_weights=w_ref,
                                        cand_weights=w_cand, name="mass", annotation="χ²/ndf = 1")
    assert path == tmp_path / "h.png" and path.read_bytes()[:4] == b"\x89PNG"
    ax, rax = figures[-1].axes
    width = np.diff(edges)
    h_r, _ = np.histogram(ref, edges, weights=w_ref)
    h_c, _ = np.histogram(cand, edges, weights=w_cand)
    d_r, d_c = h_r / (h_r.sum() * width), h_c / (h_c.sum() * width)
    drawn = [_errorbar_y(c) for c in ax.containers if len(c.lines[0].get_ydata()) == len(width)]
    assert any(np.allclose(y, d_r, rtol=1e-12) for y in drawn)
    assert any(np.allclose(y, d_c, rtol=1e-12) for y in drawn)
    ratio = d_c / d_r
    assert rax.get_ylim() == (0.0, 2.0)  # the tails differ by more than 50 %
    inside = (ratio > 0) & (ratio < 2)
    assert not inside.all()
    assert np.allclose(_errorbar_y(rax.containers[0]), ratio[inside], rtol=1e-12)
    above = _marker(rax, "ratio-above")
    np.testing.assert_allclose(above.get_xdata(), 0.5 * (edges[1:] + edges[:-1])[ratio >= 2])
    assert rax.get_ylabel() == "cand/ref" and rax.get_xlabel() == "mass"
    assert ax.get_legend().get_title().get_text() == "χ²/ndf = 1"


def test_feature_histogram_ratio_range_is_narrow_for_close_samples(tmp_path, figures):
    rng = np.random.default_rng(1)
    x = rng.normal(size=200_000)
    plots.plot_feature_histogram(x[:100_000], x[100_000:], tmp_path / "h.png", edges=np.linspace(-2, 2, 11))
    _, rax = figures[-1].axes
    assert rax.get_ylim() == (0.5, 1.5)


def test_weighted_correlation_matches_numpy(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.multivariate_normal([0, 1, 2], [[1, 0.7, -0.2], [0.7, 2, 0.1], [-0.2, 0.1, 1]], size=500)
    np.testing.assert_allclose(plots.weighted_correlation(x), np.corrcoef(x, rowvar=False), atol=1e-12)
    w = rng.uniform(0.1, 3.0, 500)
    cov = np.cov(x, rowvar=False, aweights=w)
    expected = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    np.testing.assert_allclose(plots.weighted_correlation(x, w), expected, atol=1e-12)
    const = np.column_stack([x[:, 0], np.full(500, 3.0)])
    np.testing.assert_array_equal(plots.weighted_correlation(const), np.eye(2))
    with pytest.raises(DataError, match="sum to zero"):
        plots.weighted_correlation(x[:2], np.array([1.0, -1.0]))


def test_correlation_matrices_side_by_side_with_their_difference(tmp_path, figures):
    rng = np.random.default_rng(3)
    ref = rng.multivariate_normal([0, 0], [[1, 0.8], [0.8, 1]], size=400)
    cand = rng.normal(size=(300, 2))
    w = rng.uniform(0.5, 1.5, 300)
    plots.plot_correlation_matrices(ref, cand, tmp_path / "c.png", names=["a", "b"], cand_weights=w)
    panels = [ax for ax in figures[-1].axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["reference", "candidate", "candidate − reference"]
    c_ref, c_cand = np.corrcoef(ref, rowvar=False), plots.weighted_correlation(cand, w)
    for ax, expected in zip(panels, (c_ref, c_cand, c_cand - c_ref), strict=True):
        np.testing.assert_allclose(ax.images[0].get_array(), expected, atol=1e-12)
    assert [t.get_text() for t in panels[0].get_xticklabels()] == ["a", "b"]


def test_mean_images_side_by_side_one_row_per_channel(tmp_path, figures):
    rng = np.random.default_rng(4)
    ref, cand = rng.uniform(1, 2, size=(2, 5, 5)), rng.uniform(1, 2, size=(2, 5, 5))
    plots.plot_mean_images(ref, cand, tmp_path / "m.png")
    panels = [ax for ax in figures[-1].axes if ax.images]
    assert len(panels) == 6
    for ch in range(2):
        r, c, d = panels[3 * ch: 3 * ch + 3]
        assert r.get_title() == f"reference (channel {ch})" and c.get_title() == f"candidate (channel {ch})"
        np.testing.assert_array_equal(r.images[0].get_array(), ref[ch])
        np.testing.assert_array_equal(c.images[0].get_array(), cand[ch])
        np.testing.assert_allclose(d.images[0].get_array(), cand[ch] - ref[ch])
        assert r.images[0].norm is c.images[0].norm  # one colour scale for both


def test_mean_jet_images_use_a_log_scale_and_show_empty_pixels(tmp_path, figures):
    ref = np.zeros((8, 8))
    ref[4, 4], ref[4, 5], ref[0, 0] = 300.0, 20.0, 0.01
    cand = ref * 0.9
    plots.plot_mean_images(ref, cand, tmp_path / "m.png")
    first = [ax for ax in figures[-1].axes if ax.images][0].images[0]
    assert isinstance(first.norm, LogNorm)
    assert (first.norm.vmin, first.norm.vmax) == pytest.approx((0.009, 300.0))
    assert np.ma.count_masked(first.get_array()) == 61  # the zero pixels, drawn in the lowest colour
    with pytest.raises(DataError, match="mean images"):
        plots.plot_mean_images(np.ones((3, 3)), np.ones((4, 4)), tmp_path / "x.png")


def test_roc_curves_plot_rejection_against_efficiency(tmp_path, figures):
    eps_b, eps_s = np.array([0.0, 0.01, 0.1, 1.0]), np.array([0.0, 0.3, 0.7, 1.0])
    plots.plot_roc_curves({"tagger": (eps_b, eps_s)}, tmp_path / "roc.png")
    ax = figures[-1].axes[0]
    line = next(line for line in ax.lines if line.get_label() == "tagger")
    np.testing.assert_allclose(line.get_xdata(), eps_s[1:])
    np.testing.assert_allclose(line.get_ydata(), 1 / eps_b[1:])
    assert ax.get_yscale() == "log"


def test_loss_curves_split_losses_from_metrics_and_skip_blanks(tmp_path, figures):
    history = [{"epoch": 0, "loss": 2.0, "val_loss": 2.5, "w1": None, "lr": 0.1, "time": 1},
               {"epoch": 1, "loss": 1.0, "val_loss": 1.5, "w1": 0.3, "lr": 0.1, "time": 2},
               {"epoch": 2, "loss": 0.5, "val_loss": 1.0, "w1": 0.2, "lr": 0.1, "time": 3}]
    plots.plot_loss_curves(history, tmp_path / "loss.png")
    left, right = figures[-1].axes
    assert {line.get_label(): list(line.get_ydata()) for line in left.lines} == {
        "loss": [2.0, 1.0, 0.5], "val_loss": [2.5, 1.5, 1.0]}
    assert {line.get_label(): list(line.get_xdata()) for line in right.lines} == {"w1": [1.0, 2.0]}
    with pytest.raises(DataError, match="needs rows"):
        plots.plot_loss_curves([], tmp_path / "x.png")
    with pytest.raises(DataError, match="no loss or metric column"):
        plots.plot_loss_curves([{"epoch": 0, "lr": 0.1}], tmp_path / "x.png")


# ---- what a physicist sees in the browser: nothing clipped, readable colours, sensible bins ----

LONG_NAMES = ["n_constituents", "pt", "eta", "mass", "tau1", "tau2", "tau3", "tau21", "tau32", "c2", "d2"]


def test_histogram_labels_and_ticks_lie_inside_the_figure(tmp_path, layouts):
    rng = np.random.default_rng(5)
    # tiny densities (an offset '1e-5' above the axis) and a long feature name with a unit: the old layout
    # (fixed margins, right-aligned labels) put the x label 2.6 px below the figure and this one off its left
    ref, cand = rng.normal(5e4, 1e4, 625), rng.normal(5.2e4, 1e4, 625)
    plots.plot_feature_histogram(ref, cand, tmp_path / "h.png", edges=np.linspace(1e4, 9e4, 21),
                                 name="n_constituents_of_the_leading_jet", unit="GeV")
    # a y label flush with the top of the panel: its "]" was cut off by the figure's edge
    plots.plot_feature_histogram(ref / 1e3, cand / 1e3, tmp_path / "m.png", edges=np.linspace(10, 90, 21), name="mass",
                                 unit="GeV", annotation="χ²/ndf = 0.938 (50 bins)")
    for (fig, boxes), png in zip(layouts, ("h.png", "m.png"), strict=True):
        _assert_inside(fig, boxes, tmp_path / png)
    ax, rax = layouts[0][0].axes
    assert rax.get_xlabel() == "n_constituents_of_the_leading_jet [GeV]" and ax.get_ylabel() == "density [1/GeV]"


def test_correlation_and_loss_and_2d_figures_lie_inside_the_figure(tmp_path, layouts):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(300, len(LONG_NAMES)))
    plots.plot_correlation_matrices(x, x[::-1], tmp_path / "c.png", names=LONG_NAMES)
    history = [{"epoch": e, **{f"{p}_loss": 1.0 / (e + 1) for p in "abcdefgh"}, "w1": 0.1} for e in range(5)]
    plots.plot_loss_curves(history, tmp_path / "l.png")
    plots.plot_density_2d(x[:, :2], x[:, 2:4], tmp_path / "d.png", edges=(np.linspace(-3, 3, 11),) * 2,
                          names=["n_constituents", "mass"], units=[None, "GeV"])
    for (fig, boxes), png in zip(layouts, ("c.png", "l.png", "d.png"), strict=True):
        _assert_inside(fig, boxes, tmp_path / png)


def test_ratio_points_outside_the_panel_become_triangles_at_its_edge(tmp_path, figures):
    edges = np.arange(6.0)  # bins [0,1) ... [4,5)
    ref = np.repeat([0.5, 1.5, 2.5, 3.5], [100, 100, 100, 100])
    cand = np.repeat([0.5, 1.5, 2.5, 4.5], [100, 330, 5, 40])  # ratios 0.84, 2.8, 0.04, 0, inf
    plots.plot_feature_histogram(ref, cand, tmp_path / "h.png", edges=edges)
    _, rax = figures[-1].axes
    lo, hi = rax.get_ylim()
    assert (lo, hi) == (0.0, 2.0)
    n_ref, n_cand = 400, 475
    np.testing.assert_allclose(_errorbar_y(rax.containers[0]), [(100 / n_cand) / (100 / n_ref),
                                                                 (5 / n_cand) / (100 / n_ref)])
    above, below = _marker(rax, "ratio-above"), _marker(rax, "ratio-below")
    np.testing.assert_array_equal(above.get_xdata(), [1.5, 4.5])  # 2.8 and cand-only bin (ratio inf)
    np.testing.assert_array_equal(below.get_xdata(), [3.5])  # ratio 0: the candidate is empty there
    assert above.get_marker() == "^" and below.get_marker() == "v"
    for line in rax.lines:  # every marker (and the unit line) inside the panel
        y = np.asarray(line.get_ydata(), float)
        assert np.all((y > lo) & (y < hi)), line.get_gid()


def test_bin_count_is_freedman_diaconis_clipped_to_10_50():
    rng = np.random.default_rng(7)
    x = rng.normal(size=625)
    fd = len(np.histogram_bin_edges(x, bins="fd")) - 1  # numpy's own Freedman–Diaconis rule
    assert plots.bin_count(x, quantile=0.0, low=1, high=10_000) == fd
    q = np.quantile(x, [0.001, 0.25, 0.75, 0.999])
    expected = int(np.ceil((q[3] - q[0]) / (2 * (q[2] - q[1]) * 625 ** (-1 / 3))))
    assert plots.bin_count(x) == expected and 10 <= expected <= 30  # not 50 for 625 events
    assert plots.bin_count(rng.normal(size=200_000)) == 50  # clipped above
    assert plots.bin_count(rng.normal(size=20)) == 10  # clipped below
    # the smaller sample sets the resolution; Kish's effective size for weights
    assert plots.bin_count(x, rng.normal(size=100_000)) == plots.bin_count(x, rng.normal(size=625))
    w = np.r_[np.ones(312), np.zeros(313)]
    n_eff = 312
    assert plots.bin_count(x, weights=[w], low=1, high=10_000) == int(
        np.ceil((q[3] - q[0]) / (2 * (q[2] - q[1]) * n_eff ** (-1 / 3))))
    spike = np.r_[np.zeros(900), np.arange(100.0)]  # IQR 0: sqrt(N) = 31.6 -> 32
    assert plots.bin_count(spike) == 32


def test_text_colour_follows_cell_luminance(tmp_path, figures):
    assert plots.text_color_for((0.0, 0.0, 0.0, 1.0)) == "white"
    assert plots.text_color_for((1.0, 1.0, 1.0, 1.0)) == "black"
    assert plots.text_color_for((0.5, 0.5, 0.5, 1.0)) == "black"  # L = 0.214 > 0.179
    assert plots.text_color_for((0.4, 0.4, 0.4, 1.0)) == "white"  # L = 0.133
    rng = np.random.default_rng(8)
    z = rng.normal(size=(2000, 3))
    ref = np.column_stack([z[:, 0], z[:, 0] + 0.05 * z[:, 1], z[:, 2]])  # corr(0, 1) ~ 1, others ~ 0
    plots.plot_correlation_matrices(ref, ref, tmp_path / "c.png", names=["a", "b", "c"])
    panel = next(ax for ax in figures[-1].axes if ax.images)
    cmap = matplotlib.colormaps["RdBu_r"]
    colours = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_color() for t in panel.texts}
    corr = plots.weighted_correlation(ref)
    for (i, j), colour in colours.items():
        r, g, b, _ = cmap((corr[i, j] + 1) / 2)
        lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
        lum = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
        assert colour == ("white" if lum < 0.179 else "black"), (i, j, corr[i, j])
    assert colours[(0, 0)] == colours[(0, 1)] == "white" and colours[(0, 2)] == "black"


def test_loss_curves_with_many_series_never_repeat_a_colour(tmp_path, figures):
    players = [f"player{k}" for k in range(12)]
    history = [{"epoch": e, **{f"{p}_loss": e + k for k, p in enumerate(players)},
                **{f"val_{p}_loss": e + k + 0.5 for k, p in enumerate(players)}} for e in range(4)]
    plots.plot_loss_curves(history, tmp_path / "l.png")
    ax = figures[-1].axes[0]
    by_label = {line.get_label(): line for line in ax.lines}
    train = [matplotlib.colors.to_hex(by_label[f"{p}_loss"].get_color()) for p in players]
    assert len(set(train)) == 12  # tab10 would repeat two of them
    for p in players:  # a validation curve shares its training twin's colour, dashed
        assert by_label[f"val_{p}_loss"].get_color() == by_label[f"{p}_loss"].get_color()
        assert by_label[f"val_{p}_loss"].get_linestyle() == "--" and by_label[f"{p}_loss"].get_linestyle() == "-"
    assert plots.series_colors(20) == [matplotlib.colormaps["tab20"](i) for i in range(20)]
    assert len({tuple(c) for c in plots.series_colors(30)}) == 30


def test_density_2d_panels_share_bins_and_colour_scale(tmp_path, figures):
    rng = np.random.default_rng(9)
    ref, cand = rng.normal(size=(700, 2)), rng.normal(0.5, 1.0, size=(500, 2))
    w = rng.uniform(0.5, 1.5, 500)
    ex, ey = np.linspace(-3, 3, 13), np.linspace(-2, 4, 9)
    plots.plot_density_2d(ref, cand, tmp_path / "d.png", edges=(ex, ey), cand_weights=w, names=["a", "b"],
                          units=["GeV", None])
    left, right = [ax for ax in figures[-1].axes if ax.get_title()]
    area = np.outer(np.diff(ex), np.diff(ey))
    h_r, _, _ = np.histogram2d(ref[:, 0], ref[:, 1], bins=(ex, ey))
    h_c, _, _ = np.histogram2d(cand[:, 0], cand[:, 1], bins=(ex, ey), weights=w)
    for ax, h in ((left, h_r), (right, h_c)):
        mesh = ax.collections[0]
        np.testing.assert_allclose(np.ma.filled(mesh.get_array(), 0.0).reshape(h.T.shape), (h / (h.sum() * area)).T)
        np.testing.assert_allclose(mesh.get_coordinates()[0, :, 0], ex)
        np.testing.assert_allclose(mesh.get_coordinates()[:, 0, 1], ey)
    assert left.collections[0].norm is right.collections[0].norm
    assert [left.get_title(), right.get_title()] == ["reference", "candidate"]
    assert left.get_xlabel() == "a [GeV]" and left.get_ylabel() == "b"
    with pytest.raises(DataError, match=r"\(n, 2\)"):
        plots.plot_density_2d(ref[:, :1], cand, tmp_path / "x.png", edges=(ex, ey))


def test_compare_draws_adaptive_bins_units_and_a_2d_density_for_two_features(tmp_path, figures):
    from hepgen.report.compare import compare

    rng = np.random.default_rng(10)
    ref, cand = rng.normal(size=(625, 2)), rng.normal(0.2, 1.0, size=(625, 2))
    result = compare(ref, cand, names=["pt", "eta"], units={"pt": "GeV"}, report_dir=tmp_path / "r", n_bootstrap=2)
    assert "plots/density_2d.png" in result["files"]
    density = next(f for f in figures if any(ax.get_title() == "candidate" for ax in f.axes)
                   and not any(ax.images for ax in f.axes))
    left, right = [ax for ax in density.axes if ax.get_title()]
    assert left.get_xlabel() == "pt [GeV]" and left.get_ylabel() == "eta"
    np.testing.assert_array_equal(left.collections[0].get_coordinates(), right.collections[0].get_coordinates())
    hists = [f for f in figures if len(f.axes) == 2 and f.axes[1].get_ylabel() == "cand/ref"]
    assert [f.axes[1].get_xlabel() for f in hists] == ["pt [GeV]", "eta"]
    for k, fig in enumerate(hists):  # 625 events: the Freedman–Diaconis count, not the metric's 50 bins
        n_bins = len(fig.axes[1].containers[0].lines[0].get_xdata()) + sum(
            len(line.get_xdata()) for line in fig.axes[1].lines if line.get_gid())
        assert plots.bin_count(ref[:, k], cand[:, k]) <= 25 and n_bins <= plots.bin_count(ref[:, k], cand[:, k])
    index = (tmp_path / "r" / "index.html").read_text()
    assert "candidate: 625 events" in index and "compared with reference: 625 events" in index
    figures.clear()
    compare(rng.normal(size=(50, 3)), rng.normal(size=(50, 3)), report_dir=tmp_path / "r3", n_bootstrap=2)
    assert not (tmp_path / "r3" / "plots" / "density_2d.png").exists()


def test_saving_a_figure_with_math_labels_logs_no_font_fallback(tmp_path, caplog):
    """``hepgen roc -q --report`` printed two "findfont: ... 'cursive' not found" lines: the ROC axes' $\\epsilon$ labels
    are laid out at save time, where mathtext looks up its default calligraphic family. The caches are cleared so the
    lookup happens here (matplotlib logs it once per process)."""
    import logging

    import matplotlib.font_manager
    import matplotlib.mathtext
    import matplotlib.style
    from matplotlib.figure import Figure

    from hepgen.report.plots import STYLE, save_figure

    matplotlib.font_manager.fontManager._findfont_cached.cache_clear()
    matplotlib.mathtext.MathTextParser._parse_cached.cache_clear()
    with matplotlib.style.context(STYLE):  # built in the style, laid out when saved (as the ROC/SIC figure)
        fig = Figure(figsize=(4, 3), layout="constrained")
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1])
        ax.set_xlabel(r"signal efficiency $\epsilon_S$")
        ax.set_ylabel(r"$\epsilon_S/\epsilon_B^{1/2}$")
    with caplog.at_level(logging.WARNING, logger="matplotlib.font_manager"):
        save_figure(fig, tmp_path / "f.png", pdf=True)
    assert (tmp_path / "f.png").stat().st_size > 0 and (tmp_path / "f.pdf").exists()
    assert not [r for r in caplog.records if "findfont" in r.getMessage()], [r.getMessage() for r in caplog.records]
    assert logging.getLogger("matplotlib.font_manager").level == logging.NOTSET  # left as it was
