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


def _s(t, sim="sim.h5"):
    """#26's $S: the simulation with its flags, the data with its pass flags."""
    return ["--sim-truth", f"{t}/{sim}:truth", "--sim-reco", f"{t}/{sim}:reco", "--pass-reco", f"{t}/{sim}:pass_reco",
            "--pass-truth", f"{t}/{sim}:pass_truth", "--data", f"{t}/data.h5:reco", "--pass-data",
            f"{t}/data.h5:pass_reco"]


@pytest.mark.parametrize("method, more, message", [
    ("omnifold", ["--option", "folds=abc"], "option 'folds' of unfolding method 'omnifold' must be an integer >= 2, got 'abc'"),
    ("omnifold", ["--option", "folds=1"], "option 'folds' of unfolding method 'omnifold' must be an integer >= 2, got 1"),
    ("posterior", ["--option", "hidden=xyz"], "option 'hidden' of unfolding method 'posterior' must be a comma-separated list of integers >= 1"),
    ("posterior", ["--option", "hidden=64,0"], "option 'hidden'"),
    ("marginal", ["--option", "samples=abc"], "option 'samples' of unfolding method 'marginal' must be an integer >= 1"),
    ("marginal", ["--option", "lr=-1"], "option 'lr' of unfolding method 'marginal' must be a number > 0"),
    ("posterior", ["--option", "lr=nan"], "option 'lr' of unfolding method 'posterior' must be a finite number"),
    ("ibu", ["--option", "min_efficiency=2"], "option 'min_efficiency' of unfolding method 'ibu' must be a number >= 0 and < 1"),
    ("posterior", ["--option", "min_efficiency=0"], "option 'min_efficiency' of unfolding method 'posterior'"),
    ("ibu", ["--bootstrap", "1"], "option 'bootstrap' of unfolding method 'ibu' must be 0 (no band) or at least 2"),
    ("ibu", ["--iterations", "0"], "option 'iterations' of unfolding method 'ibu' must be an integer >= 1"),
    ("posterior", ["--epochs", "0"], "option 'epochs' of unfolding method 'posterior' must be an integer >= 1"),
    ("marginal", ["--option", "batch_size=0"], "option 'batch_size'"),
    ("marginal", ["--option", "output=histogram"], "option 'output' of unfolding method 'marginal' must be one of posterior, flow"),
    ("posterior", ["--option", "device=tpu"], "option 'device' of unfolding method 'posterior'"),
    ("omnifold", ["--option", "fold=3"], "has no option 'fold' (did you mean 'folds'?)"),
    ("ibu", ["--bins", "1"], "option 'bins' of unfold must be an integer >= 2"),
])
def test_bad_options_exit_2_before_any_work(files, tmp_path, capsys, monkeypatch, method, more, message):
    """#26: every option is converted and checked before a file is opened (reading the inputs fails the test)."""
    import hepgen.unfolding.api as api

    monkeypatch.setattr(api, "read_inputs", lambda *a, **k: pytest.fail("the inputs were read"))
    argv = ["unfold", method, *_s(files), *more, "-o", tmp_path / "u.h5", "--report", tmp_path / "rep"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "u.h5").exists() and not (tmp_path / "rep").exists()


@pytest.mark.parametrize("method", ["ibu", "omnifold", "posterior", "marginal"])
@pytest.mark.parametrize("case, message", [
    ("one_event", "one.h5:truth: only 1 simulated event passes truth and reco (of 1)"),
    ("zero", "sim_w.h5:zero (simulation weights): all weights are zero"),
    ("negative", "sim_w.h5:negative (simulation weights): the weights sum to -2000"),
    ("nan", "sim_w.h5:nan' holds 1 non-finite value(s) (NaN or inf): the first is nan at row 11"),
])
def test_wrong_results_exit_2_before_unfolding(files, tmp_path, capsys, monkeypatch, method, case, message):
    """#26: `unfold ibu` with one simulated event, or simulation weights all zero / all negative (which wrote
    all-zero histograms), or NaN: exit 2 naming the file (and row), for every method, before it unfolds."""
    import importlib

    import h5py

    for module, name in (("ibu", "unfold_ibu"), ("omnifold", "omnifold"), ("posterior", "unfold_posterior"),
                         ("marginal", "unfold_marginal")):
        monkeypatch.setattr(importlib.import_module(f"hepgen.unfolding.{module}"), name,
                            lambda *a, **k: pytest.fail("unfolding started"))
    with h5py.File(files / "sim.h5") as f:
        flat = {f"{g}/{k}": f[g][k][:] for g in ("truth", "reco") for k in f[g]}
        flat.update({k: f[k][:] for k in ("pass_reco", "pass_truth")})
    if case == "one_event":
        i = int(np.flatnonzero((flat["pass_reco"] > 0) & (flat["pass_truth"] > 0))[0])
        io.write(files / "one.h5", {k: v[i:i + 1] for k, v in flat.items()})
        argv = _s(files, "one.h5")
    else:
        nan = np.ones(2000)
        nan[11] = np.nan
        io.write(files / "sim_w.h5", {**flat, "zero": np.zeros(2000), "negative": -np.ones(2000), "nan": nan})
        argv = [*_s(files, "sim_w.h5"), "--sim-weights", f"{files}/sim_w.h5:{case}"]
    code, _, err = run_cli(capsys, "unfold", method, *argv, "-o", tmp_path / "u.h5", "--report", tmp_path / "rep")
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "u.h5").exists() and not (tmp_path / "rep").exists()


def test_help_describes_each_methods_options(capsys):
    """``hepgen unfold --help`` says what each --option does (extrapolate, tolerance ...), not only its default."""
    with pytest.raises(SystemExit) as exc:
        from hepgen.cli import main

        main(["unfold", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "tolerance=0.0: stop iterating once the RMS change of the simulation's reweighting is below this" in out
    assert "extrapolate=True: step 1b: events that fail reco take the truth-level expectation" in out
    assert "marginal: bootstrap=3: replicas for the uncertainty band" in out
