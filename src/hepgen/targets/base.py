"""The interface of a target: a density known up to a constant, log p̃(x), on a stated domain.

    p(x) = p̃(x) / Z,   Z = ∫_domain p̃(x) dx   (``log_norm`` = log Z when known in closed form)

``log_prob(x)``: x (batch, *event_shape) -> (batch,), a torch tensor, differentiable in x where p̃ is
smooth (lattice actions; the reverse-KL training of a flow needs ∇ₓ log p̃). Outside its domain, or where
p̃ vanishes (a phase-space cut), ``log_prob`` is −inf. ``domain`` is ``"real"`` (ℝ^D) or
``"unit-hypercube"`` ([0, 1]^D). ``get_config()`` gives the options that rebuild a built-in target
(``make_target(name, **config)``); a user's subclass need only set ``event_shape`` and define ``log_prob``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import math
from typing import Any, ClassVar

import torch
from torch import Tensor

from hepgen.errors import ConfigError

DOMAINS = ("real", "unit-hypercube")


class Target(ABC):
    """Base of every target: subclasses set ``name``, ``event_shape``, ``domain`` and implement ``log_prob``."""

    name: ClassVar[str] = "target"
    domain: ClassVar[str] = "real"
    event_shape: tuple[int, ...]

    @abstractmethod
    def log_prob(self, x: Tensor) -> Tensor:
        """Unnormalised log-density log p̃(x): x (batch, *event_shape) -> (batch,)."""

    @property
    def log_norm(self) -> float | None:
        """log Z = log ∫ p̃ over the domain when known exactly (else None)."""
        return None

    @property
    def integral(self) -> float | None:
        """Z = ∫ p̃ over the domain when known exactly (else None)."""
        return None if self.log_norm is None else math.exp(self.log_norm)

    @property
    def dim(self) -> int:
        """Number of variables D = prod(event_shape)."""
        return int(math.prod(self.event_shape))

    def __call__(self, x: Tensor) -> Tensor:
        """p̃(x) = exp(log p̃(x)): (batch,) (an integrand's value)."""
        return torch.exp(self.log_prob(x))

    def check(self, x: Tensor) -> Tensor:
        """x as a tensor of shape (batch, *event_shape); a ConfigError names a wrong shape."""
        x = torch.as_tensor(x)
        if tuple(x.shape[1:]) != tuple(self.event_shape):
            raise ConfigError(f"target {self.name!r} takes points of shape (batch, {', '.join(map(str, self.event_shape))})"
                              f", got {tuple(x.shape)}")
        return x

    def get_config(self) -> dict[str, Any]:
        """The options that rebuild this target (``make_target(name, **config)``); a built-in target defines it. A
        user's own subclass may leave it (``{}``): hepgen records only its name and never rebuilds it, the user
        gives it again (``hepgen.load(run, target=...)``)."""
        return {}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({opts})"


def check_number(value: Any, key: str, target: str, low: float | None = None, low_open: bool = False,
                 high: float | None = None, high_open: bool = False, integer: bool = False) -> float:
    """``value`` as a finite number within the bounds, else a ConfigError naming the option and the target."""
    kind = "an integer" if integer else "a finite number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (integer and int(value) != value):
        raise ConfigError(f"option {key!r} of target {target!r} must be {kind}, got {value!r}")
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high}"
        raise ConfigError(f"option {key!r} of target {target!r} must be {' and '.join(p for p in (lo, hi) if p)}, "
                          f"got {value!r}")
    return int(value) if integer else float(value)
