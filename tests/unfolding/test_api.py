"""hepgen.unfold on files: flags as FILE:KEY and as columns, outputs readable, the report, named errors."""

import json

import numpy as np
import pytest

import hepgen
from hepgen.data import io
from hepgen.data.generators import smear
from hepgen.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("unfold")
    for name, seed, opts in (("sim", 1, {}), ("data", 2, {"index": 5.0})):
        g = smear.generate(3000, seed=seed, pt_min=30.0, fake_rate=0.05, **opts)
        io.write(tmp / f"{name}.h5", {**{f"truth/{c}": g["truth"][:, j] for j, c in enumerate(smear.COLUMNS)},
                                      **{f"reco/{c}": g["reco"][:, j] for j, c in enumerate(smear.COLUMNS)},
                                      "pass_reco": g["pass_reco"].astype(float),
                                      "pass_truth": g["pass_truth"].astype(float)})
        # the same as one CSV table: reco columns and the flags as columns
        table = np.column_stack([g["reco"], g["pass_reco"], g["pass_truth"], np.full(3000, 2.0)])
        io.write(tmp / f"{name}_reco.csv", table, columns=[*smear.COLUMNS, "pass_reco", "pass_truth", "w"])
        io.write(tmp / f"{name}_truth.csv", np.column_stack([g["truth"], g["pass_truth"]]),
                 columns=[*smear.COLUMNS, "pass_truth"])
    return tmp


def _args(tmp):
    return {"sim_truth": f"{tmp}/sim.h5:truth", "sim_reco": f"{tmp}/sim.h5:reco", "data": f"{tmp}/data.h5:reco",
            "pass_reco": f"{tmp}/sim.h5:pass_reco", "pass_truth": f"{tmp}/sim.h5:pass_truth",
            "pass_data": f"{tmp}/data.h5:pass_reco", "data_truth": f"{tmp}/data.h5:truth",
            "pass_data_truth": f"{tmp}/data.h5:pass_truth"}


def test_ibu_on_files_writes_output_and_report(files, tmp_path):
    r = hepgen.unfold("ibu", **_args(files), bins=8, bootstrap=4, out=tmp_path / "u.h5", report_dir=tmp_path / "rep")
    assert r.names == smear.COLUMNS and r.weights.shape == (len(r.events), 5)
    counts = io.read_column(f"{tmp_path}/u.h5:unfolded_pt")
    edges = io.read_column(f"{tmp_path}/u.h5:edges_pt")
    w = io.read_column(f"{tmp_path}/u.h5:weights/pt")
    pt = io.read_column(f"{tmp_path}/u.h5:truth/pt")
    # the per-event weights of the simulated truth reproduce the unfolded histogram
    np.testing.assert_allclose(np.histogram(np.clip(pt, edges[0], edges[-1]), edges, weights=w)[0], counts, rtol=1e-9)
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert set(metrics["observables"]) == set(smear.COLUMNS)
    assert len(list((tmp_path / "rep" / "plots").glob("unfolded_*.png"))) == 5
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "unfolding: ibu" in html and "efficiency, acceptance, fakes: efficiency and acceptance: 1/eps_j" in html


def test_flags_and_weights_as_columns_give_the_same_result(files):
    a = hepgen.unfold("ibu", **_args(files), bins=8, bootstrap=0)
    b = hepgen.unfold("ibu", sim_truth=f"{files}/sim_truth.csv", sim_reco=f"{files}/sim_reco.csv",
                      data=f"{files}/data_reco.csv", pass_reco="pass_reco", pass_truth="pass_truth",
                      sim_weights="w", data_weights="w", pass_data="pass_reco", bins=8, bootstrap=0)
    # a constant weight 2 on both sides changes nothing in the shapes; the csv reco has extra columns
    np.testing.assert_allclose(b.weights / 2, a.weights, rtol=1e-5)


def _bad(files, tmp_path, case):
    """The API keyword arguments of one bad-input case and the message that must name it."""
    args = _args(files)
    if case == "lengths":      # simulated truth and reco of different lengths
        io.write(tmp_path / "short.csv", np.ones((10, 5)), columns=smear.COLUMNS)
        return {**args, "sim_reco": str(tmp_path / "short.csv"), "pass_reco": None}, r"3000 events but .*short.csv has 10"
    if case == "no_pass_truth":  # fakes (all-zero truth rows) without the pass flags
        return {**args, "pass_truth": None}, r"sim.h5:truth: row \d+ .*all zeros.*pass-truth"
    if case == "other_columns":  # a data file with other columns
        io.write(tmp_path / "other.csv", np.ones((20, 3)), columns=["a", "b", "c"])
        return {**args, "data": str(tmp_path / "other.csv"), "pass_data": None}, r"other.csv has no column 'pt'"
    if case == "flag_length":  # a pass flag of the wrong length
        np.save(tmp_path / "flags.npy", np.ones(7))
        return {**args, "pass_reco": str(tmp_path / "flags.npy")}, r"flags.npy \(pass_reco flags\) must hold one flag per event"
    if case == "non_finite":  # a NaN in the data, named by row and column
        g = smear.generate(50, seed=9, pt_min=30.0)
        g["reco"][7, 2] = np.nan
        io.write(tmp_path / "nan.h5", {f"reco/{c}": g["reco"][:, j] for j, c in enumerate(smear.COLUMNS)})
        return {**args, "data": f"{tmp_path}/nan.h5:reco", "pass_data": None}, r"nan.h5:reco.* non-finite .*row 7, column 'mass'"
    raise AssertionError(case)


_FLAGS = {"sim_truth": "--sim-truth", "sim_reco": "--sim-reco", "data": "--data", "pass_reco": "--pass-reco",
          "pass_truth": "--pass-truth", "pass_data": "--pass-data", "data_truth": "--data-truth",
          "pass_data_truth": "--pass-data-truth"}
CASES = ["lengths", "no_pass_truth", "other_columns", "flag_length", "non_finite"]


@pytest.mark.parametrize("method", ["ibu", "omnifold", "posterior", "marginal"])
@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_named(files, tmp_path, capsys, case, method):
    """Every method, API and CLI: a DataError naming the file (and column/row); the CLI exits 2 without a
    traceback; nothing is written (the checks run before any training)."""
    import re

    from tests.helpers import run_cli

    kwargs, message = _bad(files, tmp_path, case)
    with pytest.raises(DataError, match=message):
        hepgen.unfold(method, **kwargs, out=tmp_path / "u.h5", report_dir=tmp_path / "rep")
    argv = ["unfold", method, "-o", tmp_path / "u.h5", "--report", tmp_path / "rep"]
    for key, value in kwargs.items():
        if value is not None:
            argv += [_FLAGS[key], value]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and re.search(message, err) and "Traceback" not in err, err
    assert not (tmp_path / "u.h5").exists() and not (tmp_path / "rep").exists()


def test_bad_options_are_named(files):
    args = _args(files)
    with pytest.raises(ConfigError, match="no option 'epochs'"):
        hepgen.unfold("ibu", **args, epochs=3)
    with pytest.raises(ConfigError, match="unknown unfolding method"):
        hepgen.unfold("svd", **args)


@pytest.mark.parametrize("method", ["posterior", pytest.param("marginal", marks=pytest.mark.slow)])
def test_flow_methods_from_the_cli(files, tmp_path, capsys, method):
    """The flow methods from the CLI on the user's files (3000 events, 2 epochs): unfolded events written,
    integers floored, metrics printed."""
    from tests.helpers import run_cli

    a = _args(files)
    argv = ["unfold", method, "--epochs", "2", "--bootstrap", "0", "--bins", "8", "--option", "coverage_samples=0",
            "--option", "batch_size=512", "-o", tmp_path / "u.h5"]
    if method == "marginal":
        argv += ["--option", "unfold_epochs=1", "--option", "proposals=4"]
    for key, value in a.items():
        argv += [_FLAGS[key], value]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert '"chi2_ndf"' in out
    mult = io.read_column(f"{tmp_path}/u.h5:events/multiplicity")
    assert len(mult) > 1000 and np.all(mult == np.floor(mult))
