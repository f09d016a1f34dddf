"""The CaloChallenge classifier test against closed forms: one distribution gives ½, two unit Gaussians a
distance d apart give the Bayes AUC Φ(d/√2); its error is Hanley and McNeil's."""

import numpy as np
import pytest
from scipy.stats import norm

from hepgen.errors import ConfigError, DataError
from hepgen.evaluate.calochallenge import classifier_auc
from hepgen.metrics import auc_standard_error


def test_one_distribution_gives_one_half_and_shifted_gaussians_the_bayes_auc():
    rng = np.random.default_rng(0)
    same = classifier_auc(rng.normal(size=(4000, 4)), rng.normal(size=(4000, 4)), epochs=5, hidden=(32, 32),
                          device="cpu")
    assert same["n_test"] == 1600 and same["n_train"] == 4800
    assert abs(same["auc"] - 0.5) < 3 * auc_standard_error(0.5, 800, 800)
    shift = 1.0
    got = classifier_auc(rng.normal(size=(4000, 1)) + shift, rng.normal(size=(4000, 1)), epochs=10, lr=1e-3,
                         hidden=(32, 32), seed=1, device="cpu")
    bayes = norm.cdf(shift / np.sqrt(2))
    assert got["auc_err"] == pytest.approx(auc_standard_error(got["auc"], 800, 800), rel=1e-12)
    assert 0.01 < got["auc_err"] < 0.02
    assert got["auc"] == pytest.approx(bayes, abs=3 * got["auc_err"])
    assert 1 <= got["best_epoch"] <= 10 and 0 < got["val_loss"] < np.log(2)


def test_bad_inputs_are_named():
    with pytest.raises(DataError, match=r"real: contains NaN or inf; the first bad row is 0 \(column 1\)"):
        classifier_auc(np.array([[0.0, np.nan]] * 20), np.zeros((20, 2)))
    with pytest.raises(ConfigError, match="split takes three positive fractions"):
        classifier_auc(np.zeros((20, 2)), np.zeros((20, 2)), split=(0.5, 0.5, 0.0))
    with pytest.raises(DataError, match="too few for a train / validation / test split"):
        classifier_auc(np.zeros((2, 2)), np.zeros((20, 2)))
