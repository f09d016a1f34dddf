"""The training engine: seeding, weights, player schedules, NaN stops, early stopping, streaming."""

import sys

import numpy as np
import pytest
import torch

import hepgen
from hepgen.data import io
from hepgen.train.rundir import load_checkpoint
from tests.train.toy_models import Duel, Regressor


def regression_data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = np.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2]
    return np.column_stack([x, y]).astype(np.float32)


FIT = dict(epochs=3, batch_size=100, lr=1e-2, quiet=True)


def test_same_seed_gives_identical_weights_and_other_seed_does_not():
    x = regression_data()
    a = Regressor(5).fit(x, seed=7, **FIT)
    b = Regressor(5).fit(x, seed=7, **FIT)
    c = Regressor(5).fit(x, seed=8, **FIT)
    for (name, pa), pb, pc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.net[0].weight, c.net[0].weight)


def test_constant_weights_change_nothing_and_weights_move_the_loss():
    x = regression_data()
    plain = Regressor(5).fit(x, seed=1, **FIT)
    doubled = Regressor(5).fit(x, seed=1, weights=np.full(len(x), 2.0), **FIT)
    torch.testing.assert_close(plain.net[0].weight, doubled.net[0].weight, rtol=1e-5, atol=1e-6)
    w = np.where(x[:, 0] > 0, 5.0, 0.1)
    skewed = Regressor(5).fit(x, seed=1, weights=w, **FIT)
    assert not torch.allclose(plain.net[0].weight, skewed.net[0].weight, atol=1e-3)
    # the logged validation loss is the weighted mean over the validation events
    assert skewed.history_[-1]["val_loss"] != pytest.approx(plain.history_[-1]["val_loss"], rel=1e-3)


def test_second_player_steps_every_k_batches():
    x = regression_data(1000)
    # 900 training events / 100 = 9 batches per epoch: first player 18 steps, second 6
    ckpt_model = Duel(5, k=3)
    engine = hepgen.Engine(epochs=2, batch_size=100, seed=0, quiet=True, monitor=None)
    engine.fit(ckpt_model, x)
    assert int(engine.optimisers["first"].state[ckpt_model.a.weight]["step"]) == 18
    assert int(engine.optimisers["second"].state[ckpt_model.b.weight]["step"]) == 6
    assert "train_second_loss" in ckpt_model.history_[-1] and "val_first_loss" in ckpt_model.history_[-1]


def test_nan_loss_stops_with_epoch_step_and_loss_name_and_keeps_last_good_checkpoint(tmp_path):
    x = regression_data(1000)
    # 9 batches per epoch: the 12th step is epoch 2, step 3
    model = Regressor(5, nan_at=(12,))
    with pytest.raises(hepgen.TrainingError) as info:
        model.fit(x, run_dir=tmp_path / "run", seed=0, **{**FIT, "epochs": 4})
    message = str(info.value)
    assert "epoch 2, step 3" in message and "'loss'" in message and "last.pt" in message
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt["state"]["epoch"] == 1 and all(torch.isfinite(v).all() for v in ckpt["state_dict"].values()
                                               if v.is_floating_point())


def test_early_stopping_restores_the_best_epoch(tmp_path):
    x = regression_data(1000)
    values = iter([3.0, 2.0, 1.0, 1.5, 2.5, 4.0, 5.0, 6.0])
    seen = {}

    def monitor(model, val):
        v = next(values)
        seen[v] = {k: t.clone() for k, t in model.state_dict().items()}
        return v

    monitor.__name__ = "scripted"
    model = Regressor(5).fit(x, run_dir=tmp_path / "run", seed=0, monitor=monitor, patience=2,
                             **{**FIT, "epochs": 8})
    assert len(model.history_) == 5  # best at epoch 3, two epochs without improvement
    for k, v in model.state_dict().items():
        assert torch.equal(v, seen[1.0][k]), k
    reloaded = hepgen.load(tmp_path / "run")
    torch.testing.assert_close(reloaded.net[0].weight, seen[1.0]["net.0.weight"])
    assert (tmp_path / "run" / "metrics.csv").read_text().count("\n") == 6


def test_sample_metric_monitor_picks_the_best_epoch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 2)) * [1.0, 3.0] + [2.0, -1.0]
    model = hepgen.Gaussian(2).fit(x, epochs=4, batch_size=200, lr=0.05, monitor="w1", seed=0, quiet=True)
    w1 = [row["monitor"] for row in model.history_]
    assert all(np.isfinite(w1)) and w1[-1] < w1[0]


def test_streamed_file_training_matches_numpy(tmp_path):
    rng = np.random.default_rng(5)
    cov = np.array([[1.0, 0.6], [0.6, 2.0]])
    x = rng.multivariate_normal([3.0, -1.0], cov, size=12_000)
    w = rng.uniform(0.5, 2.0, len(x))
    io.write(tmp_path / "events.h5", np.column_stack([x, w]), columns=["a", "b", "w"])
    model = hepgen.Gaussian(2).fit(f"{tmp_path}/events.h5", weights="w", stream=True, chunk_size=1000,
                                   epochs=6, batch_size=200, lr=0.05, optimizer="sgd", scheduler="cosine",
                                   val_fraction=0.0, monitor=None, quiet=True)
    assert model.columns_ == ["a", "b"]
    np.testing.assert_allclose(model.mean_.numpy(), np.average(x, axis=0, weights=w), atol=0.03)
    np.testing.assert_allclose(model.covariance_.numpy(), np.cov(x.T, aweights=w, bias=True), atol=0.06)


def test_reloaded_model_gives_identical_log_prob_and_samples(tmp_path):
    x = np.random.default_rng(0).normal(size=(2000, 3)) @ np.array([[1, 0.5, 0], [0, 1, 0.3], [0, 0, 1]])
    model = hepgen.Gaussian(3).fit(x, epochs=2, batch_size=200, lr=0.05, seed=0, quiet=True)
    model.save(tmp_path / "run")
    again = hepgen.load(tmp_path / "run")
    assert torch.equal(model.log_prob(x[:100]), again.log_prob(x[:100]))
    torch.manual_seed(3)
    a = model.sample(100)
    torch.manual_seed(3)
    assert torch.equal(a, again.sample(100))


def test_bad_settings_are_config_errors():
    with pytest.raises(hepgen.ConfigError, match="scheduler"):
        hepgen.Engine(scheduler="linear")
    with pytest.raises(hepgen.ConfigError, match="CUDA"):
        hepgen.Engine(device="cuda") if not torch.cuda.is_available() else (_ for _ in ()).throw(
            hepgen.ConfigError("CUDA"))
    with pytest.raises(hepgen.ConfigError, match="monitor"):
        hepgen.Gaussian(2).fit(np.random.rand(100, 2), epochs=1, monitor="val_nothing", quiet=True)


def test_existing_run_is_not_overwritten_without_resume(tmp_path):
    x = np.random.default_rng(0).normal(size=(500, 2))
    hepgen.Gaussian(2).fit(x, epochs=1, run_dir=tmp_path / "run", quiet=True)
    with pytest.raises(hepgen.ConfigError, match="--resume"):
        hepgen.Gaussian(2).fit(x, epochs=1, run_dir=tmp_path / "run", quiet=True)


def test_fit_selects_columns_of_a_file_like_the_cli(tmp_path):
    from hepgen.data import io

    rng = np.random.default_rng(0)
    x = rng.normal(size=(800, 3)) * [1.0, 2.0, 3.0] + [0.0, 5.0, -1.0]
    io.write(tmp_path / "d.h5", {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2]})
    model = hepgen.Gaussian(2).fit(str(tmp_path / "d.h5"), columns=["b", "c"], epochs=1, quiet=True, val_fraction=0)
    assert model.columns_ == ["b", "c"]
    np.testing.assert_allclose(model.preprocessor.shift.numpy(), x[:, 1:].mean(0), rtol=1e-5)
    model = hepgen.Gaussian(2).fit(str(tmp_path / "d.h5"), exclude=["a"], epochs=1, quiet=True, val_fraction=0)
    assert model.columns_ == ["b", "c"]


def test_a_fit_failing_in_its_first_epoch_writes_leaves_nothing(tmp_path, monkeypatch):
    import hepgen.train.recorder as recorder_module

    def full_disk(*args, **kwargs):
        raise hepgen.CheckpointError("cannot write last.pt: No space left on device")

    monkeypatch.setattr(recorder_module, "save_checkpoint", full_disk)
    x = np.random.default_rng(0).normal(size=(300, 2))
    with pytest.raises(hepgen.CheckpointError, match="No space"):
        hepgen.Gaussian(2).fit(x, epochs=2, run_dir=tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def test_fit_shows_an_epoch_bar_with_the_loss_on_a_terminal_and_none_when_quiet(monkeypatch, capsys):
    x = np.random.default_rng(0).normal(size=(400, 2))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    hepgen.Gaussian(2).fit(x, epochs=3, quiet=False)
    err = capsys.readouterr().err
    assert "fit: 100%" in err and "3/3" in err and "train_loss=" in err and "epoch 3/3" in err
    hepgen.Gaussian(2).fit(x, epochs=3, quiet=True)
    assert capsys.readouterr().err == ""


def test_resume_removes_the_temporaries_a_killed_run_left(tmp_path):
    x = np.random.default_rng(0).normal(size=(300, 2))
    run = tmp_path / "run"
    hepgen.Gaussian(2).fit(x, epochs=1, run_dir=run, quiet=True, val_fraction=0, monitor=None)
    (run / "model.pt").unlink()  # as if killed before the end
    left = [run / "checkpoints" / ".best.pt.abc123.tmp", run / ".metrics.csv.x1y2.tmp"]
    for path in left:
        path.write_bytes(b"")
    hepgen.Gaussian(2).fit(x, epochs=2, run_dir=run, resume=True, quiet=True, val_fraction=0, monitor=None)
    assert not any(p.exists() for p in left) and not list(run.rglob("*.tmp"))
    assert (run / "model.pt").stat().st_mode & 0o777 == (run / "metrics.csv").stat().st_mode & 0o777


def test_a_player_that_an_epoch_is_too_short_to_step_is_warned_about():
    x = regression_data(500)
    # 450 training events / 200 = 3 batches per epoch with k = 4: the second player never steps, and says so
    model = Duel(5, k=4)
    engine = hepgen.Engine(epochs=2, batch_size=200, seed=0, quiet=True, monitor=None)
    with pytest.warns(UserWarning, match="second step every 4 batches but an epoch has 3"):
        engine.fit(model, x)
    assert int(engine.optimisers["first"].state[model.a.weight]["step"]) == 6
    assert not engine.optimisers["second"].state


def test_fit_leaves_the_callers_global_rng_as_it_was():
    """Library calls never reseed the global RNG: fit(seed=) trains on a fork; the same seed, the same model."""
    x = np.random.default_rng(0).normal(size=(256, 2)).astype(np.float32)
    b, c = hepgen.NSF(2, transforms=1, hidden=(8,)), hepgen.NSF(2, transforms=1, hidden=(8,))
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    b.fit(x, epochs=1, seed=5, quiet=True, batch_size=64)
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.rand(7)  # another caller state: the fit does not depend on it
    c.fit(x, epochs=1, seed=5, quiet=True, batch_size=64)
    for p, q in zip(b.parameters(), c.parameters()):
        assert torch.equal(p, q)
