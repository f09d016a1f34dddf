"""The ``hepgen`` command: argument parsing and error-to-exit-code mapping over the Python API.

Each sub-command lives in its own module of the same name (``fit``, ``sample``, ``score``, ``info``,
``data``, ``compare``, ``roc``, ``export``, ``unfold``, ``design``, ``demo``, ``report``) as ``add_parser(sub)`` and a
``cmd_*`` handler of a few API calls; the flags they share come from ``cli/common.py``. Errors
caused by the user's input (HepgenError) print one paragraph on stderr and exit with code 2,
never a traceback. Ctrl-C exits 130 and SIGTERM 143, each after the cleanups ran (no temporary file left).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from hepgen.errors import HepgenError, Terminated
from hepgen.files import sigterm_raises
from hepgen.memory import keep_freed_memory


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hepgen``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:2] == ["data", "import"]:  # a verb of its own beside the generators' NAME (cli/data_import.py)
        from hepgen.cli import data_import

        parser = data_import.build_parser()
    try:
        with sigterm_raises(), _deprecations_on_stderr():  # SIGTERM cleans up (temporary files, staged reports)
            args, extra = parser.parse_known_args(argv[2:] if parser.prog == "hepgen data import" else argv)
            if args.command is None:
                parser.print_help()
                return 2
            if extra and args.command != "fit":
                parser.error(f"unrecognised arguments: {' '.join(extra)}")
            args.argv = argv  # the command line as given, for the run's config.yaml
            keep_freed_memory()  # glibc keeps freed blocks: no page faults at every step (hepgen.memory)
            return int(args.handler(args, extra) or 0)
    except HepgenError as exc:
        print(f"hepgen: error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print("hepgen: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("hepgen: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout closed early ('hepgen compare ... | head'): no traceback, as other tools do
        import os

        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush cannot fail again
        except (OSError, ValueError):
            pass
        return 128 + getattr(signal, "SIGPIPE", 13)


@contextlib.contextmanager
def _deprecations_on_stderr() -> Iterator[None]:
    """hepgen's own DeprecationWarnings (an old spelling in an option value, e.g. calo's vary=KEY:LOW:HIGH) as one
    line on stderr, as the old flags say so (cli.common.add_deprecated); other packages' warnings untouched."""
    import warnings

    said: set[str] = set()

    def show(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
        if issubclass(category, DeprecationWarning):
            if str(message) not in said:  # once, however often the library reads the value
                said.add(str(message))
                print(f"hepgen: deprecated: {message}", file=sys.stderr)
        else:
            previous(message, category, *args, **kwargs)

    with warnings.catch_warnings():
        previous = warnings.showwarning
        warnings.filterwarnings("always", category=DeprecationWarning, module=r"hepgen(\.|$)")
        warnings.showwarning = show
        yield


def build_parser() -> argparse.ArgumentParser:
    from hepgen.cli import compare, data, demo, export, fit, info, sample, score
    from hepgen.cli import unfold as unfold_cli
    from hepgen.cli import report as report_cli
    from hepgen.cli import roc
    from hepgen.cli import design as design_cli

    parser = argparse.ArgumentParser(
        prog="hepgen", description="Generative models for particle physics: fit, sample, score and compare.",
        epilog="DATA arguments are path[:key] (uproot convention): events.h5:jets/features, tree.root:Events, "
               "x.npy; a key may name columns (tree.root:events/a,b, sim.h5:truth/pt,eta). Flags mean the same on "
               "every command: -o/--out (the main output), --report DIR, -q, --seed, --device, --option KEY=VALUE, "
               "--weights, --context, --batch-size (training) and --block-size (I/O). Run 'hepgen COMMAND --help' "
               "for each command.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    fit.add_parser(sub)
    sample.add_parser(sub)
    score.add_parser(sub)
    info.add_parser(sub)
    data.add_parser(sub)
    compare.add_parser(sub)
    demo.add_parser(sub)
    export.add_parser(sub)
    unfold_cli.add_parser(sub)
    roc.add_parser(sub)
    design_cli.add_parser(sub)
    report_cli.add_parser(sub)
    return parser
