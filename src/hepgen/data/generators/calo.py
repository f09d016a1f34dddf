"""A parametrised fast simulation of showers in a CaloGAN-like sampling calorimeter.

Geometry (after Paganini, de Oliveira and Nachman, CaloGAN, PRL 120 (2018) 042003): a 480 x 480 mm
lead / liquid-argon sampling calorimeter (2 mm Pb, 4 mm LAr), particles at normal incidence through
its centre, three longitudinal layers read out as images ``(rows along y, columns along x)``:

    layer_0: (3, 96)  cells 160 x 5 mm,   depth   0 -  90 mm (0.00 -  5.77 X0)
    layer_1: (12, 12) cells  40 x 40 mm,  depth  90 - 437 mm (5.77 - 28.01 X0)
    layer_2: (12, 6)  cells  40 x 80 mm,  depth 437 - 477 mm (28.01 - 30.58 X0)

Effective medium (mixture rules for the Pb/LAr stack): Z = 69, X0 = 15.6 mm, critical energy
Ec = 8.7 MeV (Geant4's 2.66 (X0 Z/A)^1.1), Moliere radius R_M = 21.2 MeV X0 / Ec = 38 mm,
lambda_int = 374 mm = 24 X0. Energy outside the 480 x 480 x 477 mm box is lost (leakage).

Electromagnetic showers (e+, gamma): the GFLASH parametrisation of Grindhammer, Rudowicz and Peters
(NIM A290 (1990) 469; hep-ex/0001020), homogeneous-media coefficients as in Geant4's GFLASH:

- longitudinal: dE/dt = E Gamma(t; alpha, beta), t in X0, ``beta = (alpha - 1) / T``; per shower
  (ln T, ln alpha) is bivariate normal with ``<ln T> = ln(ln y - 0.812)``,
  ``<ln alpha> = ln(0.81 + (0.458 + 2.26/Z) ln y)``, ``sigma(ln T) = 1/(-1.4 + 1.26 ln y)``,
  ``sigma(ln alpha) = 1/(-0.58 + 0.86 ln y)``, correlation ``0.705 - 0.023 ln y``, ``y = E/Ec``;
  so the depth of the maximum grows like ln E.
- radial (r in R_M, tau = t / <t>): ``f(r) = p 2r Rc^2/(r^2+Rc^2)^2 + (1-p) 2r Rt^2/(r^2+Rt^2)^2``,
  ``Rc = z1 + z2 tau``, ``Rt = k1 (exp(k3 (tau - k2)) + exp(k4 (tau - k2)))``,
  ``p = p1 exp((p2 - tau)/p3 - exp((p2 - tau)/p3))`` (GFLASH coefficients, see ``_radial``).
- the shower is deposited as ``min(93 ln(Z) E^0.876, max_spots)`` equal energy spots drawn from
  these profiles (GFLASH's spot count, capped for speed).
- photons first convert: the shower starts at a depth drawn from Exp(mean 9/7 X0), so they are
  deeper than positrons (which, like electrons, shower at once).

Charged pions (a documented simplification, not a hadronic shower model): a minimum-ionising
track (9.7 MeV/X0 deposited on the axis) up to a first interaction at depth ~ Exp(lambda_int) (it
may punch through); there the remaining energy splits into an electromagnetic part, fraction
``f_em ~ Beta`` with mean ``1 - (E/GeV)^(-0.15)`` (Groom's power law) showering as above, and a
hadronic part with the Gamma profile of the hadronic term of Bock et al. (NIM 186 (1981) 533),
shape ``a = 0.6165 + 0.3183 ln(E/GeV)`` and scale ``lambda_int / (0.9099 - 0.0237 ln(E/GeV))`` from
the interaction point (with a per-shower lognormal jitter of 25 % on the scale),
a radial profile ``2r R^2/(r^2+R^2)^2`` with ``R = 0.23 lambda_int`` (95 % within one lambda_int),
and a response h/e = 0.6 (invisible nuclear binding energy). So pion showers start later, are
longer and broader, leak more and fluctuate more than electromagnetic ones.

Detector response: each cell's deposited energy E_c (GeV) becomes visible energy (in the active
LAr) drawn from a Gamma distribution of mean ``f E_c`` and variance ``f^2 a^2 E_c``, i.e. a
stochastic term ``a / sqrt(E)`` that never goes negative, with sampling fraction f = 0.2 for
showers (MIP fraction 0.317 times e/mip = 0.63) and 0.317 for the MIP track, a = 0.07 sqrt(GeV)
(electromagnetic, MIP) and 0.4 sqrt(GeV) (hadronic); then Gaussian electronic noise of
``noise`` MeV per cell (so cells below zero occur only through noise).

Design parameters (continuous, with physical effect; the defaults give the geometry above exactly, the
same showers bit for bit): ``absorber_mm`` (2) and ``active_mm`` (4), the lead and liquid-argon thickness
of one sampling cell, and ``layer_0_mm``, ``layer_1_mm``, ``layer_2_mm`` (90, 347, 40), the depths of the
three layers. The effective medium follows the mixture rules of the PDG review (Pb: X0 5.612 mm,
R_M 16.02 mm, lambda_int 175.9 mm, 11.35 g/cm3, Z 82, Ec 7.43 MeV, MIP dE/dx 1.274 MeV/mm; LAr: 140.0,
90.43, 857.7 mm, 1.396 g/cm3, 18, 32.84 MeV, 0.2105 MeV/mm), applied as ratios to the default so that
the default medium is the one quoted above:

- ``1/X0 = v/X0_Pb + (1-v)/X0_LAr`` (v: the lead volume fraction), likewise lambda_int;
  ``1/R_M = sum_j w_j / R_M,j`` (mass fractions w_j, in g/cm2), ``Ec = X0 sum_j w_j Ec_j / X0_j``,
  ``Z = sum_j w_j Z_j``: a thinner absorber stretches the shower (fewer X0 in the same depth, more
  longitudinal leakage) and widens it;
- the MIP sampling fraction ``f_mip = d_act dE/dx_LAr / (d_act dE/dx_LAr + d_abs dE/dx_Pb)`` scales both
  sampling fractions (shower and track), and the stochastic terms scale as the textbook
  ``sqrt(d_abs / f_samp)``: ``a = 0.07 sqrt((d_abs/f_mip) / (2 mm / 0.317))`` = 2.79 % sqrt(d_abs[mm]/f_mip)
  (the textbook lead/LAr value is 2.7 %, Fabjan and Gianotti, Rev. Mod. Phys. 75 (2003) 1243);
- the MIP track deposits dE/dx of the stack per X0; the layer boundaries lie at the layer depths in
  the medium's X0, so deeper layers contain more and leak less.

``vary="absorber_mm:0.5:4,layer_1_mm:150:650"`` draws these per shower, uniformly in the ranges, and adds
one column ``(n,)`` per varied parameter (mm) beside the energy: a training set that spans designs.
:func:`design_quantities` gives the medium, the depth in X0 and the material (g/cm2) of a design.

Outputs: ``layer_0: (n, 3, 96)``, ``layer_1: (n, 12, 12)``, ``layer_2: (n, 12, 6)`` visible cell
energies in MeV (float32), ``energy: (n,)`` incident energy in GeV, uniform or log-uniform in
[energy_min, energy_max] (default 1 - 100 GeV), the condition of a conditional model.

Limits: a fast parametrisation tuned to homogeneous media, not Geant4: no sampling-structure
corrections of GFLASH, no transition effects between layers, no Landau tails, no angle or position
spread of the incident particle, spot positions independent within a shower, and a pion model
only meant to be qualitatively right (start, length, width, response and fluctuations): its
electromagnetic part is one GFLASH shower on the axis at the interaction point, whereas real pi0
sub-showers spread over the cascade, so the core of pion showers is too narrow. Pions leak
heavily: the calorimeter is only 1.27 lambda_int deep (as in CaloGAN).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hepgen.data.generators.shared import (
    check_choice,
    check_options,
    check_range,
    parallel_map,
    split_counts,
)
from hepgen.errors import ConfigError
from hepgen.options import Option, parse_named_range, suggest

# Effective medium of the Pb/LAr stack (see the module docstring).
Z_EFF = 69.0
X0_MM = 15.6
EC_GEV = 8.7e-3
MOLIERE_MM = 38.0
LAMBDA_X0 = 24.0
HALF_WIDTH_MM = 240.0
# Response.
SAMPLING_FRACTION = 0.2
MIP_SAMPLING_FRACTION = 0.317
MIP_DEPOSIT_GEV_PER_X0 = 9.7e-3
STOCHASTIC_EM = 0.07
STOCHASTIC_HADRONIC = 0.4
H_OVER_E = 0.6
PHOTON_CONVERSION_X0 = 9.0 / 7.0
EM_MIN_GEV = 0.2

# (rows, columns, depth start, depth end in X0); rows span y, columns span x, both 480 mm.
LAYERS = ((3, 96, 0.0, 90.0 / X0_MM), (12, 12, 90.0 / X0_MM, 437.0 / X0_MM),
          (12, 6, 437.0 / X0_MM, 477.0 / X0_MM))
DEPTH_X0 = LAYERS[-1][3]
PARTICLES = ("e+", "gamma", "pi+")
SPECTRA = ("uniform", "log-uniform")
CHUNK = 500  # showers per random stream: results do not depend on the number of workers

# Materials (PDG): X0, R_M, lambda_int [mm], density [g/cm3], Z, Ec [GeV], MIP dE/dx [MeV/mm].
LEAD = {"x0": 5.612, "moliere": 16.02, "lambda": 175.9, "density": 11.35, "z": 82.0, "ec": 7.43e-3,
        "dedx": 1.274}
ARGON = {"x0": 140.0, "moliere": 90.43, "lambda": 857.7, "density": 1.396, "z": 18.0, "ec": 32.84e-3,
         "dedx": 0.2105}
#: the continuous design parameters (all in mm) and their defaults, which give the geometry above
DESIGN: dict[str, float] = {"absorber_mm": 2.0, "active_mm": 4.0, "layer_0_mm": 90.0, "layer_1_mm": 347.0,
                            "layer_2_mm": 40.0}
DESIGN_LIMITS: dict[str, tuple[float, float]] = {"absorber_mm": (0.05, 50.0), "active_mm": (0.05, 50.0),
                                                 "layer_0_mm": (1.0, 5000.0), "layer_1_mm": (1.0, 5000.0),
                                                 "layer_2_mm": (1.0, 5000.0)}
_DESIGN_TEXT = {"absorber_mm": "lead absorber thickness of one sampling cell",
                "active_mm": "liquid-argon gap of one sampling cell",
                "layer_0_mm": "depth of layer_0 (the strip layer)", "layer_1_mm": "depth of layer_1",
                "layer_2_mm": "depth of layer_2"}

OPTIONS: dict[str, Option] = {
    "particle": Option("e+", choices=PARTICLES, help=f"incident particle: {', '.join(PARTICLES)}"),
    "energy_min": Option(1.0, low=0.05, high=10_000.0, help="lowest incident energy in GeV"),
    "energy_max": Option(100.0, low=0.05, high=10_000.0, help="highest incident energy in GeV"),
    "spectrum": Option("uniform", choices=SPECTRA, help=f"incident energy spectrum: {', '.join(SPECTRA)}"),
    "noise": Option(1.0, low=0, help="electronic noise per cell in MeV (visible scale)"),
    "max_spots": Option(4000, low=20, help="cap on the energy spots per shower component"),
    "workers": Option(None, kind=int, low=-1,
                      help="processes to simulate on in chunks of 500 showers (none: this process; -1: every core)"),
    **{key: Option(value, low=DESIGN_LIMITS[key][0], high=DESIGN_LIMITS[key][1], help=_DESIGN_TEXT[key])
       for key, value in DESIGN.items()},
    "vary": Option(None, kind=str, help=("design parameters drawn per shower, uniform: KEY=LOW:HIGH[,KEY=LOW:HIGH] "
                                         f"with KEY one of {', '.join(DESIGN)}; each adds a column (n,) in mm")),
}
OPTION_UNITS: dict[str, str] = {"energy_min": "GeV", "energy_max": "GeV", "noise": "MeV",
                                **{key: "mm" for key in DESIGN}}


def parse_vary(text: str | None, generator: str = "calo") -> dict[str, tuple[float, float]]:
    """``"absorber_mm=0.5:4,layer_1_mm=150:650"`` -> {key: (low, high)} (ConfigError naming 'vary').

    Each item is ``KEY=LOW:HIGH``, the one range grammar of :func:`hepgen.options.parse_named_range`;
    the older ``KEY:LOW:HIGH`` is still read, with a DeprecationWarning.
    """
    if text is None or str(text).strip().lower() in ("", "none"):
        return {}
    what = f"option 'vary' of data generator {generator!r}:"
    out: dict[str, tuple[float, float]] = {}
    for item in str(text).split(","):
        item = item.strip()
        if "=" not in item and item.count(":") == 2:  # the old KEY:LOW:HIGH spelling
            import warnings

            key, _, rest = item.partition(":")
            warnings.warn(f"{what} {key}:{rest} is the old spelling; write {key}={rest}", DeprecationWarning,
                          stacklevel=2)
            item = f"{key}={rest}"
        key, (low, high) = parse_named_range(item, what)
        if key not in DESIGN:
            raise ConfigError(f"{what} {key!r} is not a design parameter; KEY=LOW:HIGH with KEY one of "
                              f"{', '.join(DESIGN)}{suggest(key, DESIGN)}")
        lo, hi = DESIGN_LIMITS[key]
        if not lo <= low < high <= hi:
            raise ConfigError(f"{what} {key} range {low:g}:{high:g} must satisfy {lo:g} <= LOW < HIGH <= {hi:g} (mm)")
        if key in out:
            raise ConfigError(f"{what} names {key} twice")
        out[key] = (low, high)
    return out


def units(**options: Any) -> dict[str, str]:
    """Units of the outputs: visible cell energies in MeV, the incident energy in GeV, varied design in mm."""
    opts = check_options(options, OPTIONS, "calo")
    return ({"layer_0": "MeV", "layer_1": "MeV", "layer_2": "MeV", "energy": "GeV"}
            | {key: "mm" for key in parse_vary(opts["vary"])})


def process(**options: Any) -> str:
    """One line on what was simulated, e.g. ``"e+ showers, 1-100 GeV uniform, ..."``."""
    opts = check_options(options, OPTIONS, "calo")
    vary = parse_vary(opts["vary"])
    design = ", ".join(f"{k.removesuffix('_mm')} {vary[k][0]:g}-{vary[k][1]:g} mm per shower" if k in vary else
                       f"{k.removesuffix('_mm')} {opts[k]:g} mm" for k in DESIGN)
    return (f"{opts['particle']} showers at normal incidence, {opts['energy_min']:g}-{opts['energy_max']:g} GeV "
            f"{opts['spectrum']}, CaloGAN-like Pb/LAr calorimeter (GFLASH parametrisation; {design})")


def _mixture(absorber_mm: Any, active_mm: Any) -> dict[str, Any]:
    """Mixture-rule properties of a lead/argon stack (module doc); scalars or arrays broadcast."""
    a, g = np.asarray(absorber_mm, dtype=float), np.asarray(active_mm, dtype=float)
    v = a / (a + g)
    m_pb, m_ar = a * LEAD["density"], g * ARGON["density"]
    w = m_pb / (m_pb + m_ar)
    density = (m_pb + m_ar) / (a + g)
    x0 = 1.0 / (v / LEAD["x0"] + (1.0 - v) / ARGON["x0"])
    lam = 1.0 / (v / LEAD["lambda"] + (1.0 - v) / ARGON["lambda"])
    moliere_g = 1.0 / (w / (LEAD["moliere"] * LEAD["density"]) + (1.0 - w) / (ARGON["moliere"] * ARGON["density"]))
    ec = x0 * density * (w * LEAD["ec"] / (LEAD["x0"] * LEAD["density"])
                         + (1.0 - w) * ARGON["ec"] / (ARGON["x0"] * ARGON["density"]))
    f_mip = g * ARGON["dedx"] / (g * ARGON["dedx"] + a * LEAD["dedx"])
    return {"x0": x0, "lambda": lam, "moliere": moliere_g / density, "ec": ec, "z": w * LEAD["z"] + (1 - w) * ARGON["z"],
            "f_mip": f_mip, "dedx": v * LEAD["dedx"] + (1.0 - v) * ARGON["dedx"], "density": density}


def design_quantities(**design: Any) -> dict[str, Any]:
    """The simulator's medium for a design (scalars or arrays of the :data:`DESIGN` keys, mm; defaults fill in).

    Returns ``x0_mm``, ``moliere_mm``, ``lambda_x0`` (lambda_int in X0), ``ec_gev``, ``z``, the sampling
    fractions ``f_em`` (showers) and ``f_mip`` (tracks), the stochastic terms ``stochastic_em`` and
    ``stochastic_hadronic`` (sqrt(GeV)), ``mip_gev_per_x0``, ``bounds_x0`` (the four layer boundaries in X0),
    ``depth_x0``, ``depth_mm``, and the material per unit area ``lead_g_cm2`` and ``argon_g_cm2``.
    At the defaults every value is exactly the module's constant (ratios to the default medium are 1.0).
    """
    unknown = sorted(set(design) - set(DESIGN))
    if unknown:
        raise ConfigError(f"unknown design parameter {unknown[0]!r}; valid: {', '.join(DESIGN)}")
    d = {key: design.get(key, value) for key, value in DESIGN.items()}
    ref, mix = _mixture(DESIGN["absorber_mm"], DESIGN["active_mm"]), _mixture(d["absorber_mm"], d["active_mm"])
    ratio = {key: mix[key] / ref[key] for key in mix}
    x0 = X0_MM * ratio["x0"]
    sampling = (np.asarray(d["absorber_mm"], dtype=float) / mix["f_mip"]) / (DESIGN["absorber_mm"] / ref["f_mip"])
    scale = np.sqrt(sampling)
    l0, l1, l2 = (np.asarray(d[k], dtype=float) for k in ("layer_0_mm", "layer_1_mm", "layer_2_mm"))
    bounds = (0.0 * x0, l0 / x0, (l0 + l1) / x0, (l0 + l1 + l2) / x0)
    depth = l0 + l1 + l2
    cell = np.asarray(d["absorber_mm"], dtype=float) + np.asarray(d["active_mm"], dtype=float)
    return {"x0_mm": x0, "moliere_mm": MOLIERE_MM * ratio["moliere"], "lambda_x0": LAMBDA_X0 * ratio["lambda"] / ratio["x0"],
            "ec_gev": EC_GEV * ratio["ec"], "z": Z_EFF * ratio["z"], "f_em": SAMPLING_FRACTION * ratio["f_mip"],
            "f_mip": MIP_SAMPLING_FRACTION * ratio["f_mip"], "stochastic_em": STOCHASTIC_EM * scale,
            "stochastic_hadronic": STOCHASTIC_HADRONIC * scale,
            "mip_gev_per_x0": MIP_DEPOSIT_GEV_PER_X0 * (ratio["dedx"] * ratio["x0"]),
            "bounds_x0": bounds, "depth_x0": bounds[3], "depth_mm": depth,
            "lead_g_cm2": 0.1 * depth * np.asarray(d["absorber_mm"], dtype=float) / cell * LEAD["density"],
            "argon_g_cm2": 0.1 * depth * np.asarray(d["active_mm"], dtype=float) / cell * ARGON["density"]}


def _scalar(value: Any) -> Any:
    """A 0-d array as a Python float (so the default design runs the scalar arithmetic of the original code)."""
    return float(value) if np.ndim(value) == 0 else value


def _take(value: Any, index: np.ndarray) -> Any:
    """``value[index]`` for a per-shower array, ``value`` itself for a scalar."""
    return value if np.ndim(value) == 0 else value[index]


def longitudinal_parameters(energy: np.ndarray, z: Any = Z_EFF, ec: Any = EC_GEV) -> tuple[np.ndarray, ...]:
    """GFLASH (<ln T>, <ln alpha>, sigma ln T, sigma ln alpha, rho) for energies ``(m,)`` in GeV.

    ``z``, ``ec``: the medium's Z and critical energy (GeV), scalars or ``(m,)``. Below ``EM_MIN_GEV``
    (where the fit's sigmas diverge) the parameters of EM_MIN_GEV are used.
    """
    log_y = np.log(np.maximum(np.asarray(energy, dtype=float), EM_MIN_GEV) / ec)
    return (np.log(log_y - 0.812), np.log(0.81 + (0.458 + 2.26 / z) * log_y),
            1.0 / (-1.4 + 1.26 * log_y), 1.0 / (-0.58 + 0.86 * log_y), 0.705 - 0.023 * log_y)


def sample_longitudinal(energy: np.ndarray, rng: np.random.Generator, z: Any = Z_EFF,
                        ec: Any = EC_GEV) -> tuple[np.ndarray, np.ndarray]:
    """Per-shower depth of maximum T (X0) and shape alpha from the correlated lognormal: ``(m,)`` each."""
    mean_t, mean_a, sigma_t, sigma_a, rho = longitudinal_parameters(energy, z, ec)
    z1, z2 = rng.standard_normal((2, len(mean_t)))
    plus, minus = np.sqrt((1.0 + rho) / 2.0), np.sqrt((1.0 - rho) / 2.0)
    t_max = np.exp(mean_t + sigma_t * (plus * z1 + minus * z2))
    alpha = np.exp(mean_a + sigma_a * (plus * z1 - minus * z2))
    return t_max, np.maximum(alpha, 1.0 + 1e-6)


def _radial(energy: np.ndarray, tau: np.ndarray, z: Any = Z_EFF) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GFLASH core radius, tail radius (R_M units) and core probability at relative depth ``tau``."""
    log_e = np.log(energy)
    r_core = 0.0251 + 0.00319 * log_e + (0.1162 - 0.000381 * z) * tau
    k4 = 0.3585 + 0.0412 * log_e
    r_tail = (0.659 - 0.00309 * z) * (np.exp(-2.59 * (tau - 0.645)) + np.exp(k4 * (tau - 0.645)))
    u = (0.401 + 0.00187 * z - tau) / (1.313 - 0.0686 * log_e)
    p_core = np.clip((2.632 - 0.00094 * z) * np.exp(u - np.exp(u)), 0.0, 1.0)
    return r_core, r_tail, p_core


def sample_radius(rng: np.random.Generator, r_core: np.ndarray, r_tail: np.ndarray,
                  p_core: np.ndarray) -> np.ndarray:
    """Radii from ``p 2r Rc^2/(r^2+Rc^2)^2 + (1-p) 2r Rt^2/(r^2+Rt^2)^2`` (inverse CDF ``R sqrt(u/(1-u))``)."""
    shape = np.broadcast(r_core, r_tail, p_core).shape
    radius = np.where(rng.random(shape) < p_core, r_core, r_tail)
    u = rng.random(shape)
    return radius * np.sqrt(u / (1.0 - u))


def spot_count(energy: np.ndarray, max_spots: int, z: Any = Z_EFF) -> np.ndarray:
    """GFLASH's number of spots 93 ln(Z) (E/GeV)^0.876, at least 20 and at most ``max_spots``."""
    return np.clip(np.rint(93.0 * np.log(z) * np.asarray(energy) ** 0.876), 20, max_spots).astype(int)


class _Spots:
    """Energy spots of a batch of showers: shower index, depth (X0), x, y (mm), energy (GeV)."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in ("shower", "depth", "x", "y", "energy")}

    def add(self, shower, depth, radius_mm, energy, rng) -> None:
        phi = rng.uniform(0.0, 2.0 * np.pi, len(shower))
        for key, value in (("shower", shower), ("depth", depth), ("x", radius_mm * np.cos(phi)),
                           ("y", radius_mm * np.sin(phi)), ("energy", energy)):
            self.parts[key].append(np.asarray(value))

    def deposit(self, showers: int, bounds: tuple[Any, ...] | None = None) -> list[np.ndarray]:
        """Sum the spots into cells: one array ``(showers, rows, columns)`` (GeV) per layer.

        ``bounds``: the four layer boundaries in X0, scalars or per-shower ``(showers,)`` (default: LAYERS).
        """
        if bounds is None:
            bounds = (LAYERS[0][2], *(end for _, _, _, end in LAYERS))
        if not self.parts["shower"]:
            return [np.zeros((showers, rows, cols)) for rows, cols, _, _ in LAYERS]
        spot = {key: np.concatenate(value) for key, value in self.parts.items()}
        out = []
        for i, (rows, cols, _, _) in enumerate(LAYERS):
            start, end = _take(bounds[i], spot["shower"]), _take(bounds[i + 1], spot["shower"])
            row = np.floor((spot["y"] + HALF_WIDTH_MM) / (2 * HALF_WIDTH_MM / rows)).astype(int)
            col = np.floor((spot["x"] + HALF_WIDTH_MM) / (2 * HALF_WIDTH_MM / cols)).astype(int)
            inside = ((spot["depth"] >= start) & (spot["depth"] < end) & (row >= 0) & (row < rows)
                      & (col >= 0) & (col < cols))
            index = (spot["shower"][inside] * rows + row[inside]) * cols + col[inside]
            cells = np.bincount(index, spot["energy"][inside], minlength=showers * rows * cols)
            out.append(cells.reshape(showers, rows, cols))
        return out


def _add_em(spots: _Spots, shower: np.ndarray, energy: np.ndarray, start: np.ndarray, max_spots: int,
            rng: np.random.Generator, medium: dict[str, Any] | None = None) -> None:
    """GFLASH electromagnetic showers of ``energy`` (GeV) starting at depth ``start`` (X0).

    ``medium``: :func:`design_quantities` of the chunk (scalars or per-shower arrays indexed by ``shower``).
    """
    medium = medium or {}
    z = _take(medium.get("z", Z_EFF), shower)
    ec = _take(medium.get("ec_gev", EC_GEV), shower)
    moliere = _take(medium.get("moliere_mm", MOLIERE_MM), shower)
    t_max, alpha = sample_longitudinal(energy, rng, z, ec)
    count = spot_count(energy, max_spots, z)
    index = np.repeat(np.arange(len(energy)), count)
    beta = (alpha - 1.0) / t_max
    depth = rng.gamma(alpha[index], 1.0 / beta[index])
    mean_alpha = np.exp(longitudinal_parameters(energy, z, ec)[1])
    # GFLASH's tau: depth over the shower's centre of gravity, rescaled to the average shape.
    a, a_mean = alpha[index], mean_alpha[index]
    tau = depth / t_max[index] * (a - 1.0) / a * a_mean / (a_mean - 1.0)
    r_core, r_tail, p_core = _radial(energy[index], tau, _take(z, index))
    radius = sample_radius(rng, r_core, r_tail, p_core) * _take(moliere, index)
    spots.add(shower[index], start[index] + depth, radius, (energy / count)[index], rng)


def _draw_design(seed: np.random.SeedSequence, n: int, vary: dict[str, tuple[float, float]]) -> dict[str, np.ndarray]:
    """Per-shower design parameters, uniform in their ranges, from a stream of their own."""
    rng = np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, 2**31 - 1)))
    return {key: rng.uniform(low, high, n) for key, (low, high) in vary.items()}


def _simulate_chunk(seed: np.random.SeedSequence, n: int, particle: str, energy_min: float,
                    energy_max: float, spectrum: str, noise: float, max_spots: int,
                    design: dict[str, float] | None = None,
                    vary: dict[str, tuple[float, float]] | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    drawn = _draw_design(seed, n, vary) if vary else {}
    medium = {key: (_scalar(value) if key != "bounds_x0" else tuple(_scalar(b) for b in value))
              for key, value in design_quantities(**{**(design or {}), **drawn}).items()}
    lambda_x0, depth_x0, per_x0 = medium["lambda_x0"], medium["depth_x0"], medium["mip_gev_per_x0"]
    if spectrum == "uniform":
        energy = rng.uniform(energy_min, energy_max, n)
    else:
        energy = np.exp(rng.uniform(np.log(energy_min), np.log(energy_max), n))
    shower = np.arange(n)
    em, mip, hadronic = _Spots(), _Spots(), _Spots()
    if particle == "e+":
        _add_em(em, shower, energy, np.zeros(n), max_spots, rng, medium)
    elif particle == "gamma":
        _add_em(em, shower, energy, rng.exponential(PHOTON_CONVERSION_X0, n), max_spots, rng, medium)
    else:
        interaction = rng.exponential(lambda_x0, n)
        track = np.minimum(interaction, depth_x0)
        mip_spots = 20
        index = np.repeat(shower, mip_spots)
        depth = rng.random(n * mip_spots) * track[index]
        mip.add(index, depth, np.zeros(len(index)), (track * per_x0 / mip_spots)[index], rng)
        showering = interaction < depth_x0
        remaining = np.maximum(energy - interaction * per_x0, 0.01)
        mean_em = np.clip(1.0 - energy ** -0.15, 0.02, 0.98)
        concentration = 8.0
        f_em = rng.beta(mean_em * concentration, (1.0 - mean_em) * concentration)
        # EM part: only for showers that interact inside and carry at least 10 MeV of EM energy.
        em_energy = f_em * remaining
        use = showering & (em_energy > 0.01)
        _add_em(em, shower[use], em_energy[use], interaction[use], max_spots, rng, medium)
        had_energy = (1.0 - f_em) * remaining
        use = showering & (had_energy > 0.0)
        # Bock et al.'s hadronic component: Gamma(a, lambda/d) after the interaction point.
        log_e = np.log(energy[use])
        shape = np.maximum(0.6165 + 0.3183 * log_e, 0.3)
        scale = _take(lambda_x0, use) / (0.9099 - 0.0237 * log_e) * np.exp(0.25 * rng.standard_normal(use.sum()))
        count = spot_count(had_energy[use], max_spots, _take(medium["z"], use))
        index = np.repeat(np.arange(use.sum()), count)
        depth = rng.gamma(shape[index], scale[index])
        u = rng.random(len(index))
        showers_at = shower[use][index]
        # 2r R^2/(r^2+R^2)^2 with R = 0.23 lambda_int, inverse CDF
        radius = 0.23 * _take(lambda_x0, showers_at) * _take(medium["x0_mm"], showers_at) * np.sqrt(u / (1.0 - u))
        hadronic.add(showers_at, interaction[use][index] + depth, radius, (had_energy[use] / count)[index], rng)

    out: dict[str, np.ndarray] = {}
    responses = ((em, medium["f_em"], medium["stochastic_em"]), (mip, medium["f_mip"], medium["stochastic_em"]),
                 (hadronic, medium["f_em"] * H_OVER_E, medium["stochastic_hadronic"]))
    layers = [np.zeros((n, rows, cols)) for rows, cols, _, _ in LAYERS]
    for spots, fraction, stochastic in responses:
        for i, deposited in enumerate(spots.deposit(n, medium["bounds_x0"])):
            positive = deposited > 0.0
            visible = np.zeros_like(deposited)
            if np.ndim(stochastic) or np.ndim(fraction):  # per-shower design: per-cell parameters
                cell = np.nonzero(positive)[0]
                s, f = _take(stochastic, cell), _take(fraction, cell)
                visible[positive] = rng.gamma(deposited[positive] / s**2, f * s**2)
            else:
                visible[positive] = rng.gamma(deposited[positive] / stochastic**2, fraction * stochastic**2)
            layers[i] += 1000.0 * visible  # GeV -> MeV
    for i, layer in enumerate(layers):
        noisy = layer + noise * rng.standard_normal(layer.shape) if noise > 0 else layer
        out[f"layer_{i}"] = noisy.astype(np.float32)  # 504 cells a shower: halve the file size
    out["energy"] = energy
    out.update(drawn)
    return out


def generate(n: int, seed: int = 0, **options: Any) -> dict[str, np.ndarray]:
    """Simulate ``n`` showers: ``layer_0 (n,3,96)``, ``layer_1 (n,12,12)``, ``layer_2 (n,12,6)`` in MeV,
    ``energy (n,)`` in GeV, and one column ``(n,)`` in mm per parameter named in ``vary`` (module doc)."""
    if int(n) != n or n < 1:
        raise ConfigError(f"data generator 'calo' needs a positive number of samples; got n={n!r}")
    opts = check_options(options, OPTIONS, "calo")
    check_choice(opts["particle"], PARTICLES, "particle", "calo")
    check_choice(opts["spectrum"], SPECTRA, "spectrum", "calo")
    check_range(opts["energy_min"], "energy_min", "calo", 0.05)
    check_range(opts["energy_max"], "energy_max", "calo", opts["energy_min"], 10_000.0)
    check_range(opts["noise"], "noise", "calo", 0.0)
    check_range(opts["max_spots"], "max_spots", "calo", 20)
    for key, (low, high) in DESIGN_LIMITS.items():
        check_range(opts[key], key, "calo", low, high)
    vary = parse_vary(opts["vary"])
    both = sorted(set(vary) & set(options))
    if both:
        raise ConfigError(f"option {both[0]!r} of data generator 'calo' is both fixed and drawn per shower by "
                          "'vary'; give one of them")
    design = {key: opts[key] for key in DESIGN}
    chunks = split_counts(n, -(-n // CHUNK))
    seeds = np.random.SeedSequence(seed).spawn(len(chunks))
    settings = (opts["particle"], opts["energy_min"], opts["energy_max"], opts["spectrum"], opts["noise"],
                opts["max_spots"], design, vary)
    results = parallel_map(_simulate_chunk, [(s, k, *settings) for s, k in zip(seeds, chunks)],
                           opts["workers"], f"calo {opts['particle']}")
    return {key: np.concatenate([r[key] for r in results]) for key in results[0]}
