"""The one classifier factory: the trees are scikit-learn's (same numbers, one thread for small sets), the
network is a hepgen Classifier trained by the engine, which keeps its epoch of lowest validation loss."""

import numpy as np
import pytest
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_info, threadpool_limits

from hepgen.classifier import Classifier
from hepgen.errors import ConfigError
from hepgen.evaluate.classifiers import ONE_THREAD_BELOW, GradientBoosting, NeuralNetwork, make_classifier


def _openmp_threads() -> int:
    return max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"), default=1)


def test_trees_are_sklearns_boosting_with_the_given_settings_and_no_early_stopping():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 3))
    y = (x[:, 0] + x[:, 1] ** 2 + rng.normal(size=3000) > 1).astype(float)
    w = rng.uniform(0.5, 2.0, 3000)
    settings = {"max_iter": 40, "max_leaf_nodes": 8, "min_samples_leaf": 100, "l2_regularization": 1.0}
    got = make_classifier("hgb", seed=3, **settings).fit(x, y, sample_weight=w).predict_proba(x)
    want = HistGradientBoostingClassifier(**settings, early_stopping=False, random_state=3).fit(
        x, y, sample_weight=w).predict_proba(x)
    np.testing.assert_array_equal(got, want)
    # the defaults are scikit-learn's, with 100 rounds (what the C2ST always used)
    got = make_classifier("hgb", seed=1).fit(x, y).predict_proba(x)
    want = HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=1).fit(x, y).predict_proba(x)
    np.testing.assert_array_equal(got, want)


def test_trees_use_one_openmp_thread_for_small_training_sets_and_the_callers_otherwise(monkeypatch):
    seen = []
    fit = HistGradientBoostingClassifier.fit

    def spy(self, *args, **kwargs):
        seen.append(_openmp_threads())
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(HistGradientBoostingClassifier, "fit", spy)
    rng = np.random.default_rng(1)
    with threadpool_limits(2):
        if _openmp_threads() < 2:
            pytest.skip("this scikit-learn build has no OpenMP threads to limit")
        for n in (500, ONE_THREAD_BELOW):
            x = rng.normal(size=(n, 1))
            make_classifier("hgb", max_iter=1).fit(x, (x[:, 0] > 0).astype(float))
        assert _openmp_threads() == 2  # the caller's limit is back
    assert seen == [1, 2]


def test_unknown_kinds_and_settings_are_refused_before_any_training():
    with pytest.raises(ConfigError, match="unknown classifier 'svm'; use 'hgb' or 'dnn'"):
        make_classifier("svm")
    with pytest.raises(ConfigError, match="no option 'max_iters'.*did you mean 'max_iter'"):
        make_classifier("hgb", max_iters=3)
    with pytest.raises(ConfigError, match="option 'dropout' of classifier 'dnn'"):
        make_classifier("dnn", dropout=1.5)
    with pytest.raises(ConfigError, match="option 'hidden' of classifier 'dnn'"):
        make_classifier("dnn", hidden=(8, 0))
    with pytest.warns(DeprecationWarning, match="'mlp' is now 'dnn'"):
        assert isinstance(make_classifier("mlp"), NeuralNetwork)
    assert isinstance(make_classifier(), GradientBoosting)


def test_the_network_is_a_hepgen_classifier_trained_by_the_engine_back_at_its_best_validation_epoch():
    # labels independent of x: a wide network overfits 100 events, so the validation loss rises after a few
    # epochs and the kept weights are not the last ones
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(100, 2)), rng.integers(0, 2, 100).astype(float)
    xv, yv, wv = rng.normal(size=(400, 2)), rng.integers(0, 2, 400).astype(float), rng.uniform(0.5, 1.5, 400)
    state = torch.random.get_rng_state()
    net = make_classifier("dnn", seed=4, hidden=(128, 128), epochs=25, batch_size=20, lr=1e-2,
                          device="cpu").fit(x, y, val=(xv, yv, wv))
    assert torch.equal(torch.random.get_rng_state(), state)  # the engine's seeding did not leak out
    assert isinstance(net.model_, Classifier) and len(net.history_) == 25
    val_losses = [row["val_loss"] for row in net.history_]
    assert net.best_epoch_ == 1 + int(np.argmin(val_losses)) < 25 and net.val_loss_ == min(val_losses)
    # the weights in place are the best epoch's: their weighted validation cross-entropy, computed here
    p = np.clip(net.predict_proba(xv)[:, 1], 1e-12, 1 - 1e-12)
    bce = -(wv * (yv * np.log(p) + (1 - yv) * np.log(1 - p))).sum() / wv.sum()
    assert bce == pytest.approx(net.val_loss_, rel=1e-4)
    proba = net.predict_proba(xv)
    assert proba.shape == (400, 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_the_network_learns_the_bayes_classifier_of_two_gaussians():
    """P(1 | x) = σ(d·x − d²/2) for N(d, 1) (label 1) against N(0, 1) with equal priors."""
    rng = np.random.default_rng(3)
    d, n = 1.5, 3000
    x = np.r_[rng.normal(d, 1, n), rng.normal(0, 1, n)][:, None]
    y = np.r_[np.ones(n), np.zeros(n)]
    net = NeuralNetwork(seed=0, hidden=(16,), epochs=15, lr=1e-2, device="cpu").fit(x, y)
    grid = np.linspace(-1.0, 2.5, 8)[:, None]
    bayes = 1 / (1 + np.exp(-(d * grid[:, 0] - d**2 / 2)))
    np.testing.assert_allclose(net.predict_proba(grid)[:, 1], bayes, atol=0.06)
