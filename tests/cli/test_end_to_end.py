"""The CLI end to end, and its promise on bad input: one paragraph, exit code 2, no traceback, no half file."""

import numpy as np
import pytest
import yaml

import hepgen
from hepgen.cli import main
from hepgen.data import io
from tests.helpers import run_cli


@pytest.fixture
def events(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.multivariate_normal([1.0, 2.0, 3.0], [[1, 0.5, 0], [0.5, 1, 0], [0, 0, 2]], size=3000)
    w = rng.uniform(0.5, 1.5, len(x))
    path = tmp_path / "events.h5"
    io.write(path, np.column_stack([x, w]), columns=["a", "b", "c", "weight"])
    return path


def test_fit_sample_score_info_end_to_end(tmp_path, events, capsys):
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "fit", "gaussian", events, "--weights", "weight", "--out", run, "--epochs", 2,
                           "--lr", 0.05, "--seed", 4, "--quiet")
    assert code == 0, err
    for name in ("config.yaml", "model.pt", "metrics.csv", "checkpoints/last.pt", "plots/loss.png"):
        assert (run / name).is_file(), name
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"] == "gaussian" and config["train"]["seed"] == 4 and config["fitted"]["columns"] == [
        "a", "b", "c"]
    code, _, err = run_cli(capsys, "sample", run, "-n", 500, "-o", tmp_path / "s.h5", "--seed", 1)
    assert code == 0, err
    samples = io.read(tmp_path / "s.h5")
    assert samples.data.shape == (500, 3) and samples.columns == ["a", "b", "c"]
    torch_model = hepgen.load(run)
    # the training file itself: the model's features a, b, c are selected by name, the weight column left out
    code, _, err = run_cli(capsys, "score", run, f"{events}", "-o", tmp_path / "train_scores.h5")
    assert code == 0, err
    train = io.read(events, columns=["a", "b", "c"]).data
    np.testing.assert_allclose(io.read(tmp_path / "train_scores.h5").data[:, 0],
                               torch_model.log_prob(train).numpy(), rtol=1e-5)
    code, _, err = run_cli(capsys, "score", run, f"{tmp_path}/s.h5", "-o", tmp_path / "scores.h5")
    assert code == 0 and "Jacobian" in err, err
    scores = io.read(tmp_path / "scores.h5")
    assert scores.columns == ["log_prob", "score"]
    np.testing.assert_allclose(scores.data[:, 0], torch_model.log_prob(samples.data).detach().numpy(), rtol=1e-5)
    code, out, _ = run_cli(capsys, "info", run)
    assert code == 0 and "gaussian" in out and "epochs     2" in out


def test_resume_flag_continues_a_run(tmp_path, events, capsys):
    run = tmp_path / "run"
    assert run_cli(capsys, "fit", "gaussian", events, "--weights", "weight", "--out", run, "--epochs", 2, "-q")[0] == 0
    code, _, err = run_cli(capsys, "fit", "gaussian", events, "--weights", "weight", "--out", run, "--epochs", 3)
    assert code == 2 and "--resume" in err
    code, _, err = run_cli(capsys, "fit", "gaussian", events, "--weights", "weight", "--out", run, "--epochs", 3,
                           "--resume")
    assert code == 0, err
    assert (run / "metrics.csv").read_text().count("\n") == 4


@pytest.mark.parametrize("argv, expected", [
    (["fit", "gaussian", "{tmp}/missing.h5"], "missing.h5"),
    (["fit", "gaussian", "{events}:nope"], "nope"),
    (["fit", "nsff", "{events}"], "did you mean 'nsf'"),
    (["fit", "gaussian", "{events}", "--preproces", "log"], "did you mean '--preprocess'"),
    (["fit", "gaussian", "{events}", "--weights", "wieght"], "wieght"),
    (["fit", "gaussian", "{events}", "--device", "tpu"], "unknown device"),
    (["sample", "{tmp}/norun", "-n", "5", "-o", "{tmp}/x.npy"], "does not exist"),
    (["data", "nosuch", "-n", "5", "-o", "{tmp}/x.h5"], "unknown data generator"),
])
def test_bad_input_exits_2_with_one_paragraph(tmp_path, events, capsys, argv, expected):
    argv = [a.format(tmp=tmp_path, events=events) for a in argv]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert expected in err and "Traceback" not in err
    assert not list(tmp_path.glob("x.*"))


def test_nan_data_names_row_and_no_output_is_left(tmp_path, events, capsys):
    x = np.random.default_rng(0).normal(size=(100, 3))
    x[42, 1] = np.nan
    io.write(tmp_path / "bad.npy", x, ) if False else np.save(tmp_path / "bad.npy", x)
    code, _, err = run_cli(capsys, "fit", "gaussian", tmp_path / "bad.npy", "--out", tmp_path / "r")
    assert code == 2 and "42" in err and "NaN" in err.replace("nan", "NaN")
    run = tmp_path / "ok"
    assert run_cli(capsys, "fit", "gaussian", events, "--weights", "weight", "--out", run, "--epochs", 1, "-q")[0] == 0
    np.save(tmp_path / "bad3.npy", np.where(np.arange(300).reshape(100, 3) == 130, np.inf, 1.0))
    code, _, err = run_cli(capsys, "score", run, tmp_path / "bad3.npy", "-o", tmp_path / "scores.h5")
    assert code == 2 and "43" in err
    assert not (tmp_path / "scores.h5").exists()


def test_config_file_is_validated_and_used(tmp_path, events, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 1\nbatch_sise: 64\n")
    code, _, err = run_cli(capsys, "fit", "gaussian", events, "-c", cfg, "--out", tmp_path / "r")
    assert code == 2 and "batch_sise" in err and "did you mean 'batch_size'" in err
    cfg.write_text("params:\n  preprocess: none\ntrain:\n  epochs: 1\n  lr: 0.02\nweights: weight\n")
    code, _, err = run_cli(capsys, "fit", "gaussian", events, "-c", cfg, "--out", tmp_path / "r", "-q")
    assert code == 0, err
    config = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert config["params"]["preprocess"] == "none" and config["train"]["lr"] == 0.02


def test_corrupted_or_foreign_checkpoint_is_refused(tmp_path, events, capsys):
    run = tmp_path / "run"
    assert run_cli(capsys, "fit", "gaussian", events, "--weights", "weight", "--out", run, "--epochs", 1, "-q")[0] == 0
    data = (run / "model.pt").read_bytes()
    (run / "model.pt").write_bytes(data[: len(data) // 2])
    code, _, err = run_cli(capsys, "sample", run, "-n", 5, "-o", tmp_path / "x.npy")
    assert code == 2 and "model.pt" in err and "Traceback" not in err
    import torch

    torch.save({"weights": torch.zeros(3)}, run / "model.pt")
    code, _, err = run_cli(capsys, "info", run)
    assert code == 2 and "not written by hepgen" in err


def test_unknown_model_is_refused_with_a_suggestion(events, capsys):
    code, _, err = run_cli(capsys, "fit", "wgan-pg", events)
    assert code == 2 and "unknown model 'wgan-pg'" in err and "did you mean 'wgan-gp'" in err


def test_fit_help_lists_the_model_hyper_parameters(capsys):
    assert main(["fit", "nsf", "--help"]) == 0
    out = capsys.readouterr().out
    assert "hyper-parameters of nsf" in out and "--tail-bound" in out and "default: 8" in out
    assert main(["fit", "-h"]) == 0
    assert "models: " in capsys.readouterr().out and "wgan-gp" in hepgen.REGISTRY
    assert main(["fit"]) == 2
    assert "needs a MODEL" in capsys.readouterr().err


def test_score_of_an_autoencoder_to_csv_has_one_column_per_feature(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    data = tmp_path / "x.h5"
    io.write(data, x, columns=["a", "b", "c"])
    run = tmp_path / "ae"
    assert main(["fit", "ae", str(data), "--out", str(run), "--epochs", "1", "--latent", "2", "--quiet"]) == 0
    assert main(["score", str(run), str(data), "-o", str(tmp_path / "s.csv")]) == 0
    table = io.read(tmp_path / "s.csv")
    assert table.columns == ["score", "score_per_feature_a", "score_per_feature_b", "score_per_feature_c"]
    expected = hepgen.load(run).score_outputs(x)
    np.testing.assert_allclose(table.data[:, 0], expected["score"].numpy(), rtol=1e-5)
    np.testing.assert_allclose(table.data[:, 1:], expected["score_per_feature"].numpy(), rtol=1e-5)
