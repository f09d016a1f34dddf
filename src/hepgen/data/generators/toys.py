"""Toy densities for testing generative models: 2-D shapes and Gaussians of any dimension.

Datasets (option ``name=``), every one a density over ``x: (n, dim)`` that is known exactly or
nearly so, hence good for unit tests and for checking mode coverage:

- ``moons``: two interleaved half circles, outer ``(cos t, sin t)``, inner ``(1 - cos t, 1/2 - sin t)``
  with ``t ~ U[0, pi]``, plus isotropic Gaussian noise (scikit-learn's ``make_moons`` shape).
- ``eight-gaussians``: equal mixture of N(c_k, std^2 I), ``c_k = radius (cos 2 pi k/8, sin 2 pi k/8)``
  (the mode-collapse benchmark of Metz et al. 2016: radius 2, std 0.02).
- ``checkerboard``: uniform on the 8 "black" squares (i + j even) of a 4x4 board covering [-4, 4]^2.
- ``rings``: four concentric circles of radius 1, 2, 3, 4 (equal counts), Gaussian radial noise.
- ``spirals``: two arms ``+-(t/3)(-cos t, sin t)``, ``t = 3 pi sqrt(u)``, plus Gaussian noise.
- ``correlated-gaussian``: N(0, Sigma) with ``Sigma_ij = rho^|i-j|`` (AR(1) Toeplitz) in ``dim``
  dimensions; ``det Sigma = (1 - rho^2)^(dim-1)``, so the entropy is known in closed form
  (:func:`gaussian_entropy`). ``generate`` also returns ``cov: (dim, dim)``.
- ``gaussian-mixture``: equal-weight mixture of ``components`` isotropic Gaussians N(mu_k, std^2 I)
  in ``dim`` dimensions, means uniform in [-spread, spread]^dim drawn from ``layout_seed`` (not from
  ``seed``, so that training and test sets of different seeds share one density). ``generate`` also
  returns ``means: (components, dim)``; :func:`gaussian_mixture_log_prob` is the exact density.

Limits: these are toys; only the correlated Gaussian and the mixture have closed-form densities
(``moons``, ``rings`` and ``spirals`` are noisy curves whose density is known only as a convolution).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.special import logsumexp

from hepgen.data.generators.shared import check_choice, check_options, check_range
from hepgen.errors import ConfigError
from hepgen.options import Option

# --------------------------------------------------------------------------------------------------
# The toy densities
# --------------------------------------------------------------------------------------------------


def moons(n: int, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    """Two interleaved half circles with Gaussian noise ``noise``. Returns ``x: (n, 2)``."""
    t = rng.uniform(0.0, np.pi, n)
    inner = rng.random(n) < 0.5
    x = np.stack([np.cos(t), np.sin(t)], axis=1)
    x[inner] = np.stack([1.0 - np.cos(t[inner]), 0.5 - np.sin(t[inner])], axis=1)
    return x + noise * rng.standard_normal((n, 2))


def eight_gaussian_centres(radius: float = 2.0) -> np.ndarray:
    """The eight mode centres ``radius (cos 2 pi k/8, sin 2 pi k/8)``, k = 0..7: ``(8, 2)``."""
    angle = 2.0 * np.pi * np.arange(8) / 8.0
    return radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)


def eight_gaussians(n: int, rng: np.random.Generator, radius: float = 2.0,
                    std: float = 0.02) -> np.ndarray:
    """Equal mixture of N(c_k, std^2 I) at :func:`eight_gaussian_centres`. Returns ``x: (n, 2)``."""
    centres = eight_gaussian_centres(radius)
    return centres[rng.integers(0, 8, n)] + std * rng.standard_normal((n, 2))


def checkerboard(n: int, rng: np.random.Generator, squares: int = 4, half_width: float = 4.0) -> np.ndarray:
    """Uniform on the squares (i + j even) of a ``squares`` x ``squares`` board on [-w, w]^2: ``(n, 2)``."""
    black = np.array([(i, j) for i in range(squares) for j in range(squares) if (i + j) % 2 == 0])
    cells = black[rng.integers(0, len(black), n)]
    side = 2.0 * half_width / squares
    return -half_width + side * (cells + rng.random((n, 2)))


def rings(n: int, rng: np.random.Generator, count: int = 4, noise: float = 0.08) -> np.ndarray:
    """Circles of radius 1..count (equal counts) with Gaussian radial noise: ``(n, 2)``."""
    radius = rng.integers(1, count + 1, n) + noise * rng.standard_normal(n)
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    return radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)


def spirals(n: int, rng: np.random.Generator, noise: float = 0.1) -> np.ndarray:
    """Two arms ``+-(t/3)(-cos t, sin t)``, ``t = 3 pi sqrt(u)``, plus Gaussian noise: ``(n, 2)``."""
    t = 3.0 * np.pi * np.sqrt(rng.random(n))
    sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    x = sign[:, None] * (t / 3.0)[:, None] * np.stack([-np.cos(t), np.sin(t)], axis=1)
    return x + noise * rng.standard_normal((n, 2))


def correlated_gaussian_covariance(dim: int, correlation: float = 0.8) -> np.ndarray:
    """AR(1) covariance ``Sigma_ij = rho^|i-j|``: ``(dim, dim)``; ``det = (1 - rho^2)^(dim-1)``."""
    index = np.arange(dim)
    return correlation ** np.abs(index[:, None] - index[None, :]).astype(float)


def correlated_gaussian(n: int, rng: np.random.Generator, dim: int = 2,
                        correlation: float = 0.8) -> np.ndarray:
    """Samples of N(0, Sigma) with :func:`correlated_gaussian_covariance`: ``(n, dim)``.

    Drawn as an AR(1) chain ``x_0 = z_0, x_i = rho x_{i-1} + sqrt(1 - rho^2) z_i`` (exact, O(n dim)).
    """
    z = rng.standard_normal((n, dim))
    x = np.empty_like(z)
    x[:, 0] = z[:, 0]
    scale = np.sqrt(1.0 - correlation**2)
    for i in range(1, dim):
        x[:, i] = correlation * x[:, i - 1] + scale * z[:, i]
    return x


def gaussian_entropy(cov: np.ndarray) -> float:
    """Differential entropy of N(mu, cov) in nats: ``0.5 log det(2 pi e cov)``."""
    sign, logdet = np.linalg.slogdet(2.0 * np.pi * np.e * np.asarray(cov, dtype=float))
    if sign <= 0:
        raise ConfigError("covariance passed to gaussian_entropy is not positive definite")
    return 0.5 * float(logdet)


def gaussian_mixture_means(dim: int = 2, components: int = 8, spread: float = 4.0,
                           layout_seed: int = 0) -> np.ndarray:
    """Component means uniform in [-spread, spread]^dim from ``layout_seed``: ``(components, dim)``."""
    return np.random.default_rng(layout_seed).uniform(-spread, spread, (components, dim))


def gaussian_mixture(n: int, rng: np.random.Generator, means: np.ndarray, std: float = 0.5) -> np.ndarray:
    """Equal-weight mixture of N(mu_k, std^2 I); ``means: (k, dim)``. Returns ``x: (n, dim)``."""
    means = np.asarray(means, dtype=float)
    return means[rng.integers(0, len(means), n)] + std * rng.standard_normal((n, means.shape[1]))


def gaussian_mixture_log_prob(x: np.ndarray, means: np.ndarray, std: float = 0.5) -> np.ndarray:
    """Exact log density of :func:`gaussian_mixture`: ``log (1/k) sum_k N(x; mu_k, std^2 I)``: ``(n,)``."""
    x, means = np.asarray(x, dtype=float), np.asarray(means, dtype=float)
    dim = means.shape[1]
    squared = ((x[:, None, :] - means[None, :, :]) ** 2).sum(-1)
    log_norm = -0.5 * dim * np.log(2.0 * np.pi * std**2)
    return logsumexp(-0.5 * squared / std**2 + log_norm, axis=1) - np.log(len(means))


# --------------------------------------------------------------------------------------------------
# The generator interface
# --------------------------------------------------------------------------------------------------

NAMES = ("moons", "eight-gaussians", "checkerboard", "rings", "spirals", "correlated-gaussian",
         "gaussian-mixture")

OPTIONS: dict[str, Option] = {
    "name": Option("moons", choices=NAMES, help=f"which toy: {', '.join(NAMES)}"),
    "dim": Option(2, low=1, help="dimension (correlated-gaussian, gaussian-mixture only)"),
    "noise": Option(None, kind=float, low=0, help="Gaussian noise (moons 0.05, rings 0.08, spirals 0.1 by default)"),
    "radius": Option(2.0, low=0, low_open=True, help="radius of the circle of modes (eight-gaussians)"),
    "std": Option(None, kind=float, low=0,
                  help="std of each mode (eight-gaussians 0.02, gaussian-mixture 0.5 by default)"),
    "correlation": Option(0.8, low=-1, high=1, low_open=True, high_open=True,
                          help="rho of Sigma_ij = rho^|i-j| (correlated-gaussian)"),
    "components": Option(8, low=1, help="number of mixture components (gaussian-mixture)"),
    "spread": Option(4.0, low=0, help="means uniform in [-spread, spread]^dim (gaussian-mixture)"),
    "layout_seed": Option(0, help="seed of the mixture means, independent of seed (gaussian-mixture)"),
}
OPTION_UNITS: dict[str, str] = {}  # toys are dimensionless


def units(**options: Any) -> dict[str, list[str]]:
    """Units of the columns of ``x``: none, the toys are dimensionless (``""`` for each column)."""
    return {"x": [""] * _resolve(options)["dim"]}


def process(**options: Any) -> str:
    """One line on what was drawn, e.g. ``"toy density moons in 2 dimensions"``."""
    opts = _resolve(options)
    return f"toy density {opts['name']} in {opts['dim']} dimensions"

# Options that each toy reads (beyond ``name``); setting any other one is an error.
_USES = {
    "moons": {"noise"},
    "eight-gaussians": {"radius", "std"},
    "checkerboard": set(),
    "rings": {"noise"},
    "spirals": {"noise"},
    "correlated-gaussian": {"dim", "correlation"},
    "gaussian-mixture": {"dim", "std", "components", "spread", "layout_seed"},
}


def _resolve(options: Mapping[str, Any]) -> dict[str, Any]:
    opts = check_options(options, OPTIONS, "toys")
    name = opts["name"]
    check_choice(name, NAMES, "name", "toys")
    unused = sorted(set(options) - {"name"} - _USES[name])
    if unused:
        raise ConfigError(
            f"option {unused[0]!r} does not apply to toy {name!r} of data generator 'toys'; "
            f"{name!r} accepts: {', '.join(sorted(_USES[name])) or 'no options'}"
        )
    check_range(opts["dim"], "dim", "toys", 1)
    if name != "correlated-gaussian" and name != "gaussian-mixture":
        opts["dim"] = 2
    check_range(opts["radius"], "radius", "toys", 0.0, low_open=True)
    check_range(opts["correlation"], "correlation", "toys", -1.0, 1.0, low_open=True)
    if abs(opts["correlation"]) >= 1.0:
        raise ConfigError(f"option 'correlation' of data generator 'toys' must satisfy |rho| < 1; "
                          f"got {opts['correlation']!r}")
    check_range(opts["components"], "components", "toys", 1)
    check_range(opts["spread"], "spread", "toys", 0.0)
    for key in ("noise", "std"):
        if opts[key] is not None:
            check_range(opts[key], key, "toys", 0.0)
    return opts


def columns(**options: Any) -> dict[str, list[str]]:
    """Column names of the tabular outputs: ``{"x": ["x0", ..., "x{dim-1}"]}``."""
    dim = _resolve(options)["dim"]
    return {"x": [f"x{i}" for i in range(dim)]}


def generate(n: int, seed: int = 0, **options: Any) -> dict[str, np.ndarray]:
    """Draw ``n`` points of the toy ``name``: ``{"x": (n, dim)}`` (+ ``cov`` or ``means``, see module doc)."""
    if int(n) != n or n < 1:
        raise ConfigError(f"data generator 'toys' needs a positive number of samples; got n={n!r}")
    opts = _resolve(options)
    name, rng = opts["name"], np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    if name == "moons":
        x = moons(n, rng, 0.05 if opts["noise"] is None else opts["noise"])
    elif name == "eight-gaussians":
        x = eight_gaussians(n, rng, opts["radius"], 0.02 if opts["std"] is None else opts["std"])
    elif name == "checkerboard":
        x = checkerboard(n, rng)
    elif name == "rings":
        x = rings(n, rng, noise=0.08 if opts["noise"] is None else opts["noise"])
    elif name == "spirals":
        x = spirals(n, rng, 0.1 if opts["noise"] is None else opts["noise"])
    elif name == "correlated-gaussian":
        x = correlated_gaussian(n, rng, opts["dim"], opts["correlation"])
        out["cov"] = correlated_gaussian_covariance(opts["dim"], opts["correlation"])
    else:
        means = gaussian_mixture_means(opts["dim"], opts["components"], opts["spread"], opts["layout_seed"])
        x = gaussian_mixture(n, rng, means, 0.5 if opts["std"] is None else opts["std"])
        out["means"] = means
    out["x"] = x.astype(np.float64)
    return out
