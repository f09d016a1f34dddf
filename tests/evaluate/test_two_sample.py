"""The classifier two-sample test against independent computations: scikit-learn's own cross-fitting, the
null AUC of one distribution, and the Bayes AUC Φ(d/√2) of two Gaussians a distance d apart."""

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from hepgen.errors import ConfigError, DataError
from hepgen.evaluate import c2st_auc, c2st_scores, held_out_scores
from hepgen.metrics import auc_standard_error


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _null_error(n1: int, n0: int) -> float:
    return auc_standard_error(0.5, n1, n0)


def test_cross_fitted_scores_are_scikit_learns_out_of_fold_predictions(rng):
    """Equal, unweighted samples need no balancing: the scores are those of a standardise-then-boost pipeline
    cross-fitted by scikit-learn over the same stratified folds (the C2ST's numbers, unchanged by the move)."""
    x, y = rng.normal(size=(400, 3)), rng.normal(size=(400, 3)) + np.array([0.5, 0.0, 0.0])
    s1, s0, w1, w0 = c2st_scores(x, y, n_folds=4, seed=7)
    pipeline = make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=100, early_stopping=False,
                                                                            random_state=7))
    want = cross_val_predict(pipeline, np.r_[x, y], np.r_[np.ones(400), np.zeros(400)],
                             cv=StratifiedKFold(4, shuffle=True, random_state=7), method="predict_proba")[:, 1]
    np.testing.assert_allclose(np.r_[s1, s0], want, rtol=0, atol=1e-12)
    assert w1 is None and w0 is None


@pytest.mark.parametrize("classifier", ["hgb", "dnn"])
def test_one_distribution_gives_one_half_and_gaussians_the_bayes_auc(rng, classifier):
    n, d = 2000, 1.0
    # regularised trees (as OmniFold uses them): the defaults overfit 2 × 1300 training events by ≈ 0.04 in AUC
    settings = ({"epochs": 10, "lr": 3e-3, "hidden": (32, 32), "device": "cpu"} if classifier == "dnn" else
                {"max_leaf_nodes": 8, "min_samples_leaf": 100})
    same = c2st_auc(rng.normal(size=(n, 2)), rng.normal(size=(n, 2)), n_folds=3, classifier=classifier,
                    settings=settings)
    assert same == pytest.approx(0.5, abs=3 * _null_error(n, n))
    shifted = c2st_auc(rng.normal(size=(n, 2)) + np.array([d, 0.0]), rng.normal(size=(n, 2)), n_folds=3,
                       classifier=classifier, settings=settings)
    bayes = norm.cdf(d / np.sqrt(2))
    # a held-out AUC is at most the Bayes classifier's (up to its sampling error), and a fair learner comes close
    assert bayes - 0.03 < shifted < bayes + 3 * auc_standard_error(bayes, n, n)


def test_separable_samples_give_one(rng):
    x, y = rng.normal(size=(2000, 3)), rng.normal(size=(2000, 3))
    assert c2st_auc(x, y + 6.0, n_folds=3, seed=0) > 0.999


def test_weights_reweight_generated_onto_real(rng):
    x, y = rng.normal(size=(4000, 1)), rng.normal(0.8, 1.0, size=(4000, 1))
    w = np.exp(-0.5 * y[:, 0] ** 2 + 0.5 * (y[:, 0] - 0.8) ** 2)
    unweighted = c2st_auc(x, y, n_folds=3, seed=1)
    weighted = c2st_auc(x, y, generated_weights=w, n_folds=3, seed=1)
    assert unweighted > 0.65  # Φ(0.8/√2) ≈ 0.71 for the optimal classifier
    assert weighted == pytest.approx(0.5, abs=0.04)


def test_scores_are_held_out_and_give_the_auc(rng):
    x, y = rng.normal(size=(600, 2)), rng.normal(size=(500, 2)) + np.array([1.0, 0.0])
    w = rng.uniform(0.5, 1.5, 500)
    s1, s0, w1, w0 = c2st_scores(x, y, generated_weights=w, n_folds=3, seed=4)
    assert s1.shape == (600,) and s0.shape == (500,) and np.all(w1 == 1.0)
    np.testing.assert_array_equal(w0, w)
    labels = np.r_[np.ones(600), np.zeros(500)]
    auc = roc_auc_score(labels, np.r_[s1, s0], sample_weight=np.r_[w1, w0])
    assert c2st_auc(x, y, generated_weights=w, n_folds=3, seed=4) == pytest.approx(auc, abs=1e-12)
    # held out: a mean shift of 1 gives AUC ≤ Φ(1/√2) ≈ 0.76 (the Bayes classifier's), not the ≈ 1 of
    # boosted trees scored on their own training events
    assert 0.6 < auc < 0.78
    assert c2st_scores(x, y, n_folds=3, seed=4)[2:] == (None, None)


def test_a_split_scores_only_the_test_part_and_the_network_picks_its_epoch_on_the_validation_part(rng):
    x, y = rng.normal(size=(1000, 2)) + np.array([1.0, 0.0]), rng.normal(size=(700, 2))
    state = torch.random.get_rng_state()
    held = held_out_scores(x, y, classifier="dnn", split=(3, 1, 1), seed=2,
                           settings={"epochs": 6, "hidden": (16,), "lr": 1e-2, "batch_size": 64, "device": "cpu"})
    assert torch.equal(torch.random.get_rng_state(), state)
    assert len(held.real) == 1000 - 800 and len(held.generated) == 700 - 560  # floor(0.6 n), floor(0.2 n) cut off
    assert held.n_train == [2 * 420]  # balanced: min(600, 420) per class
    (net,) = held.classifiers
    assert 1 <= net.best_epoch_ <= 6 and net.val_loss_ == min(r["val_loss"] for r in net.history_)
    assert held.auc() == pytest.approx(norm.cdf(1 / np.sqrt(2)), abs=3 * auc_standard_error(0.76, 200, 140) + 0.03)
    hgb = held_out_scores(x, y, split=(0.6, 0.2, 0.2), seed=2)
    assert len(hgb.real) == 200 and len(hgb.generated) == 140  # the same test part, the trees ignore validation


def test_every_option_and_input_is_checked_before_any_training(rng, monkeypatch):
    from hepgen.evaluate import classifiers

    monkeypatch.setattr(classifiers.GradientBoosting, "fit", lambda *a, **k: pytest.fail("trained"))
    x, y = rng.normal(size=(50, 2)), rng.normal(size=(50, 2))
    with pytest.raises(ConfigError, match="unknown classifier 'svm'"):
        c2st_auc(x, y, classifier="svm")
    with pytest.raises(ConfigError, match="no option 'depth'"):
        c2st_auc(x, y, settings={"depth": 3})
    with pytest.raises(ConfigError, match="n_folds must be an integer of at least 2"):
        c2st_auc(x, y, n_folds=1)
    with pytest.raises(ConfigError, match="split takes three positive fractions"):
        c2st_auc(x, y, split=(0.8, 0.2))
    with pytest.raises(ConfigError, match="max_per_class"):
        c2st_auc(x, y, max_per_class=0)
    with pytest.raises(DataError, match="real has 2 features but generated has 3"):
        c2st_auc(x, rng.normal(size=(50, 3)))
    with pytest.raises(DataError, match=r"generated: contains NaN or inf; the first bad row is 4 \(column 1\)"):
        c2st_auc(x, np.where(np.arange(100).reshape(50, 2) == 9, np.nan, y))
    with pytest.raises(DataError, match="need at least n_folds=5 events per sample, got 50 and 3"):
        c2st_auc(x, y[:3])
    with pytest.raises(DataError, match="the generated sample has 2 events, too few"):
        c2st_auc(x, y[:2], split=(0.6, 0.2, 0.2))
