"""The φ⁴ target: the action and gradient of ``hepgen data phi4``, and the free theory's exact log Z."""

import math

import numpy as np
import pytest
import torch

from hepgen.data.generators import phi4
from hepgen.errors import ConfigError
from hepgen.targets import Phi4, make_target


def test_log_prob_is_minus_the_hmc_action_and_its_gradient_is_exact():
    target = Phi4(L=4, m2=-4.0, lam=6.975)
    phi = torch.randn(3, 4, 4, dtype=torch.float64, requires_grad=True)
    np.testing.assert_allclose(target.log_prob(phi).detach().numpy(), -phi4.action(phi.detach().numpy(), -4.0, 6.975))
    assert torch.autograd.gradcheck(lambda p: target.log_prob(p), (phi,))


def test_free_theory_log_norm_against_a_dense_determinant():
    # S = φᵀKφ: K from the action itself (polarisation on basis vectors), then log Z = V/2 log π − ½ log det K
    L, m2 = 3, 0.7
    target = Phi4(L=L, m2=m2, lam=0.0)
    v = L * L
    eye = np.eye(v).reshape(v, L, L)
    s = lambda x: phi4.action(x, m2, 0.0)
    diag = s(eye)
    k = np.array([[(s(eye[i] + eye[j]) - diag[i] - diag[j]) / 2.0 if i != j else diag[i] for j in range(v)]
                  for i in range(v)])
    expected = 0.5 * v * math.log(math.pi) - 0.5 * np.linalg.slogdet(k)[1]
    assert target.log_norm == pytest.approx(expected, rel=1e-12)
    # and <φ²> = (1/V) tr K⁻¹ / 2, the generator's closed form
    assert target.free_phi_squared() == pytest.approx(np.trace(np.linalg.inv(k)) / (2 * v), rel=1e-12)
    assert Phi4(L=4, m2=-4.0, lam=6.0).log_norm is None


def test_bad_options_are_named():
    with pytest.raises(ConfigError, match="unbounded"):
        Phi4(L=4, m2=-1.0, lam=0.0)
    with pytest.raises(ConfigError, match="'L'"):
        make_target("phi4", L=1)
    with pytest.raises(ConfigError, match="no option 'beta'"):
        make_target("phi4", beta=1.0)
    with pytest.raises(ConfigError, match="unknown target"):
        make_target("phi5")
    with pytest.raises(ConfigError, match="shape"):
        Phi4(L=4).log_prob(torch.zeros(2, 3, 3))
