"""The gaussian baseline fitted by the engine matches NumPy's (weighted) mean and covariance; its log_prob is scipy's
density, its inference returns plain tensors and its differentiable paths match closed forms."""

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


def test_inference_returns_plain_tensors(data):
    model = fit(data, epochs=1)
    x = torch.tensor(data[:10], requires_grad=True)
    for out in (model.log_prob(x), model.score(x), model.sample(5), *model.score_outputs(x).values(),
                *model.sample_and_log_prob(5)):
        assert out.requires_grad is False
    model.log_prob(data[:10]).numpy()  # the README's logp = model.log_prob(x), straight to NumPy


def test_log_prob_grad_is_the_closed_form_score_function(data):
    """∇ₓ log N(x; m, C) = −C⁻¹ (x − m) in the original units (standard preprocessing folded in)."""
    model = fit(data, epochs=2).double()
    x = torch.tensor(data[:20], requires_grad=True)
    (grad,) = torch.autograd.grad(model.log_prob(x, grad=True).sum(), x)
    mean, cov = model.mean_.numpy(), model.covariance_.numpy()
    expected = -np.linalg.solve(cov, (data[:20] - mean).T).T
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-8, atol=1e-10)


def test_rsample_gradients_match_the_closed_form_expectation(data):
    """x = a + b ⊙ (μ + L ε) (standard preprocessing a, b): E‖x‖² = Σ_i (a_i + b_i μ_i)² + b_i² (L Lᵀ)_ii.
    The reparameterised gradient of the Monte Carlo mean ‖x‖² over 400k draws equals the autograd of this
    closed form in μ and in every entry of the Cholesky parameters, within the Monte Carlo error."""
    model = fit(data, epochs=2).double()
    with torch.no_grad():
        model.tril.add_(torch.tensor([[0.2, 0.0, 0.0], [0.5, -0.3, 0.0], [-0.4, 0.3, 0.1]], dtype=torch.float64))
    zero = torch.zeros(1, 3, dtype=torch.float64)
    a = model.to_external(zero)[0].detach()
    b = model.to_external(zero + 1)[0].detach() - a
    L = model.scale_tril()
    closed = ((a + b * model.loc) ** 2).sum() + (b**2 * (L @ L.T).diagonal()).sum()
    expected = torch.autograd.grad(closed, (model.loc, model.tril))
    torch.manual_seed(0)
    x = model.rsample(400_000)
    assert x.requires_grad
    got = torch.autograd.grad(x.square().sum(-1).mean(), (model.loc, model.tril))
    for g, e in zip(got, expected, strict=True):  # gradients of size 0.1-7; Monte Carlo error <= 0.02 (3 seeds)
        torch.testing.assert_close(g, e, rtol=0, atol=0.06)
    assert torch.count_nonzero(expected[1].tril()) == 6  # the off-diagonal gradient is exercised
