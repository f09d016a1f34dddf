"""Bad input on the physics applications' commands (issue 26): exit 2, no traceback, the file / option / row
named, refused before any work, nothing written."""

import h5py
import numpy as np
import pytest

from hepgen.calo.shower_layout import LAYERS, write_showers
from hepgen.data.generators import calo
from tests.helpers import run_cli_for_error

SMALL = {"calo-gan": ["--hidden", "16", "--critic-hidden", "16"],
         "calo-flow": ["--cell-transforms", "1", "--cell-hidden", "8", "--bins", "4"]}


@pytest.fixture(scope="module")
def shower_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("apps")
    sim = calo.generate(80, seed=2, energy_min=10.0, energy_max=40.0)
    good, bad = root / "good.h5", root / "bad.h5"
    write_showers(good, {k: sim[k] for k in LAYERS}, sim["energy"])
    energy = sim["energy"].copy()
    energy[11] = -20.0
    write_showers(bad, {k: sim[k] for k in LAYERS}, energy)
    return good, bad


@pytest.fixture(scope="module")
def shower_runs(shower_files, tmp_path_factory):
    from hepgen.cli import main

    runs = {}
    for name in SMALL:
        run = tmp_path_factory.mktemp("runs") / name
        assert main(["fit", name, str(shower_files[0]), "--context", "energy", "-o", str(run), "--epochs", "1",
                     "--batch-size", "40", "--val-fraction", "0", "-q", *SMALL[name]]) == 0
        runs[name] = run
    return runs


def _refused(capsys, argv, *expected):
    code, err = run_cli_for_error(capsys, argv)
    assert code == 2, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err
    return err


@pytest.mark.parametrize("name", list(SMALL))
def test_training_on_a_negative_incident_energy_names_the_file_column_and_row(name, shower_files, tmp_path, capsys):
    run = tmp_path / "run"
    _refused(capsys, ["fit", name, shower_files[1], "--context", "energy", "-o", run, "--epochs", "1", "-q",
                      *SMALL[name]], f"{shower_files[1]}: column 'energy'", "-20 at row 11")
    assert not run.exists()


@pytest.mark.parametrize("name", list(SMALL))
@pytest.mark.parametrize(("energy", "expected"), [("-5", "positive number of GeV, got -5"),
                                                  ("0", "positive number of GeV, got 0"),
                                                  ("1e9", "far outside the training range"),
                                                  ("0.5", "far outside the training range")])
def test_sampling_at_a_non_physical_or_far_away_energy_is_refused(name, energy, expected, shower_runs, tmp_path,
                                                                 capsys):
    out = tmp_path / "s.h5"
    err = _refused(capsys, ["sample", shower_runs[name], "-n", "5", "--context", energy, "-o", out, "-q"], expected)
    if "far outside" in expected:
        assert "--extrapolate" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", list(SMALL))
def test_extrapolate_samples_far_outside_the_range_on_request(name, shower_runs, tmp_path, capsys):
    from hepgen.cli import main

    out = tmp_path / "s.h5"
    assert main(["sample", str(shower_runs[name]), "-n", "5", "--context", "200", "--extrapolate", "-o", str(out),
                 "-q"]) == 0, capsys.readouterr().err
    with h5py.File(out) as f:
        assert f["layer_0"].shape == (5, 3, 96)
    _refused(capsys, ["sample", shower_runs[name], "-n", "5", "--context", "-1", "--extrapolate", "-o", out, "-q"],
             "positive number of GeV")


def test_extrapolate_is_refused_for_a_model_without_energies(tmp_path, capsys):
    from hepgen.cli import main

    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32))
    run = tmp_path / "run"
    assert main(["fit", "gaussian", str(data), "-o", str(run), "--epochs", "1", "-q"]) == 0
    _refused(capsys, ["sample", run, "-n", "5", "--extrapolate", "-o", tmp_path / "s.h5", "-q"],
             "--extrapolate is for shower models")
    assert not (tmp_path / "s.h5").exists()


@pytest.mark.parametrize("name", list(SMALL))
def test_the_shapes_hyper_parameter_in_a_config(name, shower_files, tmp_path, capsys):
    from hepgen.cli import main

    same, other = tmp_path / "same.yaml", tmp_path / "other.yaml"
    rows = "\n".join(f"  {k}: [{v[0]}, {v[1]}]" for k, v in LAYERS.items())
    same.write_text(f"shapes:\n{rows}\n")
    other.write_text(f"shapes:\n{rows.replace('[12, 6]', '[6, 12]')}\n")
    assert main(["fit", name, str(shower_files[0]), "--context", "energy", "-o", str(tmp_path / "ok"), "--epochs",
                 "1", "--batch-size", "40", "-q", "-c", str(same), *SMALL[name]]) == 0, capsys.readouterr().err
    _refused(capsys, ["fit", name, shower_files[0], "--context", "energy", "-o", tmp_path / "no", "--epochs", "1",
                      "-q", "-c", other, *SMALL[name]], "layer 'layer_2'", "[6, 12]", "[12, 6]")
    assert not (tmp_path / "no").exists()
