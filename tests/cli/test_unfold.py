"""``hepgen unfold`` on the user's files: a run with a report and an output; bad input exits 2, named."""

import numpy as np
import pytest

from hepgen.data import io
from hepgen.data.generators import smear
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli_unfold")
    for name, seed in (("sim", 1), ("data", 2)):
        g = smear.generate(2000, seed=seed, pt_min=30.0, fake_rate=0.05)
        io.write(tmp / f"{name}.h5", {**{f"truth/{c}": g["truth"][:, j] for j, c in enumerate(smear.COLUMNS)},
                                      **{f"reco/{c}": g["reco"][:, j] for j, c in enumerate(smear.COLUMNS)},
                                      "pass_reco": g["pass_reco"].astype(float),
                                      "pass_truth": g["pass_truth"].astype(float)})
    return tmp


def _argv(t, *more):
    return ["unfold", "ibu", "--sim-truth", f"{t}/sim.h5:truth", "--sim-reco", f"{t}/sim.h5:reco",
            "--data", f"{t}/data.h5:reco", "--pass-data", f"{t}/data.h5:pass_reco", *more]


def test_ibu_run(files, tmp_path, capsys):
    code, out, err = run_cli(capsys, *_argv(files, "--pass-reco", f"{files}/sim.h5:pass_reco", "--pass-truth",
                                            f"{files}/sim.h5:pass_truth", "--data-truth", f"{files}/data.h5:truth",
                                            "--pass-data-truth", f"{files}/data.h5:pass_truth", "--bins", "8",
                                            "--bootstrap", "3", "--option", "min_efficiency=0.1",
                                            "--report", tmp_path / "rep", "-o", tmp_path / "u.h5"))
    assert code == 0, err
    assert '"chi2_ndf"' in out and (tmp_path / "rep" / "index.html").exists()
    assert io.read_column(f"{tmp_path}/u.h5:unfolded_mass").shape == (8,)


@pytest.mark.parametrize("change, message", [
    (["--pass-reco", "{t}/sim.h5:pass_reco"], "all zeros, a fake without a truth partner"),
    (["--pass-truth", "{t}/sim.h5:pass_truth", "--pass-reco", "{t}/short.npy"], "short.npy"),
    (["--pass-truth", "{t}/sim.h5:pass_truth", "--option", "epochs=3"], "no option 'epochs'"),
    (["--pass-truth", "{t}/sim.h5:pass_truth", "--epochs", "3"], "--epochs does not apply"),
])
def test_bad_input_exits_2(files, tmp_path, capsys, change, message):
    np.save(files / "short.npy", np.ones(7))
    code, _, err = run_cli(capsys, *_argv(files, *[c.format(t=files) for c in change], "-o", tmp_path / "u.h5"))
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "u.h5").exists()


def test_data_with_other_columns(files, tmp_path, capsys):
    io.write(tmp_path / "d.csv", np.ones((30, 5)), columns=["a", "b", "c", "d", "e"])
    argv = _argv(files, "--pass-truth", f"{files}/sim.h5:pass_truth", "-o", tmp_path / "u.h5")
    argv[argv.index("--data") + 1] = str(tmp_path / "d.csv")
    del argv[argv.index("--pass-data"):argv.index("--pass-data") + 2]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "d.csv has no column 'pt'" in err


def test_truth_and_reco_of_different_lengths(files, tmp_path, capsys):
    io.write(tmp_path / "reco.csv", np.ones((50, 5)), columns=smear.COLUMNS)
    argv = _argv(files, "-o", tmp_path / "u.h5", "--pass-truth", f"{files}/sim.h5:pass_truth")
    argv[argv.index("--sim-reco") + 1] = str(tmp_path / "reco.csv")
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "2000 events" in err and "reco.csv has 50" in err
