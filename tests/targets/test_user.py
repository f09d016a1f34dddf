"""hepgen.targets.user: the checks on a user's lattice action S(φ) (check_action), independent of any flow."""

import warnings

import numpy as np
import pytest
import torch

from hepgen.errors import DataError
from hepgen.targets.user import UserAction, check_action


def test_check_action_names_the_first_bad_row_without_a_warning_for_a_field_with_a_gradient():
    x = torch.randn(5, 3, 3, requires_grad=True)
    s = (x**2).sum((1, 2)) * torch.tensor([1.0, 1.0, float("nan"), 1.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Converting a tensor with requires_grad=True to a scalar" on the way
        with pytest.raises(DataError, match=r"my S returned nan \(not finite\) at row 2 of a batch of 5 \(input \["):
            check_action(s, x, "my S")


def test_check_action_accepts_a_column_only_when_asked_and_keeps_the_values():
    x = torch.randn(4, 2, requires_grad=True)
    s = (x**2).sum(1)
    assert check_action(s[:, None], x, "S").shape == (4,)
    with pytest.raises(DataError, match=r"returned shape \(4, 1\)"):
        check_action(s[:, None], x, "S", column=False)
    torch.testing.assert_close(check_action(s, x, "S"), s)
    with pytest.raises(DataError, match="without the field's gradient"):
        check_action(s.detach(), x, "S")
    assert check_action(s.detach(), x.detach(), "S").shape == (4,)  # no gradient asked for, none needed


def test_a_user_action_returns_the_fields_dtype_and_its_gradient_is_autograds():
    def S(phi):
        return (phi**2 + 0.3 * phi**4 + (torch.roll(phi, -1, 1) - phi) ** 2).sum(1)

    action = UserAction(S, (6,))
    x = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(action.log_prob(x).sum(), x)
    xd = x.detach().numpy()
    force = 2 * xd + 1.2 * xd**3 + 2 * (2 * xd - np.roll(xd, -1, 1) - np.roll(xd, 1, 1))  # dS/dφ by hand
    np.testing.assert_allclose(-grad.numpy(), force, rtol=1e-12)
    assert action.action(x.float()).dtype == torch.float32
