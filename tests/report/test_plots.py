"""The report figures: what they draw is checked against numpy, by catching each Figure before it is saved."""

import numpy as np
import pytest
from matplotlib.colors import LogNorm

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
    assert np.allclose(_errorbar_y(rax.containers[0]), d_c / d_r, rtol=1e-12)
    assert rax.get_ylabel() == "cand/ref" and rax.get_xlabel() == "mass"
    assert ax.get_legend().get_title().get_text() == "χ²/ndf = 1"
    assert rax.get_ylim() == (0.0, 2.0)  # the tails differ by more than 50 %


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
