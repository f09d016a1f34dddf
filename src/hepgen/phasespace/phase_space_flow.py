"""A hypercube flow on massless n-body phase space, trained to the user's matrix element |M|²(p).

    hepgen fit phase-space-flow --matrix-element my_me.py:NAME --sqrt-s 91.2 --particles 3 --cut ymin=0.01 ...
    hepgen sample RUN --unweighted --matrix-element my_me.py:NAME -n 10000 -o events.lhe   (or events.h5)

The flow (:class:`~hepgen.phasespace.HypercubeFlow`) samples x in [0, 1]^(3n−4); the mapping of
:mod:`hepgen.phasespace.nbody` turns x into momenta with a constant Jacobian, so the integrand is
f(x) = Φ_n |M|²(p(x)) Θ_cuts(p(x)) and its integral is ∫|M|² dΦ_n (dΦ_n = Π d³p_i/(2E_i) δ⁴(P − Σp_i), no 2π
factors). The unweighted events' HDF5 output holds ``momenta`` (n, particles, 4) as (E, px, py, pz) in GeV,
``integral`` and ``integral_error`` (∫|M|² dΦ_n) and ``cross_section_pb``/``cross_section_error_pb``,
σ = integral × (2π)^(4−3n)/(2s) × 0.3894e9 pb GeV² (:func:`~hepgen.phasespace.nbody.cross_section_pb`), which
is the LHE header's cross section (:mod:`hepgen.data.lhe`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from hepgen.errors import ConfigError
from hepgen.models import register
from hepgen.phasespace.hypercube_flow import HypercubeFlow
from hepgen.phasespace.nbody import Cuts, MatrixElementTarget, massless_momenta
from hepgen.targets.user import load_function


def default_pdg(n: int) -> list[int]:
    """PDG ids of n final-state partons: d, d̄, then gluons (e⁺e⁻ → q q̄ + (n − 2) g)."""
    return [1, -1] + [21] * (int(n) - 2)


@register
class PhaseSpaceFlow(HypercubeFlow):
    """:class:`HypercubeFlow` on n-body phase space at fixed √s with the user's matrix element (module doc).

    Args:
        matrix_element: |M|²(p) from a file, FILE.py:NAME (momenta (batch, n, 4) as (E, px, py, pz) in GeV ->
            (batch,) values >= 0), or the function itself in Python; the run records the file's path and sha256
            and never imports it on its own.
        sqrt_s: the collision energy √s in GeV (e⁺e⁻ beams of √s/2 each).
        particles: n >= 2 massless final-state particles (the flow has 3n − 4 dimensions).
        cut: phase-space cuts KEY=VALUE: ptmin (GeV), drmin (ΔR of every pair), ymin ((p_i + p_j)²/s of every
            pair); repeatable on the command line.
        pdg: PDG ids of the final-state particles for the LHE file (default 1,-1,21,21...).
        transforms, hidden, bins, loss, anneal, anneal_start: as :class:`HypercubeFlow`.
        vegas_calls, vegas_bins, vegas_iterations: a VEGAS grid as the first layer (:class:`HypercubeFlow`).
        buffer_steps, buffer_batches: buffered training, reusing matrix-element calls (:class:`HypercubeFlow`).
        channels, channel_weights, defensive: multi-channel sampling and the defensive mixture (:class:`HypercubeFlow`).
    """

    cli_name = "phase-space-flow"

    def __init__(self, matrix_element: str | Callable[..., Any] | None = None, sqrt_s: float = 91.1876,
                 particles: int = 3, cut: Sequence[str] = (), pdg: Sequence[int] | None = None,
                 transforms: int | None = None, hidden: Sequence[int] = (64, 64), bins: int = 16,
                 loss: str = "variance", anneal: int = 0, anneal_start: float = 0.01, vegas_calls: int = 0,
                 vegas_bins: int = 64, vegas_iterations: int = 10, buffer_steps: int = 0, buffer_batches: int = 4,
                 channels: int = 1, channel_weights: str = "network", defensive: float = 0.0):
        if matrix_element is None:
            raise ConfigError("phase-space-flow needs the matrix element: --matrix-element FILE.py:NAME (in Python "
                              "matrix_element='FILE.py:NAME' or the function itself)")
        if isinstance(particles, bool) or int(particles) != particles or particles < 2:
            raise ConfigError(f"phase-space-flow: particles must be an integer >= 2, got {particles!r}")
        cuts = Cuts.parse(list(cut))
        pdg = default_pdg(particles) if pdg is None else [int(i) for i in pdg]
        if len(pdg) != int(particles):
            raise ConfigError(f"phase-space-flow: --pdg has {len(pdg)} ids for {particles} particles")
        if isinstance(matrix_element, str):
            function, source = load_function(matrix_element, "--matrix-element")
            code = {"option": "matrix_element", **source}
        elif callable(matrix_element):
            function, source = matrix_element, None
            code = {"option": "matrix_element", "name": getattr(function, "__qualname__", type(function).__name__)}
        else:
            raise ConfigError(f"phase-space-flow: matrix_element must be FILE.py:NAME or a function, got "
                              f"{type(matrix_element).__name__}")
        target = MatrixElementTarget(function, sqrt_s, particles, cuts, source)
        super().__init__(target, transforms=transforms, hidden=hidden, bins=bins, loss=loss, anneal=anneal,
                         anneal_start=anneal_start, vegas_calls=vegas_calls, vegas_bins=vegas_bins,
                         vegas_iterations=vegas_iterations, buffer_steps=buffer_steps, buffer_batches=buffer_batches,
                         channels=channels, channel_weights=channel_weights, defensive=defensive)
        self.user_code_ = code
        self.matrix_element = None  # never recorded: hepgen.load must not import it (see HypercubeFlow.get_config)
        self.sqrt_s, self.particles, self.cut, self.pdg = float(sqrt_s), int(particles), cuts.items(), pdg

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("target", None)
        config.pop("integrand", None)
        return config

    def momenta(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Hypercube points x (batch, 3n − 4) -> momenta (batch, n, 4), float64 NumPy."""
        return massless_momenta(torch.as_tensor(np.asarray(x), dtype=torch.float64), self.sqrt_s).numpy()

    def sample_weighted(self, n: int, batch_size: int = 100_000) -> tuple[dict[str, torch.Tensor], dict[str, np.ndarray]]:
        """({"momenta": (n, particles, 4), "x": (n, 3n − 4)}, {"weight": w (n,)}): weighted events, E[w] = ∫|M|² dΦ_n
        (``hepgen sample RUN -n N`` without --unweighted)."""
        x, w = self.weighted_events(n, batch_size)
        return {"momenta": torch.as_tensor(self.momenta(x)), "x": torch.as_tensor(x)}, {"weight": w}

    def sample_unweighted(self, n: int, seed: int = 0, batch_size: int = 100_000, calibration: int = 100_000,
                          quantile: float = 1.0) -> dict[str, Any]:
        """n unweighted events (:meth:`HypercubeFlow.sample_unweighted`) with ``momenta`` (n, particles, 4),
        ``x`` (the hypercube points), ``pdg``, ``sqrt_s``, ``cross_section_pb`` and ``cross_section_error_pb``."""
        out = super().sample_unweighted(n, seed=seed, batch_size=batch_size, calibration=calibration,
                                        quantile=quantile)
        x = out.pop("samples")
        integral, error = float(out["integral"]), float(out["integral_error"])
        return {"momenta": self.momenta(x), "x": x, **out, "pdg": np.asarray(self.pdg, dtype=np.int64),
                "sqrt_s": np.asarray(self.sqrt_s),
                "cross_section_pb": np.asarray(self.target.cross_section_pb(integral)),
                "cross_section_error_pb": np.asarray(self.target.cross_section_pb(error))}


__all__ = ["PhaseSpaceFlow", "default_pdg"]
