"""``hepgen compare REF CAND --report DIR`` end to end: the same numbers as the API, weights from files,
images, and bad input (exit code 2, one paragraph, no report folder)."""

import json

import numpy as np
import pytest

from hepgen.data import io
from hepgen.report import compare
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(4)
    ref = rng.normal(size=(500, 3))
    cand = rng.normal(size=(400, 3)) * np.array([1.0, 1.2, 1.0]) + np.array([0.6, 0.0, 0.0])
    io.write(tmp / "ref.h5", ref, columns=["pt", "eta", "mass"])
    io.write(tmp / "cand.h5", cand, columns=["pt", "eta", "mass"])
    w = rng.uniform(0.5, 1.5, 400)
    io.write(tmp / "w.h5", {"w": w, "short": w[:-1]})
    io.write(tmp / "other.h5", cand[:, :2], columns=["pt", "eta"])
    return tmp


def test_cli_compare_writes_the_report_with_the_api_numbers(files, tmp_path, capsys):
    out = tmp_path / "report"
    code, stdout, err = run_cli(capsys, "compare", files / "ref.h5", files / "cand.h5", "--report", out,
                                "--cand-weights", f"{files / 'w.h5'}:w", "--seed", 3)
    assert code == 0, err
    assert f"report: {out / 'index.html'}" in err
    summary = json.loads(stdout)
    metrics = json.loads((out / "metrics.json").read_text())
    ref, cand = io.read(files / "ref.h5").data, io.read(files / "cand.h5").data
    w = io.read(f"{files / 'w.h5'}:w", dtype=float).data.reshape(-1)
    api = compare(ref, cand, names=["pt", "eta", "mass"], cand_weights=w, seed=3,
                  title=f"{files / 'ref.h5'} (reference) vs {files / 'cand.h5'} (candidate)")
    assert {k: v for k, v in metrics.items() if k != "files"} == api
    assert summary["c2st"] == api["c2st"] and summary["n_ref"] == 500 and summary["weighted"] is True
    assert list(metrics["features"]) == ["pt", "eta", "mass"]
    assert metrics["features"]["pt"]["w1"] > 4 * metrics["features"]["pt"]["w1_err"]  # the shift is seen
    for rel in metrics["files"]:
        assert (out / rel).is_file(), rel
    html = (out / "index.html").read_text()
    for rel in metrics["files"]:
        if rel.endswith(".png"):
            assert f'src="{rel}"' in html


def test_cli_compare_images(tmp_path, capsys):
    rng = np.random.default_rng(5)
    io.write(tmp_path / "a.h5", {"images": rng.exponential(size=(120, 6, 6))})
    io.write(tmp_path / "b.h5", {"images": rng.exponential(1.2, size=(100, 6, 6))})
    code, stdout, err = run_cli(capsys, "compare", f"{tmp_path / 'a.h5'}:images", f"{tmp_path / 'b.h5'}:images",
                                "--report", tmp_path / "r")
    assert code == 0, err
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["kind"] == "image" and metrics["image"]["shape"] == [6, 6]
    assert "plots/mean_images.png" in metrics["files"] and (tmp_path / "r" / "plots" / "mean_images.png").is_file()


@pytest.mark.parametrize("argv, expected", [
    (["{d}/ref.h5", "{d}/other.h5"], "same features"),
    (["{d}/ref.h5", "{d}/missing.h5"], "missing.h5"),
    (["{d}/ref.h5", "{d}/cand.h5:nokey"], "nokey"),
    (["{d}/ref.h5", "{d}/cand.h5", "--cand-weights", "{d}/w.h5:short"], "cand_weights"),
    (["{d}/ref.h5", "{d}/cand.h5", "--ref-weights", "{d}/w.h5:w"], "ref_weights"),
])
def test_cli_compare_bad_input_exits_2_without_a_report(files, tmp_path, capsys, argv, expected):
    out = tmp_path / "report"
    code, stdout, err = run_cli(capsys, "compare", *[a.format(d=files) for a in argv], "--report", out)
    assert code == 2
    assert expected in err and "Traceback" not in err and err.count("\n") == 1
    assert stdout == ""
    assert list(tmp_path.iterdir()) == []
