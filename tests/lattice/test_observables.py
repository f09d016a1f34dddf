"""φ⁴ observables against brute-force sums."""

import numpy as np
import pytest

from hepgen.lattice.observables import (
    effective_mass,
    ising_energy,
    jackknife,
    observables,
    two_point,
)


def test_two_point_function_against_a_double_loop():
    rng = np.random.default_rng(0)
    phi = rng.normal(0.3, 1.0, (50, 4, 4))
    w = rng.random(50)
    wn = w / w.sum()
    g = two_point(phi, w)
    mean = np.tensordot(wn, phi, axes=1)
    brute = np.zeros((4, 4))
    for a in range(4):
        for b in range(4):
            shifted = np.roll(phi, (-a, -b), axis=(1, 2))
            brute[a, b] = (np.tensordot(wn, phi * shifted, axes=1)
                           - mean * np.roll(mean, (-a, -b), axis=(0, 1))).mean()
    np.testing.assert_allclose(g, brute, atol=1e-12)
    # χ₂ = V (<M²> − <M>²)
    m = phi.reshape(50, -1).mean(-1)
    obs = observables(phi, w)
    assert obs["chi2"] == pytest.approx(16 * (np.dot(wn, m**2) - np.dot(wn, m) ** 2), rel=1e-10)
    assert obs["ising_energy"] == pytest.approx(0.5 * (brute[1, 0] + brute[0, 1]))
    assert obs["abs_magnetisation"] == pytest.approx(np.dot(wn, np.abs(m)))


def test_effective_mass_of_a_cosh_correlator():
    # G̃(t) ∝ cosh(m (t − L/2)) gives m_eff = m exactly
    L, m = 8, 0.7
    t = np.arange(L)
    g = np.zeros((L, L))
    g[0] = np.cosh(m * (t - L / 2))
    np.testing.assert_allclose(effective_mass(g), m, rtol=1e-12)
    assert ising_energy(np.eye(L)) == 0.0


def test_jackknife_error_of_iid_samples_is_the_standard_error():
    rng = np.random.default_rng(1)
    phi = rng.normal(size=(4000, 2, 2))
    est = jackknife(lambda p, w: {"phi2": float((p**2).mean())}, phi, blocks=40)
    value, err = est["phi2"]
    assert value == pytest.approx((phi**2).mean())
    expected = (phi**2).mean(axis=(1, 2)).std() / np.sqrt(4000)
    assert err == pytest.approx(expected, rel=0.35)
