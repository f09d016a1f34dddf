"""A run killed with SIGKILL mid-epoch and resumed ends with the weights of an uninterrupted run."""

import torch

import hepgen
import hepgen.train.rundir
from tests.train.run_fit import fit, kill_in_third_epoch

def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    run = tmp_path / "run"
    # 1200 events / 60 = 20 steps per epoch at ~25 ms: about half a second per epoch
    kill_in_third_epoch("regressor", run, sleep=0.025, pause=0.2)
    ckpt = hepgen.train.rundir.load_checkpoint(run / "checkpoints" / "last.pt")
    assert ckpt["state"]["epoch"] in (2, 3)

    resumed = fit("regressor", str(run), resume=True, sleep=0.025)  # the same hyper-parameters as the run
    uninterrupted = fit("regressor", None)
    for (name, a), b in zip(resumed.state_dict().items(), uninterrupted.state_dict().values()):
        assert torch.equal(a, b), name
    assert len(resumed.history_) == 4
    assert not list(run.rglob("*.tmp"))  # a kill may leave temporaries; the resume removes them
    assert hepgen.load(run).state_dict()["net.0.weight"].equal(uninterrupted.net[0].weight)
