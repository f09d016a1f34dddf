"""Truth / reco pairs of jet observables through a parametrised detector response, for unfolding.

Truth (particle level), one jet per row, columns ``pt, eta, mass, width, multiplicity`` - a
parametric stand-in for anti-kt R = 0.4 jets, not a QCD calculation:

- ``pt`` (GeV): falling power law ``dN/dpt ~ pt^-index`` on [pt_min, pt_max] (default 20 - 1000,
  index 4.5), sampled by inverse CDF; ``eta`` uniform on [-3, 3].
- flavour: gluon with probability ``clip(0.75 - 0.15 ln(pt/20), 0.2, 0.8)``, else quark; gluon jets
  are heavier, wider and have more constituents, which correlates the observables with each other
  and with pt.
- ``mass = pt x 0.35 Beta(2, 8)`` (quark) or ``pt x 0.35 Beta(2.5, 6)`` (gluon), GeV;
  ``width`` (girth, sum z dR) ``= min(0.6 (mass/pt) LogNormal(0, 0.2), 0.4)``;
  ``multiplicity = 1 + Poisson(8 + 4 ln(pt/20))`` (quark) or ``1 + Poisson(14 + 7 ln(pt/20))``.

Detector (reco level), same columns:

- ``pt_reco = pt s (1 + sigma(pt) z)``, ``sigma(pt)/pt = sqrt(a^2/pt + c^2)``: Gaussian resolution
  with stochastic term ``a`` (default 1.0 sqrt(GeV)) and constant term ``c`` (default 0.05), scale
  bias ``s`` (default 0.97); clipped at zero (which only affects jets far below the cut).
- ``eta_reco = eta + N(0, 0.02^2)``; ``mass_reco = mass (pt_reco/pt)(1 + N(0, 0.08^2))`` (the jet
  energy scale moves the mass); ``width_reco = width (1 + N(0, 0.1^2))``;
  ``multiplicity_reco = Binomial(multiplicity, 0.9) + Poisson(0.5)`` (track efficiency, pile-up).
- efficiency (turn-on in truth pt): ``eps(pt) = eps_max Phi((pt - pt50)/w)`` (defaults 0.98, 25 GeV,
  5 GeV), Phi the normal CDF; acceptance: ``pt_reco > reco_pt_min`` (30 GeV) and
  ``|eta_reco| < eta_max`` (2.5). ``pass_reco`` = efficient and accepted.
- fakes (``fake_rate``, default 0): that fraction of rows is a reco jet without truth partner
  (``pass_truth`` false, truth row zeros), drawn as a smeared jet of the model above with a
  steeper spectrum (index + 1.5); fakes always pass the efficiency, not necessarily the acceptance.

Outputs: ``truth: (n, 5)``, ``reco: (n, 5)``, ``pass_reco: (n,)`` bool, ``pass_truth: (n,)`` bool.
Reco values are filled for every row (the smeared values even where ``pass_reco`` is false, for
studies of the response); analyses must mask with ``pass_reco`` / ``pass_truth``. Column names:
:func:`columns`.

Limits: one jet per event, observables factorised by hand rather than from a shower, Gaussian
pt response (no tails), resolution and efficiency independent of eta.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtr

from hepgen.data.generators.shared import check_options, check_range
from hepgen.errors import ConfigError
from hepgen.options import Option

COLUMNS = ["pt", "eta", "mass", "width", "multiplicity"]

OPTIONS: dict[str, Option] = {
    "pt_min": Option(20.0, low=0, low_open=True, help="lowest truth jet pt in GeV"),
    "pt_max": Option(1000.0, low=0, low_open=True, help="highest truth jet pt in GeV"),
    "index": Option(4.5, low=0, help="power of the truth spectrum dN/dpt ~ pt^-index"),
    "stochastic": Option(1.0, low=0, help="stochastic term a of sigma/pt = sqrt(a^2/pt + c^2), sqrt(GeV)"),
    "constant": Option(0.05, low=0, help="constant term c of the pt resolution"),
    "scale": Option(0.97, low=0, low_open=True, help="jet energy scale: mean pt_reco/pt"),
    "efficiency_max": Option(0.98, low=0, high=1, help="plateau of the efficiency turn-on"),
    "efficiency_pt50": Option(25.0, low=0, help="truth pt (GeV) at half the plateau efficiency"),
    "efficiency_width": Option(5.0, low=0, help="width (GeV) of the efficiency turn-on"),
    "reco_pt_min": Option(30.0, low=0, help="acceptance: reco pt threshold in GeV"),
    "eta_max": Option(2.5, low=0, low_open=True, help="acceptance: |eta_reco| below this"),
    "fake_rate": Option(0.0, low=0, high=1, help="fraction of rows that are fake reco jets without truth"),
}
OPTION_UNITS: dict[str, str] = {"pt_min": "GeV", "pt_max": "GeV", "stochastic": "sqrt(GeV)", "efficiency_pt50": "GeV",
                                "efficiency_width": "GeV", "reco_pt_min": "GeV"}
#: units of ``COLUMNS`` ("" for dimensionless ones)
COLUMN_UNITS: list[str] = ["GeV", "", "GeV", "", ""]


def units(**options: Any) -> dict[str, list[str]]:
    """Units of the columns of ``truth`` and ``reco``: pt and mass in GeV, the others dimensionless."""
    check_options(options, OPTIONS, "smear")
    return {"truth": list(COLUMN_UNITS), "reco": list(COLUMN_UNITS)}


def process(**options: Any) -> str:
    """One line on what was simulated."""
    return "parametric jets (truth) through a Gaussian detector response (reco)"


def pt_resolution(pt: np.ndarray, stochastic: float = 1.0, constant: float = 0.05) -> np.ndarray:
    """Relative pt resolution sigma/pt = sqrt(a^2/pt + c^2): ``(m,)`` -> ``(m,)``."""
    return np.sqrt(stochastic**2 / np.asarray(pt, dtype=float) + constant**2)


def efficiency(pt: np.ndarray, plateau: float = 0.98, pt50: float = 25.0, width: float = 5.0) -> np.ndarray:
    """Reconstruction efficiency eps(pt) = plateau Phi((pt - pt50) / width): ``(m,)`` -> ``(m,)``."""
    return plateau * ndtr((np.asarray(pt, dtype=float) - pt50) / width)


def sample_power_law(n: int, rng: np.random.Generator, low: float, high: float, index: float) -> np.ndarray:
    """pt ~ pt^-index on [low, high] by inverse CDF: ``(n,)``."""
    u = rng.random(n)
    if np.isclose(index, 1.0):
        return low * (high / low) ** u
    k = 1.0 - index
    return (low**k + u * (high**k - low**k)) ** (1.0 / k)


def sample_truth(n: int, rng: np.random.Generator, pt: np.ndarray) -> np.ndarray:
    """Truth jets at the given ``pt: (n,)``: ``(n, 5)`` with columns :data:`COLUMNS`."""
    gluon = rng.random(n) < np.clip(0.75 - 0.15 * np.log(pt / 20.0), 0.2, 0.8)
    mass_fraction = 0.35 * np.where(gluon, rng.beta(2.5, 6.0, n), rng.beta(2.0, 8.0, n))
    width = np.minimum(0.6 * mass_fraction * rng.lognormal(0.0, 0.2, n), 0.4)
    log_pt = np.log(np.maximum(pt, 20.0) / 20.0)
    multiplicity = 1 + rng.poisson(np.where(gluon, 14.0 + 7.0 * log_pt, 8.0 + 4.0 * log_pt))
    eta = rng.uniform(-3.0, 3.0, n)
    return np.stack([pt, eta, pt * mass_fraction, width, multiplicity.astype(float)], axis=1)


def smear(truth: np.ndarray, rng: np.random.Generator, stochastic: float = 1.0, constant: float = 0.05,
          scale: float = 0.97) -> np.ndarray:
    """Detector response of truth jets ``(n, 5)`` -> reco jets ``(n, 5)`` (module doc)."""
    n = len(truth)
    pt, eta, mass, width, multiplicity = truth.T
    response = scale * (1.0 + pt_resolution(pt, stochastic, constant) * rng.standard_normal(n))
    pt_reco = np.maximum(pt * response, 0.0)
    mass_reco = mass * np.maximum(response, 0.0) * (1.0 + 0.08 * rng.standard_normal(n))
    width_reco = width * (1.0 + 0.1 * rng.standard_normal(n))
    multiplicity_reco = rng.binomial(multiplicity.astype(int), 0.9) + rng.poisson(0.5, n)
    eta_reco = eta + 0.02 * rng.standard_normal(n)
    return np.stack([pt_reco, eta_reco, np.maximum(mass_reco, 0.0), np.maximum(width_reco, 0.0),
                     multiplicity_reco.astype(float)], axis=1)


def columns(**options: Any) -> dict[str, list[str]]:
    """Column names of the tabular outputs: ``{"truth": COLUMNS, "reco": COLUMNS}``."""
    check_options(options, OPTIONS, "smear")
    return {"truth": list(COLUMNS), "reco": list(COLUMNS)}


def _check(opts: dict[str, Any]) -> None:
    check_range(opts["pt_min"], "pt_min", "smear", 0.0, low_open=True)
    check_range(opts["pt_max"], "pt_max", "smear", opts["pt_min"], low_open=True)
    check_range(opts["index"], "index", "smear", 0.0)
    for key in ("stochastic", "constant", "efficiency_width", "reco_pt_min", "efficiency_pt50"):
        check_range(opts[key], key, "smear", 0.0)
    check_range(opts["scale"], "scale", "smear", 0.0, low_open=True)
    check_range(opts["efficiency_max"], "efficiency_max", "smear", 0.0, 1.0)
    check_range(opts["fake_rate"], "fake_rate", "smear", 0.0, 1.0)
    if opts["eta_max"] is None or not opts["eta_max"] > 0:
        raise ConfigError(f"option 'eta_max' of data generator 'smear' must be positive; got {opts['eta_max']!r}")


def generate(n: int, seed: int = 0, **options: Any) -> dict[str, np.ndarray]:
    """Draw ``n`` truth/reco jet pairs: ``truth (n,5)``, ``reco (n,5)``, ``pass_reco (n,)``, ``pass_truth (n,)``."""
    if int(n) != n or n < 1:
        raise ConfigError(f"data generator 'smear' needs a positive number of samples; got n={n!r}")
    opts = check_options(options, OPTIONS, "smear")
    _check(opts)
    rng = np.random.default_rng(seed)
    pt = sample_power_law(n, rng, opts["pt_min"], opts["pt_max"], opts["index"])
    truth = sample_truth(n, rng, pt)
    reco = smear(truth, rng, opts["stochastic"], opts["constant"], opts["scale"])
    efficient = rng.random(n) < efficiency(truth[:, 0], opts["efficiency_max"], opts["efficiency_pt50"],
                                           opts["efficiency_width"])
    pass_truth = np.ones(n, dtype=bool)
    fake = rng.random(n) < opts["fake_rate"]
    if fake.any():
        k = int(fake.sum())
        fake_pt = sample_power_law(k, rng, opts["pt_min"], opts["pt_max"], opts["index"] + 1.5)
        reco[fake] = smear(sample_truth(k, rng, fake_pt), rng, opts["stochastic"], opts["constant"],
                           opts["scale"])
        truth[fake] = 0.0
        pass_truth[fake] = False
        efficient[fake] = True
    accepted = (reco[:, 0] > opts["reco_pt_min"]) & (np.abs(reco[:, 1]) < opts["eta_max"])
    return {"truth": truth, "reco": reco, "pass_reco": efficient & accepted, "pass_truth": pass_truth}
