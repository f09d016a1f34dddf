"""Test integrands on the unit hypercube: exact integrals against independent quadrature and Monte Carlo."""

import math

import numpy as np
import pytest
import torch

from hepgen.errors import ConfigError
from hepgen.targets import Camel, Gaussian, Ring, make_target


def _grid_integral(target, n=2000):
    t = (np.arange(n) + 0.5) / n
    x = torch.as_tensor(np.stack(np.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2))
    return float(target(x).sum()) / n**2


@pytest.mark.parametrize("target", [Gaussian(2, 0.05), Gaussian(2, 0.4), Camel(2, 0.1), Camel(2, 0.3), Ring(2)])
def test_two_dimensional_integrals_against_a_fine_grid(target):
    assert _grid_integral(target) == pytest.approx(target.integral, rel=2e-6)


def test_higher_dimensional_integrals_against_monte_carlo():
    rng = np.random.default_rng(0)
    for target in (Camel(3, 0.3), Gaussian(4, 0.3), Ring(3, width=0.05, radius=0.1)):
        f = target(torch.as_tensor(rng.random((400_000, target.dims)))).numpy()
        err = f.std() / math.sqrt(len(f))
        assert abs(f.mean() - target.integral) < 4 * err, (target, f.mean(), err)
    # a camel of width 0.3 leaks out of the cube: its integral is visibly below 1 and known exactly
    assert Camel(3, 0.3).integral < 0.7


def test_zero_outside_the_cube():
    x = torch.tensor([[0.5, 1.2], [-0.1, 0.5], [0.5, 0.5]])
    for target in (Gaussian(2), Camel(2), Ring(2)):
        lp = target.log_prob(x)
        assert torch.isinf(lp[:2]).all() and torch.isfinite(lp[2])


def test_bad_options_are_named():
    with pytest.raises(ConfigError, match="'width'"):
        make_target("camel", dims=2, width=-1.0)
    with pytest.raises(ConfigError, match="radius"):
        Ring(2, width=0.05, radius=0.3)
    with pytest.raises(ConfigError, match="'dims'"):
        Gaussian(dims=0)


def test_the_breit_wigner_integrand_against_quadrature_and_monte_carlo():
    from scipy import integrate

    from hepgen.targets import BreitWigner
    from hepgen.targets.integrands import breit_wigner_mass

    for mass, width in ((0.7, 0.02), (0.3, 0.1), (0.9, 0.005)):
        s0, g = mass**2, mass * width
        quad, _ = integrate.quad(lambda s: g / math.pi / ((s - s0) ** 2 + g * g) * 4 * min(s, 1 - s), 0, 1,
                                 points=[s0, 0.5], epsabs=0, epsrel=1e-12, limit=400)
        assert breit_wigner_mass(mass, width) == pytest.approx(quad, rel=1e-10)
    target = BreitWigner(dims=4)
    assert target.integral == 1.0 and make_target("breit-wigner", dims=3).dims == 3
    rng = np.random.default_rng(1)
    f = target(torch.as_tensor(rng.random((1_000_000, 4)))).numpy()
    assert abs(f.mean() - 1.0) < 4 * f.std() / math.sqrt(len(f))
    # the resonance's share: f restricted to |s - M²| < 10 MΓ holds most of the resonance part (half of f)
    x = torch.as_tensor(rng.random((200_000, 4)))
    s = 0.5 * (x[:, 0] + x[:, 1])
    assert float((target(x) * (torch.abs(s - 0.49) < 0.14)).mean()) > 0.45
    with pytest.raises(ConfigError, match="dims >= 3"):
        BreitWigner(dims=2)
    with pytest.raises(ConfigError, match="'mass'"):
        BreitWigner(dims=3, mass=1.5)
