"""Invertible layers: ``forward(x, context) -> (y, log|det J|)``, ``inverse(y, context) -> (x, log|det J⁻¹|)``."""

from hepgen.flows.transforms.autoregressive import MaskedAutoregressive, affine_autoregressive, spline_autoregressive
from hepgen.flows.transforms.base import Compose, Inverse, Transform
from hepgen.flows.transforms.coupling import (Coupling, additive_coupling, affine_coupling, alternating_mask,
                                              random_mask, spline_coupling)
from hepgen.flows.transforms.elementwise import (AdditiveTransformer, AffineTransformer, ElementwiseAffine, Logit,
                                                 Sigmoid, Softplus)
from hepgen.flows.transforms.image import (ConvCoupling, Split, Squeeze, channel_mask, checkerboard_mask, conv_coupling,
                                           multiscale_image_transforms)
from hepgen.flows.transforms.linear import LULinear, Permutation
from hepgen.flows.transforms.normalisation import ActNorm, BatchNormFlow
from hepgen.flows.transforms.splines import SplineTransformer, rational_quadratic_spline

__all__ = [
    "ActNorm", "AdditiveTransformer", "AffineTransformer", "BatchNormFlow", "Compose", "ConvCoupling", "Coupling",
    "ElementwiseAffine", "Inverse", "LULinear", "Logit", "MaskedAutoregressive", "Permutation", "Sigmoid", "Softplus",
    "Split", "SplineTransformer", "Squeeze", "Transform", "additive_coupling", "affine_autoregressive",
    "affine_coupling", "alternating_mask", "channel_mask", "checkerboard_mask", "conv_coupling",
    "multiscale_image_transforms", "random_mask", "rational_quadratic_spline", "spline_autoregressive",
    "spline_coupling",
]
