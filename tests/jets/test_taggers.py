"""Classifier, Pivot and DisCo: the torch distance correlation against the NumPy metric, a linear
classifier against scikit-learn's weighted logistic regression, the pivot's schedule through the
engine's players, decorrelation that works, persistence, and bad labels/nuisances refused by name."""

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp
from sklearn.linear_model import LogisticRegression

import hepgen
from hepgen.errors import DataError
from hepgen.jets.taggers import distance_correlation_sqr
from hepgen.metrics.decorrelation import distance_correlation


def toy(n, seed=0):
    """The pivot paper's toy: Y = 0: N((0,0), [[1,−.5],[−.5,1]]); Y = 1: N((1, 1+Z), I), Z ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(float)
    z = rng.normal(size=n)
    bkg = rng.multivariate_normal([0, 0], [[1, -0.5], [-0.5, 1]], n)
    sig = rng.normal(size=(n, 2)) + np.c_[np.ones(n), 1 + z]
    return np.where(y[:, None] == 0, bkg, sig).astype(np.float32), y, z


def test_torch_distance_correlation_matches_the_metric_and_has_gradients():
    rng = np.random.default_rng(0)
    x, y, w = rng.normal(size=200), rng.normal(size=200), rng.uniform(0.1, 2, 200)
    y = y + np.tanh(x)
    xt = torch.tensor(x, requires_grad=True)
    value = distance_correlation_sqr(xt, torch.tensor(y), torch.tensor(w))
    assert float(value.detach()) == pytest.approx(distance_correlation(x, y, w), rel=1e-10)
    value.backward()
    assert torch.isfinite(xt.grad).all() and xt.grad.abs().sum() > 0


def test_linear_classifier_is_weighted_logistic_regression(tmp_path):
    x, y, _ = toy(3000, seed=1)
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(y))
    model = hepgen.Classifier(2, hidden=(), preprocess="none").fit(
        x, labels=y, weights=w, epochs=60, batch_size=3000, lr=0.1, val_fraction=0.0, quiet=True)
    ref = LogisticRegression(C=1e8, max_iter=1000).fit(x, y, sample_weight=w)
    p = model.score(x).numpy()
    np.testing.assert_allclose(p, ref.predict_proba(x)[:, 1], atol=0.02)
    model.save(tmp_path / "run")
    again = hepgen.load(tmp_path / "run")
    assert again.context == 0 and again.label_columns() == ["label"]  # the label was a training label, not an input
    np.testing.assert_allclose(again.score(x).numpy(), p, rtol=1e-6)


def test_pivot_schedule_runs_through_the_players():
    x, y, z = toy(1200)
    model = hepgen.Pivot(2, lam=1.0, pretrain_classifier=1, pretrain_adversary=1, adversary_steps=3,
                         hidden=(16,), adversary_hidden=(16,), components=3)
    model.fit(x, labels=y, nuisance=z, epochs=3, batch_size=100, quiet=True)
    h = model.history_
    assert int(model.epoch_) == 3 and [r["epoch"] for r in h] == [1, 2, 3]
    assert h[0]["train_adversary_grad_norm"] == 0 and h[0]["train_classifier_grad_norm"] > 0   # f alone
    assert h[1]["train_classifier_grad_norm"] == 0 and h[1]["train_adversary_grad_norm"] > 0   # r alone
    assert h[2]["train_classifier_grad_norm"] > 0 and h[2]["train_adversary_grad_norm"] > 0    # alternating
    assert "train_classifier_adversary_nll" in h[2]
    s = model.score(x).numpy()
    assert ((s >= 0) & (s <= 1)).all()


@pytest.mark.slow
def test_pivot_makes_the_output_independent_of_z():
    x, y, z = toy(6000)
    ks = {}
    for lam in (0.0, 50.0):
        model = hepgen.Pivot(2, lam=lam, pretrain_classifier=3, pretrain_adversary=3)
        model.fit(x, labels=y, nuisance=z, epochs=20, batch_size=128, quiet=True, seed=1)
        probe = np.random.default_rng(5)
        f = {v: model.score(probe.normal(size=(3000, 2)).astype(np.float32) + np.array([1, 1 + v], np.float32))
             .numpy() for v in (-1.0, 1.0)}
        ks[lam] = ks_2samp(f[-1.0], f[1.0]).statistic
    assert ks[50.0] < 0.5 * ks[0.0]


def test_disco_decorrelates_from_a_background_feature():
    x, y, _ = toy(3000, seed=3)
    m = x[:, 1].astype(float)  # a "mass" the background's classifier output depends on
    out = {}
    for alpha in (0.0, 50.0):
        model = hepgen.DisCo(2, alpha=alpha, hidden=(32,)).fit(x, labels=y, nuisance=m, epochs=8, batch_size=512,
                                                              quiet=True)
        b = y == 0
        out[alpha] = distance_correlation(model.score(x[b]).numpy(), m[b])
    assert out[50.0] < 0.5 * out[0.0]


def test_bad_labels_and_nuisances_are_named():
    x, y, z = toy(200)
    with pytest.raises(DataError, match=r"label column 'label' must be 0 \(background\) or 1 \(signal\); row 3"):
        hepgen.Classifier(2).fit(x, labels=np.where(np.arange(200) == 3, 2.0, y), quiet=True)
    with pytest.raises(DataError, match="no signal"):
        hepgen.Classifier(2).fit(x, labels=np.zeros(200), quiet=True)
    with pytest.raises(DataError, match="'z' is NaN or infinite at row 7"):
        hepgen.Pivot(2).fit(x, labels=y, nuisance=np.where(np.arange(200) == 7, np.nan, z), quiet=True)
    with pytest.raises(DataError, match="classes 0 .. 2"):
        hepgen.Pivot(2, nuisance_classes=3).fit(x, labels=y, nuisance=np.full(200, 3.0), quiet=True)
