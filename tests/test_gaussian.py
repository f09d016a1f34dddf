"""The gaussian baseline fitted by the engine matches NumPy's (weighted) mean and covariance."""

import numpy as np
import pytest
import torch
from scipy import stats

import hepgen

COV = np.array([[2.0, 0.8, 0.3], [0.8, 1.0, -0.4], [0.3, -0.4, 0.5]])
MEAN = np.array([1.0, -2.0, 5.0])


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(0).multivariate_normal(MEAN, COV, size=20_000)


def fit(x, **kw):
    options = dict(epochs=8, batch_size=500, lr=0.05, optimizer="sgd", scheduler="cosine", val_fraction=0.0,
                   monitor=None, seed=0)
    options.update(kw)
    return hepgen.Gaussian(x.shape[1]).fit(x, **options)


def test_sgd_fit_matches_numpy_mean_and_covariance(data):
    model = fit(data)
    # Tolerance: SGD with a cosine schedule ends near the MLE; 1% of a standard deviation for the mean and
    # 2% of the largest variance for the covariance (the statistical error of the data set itself is larger).
    std = np.sqrt(np.diag(COV))
    np.testing.assert_allclose(model.mean_.numpy(), data.mean(axis=0), atol=0.01 * std.max())
    np.testing.assert_allclose(model.covariance_.numpy(), np.cov(data.T, bias=True), atol=0.02 * COV.max())


def test_weighted_fit_matches_numpy_weighted_moments(data):
    rng = np.random.default_rng(1)
    w = rng.exponential(1.0, len(data)) * (1 + 2.0 * (data[:, 0] > MEAN[0]))  # weights that move the answer
    model = fit(data, weights=w)
    mean = np.average(data, axis=0, weights=w)
    cov = np.cov(data.T, aweights=w, bias=True)
    assert abs(mean[0] - data[:, 0].mean()) > 0.2  # the weights matter, so the test can fail
    std = np.sqrt(np.diag(COV))
    np.testing.assert_allclose(model.mean_.numpy(), mean, atol=0.01 * std.max())
    np.testing.assert_allclose(model.covariance_.numpy(), cov, atol=0.02 * COV.max())


def test_negative_weights_give_the_signed_weighted_moments(data):
    # NLO samples carry negative weights; np.cov refuses them, so compare with the explicit formula
    rng = np.random.default_rng(3)
    w = np.where(rng.random(len(data)) < 0.15, -0.5, 1.0) * (1 + (data[:, 1] > MEAN[1]))
    model = fit(data, weights=w)
    mean = (w[:, None] * data).sum(0) / w.sum()
    d = data - mean
    cov = np.einsum("n,ni,nj->ij", w, d, d) / w.sum()
    std = np.sqrt(np.diag(COV))
    np.testing.assert_allclose(model.mean_.numpy(), mean, atol=0.015 * std.max())
    np.testing.assert_allclose(model.covariance_.numpy(), cov, atol=0.03 * COV.max())


def test_log_prob_is_scipy_density_in_original_units(data):
    model = fit(data, epochs=2)
    x = data[:50]
    expected = stats.multivariate_normal(model.mean_.numpy(), model.covariance_.numpy()).logpdf(x)
    np.testing.assert_allclose(model.log_prob(torch.tensor(x)).detach().double().numpy(), expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(model.score(x).detach().double().numpy(), -expected, rtol=1e-5, atol=1e-4)


def test_log_preprocessing_density_includes_jacobian():
    # x = exp(y), y ~ N(m, s²): log p(x) = log N(log x; m, s²) - log x  (lognormal)
    rng = np.random.default_rng(2)
    y = rng.normal(1.0, 0.5, size=(20_000, 1))
    model = hepgen.Gaussian(1, preprocess="log").fit(np.exp(y), epochs=8, batch_size=500, lr=0.05, monitor=None,
                                                     val_fraction=0.0, scheduler="cosine", optimizer="sgd")
    grid = np.linspace(1.0, 6.0, 20)[:, None]  # within ±2σ, where SGD noise in σ moves log p by < 0.02
    lp = model.log_prob(torch.tensor(grid)).detach().double().numpy()
    m, s = y.mean(), y.std()  # the maximum-likelihood lognormal of these data
    expected = stats.lognorm(s=s, scale=np.exp(m)).logpdf(grid[:, 0])
    np.testing.assert_allclose(lp, expected, atol=0.02)  # a missing Jacobian (log x) would be off by 0.0..1.8
    samples = model.sample(5000).numpy()
    assert samples.min() > 0 and abs(np.log(samples).mean() - 1.0) < 0.03


def test_conditional_gaussian_is_refused():
    with pytest.raises(hepgen.ConfigError, match="unconditional"):
        hepgen.Gaussian(3, context=1)
