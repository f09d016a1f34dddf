"""``hepgen report truncation RUN --data DATA``: the fidelity–diversity curve of a big-gan as JSON and a report
folder; models without a truncation trick and bad values refused (exit 2, nothing written)."""

import json

import h5py
import numpy as np
import pytest

from tests.helpers import run_cli, run_cli_for_error


@pytest.fixture(scope="module")
def biggan_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trunc")
    rng = np.random.default_rng(0)
    ptype = rng.choice([0.0, 1.0], size=200)
    x = rng.gamma(2.0, 1.0, size=(200, 6, 6)) * (1 + ptype[:, None, None])
    with h5py.File(tmp / "d.h5", "w") as f:
        f["images"] = x.astype(np.float32)
        f["cond/ptype"] = ptype.astype(np.float32)
    from hepgen.cli import main

    assert main(["fit", "big-gan", f"{tmp / 'd.h5'}:images", "--context", f"{tmp / 'd.h5'}:cond", "--latent", "6",
                 "--channels", "4,8", "--width", "8", "--epochs", "1", "-o", str(tmp / "run"), "-q"]) == 0
    return tmp


def test_report_truncation_writes_the_curve_and_its_folder(biggan_run, tmp_path, capsys):
    tmp = biggan_run
    code, out, err = run_cli(capsys, "report", "truncation", tmp / "run", "--data", f"{tmp / 'd.h5'}:images",
                             "--context", f"{tmp / 'd.h5'}:cond", "--truncation", "0,1,none", "--no-auc",
                             "--report", tmp_path / "rep", "-o", tmp_path / "curve.json", "-q")
    assert code == 0, err
    curve = json.loads((tmp_path / "curve.json").read_text())["curve"]
    assert [r["truncation"] for r in curve] == [0.0, 1.0, None]
    assert all(0 <= r["coverage"] <= 1 and r["fpd"] >= 0 and r["auc"] is None for r in curve)
    assert curve[0]["coverage"] <= curve[2]["coverage"]  # ψ = 0: one image per class covers little
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert metrics["curve"] == curve and "plots/truncation.png" in metrics["files"]
    assert (tmp_path / "rep" / "index.html").is_file()


def test_report_truncation_refusals(biggan_run, unnamed, tmp_path, capsys):
    tmp = biggan_run
    code, err = run_cli_for_error(capsys, ["report", "truncation", unnamed / "run", "--data", unnamed / "x.npy",
                                           "--report", tmp_path / "r1", "-q"])
    assert code == 2 and "without a truncation trick" in err and not (tmp_path / "r1").exists()
    code, err = run_cli_for_error(capsys, ["report", "truncation", tmp / "run", "--data", f"{tmp / 'd.h5'}:images",
                                           "--context", f"{tmp / 'd.h5'}:cond", "--truncation", "0.5,-1",
                                           "--report", tmp_path / "r2", "-q"])
    assert code == 2 and "'-1'" in err and not (tmp_path / "r2").exists()
    code, err = run_cli_for_error(capsys, ["report", "truncation", tmp / "run", "--data", f"{tmp / 'd.h5'}:images",
                                           "--context", "3", "--report", tmp_path / "r3", "-q"])
    assert code == 2 and "is 3 at row 0" in err and not (tmp_path / "r3").exists()


def test_a_context_left_out_is_not_read_from_the_images(biggan_run, tmp_path, capsys):
    """Without --context, an unnamed DATA array (the images) is not the class column: the images' pixels were read
    as the context and the first pixel reported as an unknown class."""
    tmp = biggan_run
    for argv in (["report", "truncation", tmp / "run", "--data", f"{tmp / 'd.h5'}:images", "--no-auc",
                  "--report", tmp_path / "r"],
                 ["score", tmp / "run", f"{tmp / 'd.h5'}:images", "-o", tmp_path / "s.h5"],
                 ["sample", tmp / "run", "-n", "4", "--context", f"{tmp / 'd.h5'}:images", "-o", tmp_path / "s.h5"]):
        code, err = run_cli_for_error(capsys, [*argv, "-q"])
        assert code == 2 and "d.h5:images' holds 36 value(s) per event, but the model's context is 1" in err, err
        assert not (tmp_path / "r").exists() and not (tmp_path / "s.h5").exists()
