"""Test integrands on the unit hypercube and e+e- -> q qbar g: exact integrals against independent quadrature."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from hepgen.errors import ConfigError
from hepgen.targets import Camel, EEToQQG, Gaussian, Ring, make_target, three_jet_rate


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


@pytest.mark.parametrize("ycut", [0.1, pytest.param(0.01, marks=pytest.mark.slow)])
def test_three_jet_rate_against_dblquad_of_the_target(ycut):
    target = EEToQQG(ycut=ycut, alpha_s=0.118)

    def f(x2, x1):
        return float(target(torch.tensor([[x1, x2]], dtype=torch.float64)))

    # the cut region, so that quadrature does not straddle the steps
    value, _ = integrate.dblquad(f, 2 * ycut, 1 - ycut, lambda x1: 1 + ycut - x1, lambda x1: 1 - ycut,
                                 epsabs=1e-9, epsrel=1e-8)
    assert value == pytest.approx(target.integral, rel=1e-6)
    assert target.integral == pytest.approx(three_jet_rate(ycut), rel=1e-14)
    # points that fail one of the three cuts, or are unphysical, have zero weight
    bad = torch.tensor([[1 - ycut / 2, 0.6], [0.6, 1 - ycut / 2], [0.5, 0.5 + ycut / 2], [0.3, 0.3]])
    assert torch.isinf(target.log_prob(bad)).all()


def test_cross_section_in_picobarn_scales_with_the_born():
    a, b = EEToQQG(0.05), EEToQQG(0.05, sqrt_s=91.0)
    sigma0 = 4 * math.pi / 137.036**2 / (3 * 91.0**2) * 3 * 11 / 9 * 0.3894e9
    assert b.integral == pytest.approx(a.integral * sigma0, rel=1e-12)


def test_bad_options_are_named():
    with pytest.raises(ConfigError, match="'ycut'"):
        EEToQQG(ycut=0.4)
    with pytest.raises(ConfigError, match="'width'"):
        make_target("camel", dims=2, width=-1.0)
    with pytest.raises(ConfigError, match="radius"):
        Ring(2, width=0.05, radius=0.3)
    with pytest.raises(ConfigError, match="'dims'"):
        Gaussian(dims=0)
