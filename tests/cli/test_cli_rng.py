"""`hepgen sample` and `hepgen score` draw on a seeded fork of torch's RNG: the same --seed gives the same
output, and main() called from Python leaves the caller's RNG state as it was."""

import h5py
import numpy as np
import torch

import hepgen
from hepgen.cli import main


def test_sample_and_score_are_seeded_and_leave_the_callers_rng_alone(tmp_path):
    x = np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32)
    data = tmp_path / "x.npy"
    np.save(data, x)
    run = tmp_path / "run"
    hepgen.Gaussian(2).fit(x, epochs=1, quiet=True, seed=0).save(run)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    outs = []
    for k in range(2):
        out = tmp_path / f"s{k}.h5"
        assert main(["sample", str(run), "-n", "50", "--seed", "7", "-o", str(out), "-q"]) == 0
        with h5py.File(out) as f:
            outs.append(f["samples"][()])
    assert main(["score", str(run), str(data), "--seed", "7", "-o", str(tmp_path / "scores.h5"), "-q"]) == 0
    assert torch.equal(torch.random.get_rng_state(), before)
    np.testing.assert_array_equal(outs[0], outs[1])
