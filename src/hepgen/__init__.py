"""hepgen: generative models for particle physics — learn what data look like without labels.

Public API: the model classes (``hepgen.Gaussian`` ... as their families land), :func:`load`, the
data layer (:mod:`hepgen.data`), metrics (:mod:`hepgen.metrics`) and reports (:mod:`hepgen.report`).
"""

__version__ = "0.1.0"

from hepgen.errors import CheckpointError, ConfigError, DataError, HepgenError, TrainingError
from hepgen.gaussian import Gaussian
from hepgen.models import REGISTRY, Model
from hepgen.train.checkpoint import load
from hepgen.train.engine import Engine

__all__ = [
    "CheckpointError", "ConfigError", "DataError", "Engine", "Gaussian", "HepgenError", "Model", "REGISTRY",
    "TrainingError", "load",
]
