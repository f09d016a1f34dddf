"""``hepgen unfold METHOD``: unfold observed reco data with the detector response of a simulation.

    hepgen unfold ibu --sim-truth sim.h5:truth --sim-reco sim.h5:reco --pass-reco sim.h5:pass_reco \\
        --pass-truth sim.h5:pass_truth --data data.h5:reco --pass-data data.h5:pass_reco \\
        --data-truth data.h5:truth --pass-data-truth data.h5:pass_truth --report rep/ -o unfolded.h5

Flags and weights are a column of the table they belong to (``--pass-reco``/``--sim-weights``: of
SIM-RECO; ``--pass-truth``: of SIM-TRUTH; ``--data-weights``/``--pass-data``: of DATA) or FILE:KEY.
Bad input (truth and reco of different lengths, fakes without ``--pass-truth``, data without the
reco observables) exits 2 naming the file and column, before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hepgen.cli.common import add_device, check_report
from hepgen.errors import ConfigError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    from hepgen.unfolding.api import METHODS, OPTIONS

    p = sub.add_parser("unfold", help="unfold detector effects: IBU, OmniFold, flow posterior, marginal likelihood",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=_options_help(OPTIONS))
    p.add_argument("method", metavar="METHOD", choices=METHODS, help=f"one of {', '.join(METHODS)}")
    p.add_argument("--sim-truth", required=True, metavar="DATA", help="simulated truth events, path[:key]")
    p.add_argument("--sim-reco", required=True, metavar="DATA", help="simulated reco events, row-paired with the truth")
    p.add_argument("--data", required=True, metavar="DATA", help="observed (reco) events to unfold")
    p.add_argument("--pass-reco", metavar="COL|FILE:KEY", help="simulated events reconstructed and accepted")
    p.add_argument("--pass-truth", metavar="COL|FILE:KEY", help="simulated events with a truth partner (false: fakes)")
    p.add_argument("--sim-weights", metavar="COL|FILE:KEY", help="per-event weights of the simulation")
    p.add_argument("--data-weights", metavar="COL|FILE:KEY", help="per-event weights of the data")
    p.add_argument("--pass-data", metavar="COL|FILE:KEY", help="rows of DATA that are observed events (default: all)")
    p.add_argument("--data-truth", metavar="DATA", help="the data's true truth, when known (closure studies)")
    p.add_argument("--pass-data-truth", metavar="COL|FILE:KEY", help="rows of --data-truth that are real jets")
    p.add_argument("--report", metavar="DIR", help="write figures, metrics.json and index.html here")
    p.add_argument("-o", "--out", metavar="FILE", help="unfolded output (.h5 or .npz)")
    p.add_argument("--bins", type=int, default=20, help="truth bins per observable (IBU; report and metrics)")
    p.add_argument("--iterations", type=int, help="IBU/OmniFold iterations; posterior: prior-removal iterations")
    p.add_argument("--bootstrap", type=int, help="bootstrap replicas for the uncertainty band (0: none)")
    p.add_argument("--epochs", type=int, help="flow training epochs (posterior, marginal)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a further method option (see below), repeatable")
    p.add_argument("--seed", type=int, default=0)
    add_device(p, default=None, help="where the flows train (posterior, marginal): auto, cpu, cuda, cuda:N or mps "
                                     "(the same as --option device=...)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary")
    p.set_defaults(handler=cmd_unfold)
    return p


def _options_help(options: dict[str, dict[str, Any]]) -> str:
    """Each method's --option KEY=DEFAULT and what it does (the help of its hepgen.options.Option), one per line."""
    import textwrap

    lines = ["method options (--option KEY=VALUE):"]
    for method, opts in options.items():
        lines.append(f"  {method}:")
        for key, option in opts.items():
            text = f"{key}={_default(option.default)}" + (f": {option.help}" if option.help else "")
            lines += textwrap.wrap(text, 100, initial_indent="    ", subsequent_indent="        ")
    return "\n".join(lines)


def _default(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value).lower() if value is None else str(value)


def cmd_unfold(args: argparse.Namespace, extra: list[str]) -> int:
    from hepgen.files import writable_location
    from hepgen.options import parse_options
    from hepgen.unfolding.api import OPTIONS, check_method_options, unfold

    if args.out is None and args.report is None:
        raise ConfigError("hepgen unfold writes its result with -o FILE and/or --report DIR; give at least one")
    schema = OPTIONS[args.method]
    options = parse_options(args.option, schema, owner=f"unfolding method {args.method!r}", fill=False)
    for key in ("iterations", "bootstrap", "epochs", "device"):
        value = getattr(args, key)
        if value is not None:
            if key not in schema:
                raise ConfigError(f"--{key} does not apply to method {args.method!r}")
            options[key] = value
    options = check_method_options(args.method, options)  # bounds of the flags too, before any file is read
    for target in (args.out, args.report):
        if target:
            problem = writable_location(target)
            if problem:
                raise ConfigError(f"cannot write {target}: {problem}")
    check_report(args.report)
    result = unfold(args.method, args.sim_truth, args.sim_reco, args.data, pass_truth=args.pass_truth,
                    pass_reco=args.pass_reco, sim_weights=args.sim_weights, data_weights=args.data_weights,
                    data_truth=args.data_truth, pass_data=args.pass_data, pass_data_truth=args.pass_data_truth,
                    bins=args.bins, seed=args.seed, report_dir=args.report, out=args.out, quiet=True, **options)
    if not args.quiet:
        from hepgen.report.folder import dumps

        print(dumps(result.metrics), end="")  # strict JSON: a non-finite number is null
        if args.report:
            print(f"report: {args.report}/index.html", file=sys.stderr)
    return 0
