"""``hepgen demo``: the main end-to-end job on the shipped data."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hepgen.cli.common import add_quiet


def add_parser(sub: Any) -> argparse.ArgumentParser:
    demo = sub.add_parser("demo", help="the main end-to-end job on built-in data (fit, sample, compare, report)")
    demo.add_argument("-o", "--out", default="demo-out", metavar="DIR",
                      help="folder of the run directories, samples, scores and report (default demo-out)")
    demo.add_argument("--epochs", type=int, default=None, help="training epochs of each model (default: the job's)")
    add_quiet(demo)
    demo.set_defaults(handler=cmd_demo)
    return demo


def cmd_demo(args: argparse.Namespace, extra: list[str]) -> int:
    from hepgen.demo import run_demo

    run_demo(Path(args.out), epochs=args.epochs, quiet=args.quiet)
    return 0
