"""hepgen compare --protocol calochallenge: the CaloChallenge evaluation of shower files, from the API and the CLI."""

import json

import numpy as np
import pytest

from hepgen.calo.compare import compare_showers
from hepgen.calo.shower_layout import LAYERS, Showers, write_showers
from hepgen.cli import main


def _showers(n, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return Showers({k: scale * rng.exponential(1.0, size=(n, *shape)) for k, shape in LAYERS.items()},
                   rng.uniform(1, 100, n))


def test_the_protocol_replaces_the_light_classifier_and_reports_fpd_kpd_and_separation_powers():
    quick = {"fpd_options": dict(min_samples=200, max_samples=400, num_batches=5, num_points=3),
             "kpd_options": dict(num_batches=5, batch_size=200)}
    result = compare_showers(_showers(400, 1), _showers(400, 2, scale=1.5), floor=_showers(400, 3),
                             protocol="calochallenge", classifier=False, n_bootstrap=5, protocol_options=quick)
    assert result["protocol"] == "calochallenge" and result["classifier"] == {}
    assert set(result["fpd"]) == set(result["kpd"]) == set(result["separation_power"]) == {"candidate", "floor"}
    assert result["fpd"]["candidate"]["value"] > result["fpd"]["floor"]["value"]
    powers = result["separation_power"]["candidate"]
    assert {"response", "E_0", "centroid_y_2", "width_x_1"} <= set(powers)
    floor = result["separation_power"]["floor"]["E_1"]
    assert powers["E_1"]["value"] > floor["value"] + 5 * (powers["E_1"]["error"] + floor["error"])
    assert "features" in result and "response" in result  # the rest of the shower comparison stays


def test_cli_refuses_the_protocol_on_tables_and_bad_epochs_before_any_work(tmp_path, capsys):
    from hepgen.data import io

    io.write(tmp_path / "a.csv", {"x": np.arange(5.0)})
    assert main(["compare", str(tmp_path / "a.csv"), str(tmp_path / "a.csv"), "--protocol", "calochallenge",
                 "-q"]) == 2
    assert "--protocol calochallenge judges calorimeter showers" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "a.csv"), str(tmp_path / "a.csv"), "--classifier-epochs", "0", "-q"]) == 2
    assert "--classifier-epochs must be a positive number" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_runs_the_challenge_classifiers_on_shower_files(tmp_path, capsys):
    for name, seed in (("ref", 1), ("cand", 2), ("floor", 3)):
        s = _showers(250, seed)
        write_showers(tmp_path / f"{name}.h5", s.layers, s.energy)
    assert main(["compare", str(tmp_path / "ref.h5"), str(tmp_path / "cand.h5"), "--floor", str(tmp_path / "floor.h5"),
                 "--protocol", "calochallenge", "--classifier-epochs", "1", "--report", str(tmp_path / "report"),
                 "-q"]) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert set(out["classifier"]) == {"candidate_high", "candidate_low", "floor_high", "floor_low"}
    high = out["classifier"]["candidate_high"]
    assert high["settings"]["hidden"] == [2048, 2048, 2048] and high["settings"]["epochs"] == 1
    assert {"auc", "auc_err", "jsd", "jsd_err"} <= set(high) and out["fpd"]["floor"]["value"] >= 0
    html = (tmp_path / "report" / "index.html").read_text()
    assert "CaloChallenge classifier" in html and "FPD and KPD" in html and "Separation power" in html
    assert json.loads((tmp_path / "report" / "metrics.json").read_text())["protocol"] == "calochallenge"
