"""Deprecated name of :mod:`hepgen.metrics.shower_observables` (the CaloChallenge shower observables), kept
for scripts written against it; importing it warns."""

import warnings

from hepgen.metrics.shower_observables import *  # noqa: F403
from hepgen.metrics.shower_observables import __all__  # noqa: F401

warnings.warn("hepgen.metrics.showers is deprecated: import hepgen.metrics.shower_observables", DeprecationWarning,
              stacklevel=2)
