"""Distance correlation against a brute-force O(n²) double loop, duplication for integer weights and
dcor; mass sculpting's JSD against scipy's Jensen–Shannon distance."""

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from hepgen.errors import DataError
from hepgen.metrics.decorrelation import (
    distance_correlation,
    efficiency_threshold,
    mass_sculpting,
)


def brute_dcor2(x, y):
    """Székely's V-statistic by explicit loops: dCov²_n = (1/n²) Σ_jk A_jk B_jk."""
    n = len(x)
    a = [[abs(x[j] - x[k]) for k in range(n)] for j in range(n)]
    b = [[abs(y[j] - y[k]) for k in range(n)] for j in range(n)]

    def centre(m):
        rows = [sum(r) / n for r in m]
        grand = sum(rows) / n
        return [[m[j][k] - rows[j] - rows[k] + grand for k in range(n)] for j in range(n)]

    ca, cb = centre(a), centre(b)
    v = lambda p, q: sum(p[j][k] * q[j][k] for j in range(n) for k in range(n)) / n**2
    return v(ca, cb) / np.sqrt(v(ca, ca) * v(cb, cb))


def test_matches_brute_force_and_small_chunks():
    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    y = x**2 + 0.3 * rng.normal(size=60)
    expected = brute_dcor2(list(x), list(y))
    assert distance_correlation(x, y) == pytest.approx(expected, rel=1e-10)
    assert distance_correlation(x, y, chunk=7) == pytest.approx(expected, rel=1e-10)
    assert distance_correlation(x, y, squared=False) == pytest.approx(np.sqrt(expected), rel=1e-10)


def test_integer_weights_equal_duplicated_events():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=50), rng.normal(size=50)
    y = y + x
    k = rng.integers(1, 4, 50)
    assert distance_correlation(x, y, k.astype(float)) == pytest.approx(
        distance_correlation(np.repeat(x, k), np.repeat(y, k)), rel=1e-10)
    with pytest.raises(DataError, match="negative"):
        distance_correlation(x, y, -k.astype(float))


def test_limits():
    rng = np.random.default_rng(2)
    x = rng.normal(size=2000)
    assert distance_correlation(x, 3 * x + 1) == pytest.approx(1.0, abs=1e-12)
    assert distance_correlation(x, rng.normal(size=2000)) < 0.01
    assert distance_correlation(x, np.ones(2000)) == 0.0


@pytest.mark.slow
def test_matches_dcor():
    import dcor  # the test extra installs it
    rng = np.random.default_rng(3)
    x = rng.normal(size=300)
    y = np.sin(2 * x) + 0.5 * rng.normal(size=300)
    assert distance_correlation(x, y) == pytest.approx(dcor.distance_correlation_sqr(x, y), rel=1e-9)


def test_efficiency_threshold_keeps_the_weighted_fraction():
    rng = np.random.default_rng(4)
    s, w = rng.normal(size=10000), rng.uniform(0.5, 1.5, 10000)
    for eff in (0.5, 0.1, 0.01):
        t = efficiency_threshold(s, eff, w)
        assert w[s >= t].sum() / w.sum() == pytest.approx(eff, abs=2e-4)


def test_mass_sculpting_jsd_is_scipys_in_bits():
    rng = np.random.default_rng(5)
    m = rng.uniform(50, 150, 20000)
    sculpting = m + 10 * rng.normal(size=20000)  # a score that follows the mass
    edges = np.linspace(50, 150, 21)
    out = mass_sculpting(sculpting, m, bins=edges)
    t = efficiency_threshold(sculpting, 0.1)
    hp, _ = np.histogram(m[sculpting >= t], edges)
    hf, _ = np.histogram(m[sculpting < t], edges)
    assert out["0.1"]["jsd"] == pytest.approx(jensenshannon(hp, hf, base=2) ** 2, rel=1e-6)
    independent = mass_sculpting(rng.normal(size=20000), m, bins=edges)
    for eff in ("0.5", "0.1", "0.01"):
        assert independent[eff]["jsd"] < out[eff]["jsd"]
        assert independent[eff]["inverse_jsd"] > 10
    with pytest.raises(DataError, match="one per event"):
        mass_sculpting(m[:10], m[:9])
