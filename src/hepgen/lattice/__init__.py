"""Lattice field theory with flows: flow-based MCMC for 2-D φ⁴ (Albergo, Kanwar & Shanahan 2019) and your own action.

:class:`LatticeFlow` (``hepgen fit lattice-flow --action my_action.py:S --shape 16,16 --steps-per-epoch N``)
takes any action S(φ) on a periodic lattice of 1, 2 or 3 dimensions (a Target, a torch function, or a file).

:class:`Phi4Flow` (``hepgen fit phi4-flow --L 8 --m2 -4 --lam 6.008 --steps-per-epoch N``) is trained by
reverse KL to exp(−S) of :class:`hepgen.targets.Phi4`; :func:`flow_mcmc` (``hepgen sample RUN -n N --mcmc``)
runs an independence Metropolis–Hastings chain on its proposals, :mod:`hepgen.lattice.observables` measures
⟨|M|⟩, χ₂, the Ising energy and the pole mass with jackknife errors.
"""

from hepgen.lattice.flow import LatticeFlow
from hepgen.lattice.phi4_flow import Phi4Flow
from hepgen.lattice.mcmc import (
           flow_mcmc,
           metropolis_chain,
           propose,
           self_normalised_weights,
           tau_int,
)
from hepgen.lattice.observables import jackknife, observables, two_point

__all__ = ["LatticeFlow", "Phi4Flow", "flow_mcmc", "jackknife", "metropolis_chain", "observables", "propose",
           "self_normalised_weights", "tau_int", "two_point"]
