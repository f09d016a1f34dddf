"""Boosted jets from Pythia 8 + FastJet: QCD, hadronic top and hadronic W jets at sqrt(s) = 13 TeV.

Physics. Pythia 8 generates pp collisions at 13 TeV with its default tune (ISR, FSR, MPI,
hadronisation, decays):

* ``qcd``: ``HardQCD:all`` (light-quark and gluon dijets);
* ``top``: ``Top:gg2ttbar`` + ``Top:qqbar2ttbar`` with W forced to quarks
  (``24:onMode = off``, ``24:onIfAny = 1 2 3 4 5``), so t -> b q q';
* ``w``: ``WeakDoubleBoson:ffbar2WW`` with the same forced hadronic W decays, W -> q q'.

The hard scattering is generated with ``PhaseSpace:pTHatMin/Max = 0.9 ptmin / 1.1 ptmax`` so that
nearly every event can land in the jet pT window. Final-state visible particles (neutrinos
excluded) with |eta| < 2.5 are clustered with anti-kT (R = 0.8 by default) in FastJet, E-scheme.
The *leading* jet of each event is kept when ``ptmin <= pT <= ptmax`` and |eta| < ``eta_max``
(2.0); for ``top``/``w`` it must also be truth matched (``truth_match``): within dR < R of a top/W
of the hard process whose final decay quarks all lie within dR < R of the jet axis (dR in
rapidity-azimuth, quarks before showering). Events failing the selection are skipped, so every
jet is kept with Pythia's event weight (``weights``; ones for these unweighted samples).

Per jet (shapes for n jets, N = ``max_constituents``, S = ``image_size``):

* ``constituents`` (n, N, 3) float32: (pT [GeV], deta, dphi) relative to the jet axis, pT-ordered,
  zero-padded; ``mask`` (n, N) bool marks the real rows;
* ``images`` (n, S, S) float32: pT [GeV] per pixel (not normalised), over +-1.5 R in both directions
  (+-1.2 for R = 0.8), centred, rotated, flipped, from all constituents
  (see :mod:`hepgen.data.generators.jet_features`);
* ``features`` (n, 11) float32, columns ``columns()["features"]``: pt, eta, mass [GeV], tau1..tau3
  (normalised, beta = 1, exclusive-kT axes; tau21 > 1 happens for ~9% of QCD jets with these
  non-minimising axes, ``nsub_axes=wta_kt`` avoids it), tau21, tau32, C2, D2 (beta = 1) and the
  constituent multiplicity, all from the full jet;
* ``weights`` (n,) float32.

Reproducibility. Jets are produced in blocks of ``block_size`` jets; block b of process p uses its
own Pythia seed drawn from ``np.random.SeedSequence(seed, spawn_key=(p, b))`` and a fresh Pythia
instance. The output therefore depends on ``seed`` and ``block_size`` (and the option values) but
*not* on ``workers``; and ``generate(n)`` is a prefix of ``generate(m)`` for ``n < m``.

A small pre-generated sample (``SHIPPED_SAMPLE``, groups ``qcd``/``top``/``w``) ships with the
package for machines without Pythia; see ``src/hepgen/data/shipped/README.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.data.generators import jet_features as jf
from hepgen.data.generators.shared import check_options, resolve_workers
from hepgen.errors import ConfigError, DataError
from hepgen.options import Option
from hepgen.progress import progress_bar

PROCESSES: tuple[str, ...] = ("qcd", "top", "w")
SHIPPED_SAMPLE: Path = Path(__file__).resolve().parent.parent / "shipped" / "jets.h5"
DATASETS: tuple[str, ...] = ("constituents", "mask", "images", "features", "weights")

OPTIONS: dict[str, Option] = {
    "process": Option("qcd", help="physics process: qcd (dijets), top (hadronic ttbar) or w (hadronic WW)"),
    "ptmin": Option(550.0, low=0, low_open=True, help="lower edge of the leading-jet pT window [GeV]"),
    "ptmax": Option(650.0, low=0, low_open=True, help="upper edge of the leading-jet pT window [GeV]"),
    "R": Option(0.8, low=0.05, high=2.0, help="anti-kT radius (0.8 default, 1.0 for large-R jets)"),
    "eta_max": Option(2.0, low=0, high=2.5, low_open=True, help="maximum |eta| of the kept jet"),
    "max_constituents": Option(30, low=1, help="number N of pT-ordered constituents kept per jet (zero-padded)"),
    "image_size": Option(40, low=1, help="jet image side in pixels, covering +-1.5 R in both directions"),
    "nsub_axes": Option("kt", choices=tuple(jf.AXES),
                        help="N-subjettiness axes: kt (exclusive kT, E-scheme) or wta_kt (winner-take-all)"),
    "truth_match": Option(True, help="top/w: keep only jets matched to a top/W with all decay quarks inside"),
    "workers": Option(1, low=-1, help="processes generating blocks in parallel, -1 for every core (the output does "
                                      "not depend on it)"),
    "block_size": Option(100, low=1, help="jets per independently seeded Pythia run (the output depends on it)"),
    "progress": Option(True, help="show a tqdm progress bar on a terminal"),
}
OPTION_UNITS: dict[str, str] = {"ptmin": "GeV", "ptmax": "GeV", "image_size": "pixels"}
#: units of ``columns()["features"]`` and ``columns()["constituents"]`` ("" for dimensionless ones)
FEATURE_UNITS: dict[str, str] = {"pt": "GeV", "mass": "GeV"}
CONSTITUENT_UNITS: list[str] = ["GeV", "", "rad"]

_PYTHIA_MAX_SEED = 900_000_000
_ETA_PARTICLES = 2.5
_INVISIBLE = {12, 14, 16}
# A block gives up (ConfigError) after this many Pythia events per requested jet, plus a floor.
_MAX_EVENTS_PER_JET = 500
_MIN_MAX_EVENTS = 2000


# --------------------------------------------------------------------------------------------- options


def resolve_options(**options: Any) -> dict[str, Any]:
    """Defaults of :data:`OPTIONS` updated by ``options`` (strings from the CLI are converted).

    Raises ConfigError naming the option for an unknown key, a value of the wrong type or out of range.
    """
    opts = check_options(options, OPTIONS, "jets")
    opts["process"] = opts["process"].lower()
    if opts["process"] not in PROCESSES:
        raise ConfigError(f"jets option 'process' must be one of {', '.join(PROCESSES)}, got {opts['process']!r}")
    if not 0 < opts["ptmin"] < opts["ptmax"]:
        raise ConfigError(f"jets options need 0 < ptmin < ptmax, got ptmin={opts['ptmin']}, ptmax={opts['ptmax']}")
    if not 0 < opts["eta_max"] <= _ETA_PARTICLES:
        raise ConfigError(f"jets option 'eta_max' must lie in (0, {_ETA_PARTICLES}], got {opts['eta_max']}")
    if opts["workers"] == 0:
        raise ConfigError(f"jets option 'workers' must be a positive integer or -1 (every core), got {opts['workers']}")
    return opts


def columns(**options: Any) -> dict[str, list[str]]:
    """Names of the last axis of the tabular arrays: ``features`` and ``constituents``."""
    resolve_options(**options)
    return {"features": list(jf.FEATURE_COLUMNS), "constituents": list(jf.CONSTITUENT_COLUMNS)}


def units(**options: Any) -> dict[str, Any]:
    """Units: features pt and mass in GeV (the rest dimensionless), constituents (pT [GeV], deta, dphi [rad]),
    image pixels in GeV of pT."""
    resolve_options(**options)
    return {"features": [FEATURE_UNITS.get(c, "") for c in jf.FEATURE_COLUMNS], "constituents": list(CONSTITUENT_UNITS),
            "images": "GeV"}


def process(**options: Any) -> str:
    """One line on what was simulated, e.g. ``"qcd jets, Pythia 8 + FastJet anti-kT R=0.8, ..."``."""
    opts = resolve_options(**options)
    return (f"{opts['process']} jets, pp at 13 TeV, Pythia 8 + FastJet anti-kT R={opts['R']:g}, "
            f"leading-jet pT {opts['ptmin']:g}-{opts['ptmax']:g} GeV, |eta| < {opts['eta_max']:g}")


def shipped_sample_path() -> Path:
    """Path of the shipped HDF5 sample (groups ``qcd``, ``top``, ``w``)."""
    return SHIPPED_SAMPLE


# --------------------------------------------------------------------------------------------- backends


def _require_backends() -> None:
    try:
        import fastjet  # noqa: F401
        import pythia8mc  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "the jets generator needs Pythia 8 and FastJet, which could not be imported "
            f"({exc}); install them with `pip install pythia8mc==8.317.2 'fastjet>=3.4.2'` "
            "(Linux/macOS). Without them the shipped sample still serves: "
            f"{SHIPPED_SAMPLE} (hepgen.data.generators.jets.load_sample)."
        ) from exc


def pythia_settings(process: str, ptmin: float, ptmax: float, pythia_seed: int) -> list[str]:
    """The ``readString`` lines configuring Pythia for ``process`` and the pT window."""
    common = [
        "Beams:eCM = 13000.",
        "Print:quiet = on",
        "Next:numberCount = 0",
        "Random:setSeed = on",
        f"Random:seed = {int(pythia_seed)}",
        f"PhaseSpace:pTHatMin = {0.9 * ptmin:.6g}",
        f"PhaseSpace:pTHatMax = {1.1 * ptmax:.6g}",
    ]
    hadronic_w = ["24:onMode = off", "24:onIfAny = 1 2 3 4 5"]
    per_process = {
        "qcd": ["HardQCD:all = on"],
        "top": ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on", *hadronic_w],
        "w": ["WeakDoubleBoson:ffbar2WW = on", *hadronic_w],
    }
    return common + per_process[process]


def block_seed(seed: int, process: str, block: int) -> int:
    """Pythia seed of jet block ``block``: from ``SeedSequence(seed, spawn_key=(process index, block))``."""
    state = np.random.SeedSequence(int(seed), spawn_key=(PROCESSES.index(process), int(block))).generate_state(1)
    return int(state[0] % _PYTHIA_MAX_SEED) + 1


# --------------------------------------------------------------------------------------------- events


def _final_state(event) -> np.ndarray:
    """4-momenta (n, 4) of the final, visible (no neutrinos) particles with |eta| < 2.5."""
    rows = []
    for particle in event.particles():
        if particle.isFinal() and particle.idAbs() not in _INVISIBLE and abs(particle.eta()) < _ETA_PARTICLES:
            rows.append((particle.px(), particle.py(), particle.pz(), particle.e()))
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def _decay_quarks(record, index: int) -> list[tuple[float, float]]:
    """(rapidity, phi) of the final partons a resonance of the hard-process record decays into."""
    out: list[tuple[float, float]] = []
    stack = [index]
    while stack:
        particle = record[stack.pop()]
        daughters = [d for d in particle.daughterList() if d != 0]
        if not daughters or particle.isFinal():
            if particle.isParton():
                out.append((particle.y(), particle.phi()))
            continue
        stack.extend(daughters)
    return out


def _truth_matched(record, process: str, jet_rap: float, jet_phi: float, R: float) -> bool:
    """True if a top (process top) or W (process w) and all its decay quarks lie within dR < R of the jet."""
    target = {"top": 6, "w": 24}[process]

    def close(rap: float, phi: float) -> bool:
        return float(np.hypot(rap - jet_rap, jf.wrap_phi(phi - jet_phi))) < R

    for i in range(record.size()):
        particle = record[i]
        if particle.idAbs() != target or not close(particle.y(), particle.phi()):
            continue
        daughters = [record[d].idAbs() for d in particle.daughterList()]
        if target in daughters:  # not the last copy
            continue
        quarks = _decay_quarks(record, i)
        expected = 3 if target == 6 else 2
        if len(quarks) == expected and all(close(r, p) for r, p in quarks):
            return True
    return False


def _select_jet(pythia, opts: dict[str, Any]) -> dict[str, np.ndarray] | None:
    """Cluster the current event; the leading jet's arrays, or None if it fails the selection."""
    import fastjet

    p4 = _final_state(pythia.event)
    if len(p4) == 0:
        return None
    particles = []
    for i, row in enumerate(p4):
        pseudo = fastjet.PseudoJet(*row)
        pseudo.set_user_index(i)
        particles.append(pseudo)
    sequence = fastjet.ClusterSequence(particles, fastjet.JetDefinition(fastjet.antikt_algorithm, opts["R"]))
    jets = fastjet.sorted_by_pt(sequence.inclusive_jets(0.0))
    lead = jets[0]
    if not (opts["ptmin"] <= lead.pt() <= opts["ptmax"]) or abs(lead.eta()) >= opts["eta_max"]:
        return None
    if opts["process"] != "qcd" and opts["truth_match"]:
        if not _truth_matched(pythia.process, opts["process"], lead.rap(), lead.phi_std(), opts["R"]):
            return None
    constituents = p4[[c.user_index() for c in lead.constituents()]]
    jet = np.array([lead.px(), lead.py(), lead.pz(), lead.e()])
    arrays = jf.jet_arrays(constituents, jet, opts["R"], max_constituents=opts["max_constituents"],
                           image_size=opts["image_size"], axes=opts["nsub_axes"])
    arrays["weights"] = np.float64(pythia.infoPython().weight())
    return arrays


def _empty(n: int, opts: dict[str, Any]) -> dict[str, np.ndarray]:
    N, S = opts["max_constituents"], opts["image_size"]
    return {
        "constituents": np.zeros((n, N, 3), dtype=np.float32),
        "mask": np.zeros((n, N), dtype=bool),
        "images": np.zeros((n, S, S), dtype=np.float32),
        "features": np.zeros((n, len(jf.FEATURE_COLUMNS)), dtype=np.float32),
        "weights": np.zeros(n, dtype=np.float32),
    }


def _generate_block(job: tuple[int, int, int, dict[str, Any]]) -> tuple[int, dict[str, np.ndarray], dict[str, float]]:
    """Run one freshly seeded Pythia until ``n_jets`` jets pass; ``(block, arrays, stats)``."""
    import pythia8mc

    block, n_jets, seed, opts = job
    jf.silence_fastjet_banner()
    start = time.perf_counter()
    pythia = pythia8mc.Pythia("", False)
    settings = pythia_settings(opts["process"], opts["ptmin"], opts["ptmax"], block_seed(seed, opts["process"], block))
    for line in settings:
        if not pythia.readString(line):
            raise ConfigError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise ConfigError(f"Pythia failed to initialise for process {opts['process']!r} with settings {settings}")
    init_s = time.perf_counter() - start
    out = _empty(n_jets, opts)
    kept, events, failures = 0, 0, 0
    max_events = _MAX_EVENTS_PER_JET * n_jets + _MIN_MAX_EVENTS
    while kept < n_jets:
        if events >= max_events:
            raise ConfigError(
                f"jets: only {kept} of {n_jets} jets passed the selection in {events} Pythia events for process "
                f"{opts['process']!r}, pT window [{opts['ptmin']}, {opts['ptmax']}] GeV, |eta| < {opts['eta_max']}, "
                f"R = {opts['R']}; widen the window or check the options"
            )
        events += 1
        if not pythia.next():
            failures += 1
            if failures > 100 + events // 10:
                raise ConfigError(
                    f"jets: Pythia failed on {failures} of {events} events for process {opts['process']!r}"
                )
            continue
        jet = _select_jet(pythia, opts)
        if jet is None:
            continue
        for key, value in jet.items():
            out[key][kept] = value
        kept += 1
    stats = {"events": events, "jets": kept, "init_s": init_s, "seconds": time.perf_counter() - start}
    return block, out, stats


# --------------------------------------------------------------------------------------------- public


def _generate(n: int, seed: int, opts: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Arrays of ``n`` jets plus timing stats (events, jets, seconds summed over blocks, wall_s)."""
    _require_backends()
    n = int(n)
    if n < 0:
        raise ConfigError(f"jets: the number of jets must be >= 0, got {n}")
    size = opts["block_size"]
    jobs = [(b, min(size, n - b * size), int(seed), opts) for b in range(-(-n // size))]
    results: dict[int, dict[str, np.ndarray]] = {}
    totals = {"events": 0.0, "jets": 0.0, "init_s": 0.0, "seconds": 0.0}
    start = time.perf_counter()
    bar = progress_bar(n, f"jets:{opts['process']}", quiet=not opts["progress"], unit="jet")
    try:
        workers = min(resolve_workers(opts["workers"]), len(jobs))
        if workers <= 1:
            outcomes = (_generate_block(job) for job in jobs)
            pool = None
        else:
            # fork on Linux: works from scripts without a __main__ guard and from notebooks;
            # the workers only touch Pythia, FastJet and NumPy. spawn elsewhere (macOS).
            context = get_context("fork" if sys.platform.startswith("linux") else "spawn")
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
            outcomes = (future.result() for future in as_completed([pool.submit(_generate_block, job) for job in jobs]))
        try:
            for block, arrays, stats in outcomes:
                results[block] = arrays
                for key in totals:
                    totals[key] += stats[key]
                bar.update(int(stats["jets"]))
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
    finally:
        bar.close()
    totals["wall_s"] = time.perf_counter() - start
    if not jobs:
        return _empty(0, opts), totals
    arrays = {key: np.concatenate([results[b][key] for b in range(len(jobs))]) for key in DATASETS}
    return arrays, totals


def generate(n: int, seed: int = 0, **options: Any) -> dict[str, np.ndarray]:
    """``n`` leading jets of ``process`` from Pythia 8 + FastJet (see the module docstring).

    Returns ``constituents (n, N, 3)``, ``mask (n, N)``, ``images (n, S, S)``, ``features (n, 11)``
    (columns ``columns()["features"]``) and ``weights (n,)``. Deterministic for a given ``seed``
    and ``block_size`` whatever ``workers``. Raises ConfigError for bad options or when Pythia or
    FastJet cannot be imported (the shipped sample, :data:`SHIPPED_SAMPLE`, still serves).
    """
    arrays, _ = _generate(n, seed, resolve_options(**options))
    return arrays


def load_sample(process: str = "qcd", path: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """The arrays of one process group of a sample written by :func:`generate_sample` (default: shipped).

    Images come back as float32 even though the file stores them as float16.
    """
    import h5py

    path = Path(path) if path is not None else SHIPPED_SAMPLE
    if not path.is_file():
        raise DataError(f"jets sample {path} does not exist; write one with generate_sample(out, ...)")
    with h5py.File(path, "r") as handle:
        if process not in handle:
            raise DataError(f"jets sample {path} has no group {process!r}; groups: {', '.join(handle)}")
        group = handle[process]
        missing = [key for key in DATASETS if key not in group]
        if missing:
            raise DataError(f"jets sample {path}: group {process!r} lacks dataset(s) {', '.join(missing)}")
        out = {key: group[key][()] for key in DATASETS}
    out["images"] = out["images"].astype(np.float32)
    return out


def generate_sample(
    out: str | os.PathLike, n_per_process: int = 2500, seed: int = 1, workers: int = 2, **options: Any
) -> dict[str, dict[str, float]]:
    """Write ``n_per_process`` jets of each of qcd, top, w to the HDF5 file ``out``; per-process stats.

    Layout: ``/<process>/{constituents, mask, images, features, weights}``, gzip level 9 with the
    shuffle filter; images are stored as float16 (relative precision 1e-3 of a pixel's pT), the
    rest as produced. ``features`` carries the attribute ``columns``; the file carries the seed,
    the options and the Pythia version. Written to a temporary file in the same folder, fsynced,
    then moved into place with ``os.replace``.
    """
    import h5py
    import pythia8mc

    out = Path(out)
    if "process" in options:
        raise ConfigError("generate_sample writes every process; do not pass the 'process' option")
    results: dict[str, dict[str, np.ndarray]] = {}
    stats: dict[str, dict[str, float]] = {}
    for process in PROCESSES:
        opts = resolve_options(**options, process=process, workers=workers)
        results[process], stats[process] = _generate(n_per_process, seed, opts)
        s = stats[process]
        busy = s["seconds"] - s["init_s"]
        print(
            f"{process}: {int(s['jets'])} jets from {int(s['events'])} events ({s['jets'] / s['events']:.1%} kept); "
            f"per core: {s['events'] / busy:.1f} events/s and {s['jets'] / busy:.1f} jets/s after Pythia init, "
            f"{s['jets'] / s['seconds']:.1f} jets/s with init ({s['init_s']:.1f} s in inits); wall {s['wall_s']:.1f} s",
            file=sys.stderr,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as handle:
            handle.attrs["generator"] = "hepgen.data.generators.jets"
            handle.attrs["seed"] = int(seed)
            handle.attrs["pythia_version"] = str(getattr(pythia8mc, "__version__", "8.317"))
            for key, value in resolve_options(**options).items():
                if key not in ("process", "workers", "progress"):
                    handle.attrs[f"option_{key}"] = value
            for process, arrays in results.items():
                group = handle.create_group(process)
                for key in DATASETS:
                    data = arrays[key].astype(np.float16) if key == "images" else arrays[key]
                    group.create_dataset(key, data=data, compression="gzip", compression_opts=9, shuffle=True)
                group["features"].attrs["columns"] = list(jf.FEATURE_COLUMNS)
                group["constituents"].attrs["columns"] = list(jf.CONSTITUENT_COLUMNS)
                for key, value in stats[process].items():
                    group.attrs[f"stat_{key}"] = value
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return stats


def main(argv: list[str] | None = None) -> int:
    """``python -m hepgen.data.generators.jets --sample OUT -n 2500 --seed 1 --workers 2``."""
    parser = argparse.ArgumentParser(description="Write the jets HDF5 sample (qcd, top, w groups).")
    parser.add_argument("--sample", required=True, type=Path, help="output HDF5 file")
    parser.add_argument("-n", type=int, default=2500, help="jets per process")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    generate_sample(args.sample, n_per_process=args.n, seed=args.seed, workers=args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
