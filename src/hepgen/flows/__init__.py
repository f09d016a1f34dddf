"""Normalizing flows: exact densities p(x | c) and one-pass sampling.

Models: :class:`RealNVP`, :class:`MAF`, :class:`IAF`, :class:`NSF` and :class:`Flow` (custom base +
transforms). Building blocks: :mod:`hepgen.flows.transforms`, :mod:`hepgen.flows.distributions`.
"""

from hepgen.flows.distributions import DiagonalGaussian, StandardNormal
from hepgen.flows.model import Flow, FlowModel
from hepgen.flows.zoo import IAF, MAF, NSF, RealNVP

__all__ = ["IAF", "MAF", "NSF", "DiagonalGaussian", "Flow", "FlowModel", "RealNVP", "StandardNormal"]
