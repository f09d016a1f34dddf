"""ESS, independence Metropolis and integrated autocorrelation time against closed forms."""

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm

from hepgen.metrics import (
    effective_sample_size,
    effective_sample_size_from_log_weights,
    independence_metropolis,
    integrated_autocorrelation_time,
)


def test_kish_ess_formula_and_stable_log_version():
    w = np.array([1.0, 2.0, 3.0, 0.5])
    assert effective_sample_size(w) == pytest.approx(6.5**2 / 14.25)
    lw = np.log(w) + 900.0  # exp would overflow
    assert effective_sample_size_from_log_weights(lw, normalized=False) == pytest.approx(6.5**2 / 14.25, rel=1e-12)
    assert effective_sample_size_from_log_weights(lw) == pytest.approx(6.5**2 / 14.25 / 4, rel=1e-12)
    assert effective_sample_size_from_log_weights(np.r_[0.0, -np.inf, 0.0], normalized=False) == pytest.approx(2.0)


def _reference_chain(lw, log_u):
    cur, acc, idx = 0, 0, [0]
    for i in range(1, len(lw)):
        if log_u[i] < lw[i] - lw[cur]:
            cur, acc = i, acc + 1
        idx.append(cur)
    return acc / (len(lw) - 1), np.array(idx)


def test_independence_metropolis_equals_reference_loop_and_perfect_proposal():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1.5, 2000)
    log_p, log_q = norm.logpdf(x), norm.logpdf(x, 0, 1.5)
    rate, idx = independence_metropolis(log_p, log_q, seed=4)
    ref_rate, ref_idx = _reference_chain(log_p - log_q, np.log(np.random.default_rng(4).random(2000)))
    assert rate == ref_rate
    np.testing.assert_array_equal(idx, ref_idx)
    rate_exact, idx_exact = independence_metropolis(log_q + 3.0, log_q, seed=0)  # p ∝ q: always accept
    assert rate_exact == 1.0
    np.testing.assert_array_equal(idx_exact, np.arange(2000))


def test_independence_metropolis_acceptance_and_stationary_distribution():
    sq = 1.5
    rng = np.random.default_rng(1)
    x = rng.normal(0, sq, 200_000)
    rate, idx = independence_metropolis(norm.logpdf(x), norm.logpdf(x, 0, sq), seed=2)

    # stationary acceptance: ∫∫ p(a) q(b) min(1, w(b)/w(a)) da db, w = p/q, by a 2-D trapezoid on a fine grid
    a = np.linspace(-8, 8, 1601)[:, None]
    b = np.linspace(-12, 12, 2401)[None, :]
    lw = lambda t: norm.logpdf(t) - norm.logpdf(t, 0, sq)  # noqa: E731
    integrand = norm.pdf(a) * norm.pdf(b, 0, sq) * np.minimum(1.0, np.exp(lw(b) - lw(a)))
    expected = integrate.trapezoid(integrate.trapezoid(integrand, b[0], axis=1), a[:, 0])
    assert rate == pytest.approx(expected, abs=0.005)
    chain = x[idx[1000:]]
    assert chain.var() == pytest.approx(1.0, abs=0.03)  # target N(0, 1), not the proposal's 2.25


@pytest.mark.parametrize("phi", [0.5, 0.9])
def test_integrated_autocorrelation_time_matches_ar1(phi):
    rng = np.random.default_rng(int(phi * 10))
    n = 200_000
    eps = rng.normal(size=n)
    x = np.empty(n)
    x[0] = eps[0] / np.sqrt(1 - phi**2)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + eps[i]
    tau = integrated_autocorrelation_time(x)
    assert tau == pytest.approx((1 + phi) / (1 - phi), rel=0.08)


def test_iat_white_noise_and_multiple_chains():
    rng = np.random.default_rng(5)
    assert integrated_autocorrelation_time(rng.normal(size=50_000)) == pytest.approx(1.0, abs=0.05)
    assert integrated_autocorrelation_time(rng.normal(size=(20_000, 4))) == pytest.approx(1.0, abs=0.05)
