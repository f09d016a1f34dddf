"""hepgen: generative models for particle physics."""

__version__ = "0.1.0"
