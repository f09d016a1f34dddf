"""``hepgen data``: write a sample of a built-in generator.

``hepgen data --help`` lists the generators; ``hepgen data NAME --help`` lists that generator's
options with their types, defaults, units and descriptions (from its ``OPTIONS`` table). HDF5
outputs carry attributes: units per dataset/column, the process, every parameter, the seed and
the hepgen version (:func:`hepgen.data.generators.file_attributes`). Generators that run in
chunks (calo, phi4, jets) draw a tqdm bar on stderr when it is a terminal, unless ``-q``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hepgen.data.io import write_arrays
from hepgen.errors import ConfigError, HepgenError
from hepgen.files import writable_location
from hepgen.options import parse_options


class _GeneratorHelp(argparse.Action):
    """``-h/--help``: the command's help, plus the option table of the generator named before it."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 default: Any = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        from hepgen.data.generators import options_help

        text = parser.format_help()
        name = getattr(namespace, "name", None)
        if name:
            try:
                text = f"{text}\n{options_help(name)}"
            except HepgenError as exc:  # an unknown name (or a generator that cannot be imported)
                text = f"{text}\n{exc}\n"
        parser._print_message(text, sys.stdout)
        parser.exit()


def add_parser(sub: Any) -> argparse.ArgumentParser:
    from hepgen.data.generators import SUMMARIES

    listing = "\n".join(f"  {name:<7} {text}" for name, text in SUMMARIES.items())
    data = sub.add_parser(
        "data", help="generate a built-in data set", add_help=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write a deterministic sample of a built-in generator.\n\ngenerators:\n" + listing,
        epilog="Run 'hepgen data NAME --help' for the options of generator NAME (with defaults and units). "
               "'hepgen data import KIND FILE -o OUT' converts a public dataset (top-tagging, lhco, jetnet) into the "
               "jets layout; see 'hepgen data import --help'.")
    data.add_argument("-h", "--help", action=_GeneratorHelp,
                      help="show this help (after NAME: with that generator's options) and exit")
    data.add_argument("name", metavar="NAME", help=f"generator: {', '.join(SUMMARIES)}")
    data.add_argument("-n", type=int, required=True, help="number of events")
    data.add_argument("-o", "--out", required=True, help="output file (.h5 recommended: it keeps units and parameters)")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                      help="generator option, repeatable (e.g. --option name=moons); see 'hepgen data NAME --help'")
    data.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary line")
    data.set_defaults(handler=cmd_data)

    return data


def cmd_data(args: argparse.Namespace, extra: list[str]) -> int:
    import numpy as np

    from hepgen.data.generators import file_attributes, get_generator
    from hepgen.progress import progress_enabled

    generator = get_generator(args.name)
    # every option converted and checked against the generator's schema before anything is simulated
    try:
        options = parse_options(args.option, generator.OPTIONS, owner=f"data generator {args.name!r}", fill=False)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (see 'hepgen data {args.name} --help')") from None
    generator.process(**options)  # the generator's own checks of option values that need parsing (calo's vary)
    if args.n < 1:
        raise ConfigError(f"-n must be a positive number of events, got {args.n}")
    why = writable_location(args.out)
    if why:
        raise ConfigError(f"-o {args.out}: {why}")
    with progress_enabled(not args.quiet):
        arrays = generator.generate(args.n, seed=args.seed, **options)
    names = generator.columns(**options) if hasattr(generator, "columns") else {}
    arrays = {k: v for k, v in arrays.items() if getattr(v, "ndim", 0) > 0 or k not in names}
    attrs = file_attributes(args.name, args.n, args.seed, options, arrays)
    write_arrays(args.out, arrays, names, attrs=attrs)
    if args.quiet:
        return 0
    summary = ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items() if getattr(v, "ndim", 0))
    scalars = ", ".join(f"{k} = {float(v):.4g}" for k, v in arrays.items()
                        if getattr(v, "ndim", 1) == 0 and np.issubdtype(np.asarray(v).dtype, np.number))
    print(f"wrote {args.out}: {summary}" + (f"; {scalars}" if scalars else ""), file=sys.stderr)
    return 0
