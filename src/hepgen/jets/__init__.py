"""Jet taggers: a supervised classifier and two ways to decorrelate it from a nuisance (pivot, DisCo)."""

from hepgen.jets.taggers import Classifier, DisCo, Pivot, distance_correlation_sqr

__all__ = ["Classifier", "DisCo", "Pivot", "distance_correlation_sqr"]
