"""roc_summary and sic_curve against scikit-learn (weights included) and the two-Gaussian closed form."""

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score, roc_curve

from hepgen.metrics.roc import roc_summary, sic_curve


@pytest.fixture(scope="module")
def weighted():
    rng = np.random.default_rng(3)
    s, b = rng.normal(1.0, 1.0, 1500), rng.normal(0.0, 1.2, 2500)
    ws, wb = rng.uniform(0.2, 2.0, 1500), rng.uniform(0.2, 2.0, 2500)
    y = np.r_[np.ones(1500), np.zeros(2500)]
    return s, b, ws, wb, y


def test_auc_and_rejection_match_sklearn_with_weights(weighted):
    s, b, ws, wb, y = weighted
    m = roc_summary(s, b, signal_weights=ws, background_weights=wb, n_bootstrap=20)
    assert m["auc"] == pytest.approx(roc_auc_score(y, np.r_[s, b], sample_weight=np.r_[ws, wb]), abs=1e-12)
    fpr, tpr, _ = roc_curve(y, np.r_[s, b], sample_weight=np.r_[ws, wb], drop_intermediate=False)
    for eff in (0.3, 0.5):
        expected = 1.0 / np.interp(eff, tpr, fpr)  # tpr is non-decreasing: interpolate ε_B at ε_S
        assert m[f"rejection_at_eps_s_{eff:g}"] == pytest.approx(expected, rel=1e-3)
    assert 0 < m["auc_err"] < 0.03 and m["n_signal"] == 1500 and m["n_background"] == 2500


def test_sic_curve_is_tpr_over_sqrt_fpr_of_sklearn(weighted):
    s, b, ws, wb, y = weighted
    eps_s, sic = sic_curve(s, b, ws, wb, min_background_efficiency=0.01)
    fpr, tpr, _ = roc_curve(y, np.r_[s, b], sample_weight=np.r_[ws, wb], drop_intermediate=False)
    keep = fpr > 0.01
    np.testing.assert_allclose(eps_s, tpr[keep])
    np.testing.assert_allclose(sic, tpr[keep] / np.sqrt(fpr[keep]))
    m = roc_summary(s, b, signal_weights=ws, background_weights=wb, n_bootstrap=0)
    assert "auc_err" not in m


@pytest.mark.parametrize("delta", [0.5, 1.5])
def test_two_gaussians_closed_form_within_bootstrap_error(delta):
    """N(Δ, 1) vs N(0, 1): AUC = P(s > b) = Φ(Δ/√2); the bootstrap error is near the binomial-like
    √(AUC(1−AUC)/n)-scale spread."""
    rng = np.random.default_rng(11)
    n = 20000
    m = roc_summary(rng.normal(delta, 1, n), rng.normal(0, 1, n), n_bootstrap=30)
    exact = norm.cdf(delta / np.sqrt(2))
    assert abs(m["auc"] - exact) < 4 * m["auc_err"]
    assert 0.5 * np.sqrt(exact * (1 - exact) / n) < m["auc_err"] < 3 * np.sqrt(exact * (1 - exact) / n)
    # SIC maximum for two unit Gaussians: max over t of Φ̄(t−Δ)/√Φ̄(t), found on a fine grid
    t = np.linspace(-4, 4, 20001)
    sic = norm.sf(t - delta) / np.sqrt(norm.sf(t))
    assert m["max_sic"] == pytest.approx(sic.max(), abs=5 * m["max_sic_err"] + 0.02)


def test_no_numpy_warning_when_a_replica_passes_no_background():
    """Well-separated scores: at ε_S = 0.3 some replicas pass no background (rejection inf). Their errors come from the
    finite replicas; numpy's "invalid value encountered in subtract" (bootstrap's unused std over inf) reached the
    user's stderr under ``hepgen roc -q``."""
    import warnings

    rng = np.random.default_rng(0)
    background, signal = rng.normal(0.0, 1.0, 200), rng.normal(3.0, 1.0, 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = roc_summary(signal, background, n_bootstrap=50)
    assert out["rejection_at_eps_s_0.3"] is None or out["rejection_at_eps_s_0.3"] > 20
    assert out["auc_err"] is not None and 0 < out["auc_err"] < 0.05
