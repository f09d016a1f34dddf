"""train/monitor.py: the sample metrics the engine can monitor, against scipy on the same samples, and the
training RNG stream left where it was."""

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.stats import wasserstein_distance

import hepgen
from hepgen.data.loader import Events
from hepgen.train.monitor import SAMPLE_METRICS, sample_metric


@pytest.fixture
def model_and_val():
    model = hepgen.Gaussian(3, preprocess="none")
    with torch.no_grad():
        model.loc.copy_(torch.tensor([0.3, -0.5, 1.0]))
        model.tril.copy_(torch.tensor([[0.1, 0.0, 0.0], [0.4, -0.2, 0.0], [0.0, 0.3, 0.2]]))
    rng = np.random.default_rng(0)
    x = rng.multivariate_normal([0.0, 0.0, 1.0], [[1.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]], size=3000)
    w = rng.uniform(0.2, 2.0, len(x))
    return model, Events(x.astype(np.float32), w), x, w


def _model_samples(model, n, seed):
    torch.manual_seed(seed)
    return model.sample(n).double().numpy()


def test_w1_is_scipys_mean_per_feature_wasserstein_distance(model_and_val):
    model, val, x, w = model_and_val
    got = sample_metric("w1", model, val, n=2000, seed=4)
    fake, real = _model_samples(model, 2000, 4), x[:2000]
    expected = np.mean([wasserstein_distance(fake[:, j], real[:, j], v_weights=w[:2000]) for j in range(3)])
    assert got == pytest.approx(expected, rel=1e-5)
    assert got > 0.05  # the model differs from the data, so the test can fail


def test_fpd_is_the_frechet_distance_of_the_fitted_gaussians(model_and_val):
    model, val, x, w = model_and_val
    got = sample_metric("fpd", model, val, n=2500, seed=1)
    fake, real, wr = _model_samples(model, 2500, 1), x[:2500], w[:2500]
    m1, c1 = fake.mean(0), np.cov(fake, rowvar=False, bias=True)
    m2 = np.average(real, axis=0, weights=wr)
    c2 = np.cov(real, rowvar=False, aweights=wr, bias=True)
    expected = np.sum((m1 - m2) ** 2) + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
    assert got == pytest.approx(expected, rel=1e-4)
    assert got > 0.1


def test_metrics_use_the_models_preprocessing_and_leave_the_rng_stream_alone(model_and_val):
    """Features of very different scales count equally: the distances are taken in the preprocessed space."""
    _, _, x, w = model_and_val
    scaled = x * [1.0, 100.0, 1.0]
    val = Events(scaled.astype(np.float32), w)
    model = hepgen.Gaussian(3, preprocess="standard")
    model.preprocessor.fit(torch.tensor(scaled, dtype=torch.float32))
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    got = sample_metric("w1", model, val, n=1000, seed=0)
    torch.testing.assert_close(torch.rand(3), expected_next)  # the training RNG stream is not shifted
    fake = model.to_internal(torch.as_tensor(_model_samples(model, 1000, 0), dtype=torch.float32)).double().numpy()
    real = model.to_internal(torch.as_tensor(scaled[:1000], dtype=torch.float32)).double().numpy()
    expected = np.mean([wasserstein_distance(fake[:, j], real[:, j], v_weights=w[:1000]) for j in range(3)])
    assert got == pytest.approx(expected, rel=1e-5)
    raw = np.mean([wasserstein_distance(_model_samples(model, 1000, 0)[:, j], scaled[:1000, j], v_weights=w[:1000])
                   for j in range(3)])
    assert raw > 10 * got  # in the original units the ×100 feature would dominate
    assert set(SAMPLE_METRICS) >= {"w1", "fpd"}
    assert sample_metric("fpd", model, Events(scaled[:50].astype(np.float32)), n=10_000) >= 0  # n capped at len(val)


def _counting_steps(model, monkeypatch):
    """The players' optimiser steps of the fits that follow."""
    from hepgen.train.optimisation import Optimisation

    steps = []
    step = Optimisation.step
    monkeypatch.setattr(Optimisation, "step", lambda self, runner, player, *a: steps.append(player.name) or
                        step(self, runner, player, *a))
    return steps


@pytest.mark.parametrize("name, valid", [("fdp", "fpd"), ("val_ess", "val_loss"), ("val_nothing", "val_loss")])
def test_an_unknown_monitor_is_refused_before_any_step_or_write(name, valid, tmp_path, monkeypatch):
    """The house rule: every check before work; nothing in the run directory before all checks pass. The name
    and value are in the message, with the valid names (the sample metrics and the logged losses)."""
    x = np.random.default_rng(0).normal(size=(400, 2))
    model = hepgen.Gaussian(2)
    steps = _counting_steps(model, monkeypatch)
    run = tmp_path / "run"
    with pytest.raises(hepgen.ConfigError, match=rf"monitor '{name}'.*{valid}") as err:
        model.fit(x, epochs=3, batch_size=100, monitor=name, monitor_every=2, run_dir=run, quiet=True)
    assert "w1" in str(err.value) and "fpd" in str(err.value)
    assert steps == [] and not run.exists()


def test_a_train_column_is_judged_on_the_first_epoch_before_anything_is_written(tmp_path, monkeypatch):
    """train_* names are known once a step has run: refused after the first epoch, never after a write."""
    x = np.random.default_rng(0).normal(size=(400, 2))
    model = hepgen.Gaussian(2)
    steps = _counting_steps(model, monkeypatch)
    run = tmp_path / "run"
    with pytest.raises(hepgen.ConfigError, match="monitor 'train_nothing'.*train_loss"):
        model.fit(x, epochs=3, batch_size=100, monitor="train_nothing", monitor_every=2, run_dir=run, quiet=True)
    assert len(steps) == 4 and not run.exists()  # one epoch (360 training events), nothing written


@pytest.mark.parametrize("name", ["val_loss", "train_loss", "w1", "lr"])
def test_logged_quantities_and_sample_metrics_are_still_monitored(name):
    x = np.random.default_rng(0).normal(size=(400, 2))
    model = hepgen.Gaussian(2).fit(x, epochs=2, batch_size=100, monitor=name, monitor_samples=100, quiet=True)
    assert all("monitor" in row for row in model.history_)


def test_the_monitor_check_leaves_the_training_rng_alone():
    x = np.random.default_rng(0).normal(size=(400, 2))
    a = hepgen.Gaussian(2).fit(x, epochs=1, batch_size=100, monitor="val_loss", quiet=True)
    b = hepgen.Gaussian(2).fit(x, epochs=1, batch_size=100, monitor=None, quiet=True)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
