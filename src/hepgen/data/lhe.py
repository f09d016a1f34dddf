"""Unweighted events as a Les Houches Event file (LHE 3.0, hep-ph/0609017), read by pylhe and experiment software.

    <LesHouchesEvents version="3.0">
    <header> (who wrote it, and the conventions) </header>
    <init>
      IDBMUP(1) IDBMUP(2) EBMUP(1) EBMUP(2) 0 0 0 0 IDWTUP=3 NPRUP=1
      XSECUP XERRUP XMAXUP LPRUP=1          cross section and its error in pb
    </init>
    <event>                                 one per unweighted event
      NUP IDPRUP XWGTUP SCALUP AQEDUP AQCDUP
      IDUP ISTUP MOTHUP(1) MOTHUP(2) ICOLUP(1) ICOLUP(2) PUP(1..5) VTIMUP SPINUP    one line per particle
    </event>

The two beams (status −1; default e⁻ along +z and e⁺ along −z, √s/2 each) come first, then the final-state
particles (status 1, mothers 1 and 2). IDWTUP = 3: every event has weight XWGTUP = σ (unweighted). SCALUP = √s,
AQEDUP = 1/137.036 and AQCDUP = 0.118 are informational (the matrix element is the user's). Masses are 0 for
momenta massless to rounding. Colour
lines: for a quark, an antiquark and gluons (PDG 1..6, −1..−6, 21), the chain q → g → … → q̄; otherwise 0.
The file is written atomically (:mod:`hepgen.files`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hepgen.errors import DataError
from hepgen.files import atomic_write_text


def colour_lines(pdg: Sequence[int]) -> list[tuple[int, int]]:
    """(colour, anticolour) of each particle: a chain q (501, 0), g (502, 501), …, q̄ (0, 50k) when the particles
    are one quark, one antiquark and gluons; else (0, 0) for all."""
    quarks = [i for i, p in enumerate(pdg) if 1 <= p <= 6]
    antiquarks = [i for i, p in enumerate(pdg) if -6 <= p <= -1]
    gluons = [i for i, p in enumerate(pdg) if p == 21]
    if len(quarks) != 1 or len(antiquarks) != 1 or len(quarks) + len(antiquarks) + len(gluons) != len(pdg):
        return [(0, 0)] * len(pdg)
    out = [(0, 0)] * len(pdg)
    out[quarks[0]] = (501, 0)
    colour = 501
    for g in gluons:
        out[g] = (colour + 1, colour)
        colour += 1
    out[antiquarks[0]] = (0, colour)
    return out


def write_lhe(path: str | Path, momenta: np.ndarray, pdg: Sequence[int], sqrt_s: float, cross_section_pb: float,
              error_pb: float, beams: tuple[int, int] = (11, -11), comment: str = "") -> Path:
    """Write ``momenta`` (events, n, 4) as (E, px, py, pz) in GeV with ids ``pdg`` (n,) to an LHE file (module doc).

    ``cross_section_pb`` ± ``error_pb`` go into the <init> block (XSECUP, XERRUP) and each event's weight."""
    p = np.asarray(momenta, dtype=np.float64)
    pdg = [int(i) for i in pdg]
    if p.ndim != 3 or p.shape[2] != 4 or p.shape[1] != len(pdg):
        raise DataError(f"LHE output {path}: momenta must be (events, {len(pdg)}, 4), got {p.shape}")
    if not np.isfinite(p).all():
        row = int(np.argwhere(~np.isfinite(p))[0][0])
        raise DataError(f"LHE output {path}: the momenta of event {row} are not finite")
    xsec, err, half = float(cross_section_pb), float(error_pb), 0.5 * float(sqrt_s)
    colours = colour_lines(pdg)
    lines = ['<LesHouchesEvents version="3.0">', "<header>",
             "<!-- written by hepgen (hepgen.data.lhe): unweighted events, IDWTUP = 3, cross section in pb",
             "     sigma = integral * (2 pi)^(4 - 3n) / (2 s) * 0.3894e9 pb GeV^2, integral = int |M|^2 dPhi_n",
             f"     {comment} -->" if comment else "-->", "</header>", "<init>",
             f"{beams[0]:d} {beams[1]:d} {half:.10e} {half:.10e} 0 0 0 0 3 1",
             f"{xsec:.10e} {err:.10e} {xsec:.10e} 1", "</init>"]
    beam_lines = [f"{beams[0]:d} -1 0 0 0 0 0.0000000000e+00 0.0000000000e+00 {half:.10e} {half:.10e} "
                  "0.0000000000e+00 0 9",
                  f"{beams[1]:d} -1 0 0 0 0 0.0000000000e+00 0.0000000000e+00 {-half:.10e} {half:.10e} "
                  "0.0000000000e+00 0 9"]
    scale = float(sqrt_s)
    for event in p:
        lines += ["<event>", f"{len(pdg) + 2:d} 1 {xsec:.10e} {scale:.10e} {1 / 137.036:.10e} {0.118:.10e}",
                  *beam_lines]
        for (e, px, py, pz), ident, (c1, c2) in zip(event, pdg, colours):
            mass = math.sqrt(max(e * e - px * px - py * py - pz * pz, 0.0))
            mass = 0.0 if mass < 1e-6 * abs(e) else mass  # massless up to rounding
            lines.append(f"{ident:d} 1 1 2 {c1:d} {c2:d} {px:.10e} {py:.10e} {pz:.10e} {e:.10e} {mass:.10e} 0 9")
        lines.append("</event>")
    lines.append("</LesHouchesEvents>")
    return atomic_write_text(path, "\n".join(lines) + "\n")


__all__ = ["colour_lines", "write_lhe"]
