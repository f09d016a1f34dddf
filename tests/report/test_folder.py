"""The one owner of a report folder: staged beside DIR and renamed into place, nothing at DIR when anything
fails, strict JSON (NaN/inf -> null), the same layout from every command that writes a report."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from hepgen.errors import DataError
from hepgen.report.folder import ReportFolder, dumps, jsonable, write_json
from hepgen.report.html import Page


def _strict(text: str):
    """json.loads that refuses the NaN/Infinity tokens Python's json would otherwise accept."""
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")
    return json.loads(text, parse_constant=refuse)


def _figure() -> Figure:
    fig = Figure(figsize=(3, 2))
    fig.subplots().plot([0, 1], [1, 0])
    return fig


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_jsonable_turns_every_non_finite_number_into_null_at_any_depth():
    value = {"a": float("nan"), "b": [1.0, float("inf"), (np.float32("-inf"), np.nan)], 3: np.array([1.5, np.nan]),
             "c": {"d": np.int64(4), "e": np.bool_(True), "f": Path("x/y")}}
    assert jsonable(value) == {"a": None, "b": [1.0, None, [None, None]], "3": [1.5, None],
                               "c": {"d": 4, "e": True, "f": "x/y"}}
    text = dumps(value)
    assert "NaN" not in text and "Infinity" not in text
    assert _strict(text) == jsonable(value)


def test_write_json_is_strict_and_atomic(tmp_path):
    path = write_json(tmp_path / "r.json", {"per_metre": float("inf"), "lr": float("nan")})
    assert _strict(path.read_text()) == {"per_metre": None, "lr": None}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_a_new_report_is_staged_beside_dir_and_renamed_into_place(tmp_path):
    out = tmp_path / "rep"
    with ReportFolder(out) as report:
        report.save_figure(_figure(), "curve.png", "a curve", pdf=True)
        staging = report.staging
        # while it is written, DIR does not exist: only the hidden sibling does
        assert not out.exists() and staging.parent == tmp_path and staging.name.startswith(".rep.")
        metrics = report.finish({"x": float("nan"), "y": 1.0, "notes": []}, Page(title="t <b>"))
        assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]
    assert _files(out) == {"metrics.json", "index.html", "plots/curve.png", "plots/curve.pdf"}
    on_disk = _strict((out / "metrics.json").read_text())
    assert on_disk == metrics and on_disk["x"] is None and on_disk["y"] == 1.0
    assert on_disk["files"] == ["index.html", "metrics.json", "plots/curve.pdf", "plots/curve.png"]
    html = (out / "index.html").read_text()
    assert 'src="plots/curve.png"' in html and 'href="metrics.json"' in html and 'href="plots/curve.pdf"' in html
    assert "t &lt;b&gt;" in html
    assert oct(out.stat().st_mode & 0o777) != oct(0o700)  # an ordinary folder, not mkdtemp's private one


def test_a_failure_leaves_nothing_at_dir(tmp_path):
    out = tmp_path / "rep"
    with pytest.raises(ZeroDivisionError), ReportFolder(out) as report:
        report.save_figure(_figure(), "curve.png", "a curve")
        1 / 0
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="finish"), ReportFolder(out) as report:
        report.save_figure(_figure(), "curve.png", "a curve")  # forgot finish(): no half report either
    assert list(tmp_path.iterdir()) == []


def test_metrics_json_cannot_be_written_with_nan_tokens(tmp_path):
    out = tmp_path / "rep"
    with ReportFolder(out) as report:
        report.finish({"deep": [{"v": np.float64("inf")}], "w": -math.inf}, Page(title="t"))
    assert _strict((out / "metrics.json").read_text())["deep"] == [{"v": None}]


def test_an_earlier_report_is_updated_its_stale_files_removed_the_users_kept(tmp_path):
    out = tmp_path / "rep"
    with ReportFolder(out) as report:
        report.save_figure(_figure(), "old.png", "old")
        report.save_figure(_figure(), "kept.png", "kept")
        report.finish({"n": 1}, Page(title="first"))
    (out / "my_notes.txt").write_text("mine")
    (out / "plots" / "my_plot.png").write_bytes(b"mine")
    with ReportFolder(out) as report:
        report.save_figure(_figure(), "kept.png", "kept")
        report.save_figure(_figure(), "new.png", "new")
        report.finish({"n": 2}, Page(title="second"))
    assert _files(out) == {"metrics.json", "index.html", "plots/kept.png", "plots/new.png", "plots/my_plot.png",
                           "my_notes.txt"}
    assert _strict((out / "metrics.json").read_text())["n"] == 2 and "second" in (out / "index.html").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]


def test_an_earlier_report_is_untouched_when_the_new_one_fails(tmp_path):
    out = tmp_path / "rep"
    with ReportFolder(out) as report:
        report.save_figure(_figure(), "a.png", "a")
        report.finish({"n": 1}, Page(title="first"))
    before = {rel: (out / rel).read_bytes() for rel in _files(out)}
    with pytest.raises(ValueError), ReportFolder(out) as report:
        report.save_figure(_figure(), "b.png", "b")
        raise ValueError("drawing failed")
    assert {rel: (out / rel).read_bytes() for rel in _files(out)} == before
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]


def test_a_manifest_cannot_make_the_report_delete_outside_its_folder(tmp_path):
    out = tmp_path / "rep"
    out.mkdir()
    (tmp_path / "precious.txt").write_text("keep")
    (out / "metrics.json").write_text(json.dumps({"files": ["../precious.txt", "/etc/hostname", 3]}))
    with ReportFolder(out) as report:
        report.finish({}, Page(title="t"))
    assert (tmp_path / "precious.txt").read_text() == "keep"


def test_a_file_in_the_way_is_refused_before_any_work(tmp_path):
    (tmp_path / "rep").write_text("a file")
    with pytest.raises(DataError, match="not a folder"):
        ReportFolder(tmp_path / "rep")
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(DataError, match="not writable"):
            ReportFolder(ro / "rep")


def test_an_empty_folder_or_a_link_to_a_folder_receives_the_report(tmp_path):
    empty, real, link = tmp_path / "empty", tmp_path / "real", tmp_path / "link"
    empty.mkdir()
    real.mkdir()
    link.symlink_to(real, target_is_directory=True)
    for out in (empty, link):
        with ReportFolder(out) as report:
            report.save_figure(_figure(), "a.png", "a")
            report.finish({"n": 1}, Page(title="t"))
    assert _files(empty) == _files(real) == {"metrics.json", "index.html", "plots/a.png"}
    assert link.is_symlink()  # the link stays a link; the report went into its folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "link", "real"]
