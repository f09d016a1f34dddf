"""hepgen compare on shower files: the floor (two simulator samples) against a wrong candidate."""

import json

import numpy as np
import pytest

from hepgen.calo.compare import compare_showers
from hepgen.calo.showers import read_showers, write_showers
from hepgen.cli import main
from hepgen.data.generators import calo


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cmp")
    for name, seed in (("ref", 1), ("floor", 2)):
        assert main(["data", "calo", "-n", "1500", "-o", str(d / f"{name}.h5"), "--seed", str(seed), "-q"]) == 0
    sim = calo.generate(1500, seed=3)
    write_showers(d / "wrong.h5", {k: 1.3 * sim[k] for k in ("layer_0", "layer_1", "layer_2")}, sim["energy"])
    return d


@pytest.mark.slow
def test_floor_is_near_half_and_a_miscalibrated_candidate_is_caught(files):
    result = compare_showers(files / "ref.h5", files / "wrong.h5", floor=files / "floor.h5", classifier_epochs=10)
    auc = result["classifier"]
    assert auc["floor_high"]["auc"] < 0.58 and auc["floor_cells"]["auc"] < 0.62
    assert auc["candidate_high"]["auc"] > 0.9  # a 30 % energy scale is obvious in the response
    assert result["response"]["max_rel_deviation"] == pytest.approx(0.3, abs=0.02)
    ref = read_showers(files / "ref.h5")
    assert result["features"]["response"]["mean_ref"] == pytest.approx(
        float(np.mean(sum(v.sum(axis=(1, 2)) for v in ref.list()) / (1000 * ref.energy))))


@pytest.mark.slow
def test_cli_detects_shower_files_and_writes_the_report(files, tmp_path, capsys):
    assert main(["compare", str(files / "ref.h5"), str(files / "floor.h5"), "--report", str(tmp_path / "r"),
                 "-q"]) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert out["n_ref"] == 1500 and "candidate_cells" in out["classifier"]
    assert (tmp_path / "r" / "plots" / "response.png").exists() and (tmp_path / "r" / "plots" / "E_1_E0.png").exists()
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["n_cand"] == 1500


def test_a_file_of_another_layout_is_a_clear_error(tmp_path, capsys):
    from hepgen.data import io

    assert main(["data", "calo", "-n", "20", "-o", str(tmp_path / "ref.h5"), "-q"]) == 0

    io.write(tmp_path / "bad.h5", {"layer_0": np.zeros((5, 3, 96)), "layer_1": np.zeros((5, 12, 11)),
                                   "layer_2": np.zeros((5, 12, 6)), "energy": np.ones(5)})
    assert main(["compare", str(tmp_path / "ref.h5"), str(tmp_path / "bad.h5"), "--showers", "-q"]) == 2
    assert "layer_1 has showers of shape (12, 11)" in capsys.readouterr().err
