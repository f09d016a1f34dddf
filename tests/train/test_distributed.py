"""DDP: two gloo processes on the CPU train to the weights of one process on the same global batch."""

import subprocess
import sys
from pathlib import Path

import torch

import hepgen
import hepgen.train.rundir
from tests.train.run_fit import fit

SCRIPT = Path(__file__).with_name("run_fit.py")


def test_two_gloo_processes_match_one_process(tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(SCRIPT), "regressor", str(run), "fresh", '{"device": "cpu"}']
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    # written by rank 0 only, loadable in a single process without DDP
    ddp_model = hepgen.load(run)
    single = fit("regressor", None, device="cpu")
    for (name, a), b in zip(ddp_model.state_dict().items(), single.state_dict().values()):
        if a.is_floating_point():
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0, msg=name)
    config = hepgen.train.rundir.RunDir(run).read_config()
    assert config["train"]["world_size"] == 2
    # the weighted mean over the global batch: the logged training loss agrees too
    csv = (run / "metrics.csv").read_text().splitlines()
    header, last = csv[0].split(","), csv[-1].split(",")
    assert abs(float(last[header.index("train_loss")]) - single.history_[-1]["train_loss"]) < 1e-3
