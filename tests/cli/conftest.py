"""Runs the CLI tests share (fitted once per test session of tests/cli): a named gaussian on a flat ROOT tree
with a weight branch, a MAF conditioned on a named context column, and an unnamed gaussian on a .npy array."""

import numpy as np
import pytest
import uproot

from hepgen.cli import main
from hepgen.data import io


@pytest.fixture(scope="package")
def flat(tmp_path_factory):
    """The issue's repro: a flat ROOT tree of 4 features and a weight branch, and a gaussian fitted on it."""
    tmp = tmp_path_factory.mktemp("flat")
    rng = np.random.default_rng(3)
    x = rng.multivariate_normal([1.0, -1.0, 0.5, 2.0], np.diag([1.0, 2.0, 0.5, 1.5]), size=4000).astype(np.float32)
    w = rng.uniform(0.5, 1.5, len(x)).astype(np.float32)
    with uproot.recreate(tmp / "flat.root") as f:
        f["events"] = {"a": x[:, 0], "b": x[:, 1], "weight": w, "c": x[:, 2], "d": x[:, 3]}
    assert main(["fit", "gaussian", f"{tmp / 'flat.root'}:events", "--weights", "weight", "-o", str(tmp / "run"),
                 "--epochs", "1", "--lr", "0.05", "-q"]) == 0
    return tmp, x, w


@pytest.fixture(scope="package")
def conditional(tmp_path_factory):
    """A tiny MAF conditioned on a named context column 'theta'."""
    tmp = tmp_path_factory.mktemp("cond")
    rng = np.random.default_rng(5)
    theta = rng.uniform(-1, 1, 3000)
    x = np.column_stack([theta + 0.3 * rng.normal(size=3000), rng.normal(size=3000)])
    io.write(tmp / "train.h5", np.column_stack([x, theta, rng.uniform(size=3000)]),
             columns=["x", "y", "theta", "extra"])
    assert main(["fit", "maf", str(tmp / "train.h5"), "--context", "theta", "--exclude", "extra", "-o",
                 str(tmp / "run"), "--epochs", "1", "--transforms", "1", "--hidden", "8", "-q"]) == 0
    return tmp


@pytest.fixture(scope="package")
def unnamed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("unnamed")
    np.save(tmp / "x.npy", np.random.default_rng(1).normal(size=(1500, 3)).astype(np.float32))
    assert main(["fit", "gaussian", str(tmp / "x.npy"), "-o", str(tmp / "run"), "--epochs", "1", "-q"]) == 0
    return tmp
