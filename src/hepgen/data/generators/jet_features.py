"""Jet substructure and jet images from a jet's constituents (no event generator needed).

Everything here takes the constituents of one jet as 4-momenta ``p4: (n, 4)`` with columns
``(px, py, pz, E)`` in GeV, or as ``(pt, x, y)`` arrays of shape ``(n,)`` for the image code.

* N-subjettiness (Thaler & Van Tilburg 2011), normalised, beta = 1, exclusive-kT axes::

      tau_N = sum_i pT_i min_k dR(i, axis_k) / (sum_i pT_i * R)

  The N axes are fastjet's ``exclusive_jets(N)`` of the constituents re-clustered with the kT
  algorithm at ``R = max_allowable_R`` (fastjet-contrib's ``KT_Axes``; ``axes="wta_kt"`` uses the
  winner-take-all pT recombination instead, contrib's ``WTA_KT_Axes``); dR uses rapidity and
  azimuth, like fastjet. tau_N = 0 when the jet has at most N constituents. kT axes are not
  minimising, so for narrow one-prong jets tau_2 can exceed tau_1 (tau21 > 1 for about 9% of the
  QCD jets of the shipped sample, up to ~1.4); WTA-kT axes avoid this in practice.
* Energy-correlation ratios (Larkoski, Salam, Thaler 2013; Larkoski, Moult, Neill 2014), beta = 1,
  with z_i = pT_i / sum_j pT_j::

      e2 = sum_{i<j} z_i z_j dR_ij,   e3 = sum_{i<j<k} z_i z_j z_k dR_ij dR_ik dR_jk,
      C2 = e3 / e2^2,                 D2 = e3 / e2^3          (both 0 when e2 = 0)

* Jet images (Macaluso & Shih 2018, de Oliveira et al. 2015): constituents at (x, y) = (deta, dphi)
  relative to the jet axis are translated to their pT-weighted centroid, rotated so the principal
  axis of the pT-weighted covariance is vertical, flipped so the larger pT half lies at x > 0 and at
  y > 0 (the hottest quadrant is the upper right), then pT is summed into ``size x size`` pixels
  covering ``[-half_width, half_width]^2``. ``image[iy, ix]``: row index along y (ascending, so show
  it with ``imshow(origin="lower")``), column index along x. Pixels hold pT in GeV (not normalised);
  constituents falling outside the window are dropped.
"""

from __future__ import annotations

import numpy as np

from hepgen.errors import ConfigError
from hepgen.files import silenced_stdout

#: Names of the high-level feature columns, in the order :func:`high_level_features` returns them.
FEATURE_COLUMNS: list[str] = [
    "pt",
    "eta",
    "mass",
    "tau1",
    "tau2",
    "tau3",
    "tau21",
    "tau32",
    "c2",
    "d2",
    "n_constituents",
]

#: Names of the last axis of the per-jet constituent array.
CONSTITUENT_COLUMNS: list[str] = ["pt", "deta", "dphi"]


def wrap_phi(dphi: np.ndarray) -> np.ndarray:
    """Azimuthal difference mapped into [-pi, pi)."""
    return (np.asarray(dphi) + np.pi) % (2.0 * np.pi) - np.pi


def kinematics(p4: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(pt, eta, phi, rapidity)`` of 4-momenta ``p4: (n, 4)`` = (px, py, pz, E); each of shape (n,)."""
    p4 = np.asarray(p4, dtype=np.float64).reshape(-1, 4)
    px, py, pz, e = p4.T
    pt = np.hypot(px, py)
    eta = np.arcsinh(np.divide(pz, pt, out=np.zeros_like(pz), where=pt > 0))
    phi = np.arctan2(py, px)
    # y = 1/2 ln((E + pz)/(E - pz)); guard the massless-along-the-beam limit.
    num = np.maximum(e + pz, 1e-300)
    den = np.maximum(e - pz, 1e-300)
    rap = 0.5 * np.log(num / den)
    return pt, eta, phi, rap


def invariant_mass(p4: np.ndarray) -> float:
    """Mass of the summed 4-momentum, ``sqrt(max(E^2 - |p|^2, 0))``, of ``p4: (n, 4)``."""
    total = np.asarray(p4, dtype=np.float64).reshape(-1, 4).sum(axis=0)
    m2 = total[3] ** 2 - total[0] ** 2 - total[1] ** 2 - total[2] ** 2
    return float(np.sqrt(max(m2, 0.0)))


def _fastjet():
    try:
        import fastjet
    except ImportError as exc:  # pragma: no cover - exercised only without fastjet
        raise ConfigError(
            "N-subjettiness needs fastjet (pip install 'fastjet>=3.4.2'); it could not be imported: "
            f"{exc}"
        ) from exc
    return fastjet


_BANNER_SILENCED = False


def silence_fastjet_banner() -> None:
    """Let FastJet print its once-per-process banner to /dev/null instead of stdout (call before clustering)."""
    global _BANNER_SILENCED
    if _BANNER_SILENCED:
        return
    fastjet = _fastjet()
    with silenced_stdout():
        jet_def = fastjet.JetDefinition(fastjet.antikt_algorithm, 0.4)
        fastjet.ClusterSequence([fastjet.PseudoJet(1.0, 0.0, 0.0, 1.0)], jet_def)
    _BANNER_SILENCED = True


AXES: tuple[str, ...] = ("kt", "wta_kt")


def exclusive_kt_axes(p4: np.ndarray, n_axes: int, axes: str = "kt") -> np.ndarray:
    """The ``n_axes`` exclusive kT subjets of ``p4: (n, 4)`` as 4-momenta ``(min(n, n_axes), 4)``.

    fastjet: re-cluster with ``JetDefinition(kt_algorithm, max_allowable_R, scheme)`` and take
    ``exclusive_jets(n_axes)``; scheme is E_scheme for ``axes="kt"``, WTA_pt_scheme for ``"wta_kt"``.
    """
    if axes not in AXES:
        raise ConfigError(f"N-subjettiness axes must be one of {', '.join(AXES)}, got {axes!r}")
    p4 = np.asarray(p4, dtype=np.float64).reshape(-1, 4)
    if len(p4) <= n_axes:
        return p4.copy()
    fj = _fastjet()
    particles = [fj.PseudoJet(*map(float, row)) for row in p4]
    scheme = fj.E_scheme if axes == "kt" else fj.WTA_pt_scheme
    jet_def = fj.JetDefinition(fj.kt_algorithm, fj.JetDefinition.max_allowable_R, scheme)
    sequence = fj.ClusterSequence(particles, jet_def)
    axes = sequence.exclusive_jets(int(n_axes))
    return np.array([[a.px(), a.py(), a.pz(), a.e()] for a in axes], dtype=np.float64)


def nsubjettiness(p4: np.ndarray, R: float, n_max: int = 3, beta: float = 1.0, axes: str = "kt") -> np.ndarray:
    """Normalised N-subjettiness ``(tau_1, ..., tau_n_max)`` of one jet's constituents ``p4: (n, 4)``.

    tau_N = sum_i pT_i min_k dR_ik^beta / (sum_i pT_i R^beta), exclusive-kT axes, dR in (y, phi).
    """
    p4 = np.asarray(p4, dtype=np.float64).reshape(-1, 4)
    pt, _, phi, rap = kinematics(p4)
    norm = pt.sum() * R**beta
    taus = np.zeros(n_max, dtype=np.float64)
    if norm <= 0:
        return taus
    for n_axes in range(1, n_max + 1):
        if len(p4) <= n_axes:
            break  # every constituent is its own axis: tau_N = 0
        _, _, a_phi, a_rap = kinematics(exclusive_kt_axes(p4, n_axes, axes))
        dr = np.hypot(rap[:, None] - a_rap[None, :], wrap_phi(phi[:, None] - a_phi[None, :]))
        taus[n_axes - 1] = np.sum(pt * dr.min(axis=1) ** beta) / norm
    return taus


def energy_correlation_ratios(
    pt: np.ndarray, rap: np.ndarray, phi: np.ndarray, beta: float = 1.0
) -> tuple[float, float]:
    """``(C2, D2)`` from constituent ``pt, rap, phi: (n,)`` with the pT-dR measure.

    With M_ij = dR_ij^beta and W = diag(z): e2 = z^T M z / 2 and e3 = trace((W M)^3) / 6 (the
    diagonal of M is 0, so repeated indices drop out of the sums over i<j<k).
    """
    pt = np.asarray(pt, dtype=np.float64)
    total = pt.sum()
    if len(pt) < 2 or total <= 0:
        return 0.0, 0.0
    z = pt / total
    dr = np.hypot(rap[:, None] - rap[None, :], wrap_phi(phi[:, None] - phi[None, :])) ** beta
    e2 = 0.5 * float(z @ dr @ z)
    if e2 <= 0:
        return 0.0, 0.0
    wm = z[:, None] * dr
    e3 = float(np.einsum("ij,jk,ki->", wm, wm, wm)) / 6.0
    return e3 / e2**2, e3 / e2**3


def standardise_coordinates(
    pt: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Centre, rotate and flip constituent positions ``x, y: (n,)`` (weights ``pt: (n,)``).

    Translate to the pT-weighted centroid; rotate so the leading eigenvector of the pT-weighted
    covariance points along +y; mirror x (then y) so the half with the larger pT sum is at x > 0
    (y > 0). Equivariant steps only, so the result does not depend on a rotation or translation of
    the input in the (x, y) plane.
    """
    w = np.asarray(pt, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    total = w.sum()
    if len(w) == 0 or total <= 0:
        return x.copy(), y.copy()
    x = x - np.dot(w, x) / total
    y = y - np.dot(w, y) / total
    cov = np.array([[np.dot(w, x * x), np.dot(w, x * y)], [np.dot(w, x * y), np.dot(w, y * y)]]) / total
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    if eigenvalues[1] > eigenvalues[0] * (1 + 1e-9):
        vx, vy = eigenvectors[:, 1]
        # Rotation by alpha = pi/2 - atan2(vy, vx) takes (vx, vy) onto the +y axis.
        alpha = 0.5 * np.pi - np.arctan2(vy, vx)
        c, s = np.cos(alpha), np.sin(alpha)
        x, y = c * x - s * y, s * x + c * y
    if w[x < 0].sum() > w[x > 0].sum():
        x = -x
    if w[y < 0].sum() > w[y > 0].sum():
        y = -y
    return x, y


def pixelise(
    pt: np.ndarray, x: np.ndarray, y: np.ndarray, size: int = 40, half_width: float = 1.2
) -> np.ndarray:
    """Sum ``pt: (n,)`` into a ``(size, size)`` image over ``[-half_width, half_width]^2``; ``[iy, ix]``."""
    image = np.zeros((size, size), dtype=np.float64)
    scale = size / (2.0 * half_width)
    ix = np.floor((np.asarray(x) + half_width) * scale).astype(np.int64)
    iy = np.floor((np.asarray(y) + half_width) * scale).astype(np.int64)
    inside = (ix >= 0) & (ix < size) & (iy >= 0) & (iy < size)
    np.add.at(image, (iy[inside], ix[inside]), np.asarray(pt, dtype=np.float64)[inside])
    return image


def jet_image(
    pt: np.ndarray, deta: np.ndarray, dphi: np.ndarray, size: int = 40, half_width: float = 1.2
) -> np.ndarray:
    """Preprocessed pT-weighted jet image ``(size, size)`` from constituents relative to the jet axis."""
    x, y = standardise_coordinates(pt, deta, dphi)
    return pixelise(pt, x, y, size=size, half_width=half_width)


def high_level_features(constituents: np.ndarray, jet: np.ndarray, R: float, axes: str = "kt") -> np.ndarray:
    """Features of one jet, ordered as :data:`FEATURE_COLUMNS`: ``(len(FEATURE_COLUMNS),)`` float64.

    constituents: (n, 4) 4-momenta of the jet's constituents; jet: (4,) the jet 4-momentum.
    """
    jet_pt, jet_eta, _, _ = kinematics(jet)
    pt, _, phi, rap = kinematics(constituents)
    tau1, tau2, tau3 = nsubjettiness(constituents, R, n_max=3, beta=1.0, axes=axes)
    c2, d2 = energy_correlation_ratios(pt, rap, phi, beta=1.0)
    tau21 = tau2 / tau1 if tau1 > 0 else 0.0
    tau32 = tau3 / tau2 if tau2 > 0 else 0.0
    return np.array(
        [
            jet_pt[0],
            jet_eta[0],
            invariant_mass(jet),
            tau1,
            tau2,
            tau3,
            tau21,
            tau32,
            c2,
            d2,
            float(len(constituents)),
        ],
        dtype=np.float64,
    )


def constituent_array(
    constituents: np.ndarray, jet: np.ndarray, max_constituents: int
) -> tuple[np.ndarray, np.ndarray]:
    """pT-ordered ``(pt, deta, dphi)`` relative to the jet axis, zero-padded: ``((N, 3), mask (N,))``.

    ``deta`` is a pseudorapidity difference, ``dphi`` is wrapped into [-pi, pi); the first
    ``min(n, N)`` rows hold the hardest constituents and ``mask`` marks them.
    """
    pt, eta, phi, _ = kinematics(constituents)
    _, jet_eta, jet_phi, _ = kinematics(jet)
    order = np.argsort(-pt, kind="stable")[:max_constituents]
    out = np.zeros((max_constituents, 3), dtype=np.float64)
    mask = np.zeros(max_constituents, dtype=bool)
    k = len(order)
    out[:k, 0] = pt[order]
    out[:k, 1] = eta[order] - jet_eta[0]
    out[:k, 2] = wrap_phi(phi[order] - jet_phi[0])
    mask[:k] = True
    return out, mask


def jet_arrays(constituents: np.ndarray, jet: np.ndarray, R: float, max_constituents: int = 30,
               image_size: int = 40, axes: str = "kt") -> dict[str, np.ndarray]:
    """The per-jet entries of hepgen's jet layout, as ``hepgen data jets`` writes them, from 4-momenta.

    constituents: (n, 4) the jet's constituents as (px, py, pz, E); jet: (4,) the jet 4-momentum (the full
    jet: pt, eta and mass of the features come from it, the substructure from the constituents). Returns
    ``constituents (N, 3)`` and ``mask (N,)`` (:func:`constituent_array`), ``images (S, S)`` (all constituents,
    relative to the jet axis, over +-1.5 R: :func:`jet_image`) and ``features (11,)`` (:func:`high_level_features`),
    with N = ``max_constituents`` and S = ``image_size``. The jets generator and the dataset importers
    (:mod:`hepgen.data.importers`) both build their jets here.
    """
    constituents = np.asarray(constituents, dtype=np.float64).reshape(-1, 4)
    rows, mask = constituent_array(constituents, jet, max_constituents)
    pt, eta, phi, _ = kinematics(constituents)
    _, jet_eta, jet_phi, _ = kinematics(jet)
    image = jet_image(pt, eta - jet_eta[0], wrap_phi(phi - jet_phi[0]), size=image_size, half_width=1.5 * R)
    return {"constituents": rows, "mask": mask, "images": image,
            "features": high_level_features(constituents, jet, R, axes=axes)}


#: Names of the columns of :func:`image_substructure`.
IMAGE_FEATURE_COLUMNS: list[str] = ["pt", "mass", "tau21"]


def image_substructure(images: np.ndarray, R: float = 0.8, half_width: float | None = None, threshold: float = 0.0,
                       axes: str = "kt") -> np.ndarray:
    """Scalar pT sum, mass and tau21 of jet images ``(n, S, S)``, each pixel a massless constituent: ``(n, 3)``.

    Pixel ``[iy, ix]`` holding pT p sits at its centre x = -h + (ix + 1/2) 2h/S, y likewise (h = ``half_width``,
    default 1.5 R: the images of ``hepgen data jets``), taken as (eta, phi) of a jet at eta = 0 (a longitudinal
    boost changes no mass). Pixels with pT <= ``threshold`` are empty, so a generator's negative pixels are
    dropped. The mass and tau21 (= tau2/tau1 as :func:`high_level_features`, 0 when tau1 = 0) of the pixels are
    close to, not equal to, those of the constituents: pixelisation merges constituents and the image
    preprocessing rotates them. This is how generated images are judged on jet observables against real ones.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ConfigError(f"jet images must be (n, S, S), got shape {images.shape}")
    size = images.shape[1]
    h = 1.5 * R if half_width is None else float(half_width)
    centres = -h + (np.arange(size) + 0.5) * 2.0 * h / size
    y, x = np.meshgrid(centres, centres, indexing="ij")
    out = np.zeros((len(images), 3), dtype=np.float64)
    for i, image in enumerate(images):
        keep = image > threshold
        pt, eta, phi = image[keep], x[keep], y[keep]
        if not len(pt):
            continue
        p4 = np.column_stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)])
        tau1, tau2 = nsubjettiness(p4, R, n_max=2, axes=axes)
        out[i] = pt.sum(), invariant_mass(p4), tau2 / tau1 if tau1 > 0 else 0.0
    return out
