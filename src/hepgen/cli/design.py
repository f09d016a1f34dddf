"""``hepgen design calo``: optimise the calorimeter's design by gradient descent through a local surrogate.

    hepgen design calo --param absorber_mm=0.5:3 --param layer_1_mm=200:1000 --energy 10:50 \\
        --budget 40000 --report rep/ -o result.json

Minimises C(ψ) = mean relative resolution at ``--energies`` (default five, over ``--energy``) plus
``--per-metre`` x depth[m] + ``--per-lead`` x lead[100 g/cm2], over the box of the ``--param``s, by L-GSO
(hepgen.calo.design): the simulator runs only at designs near the current one, a conditional flow learns
the response there and gradient steps move ψ. ``--data FILE`` adds showers with per-shower design
columns (``hepgen data calo --option vary=absorber_mm=0.5:3``) to the surrogate's training. ``--measure N``
evaluates C(ψ*) with N simulator showers per energy (not counted as the method's showers). Bad options
exit 2 naming the option before anything is simulated or written.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hepgen.cli.common import (add_deprecated, add_device, add_options, add_out, add_quiet, add_report, add_seed,
                               check_report, check_writable, resolve_device)
from hepgen.errors import ConfigError
from hepgen.options import Option, convert, parse_options, parse_range


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("design", help="detector design by gradient descent through a local generative surrogate",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("detector", metavar="DETECTOR", choices=("calo",), help="the simulator: calo")
    p.add_argument("--param", action="append", default=[], metavar="NAME=LOW:HIGH", required=True,
                   help="a design parameter and its box in mm (absorber_mm, active_mm, layer_0_mm, layer_1_mm, "
                        "layer_2_mm), repeatable")
    p.add_argument("--start", action="append", default=[], metavar="NAME=VALUE",
                   help="starting value (default: the simulator's default design)")
    p.add_argument("--energy", default="10:50", metavar="LOW:HIGH", help="incident energies in GeV (default 10:50)")
    p.add_argument("--energies", default="5", metavar="J", help="energies of the objective over the range")
    p.add_argument("--particle", default="e+", help="incident particle (e+, gamma, pi+)")
    p.add_argument("--per-metre", default="0.01", metavar="COST", help="cost per metre of calorimeter depth")
    p.add_argument("--per-lead", default="0.0", metavar="COST", help="cost per 100 g/cm2 of lead")
    add_options(p, "a fixed simulator option (noise, max_spots, or a design parameter not optimised) or a surrogate "
                   "option (flow, transforms, hidden, bins, tail_bound, warm_epochs, batch_size, lr), repeatable")
    add_device(p, default=None, help="where the surrogate trains: auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--budget", metavar="N", help="most simulated showers")
    p.add_argument("--points", default="6", metavar="N", help="designs simulated per iteration")
    p.add_argument("--showers", default="1000", metavar="N", help="showers per design")
    p.add_argument("--iterations", default="8", metavar="N", help="most surrogate refreshes")
    p.add_argument("--trust", default="0.15", metavar="F", help="trust-box half-width, fraction of each range")
    p.add_argument("--steps", default="60", metavar="N", help="gradient steps on the design per iteration")
    p.add_argument("--design-lr", dest="design_lr", default="0.02", metavar="STEP",
                   help="Adam step size of the design, in unit coordinates of the box (the surrogate's learning "
                        "rate is --option lr=...)")
    add_deprecated(p, "--lr", "--design-lr", dest="design_lr")
    p.add_argument("--epochs", default="20", metavar="N", help="surrogate training epochs per iteration")
    p.add_argument("--data", metavar="FILE", help="showers with per-shower design columns to train on as well")
    p.add_argument("--measure", default="0", metavar="N", help="measure C(psi*) with N showers per energy")
    add_report(p, "the report folder: metrics.json (the result), plots/design.png, index.html (and result.json, "
                  "the older name of metrics.json)")
    add_out(p, "the result as JSON", metavar="FILE")
    add_seed(p)
    add_quiet(p, "no progress and no summary")
    p.set_defaults(handler=cmd_design)
    return p


#: the flags of numbers, as options of the one grammar (hepgen.options): type and bounds, checked before any work
FLAGS: dict[str, Option] = {
    "energies": Option(5, low=1), "per_metre": Option(0.01, low=0), "per_lead": Option(0.0, low=0),
    "budget": Option(None, kind=int, low=1), "points": Option(6, low=1), "showers": Option(1000, low=1),
    "iterations": Option(8, low=1), "trust": Option(0.15, low=0, high=0.5, low_open=True),
    "steps": Option(60, low=1), "design_lr": Option(0.02, low=0, low_open=True), "epochs": Option(20, low=1),
    "measure": Option(0, low=0),
}

def _flags(args: argparse.Namespace) -> dict[str, Any]:
    """The numeric flags converted and checked (ConfigError naming the flag, e.g. ``--design-lr nan``)."""
    out = {}
    for key, option in FLAGS.items():
        flag = "--" + key.replace("_", "-")
        try:
            out[key] = convert(key, getattr(args, key), option)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(f"option {key!r}", flag, 1)) from None
    return out


def cmd_design(args: argparse.Namespace, extra: list[str]) -> int:
    import numpy as np

    from hepgen.calo.design import (
        SURROGATE,
        CaloSimulator,
        DesignStudy,
        ResolutionObjective,
        parse_parameter,
    )
    from hepgen.data.generators import calo as calo_generator
    from hepgen.report.folder import write_json

    if args.out is None and args.report is None:
        raise ConfigError("hepgen design writes its result with -o FILE and/or --report DIR; give at least one")
    check_writable(args.out, "-o")
    check_report(args.report)
    flags = _flags(args)
    params = [parse_parameter(p) for p in args.param]  # NAME=LOW:HIGH, hepgen.options' range grammar
    low, high = parse_range(args.energy, "--energy (GeV)", positive=True, allow_equal=True)
    energies = np.linspace(low, high, flags["energies"]) if flags["energies"] > 1 else np.array([(low + high) / 2])
    optimised = {p.name for p in params}
    simulator_options = {"noise": calo_generator.OPTIONS["noise"], "max_spots": calo_generator.OPTIONS["max_spots"],
                         **{k: calo_generator.OPTIONS[k] for k in calo_generator.DESIGN if k not in optimised}}
    options = parse_options(args.option, {**simulator_options, **SURROGATE}, owner="'hepgen design calo'", fill=False)
    surrogate = {k: options.pop(k) for k in list(options) if k in SURROGATE}
    surrogate.setdefault("epochs", flags["epochs"])
    if args.device is not None:
        resolve_device(args.device)  # a device this machine lacks is refused here, naming --device
        surrogate["device"] = args.device
    noise = options.pop("noise", calo_generator.OPTIONS["noise"].default)
    max_spots = options.pop("max_spots", calo_generator.OPTIONS["max_spots"].default)
    fixed = options
    if args.particle not in calo_generator.PARTICLES:
        raise ConfigError(f"--particle {args.particle!r}: one of {', '.join(calo_generator.PARTICLES)}")
    simulator = CaloSimulator(args.particle, noise, max_spots, fixed)
    objective = ResolutionObjective(energies, per_metre=flags["per_metre"], per_lead=flags["per_lead"])
    start = parse_options(args.start, {p.name: Option(None, kind=float) for p in params}, owner="--start", fill=False,
                          flag="--start")
    study = DesignStudy(params, start=start, simulator=simulator, objective=objective, energy=(low, high),
                        points=flags["points"], showers=flags["showers"], trust=flags["trust"], steps=flags["steps"],
                        lr=flags["design_lr"], iterations=flags["iterations"], budget=flags["budget"],
                        surrogate=surrogate, seed=args.seed, verbose=not args.quiet)
    if args.data:
        from hepgen.calo.design import shower_features
        from hepgen.calo.shower_layout import read_showers
        from hepgen.data import io
        from hepgen.errors import DataError

        showers = read_showers(args.data)
        path, _ = io.parse_spec(args.data)
        try:  # the design columns beside the layers, in one read
            table = io.read(str(path), columns=[p.name for p in params], dtype=np.float64)
            design = {p.name: table.column(p.name) for p in params}
        except DataError:  # which column is missing or unlike the others, said one by one
            keys = set(io.available_keys(path))
            design = {}
            for p in params:
                if p.name not in keys:
                    raise DataError(f"{args.data}: no per-shower design column {p.name!r} (write one with "
                                    f"'hepgen data calo --option vary={p.name}=LOW:HIGH'); it has "
                                    f"{', '.join(sorted(keys))}") from None
                design[p.name] = np.asarray(io.read(f"{path}:{p.name}").data, dtype=np.float64).reshape(-1)
        for p in params:
            if len(design[p.name]) != len(showers):
                raise DataError(f"{path}:{p.name} has {len(design[p.name])} rows for {len(showers)} showers")
        arrays = {**showers.layers, "energy": showers.energy}
        study.add_showers(design, showers.energy, shower_features(arrays))
    study.fit()
    result = study.to_dict()
    result["simulator"] = {"particle": args.particle, **simulator.options({})}
    if flags["measure"]:
        result["measured"] = {"design": study.measure(showers=flags["measure"], seed=args.seed + 1),
                              "start": study.measure(study.start, showers=flags["measure"], seed=args.seed + 1)}
    if args.out:
        write_json(args.out, result)  # strict JSON: a non-finite number is null, never Infinity/NaN
    if args.report:
        from hepgen.report.design import write_design_report

        write_design_report(result, args.report,
                            title=f"hepgen design {args.detector}: {', '.join(p.name for p in params)}")
    if not args.quiet:
        print(f"design {study.design_} after {study.showers_} simulated showers ({study.stopped_})", file=sys.stderr)
    return 0
