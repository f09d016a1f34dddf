"""``hepgen.report.compare``: its numbers against scipy, numpy and hepgen.metrics called directly, its
bootstrap errors against closed forms and fresh samples, weights, image data, the report folder, and
bad input (DataError, no half-written report)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm, wasserstein_distance
from sklearn.metrics import roc_auc_score

import hepgen.report.plots as plots
from hepgen.errors import DataError
from hepgen.evaluate.two_sample import c2st_scores
from hepgen.metrics import bootstrap, chi2_histograms, fpd, kl_js_from_samples, kpd, roc_auc
from hepgen.report import compare
from hepgen.report.html import format_cell

NAMES = ["pt", "eta", "mass"]


def _numpy_histogram_metrics(a, b, wa, wb, bins=50, q=0.001):
    """χ², ndf, KL(a‖b), JS on the report's binning, from np.histogram alone."""
    both = np.concatenate([a, b])
    lo, hi = np.quantile(both, [q, 1 - q])
    edges = np.linspace(lo, hi, bins + 1)
    h1, _ = np.histogram(a, edges, weights=wa)
    v1, _ = np.histogram(a, edges, weights=None if wa is None else wa**2)
    h2, _ = np.histogram(b, edges, weights=wb)
    v2, _ = np.histogram(b, edges, weights=None if wb is None else wb**2)
    t1, t2 = h1.sum(), h2.sum()
    var = v1 / t1**2 + v2 / t2**2
    used = var > 0
    chi2 = np.sum((h1[used] / t1 - h2[used] / t2) ** 2 / var[used])
    p = np.clip(h1, 0, None) + 1e-10
    r = np.clip(h2, 0, None) + 1e-10
    p, r = p / p.sum(), r / r.sum()
    m = (p + r) / 2
    kl = np.sum(p * np.log(p / r))
    js = 0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(r * np.log(r / m))
    return chi2, int(used.sum()) - 1, kl, js


@pytest.fixture(scope="module")
def tabular(tmp_path_factory):
    """A weighted comparison of two correlated 3-feature samples, with a report."""
    rng = np.random.default_rng(11)
    cov = [[1.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 1.0]]
    ref = rng.multivariate_normal([0, 0, 0], cov, size=900)
    cand = rng.multivariate_normal([0.2, 0, 0], cov, size=700) * np.array([1.0, 1.3, 1.0])
    w_ref, w_cand = rng.uniform(0.5, 1.5, 900), rng.uniform(0.2, 2.0, 700)
    out = tmp_path_factory.mktemp("tabular") / "report"
    result = compare(ref, cand, names=NAMES, ref_weights=w_ref, cand_weights=w_cand, report_dir=out, seed=5,
                     title="weighted <test>")
    return {"ref": ref, "cand": cand, "w_ref": w_ref, "w_cand": w_cand, "out": out, "result": result}


def test_metrics_json_is_strict_json_equal_to_the_returned_dict(tabular):
    text = (tabular["out"] / "metrics.json").read_text()
    loaded = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert loaded == tabular["result"]
    assert loaded["kind"] == "tabular" and loaded["weighted"] is True
    assert (loaded["n_ref"], loaded["n_cand"], loaded["n_features"]) == (900, 700, 3)
    assert list(loaded["features"]) == NAMES


def test_per_feature_numbers_equal_scipy_and_numpy(tabular):
    ref, cand, wr, wc = tabular["ref"], tabular["cand"], tabular["w_ref"], tabular["w_cand"]
    for k, name in enumerate(NAMES):
        f = tabular["result"]["features"][name]
        a, b = ref[:, k], cand[:, k]
        assert f["w1"] == pytest.approx(wasserstein_distance(a, b, wr, wc), rel=1e-9, abs=1e-12)
        mean = np.average(a, weights=wr)
        std = np.sqrt(np.sum(wr * (a - mean) ** 2) / (wr.sum() - np.sum(wr**2) / wr.sum()))
        assert f["w1_norm"] == pytest.approx(f["w1"] / std, rel=1e-9)
        chi2, ndf, kl, js = _numpy_histogram_metrics(a, b, wr, wc)
        assert f["chi2"] == pytest.approx(chi2, rel=1e-9)
        assert f["ndf"] == ndf
        assert f["chi2_ndf"] == pytest.approx(chi2 / ndf, rel=1e-9)
        assert f["kl"] == pytest.approx(kl, rel=1e-9)
        assert f["js"] == pytest.approx(js, rel=1e-9)
    means = {key: np.mean([f[key] for f in tabular["result"]["features"].values()])
             for key in ("w1_norm", "chi2_ndf", "kl", "js")}
    for key, value in means.items():
        assert tabular["result"][f"{key}_mean"] == pytest.approx(value, rel=1e-12)


def test_joint_numbers_equal_hepgen_metrics_called_directly(tabular):
    ref, cand, wr, wc, r = tabular["ref"], tabular["cand"], tabular["w_ref"], tabular["w_cand"], tabular["result"]
    s1, s0, w1, w0 = c2st_scores(ref, cand, real_weights=wr, generated_weights=wc, n_folds=5,
                                 max_per_class=20_000, seed=5)
    assert r["c2st"]["auc"] == roc_auc(s1, s0, w1, w0)  # = c2st_auc(...), without training it twice
    y = np.r_[np.ones(len(s1)), np.zeros(len(s0))]
    assert r["c2st"]["auc"] == pytest.approx(roc_auc_score(y, np.r_[s1, s0], sample_weight=np.r_[w1, w0]), abs=1e-12)
    assert r["c2st"]["n_per_class"] == [900, 700]
    value, error = fpd(ref, cand, real_weights=wr, generated_weights=wc, min_samples=280, max_samples=700,
                       num_batches=10, num_points=5, seed=5)
    assert (r["fpd"]["value"], r["fpd"]["error"]) == (value, error)
    value, error = kpd(ref, cand, real_weights=wr, generated_weights=wc, num_batches=10, batch_size=350, seed=5)
    assert (r["kpd"]["value"], r["kpd"]["error"], r["kpd"]["batch_size"]) == (value, error, 350)
    assert r["kpd"]["error"] > 0  # batches of half the sample differ, so the spread is real


def test_histogram_errors_are_the_bootstrap_of_hepgen_metrics(tabular):
    ref, cand, wr, wc = tabular["ref"], tabular["cand"], tabular["w_ref"], tabular["w_cand"]
    for k, name in enumerate(NAMES):
        a, b = ref[:, k], cand[:, k]
        both = np.concatenate([a, b])
        edges = np.linspace(*np.quantile(both, [0.001, 0.999]), 51)

        def metrics(x, y, wx, wy, edges=edges):
            c, d = chi2_histograms(x, y, bins=edges, x_weights=wx, y_weights=wy)
            return np.array([c / d, *kl_js_from_samples(x, y, bins=edges, x_weights=wx, y_weights=wy)])

        _, errs = bootstrap(metrics, a, b, wr, wc, n=20, seed=5 + k, groups=(0, 1, 0, 1))
        f = tabular["result"]["features"][name]
        np.testing.assert_allclose([f["chi2_ndf_err"], f["kl_err"], f["js_err"]], errs, rtol=1e-12)
        assert min(errs) > 0


def test_report_folder_has_every_figure_and_index_shows_them(tabular):
    out, result = tabular["out"], tabular["result"]
    pngs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert pngs == sorted(["plots/correlations.png", "plots/hist_000_pt.png", "plots/hist_001_eta.png",
                           "plots/hist_002_mass.png"])
    assert sorted(result["files"]) == sorted(["metrics.json", "index.html", *pngs])
    for path in pngs:
        assert (out / path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "index.html").read_text()
    assert sorted(set(re.findall(r'<img src="([^"]+)"', html))) == pngs
    assert 'href="metrics.json"' in html
    assert "weighted &lt;test&gt;" in html and "<test>" not in html  # the title is escaped
    for name in NAMES:
        assert f"<td>{name}</td>" in html
    assert f"<td>{format_cell(result['c2st']['auc'])}</td><td>{format_cell(result['c2st']['auc_err'])}</td>" in html
    assert f"<td>{format_cell(result['features']['mass']['js_err'])}</td>" in html
    assert not list(out.parent.glob(".report.*"))  # no staging folder left behind


@pytest.fixture(scope="module")
def null_pair():
    """Two samples of one distribution (2 features) and their compare result."""
    rng = np.random.default_rng(21)
    ref, cand = rng.normal(size=(600, 2)), rng.normal(size=(600, 2))
    return ref, cand, compare(ref, cand, seed=2, n_bootstrap=60)


def test_bootstrap_errors_match_closed_form_and_fresh_samples(null_pair):
    ref, cand, result = null_pair
    # AUC of a useless classifier: Var = (n1 + n2 + 1) / (12 n1 n2) (Mann-Whitney under the null)
    expected = np.sqrt((600 + 600 + 1) / (12 * 600 * 600))
    assert result["c2st"]["auc_err"] == pytest.approx(expected, rel=0.3)
    assert result["c2st"]["auc"] == pytest.approx(0.5, abs=4 * expected)
    # W1's error against its spread over 300 fresh pairs of samples of the same size
    rng = np.random.default_rng(0)
    spread = np.std([wasserstein_distance(rng.normal(size=600), rng.normal(size=600)) for _ in range(300)])
    for f in result["features"].values():
        assert f["w1_err"] == pytest.approx(spread, rel=0.35)
        assert f["chi2_ndf"] == pytest.approx(1.0, abs=0.6)


def test_w1_error_of_a_capped_subsample_is_scaled_to_the_full_samples(null_pair):
    ref, cand, full = null_pair
    capped = compare(ref, cand, seed=2, n_bootstrap=60, max_events=150)
    assert capped["bootstrap"] == {"replicas": 60, "max_events": 150}
    for name in full["features"]:
        # the subsample's own spread is 2x larger; scaled by sqrt((1/n + 1/m)/(1/n' + 1/m')) it is not
        assert capped["features"][name]["w1_err"] == pytest.approx(full["features"][name]["w1_err"], rel=0.35)
        assert capped["features"][name]["w1"] == full["features"][name]["w1"]  # the value uses every event


def test_weights_reweight_the_candidate_onto_the_reference():
    """cand ~ N(0.6, 1) weighted by N(0,1)/N(0.6,1) is N(0, 1): every metric must see the weights."""
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(2000, 2))
    cand = rng.normal(size=(2000, 2)) + np.array([0.6, 0.0])
    w = norm.pdf(cand[:, 0]) / norm.pdf(cand[:, 0], 0.6)
    plain = compare(ref, cand, seed=1, n_bootstrap=5)
    weighted = compare(ref, cand, cand_weights=w, seed=1, n_bootstrap=5)
    assert weighted["weighted"] is True and plain["weighted"] is False
    pf, wf = plain["features"]["x0"], weighted["features"]["x0"]
    assert pf["w1"] == pytest.approx(wasserstein_distance(ref[:, 0], cand[:, 0]), rel=1e-9)
    assert wf["w1"] == pytest.approx(wasserstein_distance(ref[:, 0], cand[:, 0], None, w), rel=1e-9)
    assert pf["w1"] == pytest.approx(0.6, abs=0.1) and wf["w1"] < 0.1
    assert pf["chi2_ndf"] > 5 and wf["chi2_ndf"] < 2.5
    assert pf["js"] > 3 * wf["js"]
    assert plain["c2st"]["auc"] > 0.6 and weighted["c2st"]["auc"] == pytest.approx(0.5, abs=0.04)
    assert plain["fpd"]["value"] > 10 * weighted["fpd"]["value"]
    # x1 is unchanged by the shift, and so by the weights (up to their noise)
    assert weighted["features"]["x1"]["w1"] < 0.1


def test_negative_weights_give_signed_w1_abs_weight_fpd_kpd_and_the_kish_n():
    from scipy.stats import wasserstein_distance

    from hepgen.metrics import fpd, kpd

    rng = np.random.default_rng(6)
    ref, cand = rng.normal(size=(400, 2)), rng.normal(size=(400, 2))
    w = np.where(rng.random(400) < 0.1, -0.5, 1.0)
    result = compare(ref, cand, cand_weights=w, seed=0, n_bootstrap=5)
    # W1 of the signed ECDFs: split cand into its positive and negative parts, F = (P F+ − N F−) / (P − N)
    x = np.sort(np.concatenate([ref[:, 0], cand[:, 0]]))
    f_ref = np.searchsorted(np.sort(ref[:, 0]), x, side="right") / 400
    f_cand = np.array([w[cand[:, 0] <= t].sum() for t in x]) / w.sum()
    signed_w1 = float(np.sum(np.abs(f_ref - f_cand)[:-1] * np.diff(x)))
    assert result["features"]["x0"]["w1"] == pytest.approx(signed_w1, rel=1e-9)
    assert result["features"]["x0"]["w1"] != pytest.approx(wasserstein_distance(ref[:, 0], cand[:, 0], None, np.abs(w)))
    assert result["features"]["x0"]["w1_err"] > 0
    n_min = 400
    value, _ = fpd(ref, cand, generated_weights=np.abs(w), min_samples=int(0.4 * n_min), max_samples=n_min,
                   num_batches=10, num_points=5, seed=0)
    assert result["fpd"]["value"] == pytest.approx(value, rel=1e-12) and result["fpd"]["weights"].startswith("|w|")
    value, _ = kpd(ref, cand, generated_weights=np.abs(w), num_batches=10, batch_size=200, seed=0)
    assert result["kpd"]["value"] == pytest.approx(value, rel=1e-12, abs=1e-15)
    assert result["n_eff"] == {"ref": 400.0, "cand": pytest.approx(w.sum() ** 2 / (w**2).sum(), rel=1e-12)}
    assert any("negative event weights" in n for n in result["notes"])
    chi2, ndf, kl, js = _numpy_histogram_metrics(ref[:, 0], cand[:, 0], None, w)
    assert result["features"]["x0"]["chi2"] == pytest.approx(chi2, rel=1e-9)
    assert result["features"]["x0"]["js"] == pytest.approx(js, rel=1e-9)
    assert result["c2st"]["auc"] is not None


def test_jetnet_protocol_and_progress_steps():
    from hepgen.metrics import fpd, kpd

    rng = np.random.default_rng(8)
    ref, cand = rng.normal(size=(300, 2)), rng.normal(0.2, 1.0, size=(300, 2))
    steps = []
    result = compare(ref, cand, seed=1, n_bootstrap=3, protocol="jetnet", progress=lambda *a: steps.append(a))
    assert result["fpd"]["value"] == pytest.approx(fpd(ref, cand, seed=1, protocol="jetnet")[0], rel=1e-12)
    assert result["kpd"]["value"] == pytest.approx(kpd(ref, cand, seed=1, protocol="jetnet")[0], rel=1e-12)
    assert result["protocol"] == "jetnet" and result["kpd"]["batch_size"] == 5000
    assert [s[0] for s in steps] == list(range(1, 6)) and all(s[1] == 5 for s in steps)
    assert [s[2] for s in steps] == ["x0", "x1", "c2st", "fpd", "kpd"]


def _images(rng, n, shape, width):
    """Gaussian blobs of exponential total intensity, with a little noise, (n, *shape)."""
    rows, cols = np.meshgrid(np.arange(shape[-2]), np.arange(shape[-1]), indexing="ij")
    centre = (np.array(shape[-2:]) - 1) / 2
    blob = np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * width**2))
    total = rng.exponential(10.0, size=(n,) + (1,) * len(shape))
    return total * blob / blob.sum() + 0.01 * rng.random((n, *shape))


def test_image_data_compare_summary_features_and_mean_images_side_by_side(tmp_path):
    rng = np.random.default_rng(8)
    ref, cand = _images(rng, 300, (8, 8), 1.0), _images(rng, 250, (8, 8), 1.6)
    out = tmp_path / "img"
    result = compare(ref, cand, report_dir=out, seed=0, n_bootstrap=5, names=["ignored"], max_plots=2)
    assert result["kind"] == "image" and result["image"]["shape"] == [8, 8]
    assert list(result["features"]) == ["total", "max", "occupancy", "centroid_row", "centroid_col", "width"]
    assert any("names were ignored" in n for n in result["notes"])
    assert result["features"]["total"]["w1"] == pytest.approx(
        wasserstein_distance(ref.sum(axis=(1, 2)), cand.sum(axis=(1, 2))), rel=1e-9)
    assert result["features"]["max"]["w1"] == pytest.approx(
        wasserstein_distance(ref.max(axis=(1, 2)), cand.max(axis=(1, 2))), rel=1e-9)
    m_ref, m_cand = ref.mean(axis=0), cand.mean(axis=0)
    assert result["image"]["mean_image_rel_l1"] == pytest.approx(np.abs(m_cand - m_ref).sum() / np.abs(m_ref).sum())
    assert result["image"]["mean_image_max_abs_diff"] == pytest.approx(np.abs(m_cand - m_ref).max())
    assert (out / "plots" / "mean_images.png").is_file()
    html = (out / "index.html").read_text()
    pngs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert pngs == ["plots/correlations.png", "plots/hist_000_total.png", "plots/hist_001_max.png",
                    "plots/mean_images.png"]
    assert sorted(set(re.findall(r'<img src="([^"]+)"', html))) == pngs
    assert any("first 2 of 6 features" in n for n in result["notes"])
    # the broader candidate is caught by the width feature
    assert result["features"]["width"]["w1"] > 10 * result["features"]["width"]["w1_err"]


def test_multichannel_images_are_compared_per_channel(tmp_path):
    rng = np.random.default_rng(9)
    ref, cand = _images(rng, 200, (2, 6, 6), 1.0), _images(rng, 200, (2, 6, 6), 1.0)
    cand[:, 1] *= 2.0
    w = rng.uniform(0.5, 1.5, 200)
    result = compare(ref, cand, ref_weights=w, seed=0, n_bootstrap=5)
    assert result["n_features"] == 12 and list(result["features"])[6] == "ch1_total"
    ch0, ch1 = result["features"]["ch0_total"], result["features"]["ch1_total"]
    assert ch0["w1"] == pytest.approx(wasserstein_distance(ref[:, 0].sum((1, 2)), cand[:, 0].sum((1, 2)), w), rel=1e-9)
    assert ch1["w1"] == pytest.approx(wasserstein_distance(ref[:, 1].sum((1, 2)), cand[:, 1].sum((1, 2)), w), rel=1e-9)
    m_ref = np.average(ref, axis=0, weights=w)
    m_cand = cand.mean(axis=0)
    assert result["image"]["mean_image_rel_l1"] == pytest.approx(np.abs(m_cand - m_ref).sum() / np.abs(m_ref).sum())


@pytest.mark.parametrize("kwargs, message", [
    ({"cand": np.zeros((50, 4))}, "same features"),
    ({"cand": np.zeros((50, 8, 8))}, "same features"),
    ({"names": ["a", "b"]}, "2 names given for 3 features"),
    ({"names": ["a", "a", "b"]}, "appears more than once"),
    ({"cand_weights": np.ones(49)}, "cand_weights"),
    ({"ref_weights": np.full(60, np.nan)}, "NaN"),
    ({"cand": np.full((50, 3), np.inf)}, "NaN or inf"),
    ({"cand": np.zeros((0, 3))}, "empty"),
])
def test_bad_input_raises_data_error_and_writes_nothing(tmp_path, kwargs, message):
    args = {"ref": np.ones((60, 3)), "cand": np.ones((50, 3))} | kwargs
    ref, cand = args.pop("ref"), args.pop("cand")
    with pytest.raises(DataError, match=message):
        compare(ref, cand, report_dir=tmp_path / "report", **args)
    assert list(tmp_path.iterdir()) == []


def test_report_path_that_is_a_file_is_a_data_error(tmp_path):
    (tmp_path / "report").write_text("not a folder")
    with pytest.raises(DataError, match="not a folder"):
        compare(np.ones((20, 2)), np.ones((20, 2)), report_dir=tmp_path / "report")


def _old_report(out: Path) -> dict[str, bytes]:
    (out / "plots").mkdir(parents=True)
    listed = {"files": ["metrics.json", "index.html", "plots/hist_000_x0.png", "plots/hist_007_gone.png"]}
    files = {"index.html": b"old index", "metrics.json": json.dumps(listed).encode(), "plots/hist_000_x0.png": b"old",
             "plots/hist_007_gone.png": b"old", "plots/my_own.png": b"user", "notes.txt": b"user"}
    for rel, content in files.items():
        (out / rel).write_bytes(content)
    return files


def test_a_failure_while_drawing_leaves_the_previous_report_untouched(tmp_path, monkeypatch):
    out = tmp_path / "report"
    before = _old_report(out)

    def broken(*args, **kwargs):
        raise DataError("correlation: the weights sum to zero.")

    monkeypatch.setattr(plots, "plot_correlation_matrices", broken)
    rng = np.random.default_rng(1)
    with pytest.raises(DataError, match="weights sum to zero"):
        compare(rng.normal(size=(40, 2)), rng.normal(size=(40, 2)), report_dir=out, n_bootstrap=2)
    after = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # the staging folder is gone


def test_a_new_report_replaces_its_own_figures_and_keeps_other_files(tmp_path):
    out = tmp_path / "report"
    _old_report(out)
    rng = np.random.default_rng(2)
    result = compare(rng.normal(size=(40, 2)), rng.normal(size=(40, 2)), report_dir=out, n_bootstrap=2)
    pngs = sorted(p.relative_to(out).as_posix() for p in (out / "plots").glob("*.png"))
    assert pngs == ["plots/correlations.png", "plots/density_2d.png", "plots/hist_000_x0.png", "plots/hist_001_x1.png",
                    "plots/my_own.png"]
    assert (out / "plots" / "hist_000_x0.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "notes.txt").read_bytes() == b"user"
    assert json.loads((out / "metrics.json").read_text()) == result
    assert result["c2st"]["auc"] is not None


def test_too_few_events_skip_joint_metrics_with_notes():
    rng = np.random.default_rng(3)
    ref, cand = rng.normal(size=(3, 2)), rng.normal(size=(6, 2))
    result = compare(ref, cand, n_bootstrap=2)
    assert result["c2st"] == {"auc": None, "auc_err": None}
    assert result["fpd"]["value"] is None and result["kpd"]["value"] is None
    assert any("C2ST skipped" in n for n in result["notes"]) and any("FPD and KPD skipped" in n for n in result["notes"])
    assert result["features"]["x0"]["w1"] == pytest.approx(wasserstein_distance(ref[:, 0], cand[:, 0]), rel=1e-9)
