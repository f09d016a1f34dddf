"""train/rundir.py, the one owner of the run directory: config sections merge, metrics.csv round-trips (empty
cells included), best_epoch, check_new refuses what it must before anything is written, checkpoints load with
weights_only, and temporaries a killed writer left are removed (hepgen.files.remove_stale_temporaries)."""

import os
import pickle
import time
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from hepgen._version import __version__
from hepgen.errors import CheckpointError, ConfigError
from hepgen.files import STALE_AFTER_S, remove_stale_temporaries
from hepgen.train.rundir import SECTIONS, RunDir, load_checkpoint, save_checkpoint


def test_config_sections_merge_in_order_and_record_the_version(tmp_path):
    run = RunDir(tmp_path / "run")
    run.write_config(model="nsf", params={"features": 3, "hidden": [8, 8]})
    run.write_config(train={"epochs": 4, "lr": 0.01}, params=None)  # None leaves a section alone
    run.write_config(fitted={"columns": ["a", "b", "c"]})
    config = run.read_config()
    assert config["model"] == "nsf" and config["params"] == {"features": 3, "hidden": [8, 8]}
    assert config["train"] == {"epochs": 4, "lr": 0.01} and config["fitted"]["columns"] == ["a", "b", "c"]
    assert config["hepgen_version"] == __version__
    keys = list(yaml.safe_load(run.config_path.read_text()))
    assert keys == [k for k in SECTIONS if k in keys]
    run.write_config(params={"features": 4})  # a section is replaced as a whole
    assert run.read_config()["params"] == {"features": 4}


def test_read_config_refusals(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(CheckpointError, match="config.yaml is missing"):
        run.read_config()
    run.config_path.write_text("model: [unclosed\n")
    with pytest.raises(CheckpointError, match="not valid YAML"):
        run.read_config()
    run.config_path.write_text("- a list\n")
    with pytest.raises(CheckpointError, match="needs 'model' and 'params'"):
        run.read_config()
    run.config_path.write_text("model: !!python/object/apply:os.system ['echo hacked']\nparams: {}\n")
    with pytest.raises(CheckpointError, match="not valid YAML"):  # yaml.safe_load: no code runs
        run.read_config()


def test_metrics_round_trip_with_empty_cells_and_best_epoch(tmp_path):
    run = RunDir(tmp_path)
    assert run.read_metrics() == [] and run.best_epoch() is None
    history = [{"epoch": 1, "loss": 1.25, "monitor": 0.9},
               {"epoch": 2, "loss": 0.123456789012, "val_loss": 0.5, "monitor": float("nan")},
               {"epoch": 3, "loss": -3e-12, "val_loss": None, "monitor": 0.4},
               {"epoch": 4, "loss": 2.0, "monitor": 0.7, "extra": 7.0}]
    run.write_metrics(history)
    header = run.metrics_path.read_text().splitlines()[0]
    assert header == "epoch,loss,monitor,val_loss,extra"  # columns in order of first appearance
    rows = run.read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["val_loss"] is None and rows[2]["val_loss"] is None and rows[0]["extra"] is None
    assert rows[1]["loss"] == pytest.approx(0.123456789012, rel=1e-9) and rows[2]["loss"] == -3e-12
    assert rows[3]["extra"] == 7.0
    assert run.best_epoch() == (0.4, 3)  # NaN and missing monitor values are skipped


def test_check_new_refuses_files_and_existing_runs_and_writes_nothing(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="existing file"):
        RunDir(a_file).check_new()
    done = tmp_path / "done"
    done.mkdir()
    (done / "model.pt").write_bytes(b"")
    with pytest.raises(ConfigError, match="already holds a run"):
        RunDir(done).check_new()
    killed = tmp_path / "killed"
    (killed / "checkpoints").mkdir(parents=True)
    (killed / "checkpoints" / "last.pt").write_bytes(b"")
    with pytest.raises(ConfigError, match="--resume"):
        RunDir(killed).check_new()
    fresh = tmp_path / "new" / "run"
    RunDir(fresh).check_new()
    assert not (tmp_path / "new").exists()  # checks create nothing
    with pytest.raises(ConfigError, match="cannot write"):
        RunDir(a_file / "below").check_new()


def test_check_new_refuses_a_read_only_place(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root writes into read-only directories (CI runs as root); procfs refuses root
        locked.chmod(0o700)
        locked = Path("/proc/self")
    try:
        with pytest.raises(ConfigError, match="cannot write"):
            RunDir(locked / "run").check_new()
    finally:
        (tmp_path / "locked").chmod(0o700)


def test_checkpoints_round_trip_and_refuse_foreign_or_code_carrying_files(tmp_path):
    path = save_checkpoint({"format": "hepgen", "version": 1, "model": "gaussian",
                            "state_dict": {"loc": torch.arange(3.0)}}, tmp_path / "c.pt")
    torch.testing.assert_close(load_checkpoint(path)["state_dict"]["loc"], torch.arange(3.0))
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weights": torch.ones(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not written by hepgen"):
        load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "truncated.pt").write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="not a hepgen checkpoint: it is truncated"):
        load_checkpoint(tmp_path / "truncated.pt")

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"format": "hepgen", "state_dict": Payload()}, fh, protocol=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's pickle-protocol warnings stay inside hepgen
        with pytest.raises(CheckpointError, match="evil.pt is not a hepgen checkpoint") as refused:
            load_checkpoint(tmp_path / "evil.pt")
    assert "weights_only" not in str(refused.value)  # never the advice to load it with weights_only=False
    assert not (tmp_path / "pwned").exists()


def _temporary(directory, name, age_s):
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_stale_temporaries_are_removed_and_fresh_ones_kept(tmp_path):
    run = RunDir(tmp_path / "run")
    old = [_temporary(run.path, ".model.pt.a1b2.tmp", 2 * STALE_AFTER_S),
           _temporary(run.checkpoints, ".best.pt.x9y8.tmp", 10 * STALE_AFTER_S),
           _temporary(run.plots, ".loss.png.qq.png.tmp", 3 * STALE_AFTER_S)]
    fresh = _temporary(run.checkpoints, ".last.pt.c3d4.tmp", 1.0)  # a writer still at work
    other = [_temporary(run.path, "notes.tmp", 10 * STALE_AFTER_S), _temporary(run.path, "config.yaml", 1e4)]
    run.clean()
    assert not any(p.exists() for p in old)
    assert fresh.exists() and all(p.exists() for p in other)
    # by name: only the temporaries of that file
    a = _temporary(tmp_path, ".out.h5.1.tmp", 2 * STALE_AFTER_S)
    b = _temporary(tmp_path, ".other.h5.2.tmp", 2 * STALE_AFTER_S)
    assert remove_stale_temporaries(tmp_path, "out.h5") == [a]
    assert b.exists() and not a.exists()
    assert remove_stale_temporaries(tmp_path / "nowhere") == []
