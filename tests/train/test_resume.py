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


def test_resuming_another_model_names_the_differing_keys_briefly(tmp_path):
    """A resume with other hyper-parameters is refused naming the parameter and, for a mapping (a CaloChallenge
    geometry, a preprocessing spec), the entries that differ, each value a short excerpt, not the whole record."""
    import numpy as np
    import pytest

    x = np.random.default_rng(0).lognormal(size=(200, 40))
    run_spec = {"0": "log", **{str(i): "standard" for i in range(1, 40)}}  # a long record
    hepgen.Gaussian(40, preprocess=run_spec).fit(x, epochs=1, quiet=True, run_dir=tmp_path / "run")
    other = {**run_spec, "0": "standard"}
    with pytest.raises(hepgen.ConfigError) as error:
        hepgen.Gaussian(40, preprocess=other).fit(x, epochs=2, quiet=True, run_dir=tmp_path / "run", resume=True)
    message = str(error.value)
    assert "preprocess" in message and "'0'" in message and "'log'" in message, message
    assert len(message) < 400, message
