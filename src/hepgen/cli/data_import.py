"""``hepgen data import KIND FILE -o OUT``: a field dataset file converted into hepgen's jet layout.

KIND is ``top-tagging``, ``lhco``, ``jetnet`` or ``auto`` (recognised from the file's layout); see
:mod:`hepgen.data.importers` for the layouts read and written. The file's key and columns are checked
before any jet is converted (a wrong file exits 2 naming it and the first missing column, and writes
nothing); rows stream in chunks under a tqdm bar on a terminal (unless ``-q``) into a temporary file renamed
into place at the end.
"""

from __future__ import annotations

import argparse
import sys

from hepgen.cli.common import add_options, add_out, add_quiet, check_writable


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``hepgen data import`` (reached through ``hepgen data import ...``)."""
    from hepgen.data.importers import KINDS, OPTIONS

    listing = "\n".join(f"  {name:<12} {text}" for name, text in KINDS.items())
    options = "\n".join(f"  {name:<17} {option.help} (default {option.default})" for name, option in OPTIONS.items())
    parser = argparse.ArgumentParser(
        prog="hepgen data import", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert a public jet dataset file into hepgen's jet layout (constituents, mask, 40x40 images, "
                    "substructure features: the code of 'hepgen data jets'), one group per class.\n\nkinds:\n"
                    + listing + "\n\noptions (--option KEY=VALUE):\n" + options,
        epilog="Example: hepgen data import top-tagging test.h5 -o top_test.h5, then "
               "'hepgen fit gaussian top_test.h5:qcd/features' or 'hepgen roc top_test.h5:qcd/features "
               "top_test.h5:top/features --score tau32 --lower-is-signal'.")
    parser.add_argument("kind", metavar="KIND", choices=(*KINDS, "auto"), help=f"{', '.join(KINDS)} or auto")
    parser.add_argument("file", metavar="FILE", help="the dataset file as published (HDF5)")
    add_out(parser, "output HDF5 file in hepgen's jet layout", required=True)
    parser.add_argument("-n", type=int, default=None, metavar="ROWS", help="convert only the first ROWS rows")
    add_options(parser, "import option, repeatable (e.g. --option R=0.8 for lhco); listed above")
    add_quiet(parser)
    parser.set_defaults(command="data import", handler=cmd_import)
    return parser


def cmd_import(args: argparse.Namespace, extra: list[str]) -> int:
    from hepgen.data.importers import OPTIONS, import_jets
    from hepgen.errors import ConfigError
    from hepgen.options import parse_options

    options = parse_options(args.option, OPTIONS, owner="data import", fill=False)
    if args.n is not None and args.n < 1:
        raise ConfigError(f"-n must be a positive number of rows, got {args.n}")
    check_writable(args.out, "-o")
    counts = import_jets(args.kind, args.file, args.out, stop=args.n, progress=not args.quiet, **options)
    if not args.quiet:
        print(f"wrote {args.out}: " + ", ".join(f"{group} {n} jets" for group, n in counts.items()), file=sys.stderr)
    return 0

