"""Densities known up to a constant, for flows trained without data (reverse KL, importance sampling, MCMC).

Every target has ``log_prob(x)`` (unnormalised, torch, (batch, *event_shape) -> (batch,)), a ``domain``
(``"real"`` or ``"unit-hypercube"``) and ``log_norm`` / ``integral`` when exactly known:

============  ==================================  =====================  ==============================
name          class                               variables              exact normalisation
============  ==================================  =====================  ==============================
phi4          :class:`Phi4` (L, m2, lam)          φ: (L, L), ℝ           free theory (lam = 0) only
gaussian      :class:`Gaussian` (dims, width)     [0, 1]^dims            erf
camel         :class:`Camel` (dims, width)        [0, 1]^dims            erf
ring          :class:`Ring` (dims, width, r)      [0, 1]^dims            1 (radial quadrature)
breit-wigner  :class:`BreitWigner` (dims, width)  [0, 1]^dims, dims ≥ 3  1 (closed-form BW mass)
eeqqg         :class:`EEToQQG` (ycut, alpha_s)    (x₁, x₂) ∈ [0, 1]²     the LO three-jet rate R₃(y)
============  ==================================  =====================  ==============================
"""

from __future__ import annotations

import inspect
from typing import Any

from hepgen.errors import ConfigError
from hepgen.targets.base import DOMAINS, Target
from hepgen.targets.integrands import BreitWigner, Camel, Gaussian, Ring
from hepgen.targets.lattice import Phi4
from hepgen.targets.matrix_elements import EEToQQG, three_jet_rate

#: target name -> class
TARGETS: dict[str, type[Target]] = {"phi4": Phi4, "gaussian": Gaussian, "camel": Camel, "ring": Ring,
                                    "breit-wigner": BreitWigner, "eeqqg": EEToQQG}
#: the targets on the unit hypercube (integrands)
INTEGRANDS = tuple(n for n, c in TARGETS.items() if c.domain == "unit-hypercube")


def make_target(name: str, **options: Any) -> Target:
    """The target ``name`` with ``options``; unknown names or options are a ConfigError naming them."""
    if name not in TARGETS:
        raise ConfigError(f"unknown target {name!r}; available: {', '.join(TARGETS)}")
    cls = TARGETS[name]
    valid = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    for key in options:
        if key not in valid:
            raise ConfigError(f"target {name!r} has no option {key!r}; its options: {', '.join(valid)}")
    return cls(**options)


__all__ = ["DOMAINS", "INTEGRANDS", "TARGETS", "BreitWigner", "Camel", "EEToQQG", "Gaussian", "Phi4", "Ring", "Target",
           "make_target", "three_jet_rate"]
