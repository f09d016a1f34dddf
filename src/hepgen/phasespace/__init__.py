"""Phase-space integration and unweighted event generation with flows on the unit hypercube (i-flow).

:class:`HypercubeFlow` (``hepgen fit hypercube-flow --target camel --dims 4 --steps-per-epoch N``) learns an
integrand of :mod:`hepgen.targets`; :meth:`~HypercubeFlow.integrate` gives ∫f ± error and
``hepgen sample RUN -n N --unweighted`` unweighted events (:func:`unweight`, with its max-weight caveat).
The user's own integrand (``--integrand my_f.py:NAME``, :mod:`hepgen.targets.user`) and matrix element
(:class:`PhaseSpaceFlow`, ``hepgen fit phase-space-flow --matrix-element my_me.py:NAME``) on massless n-body
phase space (:mod:`hepgen.phasespace.nbody`), with unweighted events as LHE files (:mod:`hepgen.data.lhe`).
Both take MadNIS's options: a VEGAS grid as the first layer (:mod:`hepgen.phasespace.vegas_grid`), buffered
training and multi-channel sampling (``--vegas-calls``, ``--buffer-steps``, ``--channels``).
"""

from hepgen.phasespace.hypercube_flow import CentredUniform, HypercubeFlow
from hepgen.phasespace.integration import summarise, unweight, unweighting_efficiency
from hepgen.phasespace.nbody import Cuts, MatrixElementTarget, cross_section_pb, massless_momenta, phase_space_volume
from hepgen.phasespace.phase_space_flow import PhaseSpaceFlow
from hepgen.phasespace.vegas_grid import VegasGrid, adapt_grid

__all__ = ["CentredUniform", "Cuts", "HypercubeFlow", "MatrixElementTarget", "PhaseSpaceFlow", "cross_section_pb",
           "massless_momenta", "phase_space_volume", "summarise", "unweight", "unweighting_efficiency", "VegasGrid",
           "adapt_grid"]
