"""Building blocks shared by every model family."""

from hepgen.nn.mlp import MLP, activation

__all__ = ["MLP", "activation"]
