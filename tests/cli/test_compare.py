"""``hepgen compare`` on files as they come: weight columns by name, features matched by name, the
jetnet protocol, a progress bar on a terminal only."""

import json
import sys

import numpy as np
import pytest

from hepgen.data import io
from hepgen.metrics import fpd, kpd
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cmp")
    rng = np.random.default_rng(9)
    ref = rng.normal(size=(300, 2))
    cand = rng.normal(0.3, 1.0, size=(250, 2))
    w = rng.uniform(-0.2, 1.0, 250)
    # CAND: columns in another order, an extra column, and its weights as a column
    io.write(tmp / "ref.h5", ref, columns=["pt", "eta"])
    io.write(tmp / "cand.csv", np.column_stack([cand[:, 1], w, cand[:, 0], np.ones(250)]),
             columns=["eta", "w", "pt", "extra"])
    return tmp, ref, cand, w


def test_weights_by_column_name_and_features_by_name(files, capsys):
    tmp, ref, cand, w = files
    code, out, err = run_cli(capsys, "compare", tmp / "ref.h5", tmp / "cand.csv", "--cand-weights", "w",
                             "--protocol", "jetnet", "-q", "--seed", 2)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["n_features"] == 2 and summary["protocol"] == "jetnet"
    cw = io.read(tmp / "cand.csv", columns=["w"], dtype=np.float64).data[:, 0]
    c = io.read(tmp / "cand.csv", columns=["pt", "eta"], dtype=np.float64).data
    r = io.read(tmp / "ref.h5", dtype=np.float64).data
    assert summary["fpd"]["value"] == pytest.approx(fpd(r, c, generated_weights=np.abs(cw), seed=2,
                                                        protocol="jetnet")[0], rel=1e-6)
    assert summary["kpd"]["value"] == pytest.approx(kpd(r, c, generated_weights=np.abs(cw), seed=2,
                                                        protocol="jetnet")[0], rel=1e-6, abs=1e-9)
    assert summary["n_eff"]["cand"] == pytest.approx(cw.sum() ** 2 / (cw**2).sum(), rel=1e-6)
    assert summary["n_eff"]["ref"] == 300


def test_a_reference_column_missing_from_the_candidate_is_named(files, tmp_path, capsys):
    tmp, ref, *_ = files
    io.write(tmp_path / "one.h5", ref[:, :1], columns=["pt"])
    code, out, err = run_cli(capsys, "compare", tmp / "ref.h5", tmp_path / "one.h5", "--report", tmp_path / "r")
    assert code == 2 and "'eta'" in err and "Traceback" not in err and out == ""
    assert not (tmp_path / "r").exists()


def test_progress_bar_on_a_terminal_only(files, capsys, monkeypatch):
    tmp, *_ = files
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    code, _, err = run_cli(capsys, "compare", tmp / "ref.h5", tmp / "cand.csv", "--exclude", "eta",
                           "--cand-weights", "w")
    assert code == 0 and "compare:" in err and "steps" in err
    code, _, err = run_cli(capsys, "compare", tmp / "ref.h5", tmp / "cand.csv", "--exclude", "eta",
                           "--cand-weights", "w", "-q")
    assert code == 0 and err == ""


def test_compare_takes_the_weight_column_by_name_and_matches_features_by_name(flat, tmp_path, capsys):
    tmp, x, w = flat
    assert run_cli(capsys, "sample", tmp / "run", "-n", 3000, "-o", tmp_path / "gen.h5", "-q")[0] == 0
    code, out, err = run_cli(capsys, "compare", f"{tmp / 'flat.root'}:events", tmp_path / "gen.h5",
                             "--ref-weights", "weight", "-q")
    assert code == 0, err
    from hepgen.report.compare import compare

    summary = json.loads(out)
    gen = io.read(tmp_path / "gen.h5").data
    api = compare(x, gen, names=["a", "b", "c", "d"], ref_weights=w.astype(np.float64),
                  title=summary["title"])
    assert summary["c2st"] == api["c2st"] and summary["fpd"] == api["fpd"]
    assert summary["n_eff"]["ref"] == pytest.approx(w.astype(float).sum() ** 2 / (w.astype(float) ** 2).sum())
    assert summary["title"].index("flat.root") < summary["title"].index("gen.h5")  # REF first


def test_each_file_is_opened_once_and_an_extra_candidate_column_may_hold_nan(files, tmp_path, capsys, monkeypatch):
    """#19: the data layer opens a DATA argument once (features, weights and units together); a NaN in a
    candidate column that is not compared does not stop the comparison, one in a compared column does."""
    tmp, ref, cand, w = files
    opened = []
    real = io.open_source
    monkeypatch.setattr(io, "open_source", lambda spec, *a, **k: opened.append(str(spec)) or real(spec, *a, **k))
    code, out, err = run_cli(capsys, "compare", tmp / "ref.h5", tmp / "cand.csv", "--cand-weights", "w", "-q")
    assert code == 0, err
    assert sorted(opened) == sorted([str(tmp / "ref.h5"), str(tmp / "cand.csv")])
    table = np.column_stack([cand[:, 1], w, cand[:, 0], np.full(250, np.nan)])
    io.write(tmp_path / "nan_extra.csv", table, columns=["eta", "w", "pt", "extra"])
    code, out, err = run_cli(capsys, "compare", tmp / "ref.h5", tmp_path / "nan_extra.csv", "--cand-weights", "w", "-q")
    assert code == 0, err
    table[7, 2] = np.nan
    io.write(tmp_path / "nan_pt.csv", table, columns=["eta", "w", "pt", "extra"])
    code, out, err = run_cli(capsys, "compare", tmp / "ref.h5", tmp_path / "nan_pt.csv", "--cand-weights", "w", "-q")
    assert code == 2 and "row 7" in err and "pt" in err and "Traceback" not in err
