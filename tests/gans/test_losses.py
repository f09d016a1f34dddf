"""Adversarial losses against their closed forms, NumPy and autograd."""

import numpy as np
import pytest
import torch
from scipy.special import expit

from hepgen.errors import ConfigError
from hepgen.gans.losses import LOSSES, get_loss, gradient_penalty

R = np.array([-3.0, -0.5, 0.0, 0.7, 4.0])
F = np.array([2.0, -1.0, 0.3, -6.0, 0.0])

EXPECTED = {  # (critic per event, generator per event) from the textbook formulas, in NumPy
    "minimax": (-np.log(expit(R)) - np.log(1 - expit(F)), np.log(1 - expit(F))),
    "non-saturating": (-np.log(expit(R)) - np.log(1 - expit(F)), -np.log(expit(F))),
    "wgan": (F - R, -F),
    "wgan-gp": (F - R, -F),
    "hinge": (np.maximum(0, 1 - R) + np.maximum(0, 1 + F), -F),
    "least-squares": (0.5 * (R - 1) ** 2 + 0.5 * F**2, 0.5 * (F - 1) ** 2),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_match_closed_forms_per_event(name):
    spec = get_loss(name)
    r, f = torch.tensor(R, dtype=torch.float64), torch.tensor(F, dtype=torch.float64)
    critic, generator = spec.critic(r, f), spec.generator(f)
    assert critic.shape == (5,) and generator.shape == (5,)
    np.testing.assert_allclose(critic.numpy(), EXPECTED[name][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(generator.numpy(), EXPECTED[name][1], rtol=1e-12, atol=1e-12)


def test_generator_gradients_saturate_only_for_minimax():
    """d/df log(1 − σ(f)) = −σ(f) → 0 as D(fake) = σ(f) → 0; d/df −log σ(f) = −(1 − σ(f)) → −1."""
    f = torch.tensor([-12.0, -6.0, 0.0, 3.0], dtype=torch.float64, requires_grad=True)
    (g_mm,) = torch.autograd.grad(get_loss("minimax").generator(f).sum(), f)
    (g_ns,) = torch.autograd.grad(get_loss("non-saturating").generator(f).sum(), f)
    s = expit(f.detach().numpy())
    np.testing.assert_allclose(g_mm.numpy(), -s, rtol=1e-10)
    np.testing.assert_allclose(g_ns.numpy(), -(1 - s), rtol=1e-10)
    assert abs(g_mm[0]) < 1e-5 < 0.99 < abs(g_ns[0])


def test_gradient_penalty_per_event_for_a_linear_and_a_quadratic_critic():
    torch.manual_seed(0)
    a = torch.tensor([3.0, -4.0], dtype=torch.float64)  # ‖a‖ = 5 -> penalty λ (5 − 1)² for every event
    real, fake = torch.randn(7, 2, dtype=torch.float64), torch.randn(7, 2, dtype=torch.float64)
    gp = gradient_penalty(lambda x: x @ a, real, fake, weight=10.0)
    np.testing.assert_allclose(gp.detach().numpy(), np.full(7, 10.0 * 16.0))
    # D(x) = ½‖x‖²: ∇D = x̂; with real = fake the interpolate is x itself whatever ε is
    gp = gradient_penalty(lambda x: 0.5 * (x**2).sum(1), real, real, weight=2.0)
    np.testing.assert_allclose(gp.detach().numpy(), 2.0 * (real.norm(dim=1).numpy() - 1) ** 2, rtol=1e-12)


def test_gradient_penalty_trains_the_critic():
    w = torch.tensor([3.0, -4.0], dtype=torch.float64, requires_grad=True)
    gp = gradient_penalty(lambda x: x @ w, torch.zeros(4, 2, dtype=torch.float64),
                          torch.ones(4, 2, dtype=torch.float64), weight=1.0)
    (grad,) = torch.autograd.grad(gp.sum(), w)
    # d/dw (‖w‖ − 1)² = 2 (‖w‖ − 1) w / ‖w‖, four events
    np.testing.assert_allclose(grad.numpy(), 4 * 2 * (5 - 1) * w.detach().numpy() / 5, rtol=1e-12)


def test_loss_properties_and_unknown_name():
    assert get_loss("wgan").lipschitz == "clip" and get_loss("wgan-gp").lipschitz == "penalty"
    assert get_loss("wgan").wasserstein and not get_loss("hinge").wasserstein
    assert get_loss("minimax").probabilistic and not get_loss("least-squares").probabilistic
    with pytest.raises(ConfigError, match="non-saturating"):
        get_loss("nonsaturating")
