"""The GAN family from the command line: fit with loss / k / architecture options, conditional fits and
samples with --context, CycleGAN on two files, and the outputs checked against the Python API."""

import csv

import numpy as np
import pytest
import torch
import yaml

import hepgen
from hepgen.cli import main
from hepgen.data import io


@pytest.fixture
def events(tmp_path):
    """x0, x1 depend on a context column c: x ~ N((c, −c), 0.3²)."""
    rng = np.random.default_rng(0)
    c = rng.uniform(0.0, 2.0, 1200)
    x = np.column_stack([c, -c]) + 0.3 * rng.normal(size=(1200, 2))
    path = tmp_path / "events.h5"
    io.write(path, np.column_stack([x, c]), columns=["x0", "x1", "c"])
    io.write(tmp_path / "plain.h5", x, columns=["x0", "x1"])
    return path


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    _, err = capsys.readouterr()
    return code, err


def _metrics(run):
    with open(run / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("name, options, loss, k", [
    ("gan", ["--loss", "minimax", "--critic-steps", "3", "--hidden", "16,8"], "minimax", 3),
    ("wgan", [], "wgan", 5),
    ("wgan-gp", ["--critic-steps", "2", "--spectral-norm", "false", "--ema", "0.9"], "wgan-gp", 2),
])
def test_fit_with_loss_k_and_architecture_then_sample_equals_the_api(tmp_path, events, capsys, name, options, loss, k):
    run = tmp_path / name
    code, err = run_cli(capsys, "fit", name, tmp_path / "plain.h5", "--out", run, "--epochs", 2, "--batch-size", 100,
                        "--seed", 1, "-q", *options)
    assert code == 0, err
    params = yaml.safe_load((run / "config.yaml").read_text())["params"]
    assert params["loss"] == loss and params["critic_steps"] == k
    if name == "gan":
        assert params["hidden"] == [16, 8]
    rows = _metrics(run)
    assert len(rows) == 2
    for key in ("train_critic_loss", "train_generator_loss", "train_critic_d_real", "train_critic_d_fake",
                "train_generator_grad_norm") + (("train_critic_wasserstein",) if loss.startswith("wgan") else ()):
        assert np.isfinite(float(rows[-1][key])), key
    code, err = run_cli(capsys, "sample", run, "-n", 300, "-o", tmp_path / "s.npy", "--seed", 3)
    assert code == 0, err
    samples = io.read(tmp_path / "s.npy").data
    model = hepgen.load(run)
    torch.manual_seed(3)
    expected = model.sample(300).numpy()
    np.testing.assert_allclose(samples, expected, rtol=1e-6, atol=1e-6)


def test_conditional_gan_fit_and_sample_with_context(tmp_path, events, capsys):
    run = tmp_path / "cgan"
    code, err = run_cli(capsys, "fit", "cgan", events, "--context", "c", "--out", run, "--epochs", 20,
                        "--batch-size", 100, "--lr", "2e-3", "--hidden", "32,32", "--conditioning", "projection", "-q")
    assert code == 0, err
    model = hepgen.load(run)
    assert model.context == 1 and model.columns_ == ["x0", "x1"] and model.context_columns_ == ["c"]
    # one context row for all events, written through the CLI, equals the API's draw
    code, err = run_cli(capsys, "sample", run, "-n", 2000, "--context", "1.5", "-o", tmp_path / "c15.npy")
    assert code == 0, err
    written = io.read(tmp_path / "c15.npy").data
    np.testing.assert_array_equal(written[:, 2], 1.5)  # the context column is kept beside the features
    at_15 = written[:, :2]
    torch.manual_seed(0)
    np.testing.assert_allclose(at_15, model.sample(2000, context=np.array([[1.5]], dtype=np.float32)).numpy(),
                               rtol=1e-6, atol=1e-6)
    # a context per event from a file
    io.write(tmp_path / "ctx.npy", np.full((2000, 1), 0.25, dtype=np.float32))
    code, err = run_cli(capsys, "sample", run, "-n", 2000, "--context", tmp_path / "ctx.npy", "-o",
                        tmp_path / "c025.npy")
    assert code == 0, err
    at_025 = io.read(tmp_path / "c025.npy").data[:, :2]
    # the generator follows its context: the x0 means move by about the context difference (1.25)
    shift = at_15[:, 0].mean() - at_025[:, 0].mean()
    assert 0.95 < shift < 1.55
    # cgan without a context is refused with the fix in the message
    code, err = run_cli(capsys, "fit", "cgan", tmp_path / "plain.h5", "--out", tmp_path / "bad", "-q")
    assert code == 2 and "--context" in err and "Traceback" not in err


def test_cyclegan_takes_domain_b_from_an_option_and_translates_through_score(tmp_path, capsys):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(800, 2))
    b = rng.normal(size=(800, 3)) * [1.0, 2.0, 0.5] + [3.0, 0.0, -1.0]
    io.write(tmp_path / "a.h5", a, columns=["u", "v"])
    io.write(tmp_path / "b.h5", b, columns=["p", "q", "r"])
    run = tmp_path / "cyc"
    code, err = run_cli(capsys, "fit", "cyclegan", tmp_path / "a.h5", "--domain-b", tmp_path / "b.h5",
                        "--identity-weight", "0", "--hidden", "16,16", "--out", run, "--epochs", 2, "-q")
    assert code == 0, err
    model = hepgen.load(run)
    assert (model.features, model.features_b) == (2, 3)
    rows = _metrics(run)
    assert {"train_generator_cycle_a", "train_generator_cycle_b", "val_cycle_a"} <= set(rows[-1])
    # translation A -> B is what 'hepgen score' writes, equal to the API's transform
    code, err = run_cli(capsys, "score", run, tmp_path / "a.h5", "-o", tmp_path / "t.npz")
    assert code == 0, err
    out = np.load(tmp_path / "t.npz")
    with torch.no_grad():
        np.testing.assert_allclose(out["translated"], model.transform(a.astype(np.float32)).numpy(), rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(out["cycle_error"], model.cycle_error(a.astype(np.float32)).numpy(), rtol=1e-5)
    assert out["translated"].shape == (800, 3)
    # without domain B, and when asked to sample, the user is told what to do
    code, err = run_cli(capsys, "fit", "cyclegan", tmp_path / "a.h5", "--out", tmp_path / "nob", "-q")
    assert code == 2 and "--domain-b" in err
    code, err = run_cli(capsys, "sample", run, "-n", 5, "-o", tmp_path / "x.npy")
    assert code == 2 and "hepgen score" in err and not (tmp_path / "x.npy").exists()
