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


_FAST = {"ibu": {"bootstrap": 2}, "omnifold": {"bootstrap": 2, "iterations": 1},
         "posterior": {"bootstrap": 2, "epochs": 1, "iterations": 2, "coverage_samples": 20, "batch_size": 256},
         "marginal": {"bootstrap": 2, "epochs": 1, "unfold_epochs": 1, "proposals": 2, "samples": 300,
                      "coverage_samples": 0, "batch_size": 256, "device": "cpu"}}


@pytest.mark.parametrize("method", ["ibu", "omnifold", "posterior", "marginal"])
def test_unfold_leaves_the_global_rngs_alone(method):
    """A library call never reseeds the caller's RNGs: torch's and numpy's global states are the same after
    unfold() as before (every method, its training and sampling seeded on a fork), and the result is seeded:
    the same seed twice gives the same weights."""
    import torch

    g = smear.generate(800, seed=1, pt_min=30.0, fake_rate=0.05)
    d = smear.generate(300, seed=2, pt_min=30.0, fake_rate=0.05)
    args = (g["truth"], g["reco"], d["reco"][d["pass_reco"]])
    kw = {"pass_truth": g["pass_truth"], "pass_reco": g["pass_reco"], "bins": 5, **_FAST[method]}
    torch.manual_seed(1234)
    np.random.seed(99)
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()
    r = hepgen.unfold(method, *args, **kw)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1]) and after[2:] == numpy_state[2:]
    if method == "omnifold":  # no torch; its classifiers take integer seeds (the slowest to run twice)
        return
    again = hepgen.unfold(method, *args, **kw)
    np.testing.assert_array_equal(again.weights, r.weights)
    np.testing.assert_array_equal(again.events, r.events)


def test_fine_tune_continues_from_the_fitted_flow():
    """The posterior's prior-removal iterations fine-tune the fitted flow with the engine's warm_start: the
    weights and the fitted preprocessing are kept (a step of lr ~ 0 leaves the log-density unchanged, where
    a re-drawn flow would not), and training moves it towards the new events."""
    import copy

    import torch

    from hepgen.flows import NSF
    from hepgen.unfolding.posterior import fine_tune, seeded

    rng = np.random.default_rng(0)
    c = rng.normal(size=(3000, 1))
    u = c + 0.5 * rng.normal(size=(3000, 1))
    with seeded(0):
        flow = NSF(1, context=1, transforms=2, hidden=(16, 16)).fit(u.astype(np.float32), context=c.astype(np.float32),
                                                                  epochs=3, batch_size=256, quiet=True)
    flow.eval()
    probe = torch.tensor(u[:200], dtype=torch.float32), torch.tensor(c[:200], dtype=torch.float32)
    with torch.no_grad():
        before = flow.log_prob(*probe[:1], context=probe[1])
    same = fine_tune(copy.deepcopy(flow), u, c, np.ones(len(u)), epochs=1, batch_size=256, lr=1e-12, seed=3,
                     device="cpu", quiet=True)
    with torch.no_grad():
        torch.testing.assert_close(same.log_prob(*probe[:1], context=probe[1]), before, rtol=1e-4, atol=1e-4)
    for name, buf in flow.named_buffers():
        torch.testing.assert_close(dict(same.named_buffers())[name], buf)
    shifted = u + 1.0
    moved = fine_tune(copy.deepcopy(flow), shifted, c, np.ones(len(u)), epochs=3, batch_size=256, lr=3e-3, seed=3,
                      device="cpu", quiet=True)
    nll = lambda f: -float(f.log_prob(torch.tensor(shifted, dtype=torch.float32),
                                      context=torch.tensor(c, dtype=torch.float32)).mean())
    with torch.no_grad():
        assert nll(moved) < nll(flow) - 0.1


def _with(files, tmp_path, **arrays):
    """The simulation of ``files`` rewritten with ``arrays`` added/replaced (keys of sim.h5)."""
    import h5py

    out = tmp_path / "sim_mod.h5"
    with h5py.File(files / "sim.h5") as f:
        flat = {f"{g}/{k}": f[g][k][:] for g in ("truth", "reco") for k in f[g]}
        flat.update({k: f[k][:] for k in ("pass_reco", "pass_truth")})
    io.write(out, {**flat, **arrays})
    return {**_args(files), "sim_truth": f"{out}:truth", "sim_reco": f"{out}:reco",
            "pass_reco": f"{out}:pass_reco", "pass_truth": f"{out}:pass_truth"}, out


@pytest.mark.parametrize("method", ["ibu", "omnifold", "posterior", "marginal"])
def test_wrong_results_are_refused(files, tmp_path, method, monkeypatch):
    """#26: one simulated event (2-bin histograms unrelated to the data) and simulation weights all zero, of
    negative total or NaN (all-zero histograms) are refused, naming the file and row, for every method, before
    any unfolding runs."""
    import importlib

    import h5py

    for module, name in (("ibu", "unfold_ibu"), ("omnifold", "omnifold"), ("posterior", "unfold_posterior"),
                         ("marginal", "unfold_marginal")):
        monkeypatch.setattr(importlib.import_module(f"hepgen.unfolding.{module}"), name,
                            lambda *a, **k: pytest.fail("unfolding started"))
    with h5py.File(files / "sim.h5") as f:
        ok = np.flatnonzero((f["pass_reco"][:] > 0) & (f["pass_truth"][:] > 0))
        one = {f"{g}/{k}": f[g][k][ok[:1]] for g in ("truth", "reco") for k in f[g]}
        one.update({k: f[k][ok[:1]] for k in ("pass_reco", "pass_truth")})
    io.write(tmp_path / "one.h5", one)
    a = {**_args(files), **{k: f"{tmp_path}/one.h5:{k}" for k in ("pass_reco", "pass_truth")},
         "sim_truth": f"{tmp_path}/one.h5:truth", "sim_reco": f"{tmp_path}/one.h5:reco"}
    with pytest.raises(DataError, match=r"one.h5:truth: only 1 simulated event passes truth and reco .* at least 8"):
        hepgen.unfold(method, **a, bins=8)
    n = 3000
    bad_nan = np.ones(n)
    bad_nan[17] = np.nan
    args, path = _with(files, tmp_path, zero=np.zeros(n), neg=-np.ones(n), nan=bad_nan)
    with pytest.raises(DataError, match=r"sim_mod.h5:zero \(simulation weights\): all weights are zero"):
        hepgen.unfold(method, **args, sim_weights=f"{path}:zero")
    with pytest.raises(DataError, match=r"sim_mod.h5:neg \(simulation weights\): the weights sum to -3000"):
        hepgen.unfold(method, **args, sim_weights=f"{path}:neg")
    with pytest.raises(DataError, match=r"sim_mod.h5:nan.*row 17"):
        hepgen.unfold(method, **args, sim_weights=f"{path}:nan")
    w = np.ones(n)  # only events that are not reconstructed carry weight: no response to learn
    with h5py.File(path) as f:
        w[(f["pass_reco"][:] > 0) & (f["pass_truth"][:] > 0)] = 0.0
    with pytest.raises(DataError, match=r"passing truth and reco have total weight 0"):
        hepgen.unfold(method, **args, sim_weights=w)
    with pytest.raises(DataError, match=r"data weights\): all weights are zero"):
        hepgen.unfold(method, **{**args, "pass_data": None}, data_weights=np.zeros(3000))
