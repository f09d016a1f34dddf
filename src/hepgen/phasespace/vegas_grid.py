"""A VEGAS grid as a fixed, invertible flow layer on the unit hypercube (MadNIS's VEGAS pre-training).

The grid is adapted by the ``vegas`` package (G. P. Lepage; :func:`adapt_grid`, never re-implemented here) and
then frozen: per dimension j, N increments with edges g_j[0] = 0 < g_j[1] < … < g_j[N] = 1 map y ∈ [0, 1] to

    x = g[i] + (g[i+1] − g[i]) (N y − i),   i = ⌊N y⌋,        ∂x/∂y = N (g[i+1] − g[i])

(vegas.AdaptiveMap's map), a product of piecewise-linear monotone maps with log|det ∂x/∂y| = Σ_j log N Δg_j[i_j].
In a :class:`~hepgen.phasespace.HypercubeFlow` it is the first layer on the data side: the splines learn the
density of y = G⁻¹(x), so a flow that starts as the identity starts as the VEGAS sampler, q(x) = q_y(G⁻¹(x)) /
|det ∂G/∂y|, and trains on top of it. As a :class:`~hepgen.flows.transforms.Transform` in the flow's centred
coordinates ([−½, ½]^d): ``forward`` is x ↦ y = G⁻¹(x) (the normalising direction), ``inverse`` is y ↦ x = G(y).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from hepgen.errors import ConfigError
from hepgen.flows.transforms.base import Transform


class VegasGrid(Transform):
    """The frozen VEGAS map of ``edges`` (d, bins + 1), increasing from 0 to 1 in each row (module doc).

    Starts as the identity (uniform edges); :meth:`set_edges` installs an adapted grid. The edges are a buffer, so
    they are saved with the model and restored by ``hepgen.load``; no parameter is trained."""

    def __init__(self, features: int, bins: int):
        super().__init__()
        if int(bins) < 1:
            raise ConfigError(f"the VEGAS grid needs bins >= 1, got {bins}")
        self.features, self.bins = int(features), int(bins)
        edges = torch.linspace(0.0, 1.0, self.bins + 1, dtype=torch.float64).expand(self.features, -1).clone()
        self.register_buffer("edges", edges)

    def set_edges(self, edges: np.ndarray | Tensor) -> None:
        """Install an adapted grid (d, bins + 1): each row strictly increasing from 0 to 1."""
        e = torch.as_tensor(np.asarray(edges, dtype=np.float64))
        if tuple(e.shape) != tuple(self.edges.shape):
            raise ConfigError(f"VEGAS grid of shape {tuple(e.shape)}, expected {tuple(self.edges.shape)}")
        if not bool((e[:, 1:] > e[:, :-1]).all()) or not torch.allclose(e[:, 0], e.new_zeros(())) \
                or not torch.allclose(e[:, -1], e.new_ones(())):
            raise ConfigError("a VEGAS grid's edges must increase strictly from 0 to 1 in every dimension")
        self.edges.copy_(e.to(self.edges.device))

    def _widths(self) -> Tensor:
        return self.edges[:, 1:] - self.edges[:, :-1]  # (d, bins)

    def map(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """x = G(y) and log|det ∂x/∂y|: y (batch, d) in [0, 1]^d -> ((batch, d), (batch,)); float64 inside."""
        y64 = y.double()
        n = self.bins
        i = (y64 * n).floor().clamp(0, n - 1).long()  # (batch, d)
        edges, widths = self.edges.to(y.device), self._widths().to(y.device)
        rows = torch.arange(self.features, device=y.device).expand_as(i)
        lo, w = edges[rows, i], widths[rows, i]
        x = lo + w * (y64 * n - i)
        ladj = torch.log(n * w).sum(-1)
        return x.to(y.dtype), ladj.to(y.dtype)

    def invmap(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """y = G⁻¹(x) and log|det ∂y/∂x| = −log|det ∂x/∂y|: x (batch, d) in [0, 1]^d -> ((batch, d), (batch,))."""
        x64 = x.double()
        n = self.bins
        edges, widths = self.edges.to(x.device), self._widths().to(x.device)
        # per dimension: the increment holding x (searchsorted needs a contiguous row per dimension)
        i = torch.searchsorted(edges[:, 1:-1].contiguous(), x64.T.contiguous(), right=True).T  # (batch, d)
        rows = torch.arange(self.features, device=x.device).expand_as(i)
        lo, w = edges[rows, i], widths[rows, i]
        y = (i + (x64 - lo) / w) / n
        ladj = -torch.log(n * w).sum(-1)
        return y.to(x.dtype), ladj.to(x.dtype)

    # the flow's centred coordinates: forward is the normalising direction x -> y
    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y, ladj = self.invmap(x + 0.5)
        return y - 0.5, ladj

    def inverse(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x, ladj = self.map(y + 0.5)
        return x - 0.5, ladj


def adapt_grid(f: Callable[[np.ndarray], np.ndarray], dims: int, calls: int, iterations: int = 10,
               bins: int = 64, alpha: float = 0.5, seed: int = 0) -> tuple[np.ndarray, int]:
    """A VEGAS grid adapted to f ≥ 0 on [0, 1]^dims by the ``vegas`` package: (edges (dims, bins + 1), calls made).

    ``iterations`` passes of about ``calls / iterations`` evaluations each (vegas.Integrator, importance sampling
    only: no stratification, so every call is f's and the map is all that is learned), damping ``alpha``.
    ``f``: x (n, dims) float64 -> (n,). vegas draws from a NumPy Generator seeded with ``seed`` (no global RNG is
    touched, and the same seed gives the same grid)."""
    try:
        import vegas
    except ImportError:  # pragma: no cover - vegas is in the test and phasespace extras
        raise ConfigError("the VEGAS layer needs the 'vegas' package: pip install 'hepgen[phasespace]' "
                          "(or pip install vegas)") from None
    if int(calls) < 2 * int(iterations) or int(iterations) < 1:
        raise ConfigError(f"adapting a VEGAS grid needs iterations >= 1 and calls >= 2 per iteration, got calls="
                          f"{calls}, iterations={iterations}")
    made = [0]

    @vegas.lbatchintegrand
    def batch(x: np.ndarray) -> np.ndarray:
        made[0] += len(x)
        return np.asarray(f(np.asarray(x, dtype=np.float64)), dtype=np.float64)

    rng = np.random.default_rng(int(seed))  # vegas's draws (its default is gvar's global generator)
    grid0 = vegas.AdaptiveMap([[0.0, 1.0]] * int(dims), ninc=int(bins))
    integ = vegas.Integrator(grid0, nstrat=[1] * int(dims), alpha=float(alpha), maxinc_axis=int(bins),
                             ran_array_generator=rng.random)
    # neval per iteration: vegas may use a few calls fewer; the count is exact
    integ(batch, nitn=int(iterations), neval=int(calls) // int(iterations), adapt=True)
    raw, ninc = np.asarray(integ.map.grid, dtype=np.float64), np.asarray(integ.map.ninc)
    # vegas may give an axis fewer increments than asked (it balances them against neval): such an axis is
    # resampled to ``bins`` increments through its piecewise-linear map (exact where it kept ``bins``)
    y = np.linspace(0.0, 1.0, int(bins) + 1)
    grid = np.stack([np.interp(y, np.linspace(0.0, 1.0, int(k) + 1), raw[j, :int(k) + 1]) for j, k in enumerate(ninc)])
    grid[:, 0], grid[:, -1] = 0.0, 1.0
    return grid, made[0]


__all__ = ["VegasGrid", "adapt_grid"]
