"""``hepgen roc`` on score files: metrics.json against sklearn (weights, named signals, --lower-is-signal),
the mass-sculpting section, the figures, and exit 2 with nothing written for bad input."""

import json

import h5py
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hepgen.cli import main


def pairwise_auc(s, b, ws, wb):
    """Σ_ij ws_i wb_j ([s_i > b_j] + ½[s_i = b_j]) / (Σ ws Σ wb): defined for negative weights too, where
    sklearn's roc_auc_score refuses a non-monotone curve."""
    above = (s[:, None] > b[None, :]) + 0.5 * (s[:, None] == b[None, :])
    return float(ws @ above @ wb / (ws.sum() * wb.sum()))


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("roc")
    rng = np.random.default_rng(0)
    b, top, w_sig = rng.normal(0, 1, 1200), rng.normal(1.2, 1, 800), rng.normal(0.6, 1, 500)
    wb = rng.uniform(-0.1, 1.5, 1200)  # a few negative (NLO-like) weights
    mass = 80 + 10 * rng.normal(size=1200) + 5 * b
    with h5py.File(tmp / "bkg.h5", "w") as f:  # the layout hepgen score writes: datasets side by side
        f["score"], f["w"], f["mass"], f["score_per_feature"] = b, wb, mass, np.ones((1200, 3))
    with h5py.File(tmp / "top.h5", "w") as f:
        f["score"], f["w"] = top, np.ones(800)
    with h5py.File(tmp / "wjet.h5", "w") as f:
        f["score"] = w_sig
    with h5py.File(tmp / "short_w.h5", "w") as f:
        f["score"], f["w"] = top, np.ones(799)
    with h5py.File(tmp / "empty.h5", "w") as f:
        f["score"] = np.zeros(0)
    with h5py.File(tmp / "nan.h5", "w") as f:
        f["score"] = np.r_[top[:5], np.nan]
    return tmp, b, top, w_sig, wb, mass


def test_metrics_json_matches_sklearn_with_weights_and_mass(scores, capsys):
    tmp, b, top, w_sig, wb, _ = scores
    report = tmp / "report"
    code, out, err = run_cli(capsys, "roc", tmp / "bkg.h5", f"top={tmp / 'top.h5'}", tmp / "wjet.h5", "--weights",
                             "w", "--mass", "mass", "--report", report, "--bootstrap", 10, "-q")
    assert code == 0, err
    metrics = json.loads((report / "metrics.json").read_text())
    assert json.loads(out) == metrics
    expected = pairwise_auc(top, b, np.ones(800), wb)
    assert metrics["signals"]["top"]["auc"] == pytest.approx(expected, abs=1e-12)
    # wjet has no weight column: unweighted, against the weighted background
    assert metrics["signals"]["wjet"]["auc"] == pytest.approx(pairwise_auc(w_sig, b, np.ones(500), wb), abs=1e-12)
    positive = wb > 0  # sklearn where it is defined: the background's positive-weight events alone
    y = np.r_[np.ones(800), np.zeros(positive.sum())]
    assert pairwise_auc(top, b[positive], np.ones(800), wb[positive]) == pytest.approx(
        roc_auc_score(y, np.r_[top, b[positive]], sample_weight=np.r_[np.ones(800), wb[positive]]), abs=1e-12)
    assert metrics["inputs"]["weighted"] == ["background", "top"]
    for key in ("auc_err", "max_sic", "max_sic_err", "eps_s_at_max_sic", "rejection_at_eps_s_0.3",
                "rejection_at_eps_s_0.5_err"):
        assert metrics["signals"]["top"][key] is not None
    sculpt = metrics["mass_sculpting"]["by_background_efficiency"]
    assert set(sculpt) == {"0.5", "0.1", "0.01"} and sculpt["0.01"]["jsd"] > sculpt["0.5"]["jsd"] > 0
    for name in ("index.html", "plots/roc_sic.png", "plots/roc_sic.pdf", "plots/mass_sculpting.png",
                 "plots/mass_sculpting.pdf"):
        assert (report / name).stat().st_size > 0
    assert "top" in (report / "index.html").read_text()


def test_lower_is_signal_flips_the_auc(scores, capsys):
    tmp, b, top, *_ = scores
    code, out, err = run_cli(capsys, "roc", tmp / "bkg.h5", f"top={tmp / 'top.h5'}", "--lower-is-signal",
                             "--bootstrap", 0)
    assert code == 0, err
    y = np.r_[np.ones(800), np.zeros(1200)]
    assert json.loads(out)["signals"]["top"]["auc"] == pytest.approx(roc_auc_score(y, -np.r_[top, b]), abs=1e-12)


@pytest.mark.parametrize("argv, message", [
    (["{t}/bkg.h5", "{t}/top.h5", "--score", "nope"], "nope"),
    (["{t}/bkg.h5", "{t}/top.h5", "--weights", "weight"], "no file has that column"),
    (["{t}/bkg.h5", "{t}/short_w.h5", "--weights", "w"], "799 weights"),
    (["{t}/bkg.h5", "{t}/empty.h5"], "no events"),
    (["{t}/empty.h5", "{t}/top.h5"], "no events"),
    (["{t}/bkg.h5", "{t}/nan.h5"], "row 5"),
    (["{t}/bkg.h5", "{t}/top.h5", "--mass", "{t}/top.h5:score"], "one mass per background event"),
    (["{t}/bkg.h5", "{t}/top.h5", "--mass", "nomass"], "nomass"),
    (["{t}/bkg.h5", "a={t}/top.h5", "a={t}/wjet.h5"], "named 'a'"),
    (["{t}/no_such_bkg.h5", "{t}/top.h5"], "no_such_bkg.h5' does not exist"),
    (["{t}/bkg.h5", "{t}/no_such_sig.h5"], "no_such_sig.h5' does not exist"),
])
def test_bad_input_exits_2_and_writes_nothing(scores, capsys, argv, message):
    tmp = scores[0]
    report = tmp / "bad_report"
    code, _, err = run_cli(capsys, "roc", *[a.format(t=tmp) for a in argv], "--report", report)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert "does not exist" not in message or "no score column" not in err
    assert not report.exists()


def test_one_signal_event_has_an_undefined_bootstrap_error_and_says_so(scores, tmp_path, capsys):
    tmp, b, top, *_ = scores
    with h5py.File(tmp_path / "one.h5", "w") as f:
        f["score"] = top[:1]
    report = tmp_path / "r"
    code, out, err = run_cli(capsys, "roc", tmp / "bkg.h5", f"one={tmp_path / 'one.h5'}", "--report", report)
    assert code == 0, err
    metrics = json.loads((report / "metrics.json").read_text())
    one = metrics["signals"]["one"]
    assert one["auc"] == pytest.approx(float(np.mean(top[0] > b) + 0.5 * np.mean(top[0] == b)), abs=1e-12)
    assert one["auc_err"] is None and one["max_sic_err"] is None  # not the 0.03 a bootstrap of one event gives
    assert any("one: the bootstrap errors are null" in n for n in metrics["notes"])
    assert "warning: one: the bootstrap errors are null" in err
    assert "bootstrap errors are null" in (report / "index.html").read_text()


def test_fit_classifier_score_roc_end_to_end(tmp_path, capsys):
    rng = np.random.default_rng(1)
    n = 1500
    y = rng.integers(0, 2, n).astype(float)
    x = rng.normal(size=(n, 2)) + 1.5 * y[:, None]
    with h5py.File(tmp_path / "d.h5", "w") as f:
        g = f.create_group("ev")
        g["a"], g["b"], g["is_top"] = x[:, 0], x[:, 1], y
    code, _, err = run_cli(capsys, "fit", "classifier", f"{tmp_path}/d.h5:ev", "--label", "is_top", "--epochs", 3,
                           "-q", "-o", tmp_path / "run")
    assert code == 0, err
    with h5py.File(tmp_path / "bkg.h5", "w") as f:
        g = f.create_group("ev")
        g["a"], g["b"] = x[y == 0, 0], x[y == 0, 1]
    with h5py.File(tmp_path / "sig.h5", "w") as f:
        g = f.create_group("ev")
        g["a"], g["b"] = x[y == 1, 0], x[y == 1, 1]
    for name in ("bkg", "sig"):  # scoring needs only the features, not the label
        code, _, err = run_cli(capsys, "score", tmp_path / "run", f"{tmp_path}/{name}.h5:ev", "-o",
                               tmp_path / f"{name}_scores.h5", "-q")
        assert code == 0, err
    with h5py.File(tmp_path / "sig_scores.h5") as f:
        s = f["score"][:]
    assert ((s >= 0) & (s <= 1)).all()
    code, out, err = run_cli(capsys, "roc", tmp_path / "bkg_scores.h5", f"top={tmp_path / 'sig_scores.h5'}",
                             "--bootstrap", 0)
    assert code == 0, err
    assert json.loads(out)["signals"]["top"]["auc"] > 0.8


def test_each_input_is_opened_once_with_its_weights_and_mass(scores, capsys, monkeypatch):
    """#19: the background's score, weight and mass columns come from one read of its file (datasets side by side,
    beside a 2-D score_per_feature), as does each signal's; the numbers are those of the per-column reads."""
    from hepgen.data import io

    tmp = scores[0]
    argv = ["roc", tmp / "bkg.h5", f"top={tmp / 'top.h5'}", "--weights", "w", "--mass", "mass", "--bootstrap", 0, "-q"]
    opened = []
    real = io.open_source
    monkeypatch.setattr(io, "open_source", lambda spec, *a, **k: opened.append(str(spec)) or real(spec, *a, **k))
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert sorted(opened) == sorted([str(tmp / "bkg.h5"), str(tmp / "top.h5")])
    together = json.loads(out)
    monkeypatch.setattr("hepgen.cli.roc.read_sample", lambda spec, columns: None)  # each column on its own
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert json.loads(out)["signals"] == together["signals"]
    assert json.loads(out)["mass_sculpting"] == together["mass_sculpting"]
