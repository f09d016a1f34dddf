"""phi^4 HMC: action and force against brute force and autograd, integrator properties, and the
sampled distribution against exact results (free-theory propagator, quadrature on a 2x2 lattice)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from hepgen.data.generators import phi4
from hepgen.errors import ConfigError
from hepgen.metrics.sampling import integrated_autocorrelation_time


def brute_force_action(phi: np.ndarray, m2: float, lam: float) -> float:
    """S by explicit loops over sites and the two forward neighbours."""
    L = phi.shape[0]
    total = 0.0
    for i, j in itertools.product(range(L), range(L)):
        total += (phi[(i + 1) % L, j] - phi[i, j]) ** 2 + (phi[i, (j + 1) % L] - phi[i, j]) ** 2
        total += m2 * phi[i, j] ** 2 + lam * phi[i, j] ** 4
    return total


def torch_action(phi: torch.Tensor, m2: float, lam: float) -> torch.Tensor:
    kinetic = sum(((torch.roll(phi, -1, d) - phi) ** 2).sum() for d in (0, 1))
    return kinetic + (m2 * phi**2 + lam * phi**4).sum()


def test_action_matches_brute_force_loops_and_batches():
    phi = np.random.default_rng(0).standard_normal((3, 5, 5))
    got = phi4.action(phi, -4.0, 8.0)
    assert got.shape == (3,)
    np.testing.assert_allclose(got, [brute_force_action(p, -4.0, 8.0) for p in phi], rtol=1e-12)


@pytest.mark.parametrize("m2, lam", [(-4.0, 8.0), (1.0, 0.0), (0.5, 3.0)])
def test_force_is_the_autograd_gradient_of_the_action(m2, lam):
    phi = np.random.default_rng(1).standard_normal((6, 6))
    tensor = torch.tensor(phi, requires_grad=True)
    torch_action(tensor, m2, lam).backward()
    np.testing.assert_allclose(phi4.force(phi, m2, lam), tensor.grad.numpy(), rtol=1e-12, atol=1e-12)
    # And the central finite difference of our own action at one site.
    h = 1e-6
    bump = np.zeros_like(phi)
    bump[2, 3] = h
    numeric = (phi4.action(phi + bump, m2, lam) - phi4.action(phi - bump, m2, lam)) / (2 * h)
    assert numeric == pytest.approx(phi4.force(phi, m2, lam)[2, 3], rel=1e-6)


def test_leapfrog_is_reversible_and_second_order():
    rng = np.random.default_rng(2)
    phi, pi = 0.5 * rng.standard_normal((8, 8)), rng.standard_normal((8, 8))
    new_phi, new_pi = phi4.leapfrog(phi, pi, -4.0, 8.0, 0.05, 20)
    back_phi, back_pi = phi4.leapfrog(new_phi, -new_pi, -4.0, 8.0, 0.05, 20)
    np.testing.assert_allclose(back_phi, phi, atol=1e-11)
    np.testing.assert_allclose(back_pi, -pi, atol=1e-11)

    # dH of a fixed-length trajectory is O(step^2): halving the step divides it by ~4.
    errors = []
    for steps in (20, 40, 80):
        a, b = phi4.leapfrog(phi, pi, -4.0, 8.0, 1.0 / steps, steps)
        errors.append(abs(phi4.hamiltonian(a, b, -4.0, 8.0) - phi4.hamiltonian(phi, pi, -4.0, 8.0)))
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 3.0) & (ratios < 5.5)), ratios


def test_leapfrog_is_symplectic_on_the_free_theory():
    # For lam = 0 the map is linear; its Jacobian (by columns) must have determinant one.
    L, dim = 3, 9
    jacobian = np.zeros((2 * dim, 2 * dim))
    for k in range(2 * dim):
        e = np.zeros(2 * dim)
        e[k] = 1.0
        a, b = phi4.leapfrog(e[:dim].reshape(L, L), e[dim:].reshape(L, L), 1.0, 0.0, 0.1, 7)
        jacobian[:, k] = np.concatenate([a.ravel(), b.ravel()])
    assert np.linalg.det(jacobian) == pytest.approx(1.0, abs=1e-10)


def test_free_theory_matches_the_exact_lattice_propagator():
    L, m2 = 8, 1.0
    out = phi4.generate(3000, seed=5, L=L, m2=m2, lam=0.0, thin=1, therm=100)
    exact = phi4.free_phi_squared(L, m2)
    # Cross-check of the closed form: the inverse of the quadratic form 2 (-Laplacian + m2).
    matrix = np.zeros((L * L, L * L))
    for site in range(L * L):
        unit = np.zeros(L * L)
        unit[site] = 1.0
        matrix[:, site] = phi4.force(unit.reshape(L, L), m2, 0.0).ravel()
    assert exact == pytest.approx(np.mean(np.diag(np.linalg.inv(matrix))), rel=1e-12)

    per_config = (out["configs"] ** 2).mean((-2, -1))
    tau = integrated_autocorrelation_time(per_config.reshape(4, -1).T)
    error = per_config.std() * np.sqrt(tau / len(per_config))
    assert abs(per_config.mean() - exact) < 4 * error, (per_config.mean(), exact, error)
    # The zero mode: <m^2> = 1 / (2 m2 V) with m the site-averaged field.
    m_squared = out["magnetisation"] ** 2
    tau_m = integrated_autocorrelation_time(out["magnetisation"].reshape(4, -1).T)
    error_m = m_squared.std() * np.sqrt(tau_m / len(m_squared))
    assert abs(m_squared.mean() - 1 / (2 * m2 * L * L)) < 4 * error_m
    # With thin = 1 the reported tau_int is that of the returned magnetisation series.
    assert float(out["tau_int"]) == pytest.approx(tau_m, rel=1e-6)


def test_a_chain_that_never_moves_reports_zero_acceptance_and_infinite_tau():
    out = phi4.generate(8, seed=0, tau=40.0, steps=1, therm=0, thin=1, chains=2)
    assert float(out["acceptance"]) == 0.0 and np.isinf(out["tau_int"])
    assert np.all(np.isfinite(out["configs"]))


def test_interacting_theory_matches_quadrature_on_a_2x2_lattice():
    m2, lam = -4.0, 8.0
    grid = np.linspace(-1.6, 1.6, 41)
    a, b, c, d = np.meshgrid(grid, grid, grid, grid, indexing="ij", sparse=True)
    # 2x2 periodic lattice: every forward neighbour pair appears twice in S (x+mu and x-mu coincide).
    kinetic = 2 * ((a - b) ** 2 + (a - c) ** 2 + (b - d) ** 2 + (c - d) ** 2)
    potential = sum(m2 * f**2 + lam * f**4 for f in (a, b, c, d))
    weight = np.exp(-(kinetic + potential))
    exact = float((weight * a**2).sum() / weight.sum())
    assert phi4.action(np.array([[0.3, -0.2], [0.1, 0.5]]), m2, lam) == pytest.approx(
        brute_force_action(np.array([[0.3, -0.2], [0.1, 0.5]]), m2, lam))

    out = phi4.generate(8000, seed=6, L=2, m2=m2, lam=lam, thin=1, therm=50, chains=8)
    per_config = (out["configs"] ** 2).mean((-2, -1))
    tau = integrated_autocorrelation_time(per_config.reshape(8, -1).T)
    error = per_config.std() * np.sqrt(tau / len(per_config))
    assert abs(per_config.mean() - exact) < 4 * error, (per_config.mean(), exact, error)


def test_generate_outputs_acceptance_and_tau_at_the_defaults():
    out = phi4.generate(200, seed=0)
    assert out["configs"].shape == (200, 8, 8)
    assert out["magnetisation"].shape == out["action"].shape == (200,)
    assert out["acceptance"].shape == out["tau_int"].shape == ()
    np.testing.assert_allclose(out["magnetisation"], out["configs"].mean((1, 2)))
    np.testing.assert_allclose(out["action"], [brute_force_action(c, -4.0, 8.0) for c in out["configs"][:3]] +
                               list(out["action"][3:]), rtol=1e-12)
    assert 0.6 < float(out["acceptance"]) < 0.99
    assert 1.0 <= float(out["tau_int"]) < 20.0
    # Smaller steps: fewer rejections.
    fine = phi4.generate(40, seed=0, steps=40, therm=20, thin=2)
    assert float(fine["acceptance"]) > float(out["acceptance"])
    assert float(fine["acceptance"]) > 0.97


def test_generate_is_deterministic_and_independent_of_workers():
    options = dict(L=6, therm=10, thin=2, chains=3)
    first = phi4.generate(31, seed=9, **options)
    again = phi4.generate(31, seed=9, **options)
    parallel = phi4.generate(31, seed=9, workers=2, **options)
    other = phi4.generate(31, seed=10, **options)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
        np.testing.assert_array_equal(first[key], parallel[key])
    assert not np.array_equal(first["configs"], other["configs"])


@pytest.mark.parametrize(
    "options, word",
    [({"size": 8}, "'size'"), ({"L": 1}, "'L'"), ({"lam": -1.0}, "'lam'"), ({"m2": -1.0, "lam": 0.0}, "'m2'"),
     ({"steps": "many"}, "'steps'"), ({"workers": 0}, "'workers'")],
)
def test_invalid_options_raise_config_error(options, word):
    with pytest.raises(ConfigError, match=word):
        phi4.generate(4, therm=1, **options)
