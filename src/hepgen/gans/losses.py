"""Adversarial losses as pairs of per-event functions (critic loss, generator loss).

Every function takes the critic's raw outputs — logits for the probabilistic losses, scores for
the Wasserstein and hinge losses — on real events ``real: (batch,)`` and generated events
``fake: (batch,)`` and returns a per-event loss ``(batch,)``; the engine takes the weighted mean.
Event i of a batch is paired with the i-th generated event (z is drawn independently of the
event weights, so the weighted mean of the fake term is an unbiased estimate of its expectation).

    name              critic loss ℓ_D                          generator loss ℓ_G
    minimax           −log σ(r) − log(1 − σ(f))                log(1 − σ(f))          (saturating, Goodfellow 2014)
    non-saturating    −log σ(r) − log(1 − σ(f))                −log σ(f)
    wgan              f − r   (+ weight clipping)               −f
    wgan-gp           f − r + λ (‖∇ D(x̂)‖ − 1)²,  λ = 10      −f
    hinge             max(0, 1 − r) + max(0, 1 + f)            −f
    least-squares     ½ (r − 1)² + ½ f²                        ½ (f − 1)²

For the Wasserstein losses ``r − f`` per event is the critic's estimate of W1(p_data, p_G) (exact
for the optimal 1-Lipschitz critic; weight clipping gives K·W1 for an unknown K).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from hepgen.errors import ConfigError

PerEvent = Callable[[Tensor, Tensor], Tensor]


# -- critic losses ------------------------------------------------------------------------------------
def bce_critic(real: Tensor, fake: Tensor) -> Tensor:
    """−log σ(r) − log(1 − σ(f)) = softplus(−r) + softplus(f): (batch,)."""
    return F.softplus(-real) + F.softplus(fake)


def wasserstein_critic(real: Tensor, fake: Tensor) -> Tensor:
    """f − r: minimising it maximises E[D(real)] − E[D(fake)]: (batch,)."""
    return fake - real


def hinge_critic(real: Tensor, fake: Tensor) -> Tensor:
    """max(0, 1 − r) + max(0, 1 + f): (batch,)."""
    return F.relu(1.0 - real) + F.relu(1.0 + fake)


def least_squares_critic(real: Tensor, fake: Tensor) -> Tensor:
    """½ (r − 1)² + ½ f² (LSGAN with labels 0 and 1): (batch,)."""
    return 0.5 * (real - 1.0) ** 2 + 0.5 * fake**2


# -- generator losses ---------------------------------------------------------------------------------
def minimax_generator(fake: Tensor) -> Tensor:
    """log(1 − σ(f)) = −softplus(f); its gradient σ(f) ∂f vanishes when D(fake) → 0: (batch,)."""
    return -F.softplus(fake)


def non_saturating_generator(fake: Tensor) -> Tensor:
    """−log σ(f) = softplus(−f); its gradient (1 − σ(f)) ∂f stays large when D(fake) → 0: (batch,)."""
    return F.softplus(-fake)


def linear_generator(fake: Tensor) -> Tensor:
    """−f (Wasserstein and hinge generators): (batch,)."""
    return -fake


def least_squares_generator(fake: Tensor) -> Tensor:
    """½ (f − 1)²: (batch,)."""
    return 0.5 * (fake - 1.0) ** 2


# -- the gradient penalty -----------------------------------------------------------------------------
def gradient_penalty(critic: Callable[..., Tensor], real: Tensor, fake: Tensor, context: Tensor | None = None,
                     weight: float = 10.0) -> Tensor:
    """Per-event λ (‖∇ₓ D(x̂)‖ − 1)² at x̂ = ε x + (1 − ε) x̃, ε ~ U(0, 1) per event (Gulrajani et al. 2017).

    real, fake: (batch, *event_shape); context: (batch, c) or None; returns (batch,). The graph is
    kept (create_graph) so the penalty trains the critic.
    """
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = critic(mixed, context) if context is not None else critic(mixed)
    (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    norm = grad.reshape(grad.shape[0], -1).norm(dim=1)
    return weight * (norm - 1.0) ** 2


@dataclass(frozen=True)
class AdversarialLoss:
    """One named loss: its critic and generator terms and how the critic is kept Lipschitz.

    ``probabilistic``: the critic output is a logit and σ(output) is the probability "real".
    ``lipschitz``: "clip" (weight clipping), "penalty" (gradient penalty) or None.
    """

    name: str
    critic: PerEvent
    generator: Callable[[Tensor], Tensor]
    probabilistic: bool
    lipschitz: str | None = None

    @property
    def wasserstein(self) -> bool:
        """True when r − f estimates the Wasserstein-1 distance."""
        return self.lipschitz is not None


LOSSES: dict[str, AdversarialLoss] = {
    "minimax": AdversarialLoss("minimax", bce_critic, minimax_generator, True),
    "non-saturating": AdversarialLoss("non-saturating", bce_critic, non_saturating_generator, True),
    "wgan": AdversarialLoss("wgan", wasserstein_critic, linear_generator, False, "clip"),
    "wgan-gp": AdversarialLoss("wgan-gp", wasserstein_critic, linear_generator, False, "penalty"),
    "hinge": AdversarialLoss("hinge", hinge_critic, linear_generator, False),
    "least-squares": AdversarialLoss("least-squares", least_squares_critic, least_squares_generator, False),
}


def get_loss(name: str) -> AdversarialLoss:
    """The loss called ``name`` (see :data:`LOSSES`); unknown names raise a ConfigError."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ConfigError(f"unknown GAN loss {name!r}; choose one of {', '.join(LOSSES)}") from None
