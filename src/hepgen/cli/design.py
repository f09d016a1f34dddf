"""``hepgen design calo``: optimise the calorimeter's design by gradient descent through a local surrogate.

    hepgen design calo --param absorber_mm=0.5:3 --param layer_1_mm=200:1000 --energy 10:50 \\
        --budget 40000 --report rep/ -o result.json

Minimises C(ψ) = mean relative resolution at ``--energies`` (default five, over ``--energy``) plus
``--per-metre`` x depth[m] + ``--per-lead`` x lead[100 g/cm2], over the box of the ``--param``s, by L-GSO
(hepgen.calo.design): the simulator runs only at designs near the current one, a conditional flow learns
the response there and gradient steps move ψ. ``--data FILE`` adds showers with per-shower design
columns (``hepgen data calo --option vary=absorber_mm:0.5:3``) to the surrogate's training. ``--measure N``
evaluates C(ψ*) with N simulator showers per energy (not counted as the method's showers). Bad options
exit 2 naming the option before anything is simulated or written.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hepgen.errors import ConfigError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("design", help="detector design by gradient descent through a local generative surrogate",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("detector", metavar="DETECTOR", choices=("calo",), help="the simulator: calo")
    p.add_argument("--param", action="append", default=[], metavar="NAME=LOW:HIGH", required=True,
                   help="a design parameter and its box in mm (absorber_mm, active_mm, layer_0_mm, layer_1_mm, "
                        "layer_2_mm), repeatable")
    p.add_argument("--start", action="append", default=[], metavar="NAME=VALUE",
                   help="starting value (default: the simulator's default design)")
    p.add_argument("--energy", default="10:50", metavar="MIN:MAX", help="incident energies in GeV (default 10:50)")
    p.add_argument("--energies", type=int, default=5, metavar="J", help="energies of the objective over the range")
    p.add_argument("--particle", default="e+", help="incident particle (e+, gamma, pi+)")
    p.add_argument("--per-metre", type=float, default=0.01, help="cost per metre of calorimeter depth")
    p.add_argument("--per-lead", type=float, default=0.0, help="cost per 100 g/cm2 of lead")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a fixed simulator option (noise, max_spots or an unoptimised design parameter)")
    p.add_argument("--budget", type=int, help="most simulated showers")
    p.add_argument("--points", type=int, default=6, help="designs simulated per iteration")
    p.add_argument("--showers", type=int, default=1000, help="showers per design")
    p.add_argument("--iterations", type=int, default=8, help="most surrogate refreshes")
    p.add_argument("--trust", type=float, default=0.15, help="trust-box half-width, fraction of each range")
    p.add_argument("--steps", type=int, default=60, help="gradient steps per iteration")
    p.add_argument("--lr", type=float, default=0.02, help="Adam step size (unit coordinates)")
    p.add_argument("--epochs", type=int, default=20, help="surrogate training epochs per iteration")
    p.add_argument("--data", metavar="FILE", help="showers with per-shower design columns to train on as well")
    p.add_argument("--measure", type=int, default=0, metavar="N", help="measure C(psi*) with N showers per energy")
    p.add_argument("--report", metavar="DIR", help="write design.png and result.json here")
    p.add_argument("-o", "--out", metavar="FILE", help="the result as JSON")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary")
    p.set_defaults(handler=cmd_design)
    return p


def _pairs(items: list[str], flag: str) -> dict[str, Any]:
    from hepgen.cli.common import parse_value

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} {item!r}: expected KEY=VALUE")
        out[key.strip()] = parse_value(value, None)
    return out


def _energy_range(text: str) -> tuple[float, float]:
    low, sep, high = str(text).partition(":")
    try:
        lo, hi = (float(low), float(high)) if sep else (float(low), float(low))
    except ValueError:
        raise ConfigError(f"--energy {text!r}: expected MIN:MAX in GeV, e.g. 10:50") from None
    if not 0 < lo <= hi:
        raise ConfigError(f"--energy {text!r}: need 0 < MIN <= MAX (GeV)")
    return lo, hi


def cmd_design(args: argparse.Namespace, extra: list[str]) -> int:
    import numpy as np

    from hepgen.calo.design import (
        CaloSimulator,
        DesignStudy,
        ResolutionObjective,
        parse_parameter,
    )
    from hepgen.data.generators import calo as calo_generator
    from hepgen.files import atomic_write_text, writable_location

    if args.out is None and args.report is None:
        raise ConfigError("hepgen design writes its result with -o FILE and/or --report DIR; give at least one")
    for target, flag in ((args.out, "-o"), (args.report, "--report")):
        if target:
            why = writable_location(target)
            if why:
                raise ConfigError(f"{flag} {target}: {why}")
    params = [parse_parameter(p) for p in args.param]
    low, high = _energy_range(args.energy)
    if args.energies < 1:
        raise ConfigError(f"--energies must be >= 1, got {args.energies}")
    if args.measure < 0:
        raise ConfigError(f"--measure must be >= 0, got {args.measure}")
    if args.epochs < 1:
        raise ConfigError(f"--epochs must be >= 1, got {args.epochs}")
    energies = np.linspace(low, high, args.energies) if args.energies > 1 else np.array([(low + high) / 2])
    fixed = _pairs(args.option, "--option")
    allowed = {"noise", "max_spots", *calo_generator.DESIGN}
    for key in fixed:
        if key not in allowed or key in {p.name for p in params}:
            raise ConfigError(f"--option {key!r}: give noise, max_spots or a design parameter not optimised "
                              f"(allowed: {', '.join(sorted(allowed - {p.name for p in params}))})")
    noise, max_spots = fixed.pop("noise", 1.0), fixed.pop("max_spots", 4000)
    if args.particle not in calo_generator.PARTICLES:
        raise ConfigError(f"--particle {args.particle!r}: one of {', '.join(calo_generator.PARTICLES)}")
    simulator = CaloSimulator(args.particle, noise, max_spots, fixed)
    objective = ResolutionObjective(energies, per_metre=args.per_metre, per_lead=args.per_lead)
    start = {k: float(v) for k, v in _pairs(args.start, "--start").items()}
    study = DesignStudy(params, start=start, simulator=simulator, objective=objective, energy=(low, high),
                        points=args.points, showers=args.showers, trust=args.trust, steps=args.steps, lr=args.lr,
                        iterations=args.iterations, budget=args.budget, surrogate={"epochs": args.epochs},
                        seed=args.seed, verbose=not args.quiet)
    if args.data:
        from hepgen.calo.design import shower_features
        from hepgen.calo.showers import read_showers
        from hepgen.data import io
        from hepgen.errors import DataError

        showers = read_showers(args.data)
        path, _ = io.parse_spec(args.data)
        keys = set(io.available_keys(path))
        design = {}
        for p in params:
            if p.name not in keys:
                raise DataError(f"{args.data}: no per-shower design column {p.name!r} (write one with "
                                f"'hepgen data calo --option vary={p.name}:LOW:HIGH'); it has {', '.join(sorted(keys))}")
            design[p.name] = np.asarray(io.read(f"{path}:{p.name}").data, dtype=np.float64).reshape(-1)
            if len(design[p.name]) != len(showers):
                raise DataError(f"{path}:{p.name} has {len(design[p.name])} rows for {len(showers)} showers")
        arrays = {**showers.layers, "energy": showers.energy}
        study.add_showers(design, showers.energy, shower_features(arrays))
    study.fit()
    result = study.to_dict()
    result["simulator"] = {"particle": args.particle, **simulator.options({})}
    if args.measure:
        result["measured"] = {"design": study.measure(showers=args.measure, seed=args.seed + 1),
                              "start": study.measure(study.start, showers=args.measure, seed=args.seed + 1)}
    text = json.dumps(result, indent=2, default=float)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    if args.report:
        from pathlib import Path

        atomic_write_text(Path(args.report) / "result.json", text + "\n")
        _plot(result, Path(args.report) / "design.png")
    if not args.quiet:
        print(f"design {study.design_} after {study.showers_} simulated showers ({study.stopped_})", file=sys.stderr)
    return 0


def _plot(result: dict[str, Any], out: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from hepgen.report.plots import save_figure

    names = [p["name"] for p in result["parameters"]]
    path = result["path"]
    fig = Figure(figsize=(11, 4))
    ax1, ax2 = fig.subplots(1, 2)
    points = [[step["design"][n] for n in names] for step in path] + [[result["design"][n] for n in names]]
    if len(names) >= 2:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        ax1.plot(xs, ys, "o-", color="C0", label="gradient path")
        ax1.plot(xs[-1], ys[-1], "*", ms=14, color="C3", label="result")
        ax1.set_xlabel(f"{names[0]} [mm]")
        ax1.set_ylabel(f"{names[1]} [mm]")
        par = result["parameters"]
        ax1.set_xlim(par[0]["low"], par[0]["high"])
        ax1.set_ylim(par[1]["low"], par[1]["high"])
        ax1.legend()
    else:
        ax1.plot(range(len(points)), [p[0] for p in points], "o-")
        ax1.set_xlabel("iteration")
        ax1.set_ylabel(f"{names[0]} [mm]")
    ax2.plot([s["showers"] for s in path], [s["surrogate_objective"] for s in path], "o-")
    ax2.set_xlabel("simulated showers")
    ax2.set_ylabel("C(psi) through the surrogate")
    fig.tight_layout()
    save_figure(fig, out)
