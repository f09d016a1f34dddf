"""e+e- -> q qbar g at LO: the three-jet rate against dblquad of the target, the cuts, the pb scale, bad options."""

import math

import pytest
import torch
from scipy import integrate

from hepgen.errors import ConfigError
from hepgen.targets import EEToQQG, make_target, three_jet_rate


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
    with pytest.raises(ConfigError, match="'alpha_s'"):
        make_target("eeqqg", alpha_s=-0.1)
    with pytest.raises(ConfigError, match="no option 'dims'"):
        make_target("eeqqg", dims=3)
