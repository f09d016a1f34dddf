"""Training without data: a model whose loss comes from a target it evaluates (reverse KL), run by the engine
with its steps, schedules, NaN guard, checkpoints, resume (bit-exact after SIGKILL), early stopping and DDP."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import hepgen
import hepgen.train.rundir
from tests.train.run_fit import fit, kill_in_third_epoch
from tests.train.toy_models import Regressor, ReverseKL

SCRIPT = Path(__file__).with_name("run_fit.py")


def test_reverse_kl_reaches_the_closed_form_optimum_and_logs_per_epoch(tmp_path):
    model = ReverseKL(2, target_mean=2.0, target_std=0.5)
    model.fit(None, steps_per_epoch=40, epochs=15, batch_size=256, lr=5e-2, seed=0, quiet=True,
              scheduler="cosine", run_dir=tmp_path / "run")
    torch.testing.assert_close(model.loc.detach(), torch.full((2,), 2.0), atol=0.05, rtol=0)
    torch.testing.assert_close(model.log_scale.detach().exp(), torch.full((2,), 0.5), atol=0.03, rtol=0)
    # KL(q||p) >= 0 with equality at the optimum: the last epochs' mean loss is close to 0
    assert len(model.history_) == 15 and abs(model.history_[-1]["train_loss"]) < 0.02
    assert model.history_[0]["train_loss"] > 1.0
    config = hepgen.train.rundir.RunDir(tmp_path / "run").read_config()
    assert config["data"]["data_free"] is True and config["data"]["steps_per_epoch"] == 40
    assert config["train"]["steps_per_epoch"] == 40
    reloaded = hepgen.load(tmp_path / "run")
    assert torch.equal(reloaded.loc, model.loc)


def test_data_free_needs_steps_and_data_models_need_data():
    with pytest.raises(hepgen.ConfigError, match="steps_per_epoch"):
        ReverseKL(2).fit(None, epochs=1, quiet=True)
    with pytest.raises(hepgen.ConfigError, match="without input events"):
        ReverseKL(2).fit(np.zeros((10, 2)), epochs=1, steps_per_epoch=2, quiet=True)
    with pytest.raises(hepgen.ConfigError, match="learns from data"):
        Regressor(3).fit(None, epochs=1, steps_per_epoch=2, quiet=True)


def test_nan_guard_and_early_stopping_work_without_data(tmp_path):
    # a target of zero width makes log p = -inf at once: the guard names epoch, step and the loss
    with pytest.raises(hepgen.TrainingError, match=r"epoch 1, step 1.*'loss'"):
        ReverseKL(2, target_std=0.0).fit(None, steps_per_epoch=3, epochs=2, quiet=True)
    # an optimiser that cannot move (lr tiny) stops after `patience` epochs of no improvement on train_loss
    model = ReverseKL(2).fit(None, steps_per_epoch=5, epochs=30, lr=1e-9, patience=2, quiet=True, seed=1)
    assert len(model.history_) < 30 and all("monitor" in row for row in model.history_)


def test_same_seed_same_weights_other_seed_other_weights():
    a = ReverseKL(2).fit(None, steps_per_epoch=5, epochs=2, seed=4, quiet=True)
    b = ReverseKL(2).fit(None, steps_per_epoch=5, epochs=2, seed=4, quiet=True)
    c = ReverseKL(2).fit(None, steps_per_epoch=5, epochs=2, seed=5, quiet=True)
    assert torch.equal(a.loc, b.loc) and not torch.equal(a.loc, c.loc)


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    run = tmp_path / "run"
    kill_in_third_epoch("reverse-kl", run, sleep=0.02, pause=0.15)
    ckpt = hepgen.train.rundir.load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["state"]["epoch"] in (2, 3)
    resumed = fit("reverse-kl", str(run), resume=True, sleep=0.02)
    uninterrupted = fit("reverse-kl", None)
    for (name, a), b in zip(resumed.state_dict().items(), uninterrupted.state_dict().values()):
        assert torch.equal(a, b), name
    assert len(resumed.history_) == 4
    assert [r["train_loss"] for r in resumed.history_] == [r["train_loss"] for r in uninterrupted.history_]


def test_two_gloo_processes_train_one_data_free_model(tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(SCRIPT), "reverse-kl", str(run), "fresh", '{"device": "cpu", "epochs": 12}']
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    model = hepgen.load(run)
    config = hepgen.train.rundir.RunDir(run).read_config()
    assert config["train"]["world_size"] == 2
    # each rank draws its own 32 events per step (global batch 64): the fit reaches the optimum
    torch.testing.assert_close(model.loc.detach(), torch.full((2,), 2.0), atol=0.1, rtol=0)
    assert abs(math.exp(float(model.log_scale.detach()[0])) - 0.5) < 0.06
    # and differs from a one-process run, whose 64 draws per step are one stream, not two
    single = fit("reverse-kl", None, epochs=12)
    assert not torch.equal(single.loc, model.loc)


def test_cli_fits_a_data_free_model_without_data(tmp_path, capsys):
    from hepgen.cli import main

    run = tmp_path / "r"
    assert main(["fit", "test-reverse-kl", "--steps-per-epoch", "20", "--epochs", "6", "--lr", "0.05",
                 "--batch-size", "128", "--out", str(run), "-q"]) == 0, capsys.readouterr().err
    model = hepgen.load(run)
    assert abs(float(model.loc.detach().mean()) - 2.0) < 0.2
    assert (run / "plots" / "loss.png").is_file()
    assert main(["fit", "test-reverse-kl", "--epochs", "1", "--out", str(tmp_path / "s"), "-q"]) == 2
    assert "--steps-per-epoch" in capsys.readouterr().err and not (tmp_path / "s").exists()
