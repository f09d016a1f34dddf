"""Ready-made flows with one signature: RealNVP, MAF, IAF and NSF.

All map data to a standard normal through ``transforms`` layers whose conditioners are MLPs / MADEs with
``hidden`` units, alternate the autoregressive order (or the coupling parity) between layers, and start
as the identity map. ``context > 0`` makes every conditioner take the context vector.

    RealNVP   affine coupling         y_b = x_b exp(s(x_a, c)) + t(x_a, c)
    MAF       affine autoregressive   y_i = x_i exp(s_i(x_<i, c)) + t_i(x_<i, c)   (one-pass density)
    IAF       inverse of MAF layers                                                  (one-pass sampling)
    NSF       rational-quadratic splines, autoregressive or coupling (``coupling=True``)
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from collections.abc import Sequence

from hepgen.data.preprocess import PreprocessSpec
from hepgen.errors import ConfigError
from hepgen.flows.distributions import StandardNormal
from hepgen.flows.model import FlowModel
from hepgen.flows.transforms.autoregressive import affine_autoregressive, spline_autoregressive
from hepgen.flows.transforms.base import Inverse, Transform
from hepgen.flows.transforms.coupling import affine_coupling, alternating_mask, spline_coupling
from hepgen.models import register


def _orders(features: int, transforms: int) -> list[list[int]]:
    forward, backward = list(range(features)), list(range(features - 1, -1, -1))
    return [forward if i % 2 == 0 else backward for i in range(transforms)]


class _ZooFlow(FlowModel, ABC):
    """Shared constructor: checks, the standard-normal base, then ``_layers()`` from the subclass."""

    def __init__(self, features: int, context: int = 0, transforms: int = 5, hidden: Sequence[int] = (128, 128),
                 preprocess: PreprocessSpec = "standard"):
        if int(features) < 1 or int(transforms) < 1 or int(context) < 0:
            raise ConfigError(f"{type(self).__name__} needs features >= 1, transforms >= 1 and context >= 0 "
                              f"(got features={features}, transforms={transforms}, context={context})")
        if any(int(h) < 1 for h in hidden):
            raise ConfigError(f"hidden layer sizes must be positive, got {list(hidden)}")
        super().__init__((int(features),), int(context), preprocess)
        self.features, self.transforms = int(features), int(transforms)
        self.hidden = tuple(int(h) for h in hidden)

    def _build(self) -> None:
        self._set_parts(StandardNormal(self.features), self._layers())
        self.reset_parameters()

    @abstractmethod
    def _layers(self) -> list[Transform]:
        """The flow's transforms, data to base."""

    def _needs_pairs(self) -> None:
        if self.features < 2:
            raise ConfigError(f"{type(self).__name__} with coupling layers needs at least 2 features, got "
                              f"{self.features}; use MAF or NSF(coupling=False) for 1-D data")


@register
class RealNVP(_ZooFlow):
    """RealNVP (Dinh et al. 2017): affine coupling layers with alternating masks.

    Args:
        features: event size. context: context size. transforms: number of coupling layers.
        hidden: conditioner MLP hidden sizes. preprocess: per-feature preprocessing.
    """

    cli_name = "realnvp"

    def __init__(self, features: int, context: int = 0, transforms: int = 5, hidden: Sequence[int] = (128, 128),
                 preprocess: PreprocessSpec = "standard"):
        super().__init__(features, context, transforms, hidden, preprocess)
        self._needs_pairs()
        self._build()

    def _layers(self) -> list[Transform]:
        return [affine_coupling(alternating_mask(self.features, i % 2), self.hidden, self.context)
                for i in range(self.transforms)]


@register
class MAF(_ZooFlow):
    """Masked autoregressive flow (Papamakarios et al. 2017): affine MADE layers, orders alternating.

    Args as :class:`RealNVP`. Density in one pass per layer; sampling takes ``features`` passes per layer.
    """

    cli_name = "maf"

    def __init__(self, features: int, context: int = 0, transforms: int = 5, hidden: Sequence[int] = (128, 128),
                 preprocess: PreprocessSpec = "standard"):
        super().__init__(features, context, transforms, hidden, preprocess)
        self._build()

    def _layers(self) -> list[Transform]:
        return [affine_autoregressive(self.features, self.hidden, self.context, order)
                for order in _orders(self.features, self.transforms)]


@register
class IAF(_ZooFlow):
    """Inverse autoregressive flow (Kingma et al. 2016): inverted MAF layers.

    Args as :class:`RealNVP`. Sampling in one pass per layer; density takes ``features`` passes per layer.
    """

    cli_name = "iaf"

    def __init__(self, features: int, context: int = 0, transforms: int = 5, hidden: Sequence[int] = (128, 128),
                 preprocess: PreprocessSpec = "standard"):
        super().__init__(features, context, transforms, hidden, preprocess)
        self._build()

    def _layers(self) -> list[Transform]:
        return [Inverse(affine_autoregressive(self.features, self.hidden, self.context, order))
                for order in _orders(self.features, self.transforms)]


@register
class NSF(_ZooFlow):
    """Neural spline flow (Durkan et al. 2019): rational-quadratic splines with linear tails outside [-B, B].

    Args:
        features, context, transforms, hidden, preprocess: as :class:`RealNVP`.
        bins: spline bins K. tail_bound: B (in preprocessed units).
        coupling: coupling layers (one-pass both ways) instead of autoregressive ones (one-pass density).
    """

    cli_name = "nsf"

    def __init__(self, features: int, context: int = 0, transforms: int = 5, hidden: Sequence[int] = (128, 128),
                 bins: int = 8, tail_bound: float = 5.0, coupling: bool = False,
                 preprocess: PreprocessSpec = "standard"):
        super().__init__(features, context, transforms, hidden, preprocess)
        if int(bins) < 1 or float(tail_bound) <= 0:
            raise ConfigError(f"NSF needs bins >= 1 and tail_bound > 0 (got bins={bins}, tail_bound={tail_bound})")
        self.bins, self.tail_bound, self.coupling = int(bins), float(tail_bound), bool(coupling)
        if self.coupling:
            self._needs_pairs()
        self._build()

    def _layers(self) -> list[Transform]:
        if self.coupling:
            return [spline_coupling(alternating_mask(self.features, i % 2), self.hidden, self.context, self.bins,
                                    self.tail_bound) for i in range(self.transforms)]
        return [spline_autoregressive(self.features, self.hidden, self.context, order, self.bins, self.tail_bound)
                for order in _orders(self.features, self.transforms)]
