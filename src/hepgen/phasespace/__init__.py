"""Phase-space integration and unweighted event generation with flows on the unit hypercube (i-flow).

:class:`HypercubeFlow` (``hepgen fit hypercube-flow --target camel --dims 4 --steps-per-epoch N``) learns an
integrand of :mod:`hepgen.targets`; :meth:`~HypercubeFlow.integrate` gives ∫f ± error and
``hepgen sample RUN -n N --unweighted`` unweighted events (:func:`unweight`, with its max-weight caveat).
"""

from hepgen.phasespace.hypercube_flow import CentredUniform, HypercubeFlow
from hepgen.phasespace.integration import summarise, unweight, unweighting_efficiency

__all__ = ["CentredUniform", "HypercubeFlow", "summarise", "unweight", "unweighting_efficiency"]
