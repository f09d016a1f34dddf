"""Weighted ROC, AUC, SIC and rejection against scikit-learn and brute force."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from hepgen.errors import DataError
from hepgen.metrics import background_rejection, classifier_metrics, roc_auc, roc_curve, significance_improvement


@pytest.fixture
def scores():
    rng = np.random.default_rng(7)
    s, b = rng.normal(1.0, 1.0, 1500), rng.normal(0.0, 1.0, 2500)
    s[:50] = np.round(s[:50], 1)  # some ties
    b[:50] = np.round(b[:50], 1)
    return s, b, rng.uniform(0.2, 2.0, 1500), rng.uniform(0.2, 2.0, 2500)


def _sk(s, b, ws=None, wb=None):
    y = np.r_[np.ones(len(s)), np.zeros(len(b))]
    w = None if ws is None else np.r_[ws, wb]
    return y, np.r_[s, b], w


def test_roc_curve_equals_sklearn_weighted_and_unweighted(scores):
    s, b, ws, wb = scores
    for w in [(None, None), (ws, wb)]:
        y, sc, sw = _sk(s, b, *w)
        fpr, tpr, thr = sk_roc_curve(y, sc, sample_weight=sw, drop_intermediate=False)
        e_b, e_s, t = roc_curve(s, b, *w)
        np.testing.assert_allclose(e_b, fpr, atol=1e-12)
        np.testing.assert_allclose(e_s, tpr, atol=1e-12)
        np.testing.assert_array_equal(t, thr)
        assert roc_auc(s, b, *w) == pytest.approx(roc_auc_score(y, sc, sample_weight=sw), abs=1e-12)


def test_auc_with_negative_weights_equals_brute_force_pair_sum():
    rng = np.random.default_rng(8)
    s, b = rng.normal(0.8, 1, 120), rng.normal(0, 1, 150)
    ws, wb = rng.uniform(-0.3, 1.5, 120), rng.uniform(-0.3, 1.5, 150)
    ws[0], wb[0] = -0.7, -0.9
    gt = (s[:, None] > b[None, :]) + 0.5 * (s[:, None] == b[None, :])
    brute = np.sum(ws[:, None] * wb[None, :] * gt) / (ws.sum() * wb.sum())
    assert roc_auc(s, b, ws, wb) == pytest.approx(brute, abs=1e-12)


def test_rejection_and_sic_against_sklearn_curve(scores):
    s, b, ws, wb = scores
    y, sc, sw = _sk(s, b, ws, wb)
    fpr, tpr, _ = sk_roc_curve(y, sc, sample_weight=sw, drop_intermediate=False)
    e_b, e_s, _ = roc_curve(s, b, ws, wb)
    for eff in (0.3, 0.5):
        assert background_rejection(e_b, e_s, eff) == pytest.approx(1 / np.interp(eff, tpr, fpr), rel=1e-9)
    _, sic = significance_improvement(e_b, e_s, 0.01)
    keep = fpr > 0.01
    assert sic.max() == pytest.approx(np.max(tpr[keep] / np.sqrt(fpr[keep])), rel=1e-12)


def test_classifier_metrics_labels_path_equals_split_path_and_gaussian_values():
    rng = np.random.default_rng(11)
    s, b = rng.normal(1.0, 1.0, 40_000), rng.normal(0.0, 1.0, 40_000)
    got = classifier_metrics(s, b)
    y = np.r_[np.ones_like(s), np.zeros_like(b)]
    assert classifier_metrics(labels=y, scores=np.r_[s, b]) == got
    from scipy.stats import norm

    assert got["auc"] == pytest.approx(norm.cdf(1 / np.sqrt(2)), abs=0.005)
    # closed form: cut c with eps_s = 1 - Φ(c - 1) = 0.5 -> c = 1, eps_b = 1 - Φ(1)
    assert got["rejection_at_eps_s_0.5"] == pytest.approx(1 / norm.sf(1.0), rel=0.03)
    assert got["rejection_at_eps_s_0.3"] == pytest.approx(1 / norm.sf(1 + norm.isf(0.3)), rel=0.05)
    assert got["max_sic"] > 1


def test_classifier_metrics_input_errors():
    with pytest.raises(DataError, match="labels must be 0"):
        classifier_metrics(labels=np.array([0, 2]), scores=np.array([0.1, 0.2]))
    with pytest.raises(DataError, match="total background weight"):
        roc_auc(np.ones(3), np.ones(2), None, np.array([-1.0, 0.5]))


def test_auc_standard_error_is_the_mann_whitney_null_at_one_half_and_the_spread_of_simulated_aucs():
    from hepgen.metrics import auc_standard_error

    assert auc_standard_error(0.5, 30, 70) == pytest.approx(np.sqrt((30 + 70 + 1) / (12 * 30 * 70)), rel=1e-12)
    # Hanley & McNeil's Q1, Q2 are exact for exponential scores: simulate many AUCs of Exp(1) against Exp(rate 3)
    rng = np.random.default_rng(5)
    n_s, n_b, replicas = 40, 60, 4000
    s = rng.exponential(1.0, (replicas, n_s))
    b = rng.exponential(1 / 3, (replicas, n_b))
    aucs = (s[:, :, None] > b[:, None, :]).mean(axis=(1, 2))
    true = 3 / (3 + 1)  # P(s > b) for rates 1 and 3
    assert aucs.mean() == pytest.approx(true, abs=0.002)
    assert auc_standard_error(true, n_s, n_b) == pytest.approx(aucs.std(), rel=0.05)  # ±2 % sampling spread
    with pytest.raises(DataError, match="both classes"):
        auc_standard_error(0.7, 0, 5)
    with pytest.raises(DataError, match=r"in \[0, 1\]"):
        auc_standard_error(1.2, 5, 5)
