"""Flows through the CLI: ``hepgen fit nsf|maf|iaf|realnvp DATA --context COLS``, ``hepgen sample RUN -n N
--context ...`` (one row for all, or one per event) and ``hepgen score RUN DATA``, whose log_prob is log p(x) in
the original units — checked against model.log_prob and against an autograd Jacobian of the whole map,
preprocessing (here a log transform) included."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

import hepgen
from hepgen.data import io
from tests.flows._helpers import autograd_log_prob
from tests.helpers import run_cli


@pytest.fixture
def events(tmp_path):
    """Positive features a, b that depend on a context column e."""
    rng = np.random.default_rng(0)
    e = rng.uniform(-1.0, 1.0, 3000)
    a = np.exp(0.5 * e + 0.3 * rng.standard_normal(3000))
    b = np.exp(-0.5 * e + 0.2 * a + 0.3 * rng.standard_normal(3000))
    path = tmp_path / "events.h5"
    io.write(path, np.column_stack([a, b, e]), columns=["a", "b", "e"])
    return path


def test_conditional_nsf_fit_sample_score(tmp_path, events, capsys):
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "fit", "nsf", events, "--context", "e", "--transforms", 2, "--hidden", "16,16",
                           "--bins", 4, "--preprocess", "log", "--epochs", 2, "--seed", 1, "--out", run, "-q")
    assert code == 0, err
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["params"]["context"] == 1 and config["params"]["hidden"] == [16, 16]
    assert config["fitted"]["columns"] == ["a", "b"] and config["fitted"]["context_columns"] == ["e"]
    model = hepgen.load(run)
    table = io.read(events)
    x, c = table.data[:, :2], table.data[:, 2:]

    # score: log p(x | e) in original units, the log preprocessing's Jacobian included
    code, _, err = run_cli(capsys, "score", run, events, "--context", "e", "-o", tmp_path / "scores.h5")
    assert code == 0, err
    assert "original units" in err and "Jacobian included" in err
    scores = io.read(tmp_path / "scores.h5")
    assert scores.columns == ["log_prob", "score"] and scores.data.shape == (3000, 2)
    with torch.no_grad():
        expected = model.log_prob(x, c).double().numpy()
    np.testing.assert_allclose(scores.data[:, 0], expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(scores.data[:, 1], -scores.data[:, 0])
    exact = autograd_log_prob(model.double(), torch.as_tensor(x[:8]), torch.as_tensor(c[:8])).detach().numpy()
    np.testing.assert_allclose(scores.data[:8, 0], exact, rtol=0, atol=1e-4)
    model = hepgen.load(run)

    # sample: one context row for every event
    code, _, err = run_cli(capsys, "sample", run, "-n", 300, "--context", "0.5", "-o", tmp_path / "s1.h5", "--seed", 3)
    assert code == 0, err
    s1 = io.read(tmp_path / "s1.h5", columns=["a", "b"])
    assert s1.data.shape == (300, 2) and (s1.data > 0).all()
    # the samples keep their context column beside the features
    assert io.read(tmp_path / "s1.h5").columns == ["a", "b", "e"]
    np.testing.assert_array_equal(io.read(tmp_path / "s1.h5", columns=["e"]).data, 0.5)
    torch.manual_seed(3)
    np.testing.assert_allclose(s1.data, model.sample(300, np.array([0.5])).numpy(), rtol=1e-6)

    # sample: one context row per event, read from a file
    ctx = np.linspace(-1.0, 1.0, 300)[:, None]
    io.write(tmp_path / "ctx.h5", {"e": ctx})
    code, _, err = run_cli(capsys, "sample", run, "-n", 300, "--context", f"{tmp_path / 'ctx.h5'}:e",
                           "-o", tmp_path / "s2.h5", "--seed", 3)
    assert code == 0, err
    torch.manual_seed(3)
    np.testing.assert_allclose(io.read(tmp_path / "s2.h5", columns=["a", "b"]).data, model.sample(300, ctx).numpy(),
                               rtol=1e-6)

    # bad contexts: one paragraph, exit 2
    code, _, err = run_cli(capsys, "sample", run, "-n", 10, "--context", "0.5,1", "-o", tmp_path / "bad.h5")
    assert code == 2 and "context" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "sample", run, "-n", 10, "--context", f"{tmp_path / 'ctx.h5'}:e",
                           "-o", tmp_path / "bad.h5")
    assert code == 2 and "rows" in err
    # without --context, score takes the model's context column 'e' from DATA by name, as fit did
    code, _, err = run_cli(capsys, "score", run, events, "-o", tmp_path / "by_name.h5")
    assert code == 0, err
    np.testing.assert_allclose(io.read(tmp_path / "by_name.h5").data, scores.data, rtol=1e-6)


@pytest.mark.parametrize("name,extra", [("maf", []), ("iaf", []), ("realnvp", []), ("nsf", ["--coupling", "true"])])
def test_every_flow_fits_samples_and_scores(tmp_path, events, capsys, name, extra):
    run = tmp_path / name
    code, _, err = run_cli(capsys, "fit", name, f"{events}", "--transforms", 2, "--hidden", "8", *extra,
                           "--epochs", 1, "--out", run, "-q")
    assert code == 0, err
    model = hepgen.load(run)
    assert model.cli_name == name and model.features == 3 and model.context == 0
    if name == "nsf":
        assert model.coupling
    code, _, err = run_cli(capsys, "sample", run, "-n", 50, "-o", tmp_path / "s.h5")
    assert code == 0, err
    samples = io.read(tmp_path / "s.h5").data
    assert samples.shape == (50, 3) and np.isfinite(samples).all()
    code, _, err = run_cli(capsys, "score", run, tmp_path / "s.h5", "-o", tmp_path / "scores.npz")
    assert code == 0, err
    with torch.no_grad():
        expected = model.log_prob(samples).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "scores.npz")["log_prob"], expected, rtol=1e-5, atol=1e-5)
