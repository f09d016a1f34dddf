"""``hepgen demo``: the main end-to-end job on the shipped data."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
    demo = sub.add_parser("demo", help="the main end-to-end job on built-in data (fit, sample, compare, report)")
    demo.add_argument("--out", default="demo-out")
    demo.add_argument("--epochs", type=int, default=None)
    demo.add_argument("-q", "--quiet", action="store_true")
    demo.set_defaults(handler=cmd_demo)
    return demo


def cmd_demo(args: argparse.Namespace, extra: list[str]) -> int:
    from hepgen.demo import run_demo

    run_demo(Path(args.out), epochs=args.epochs, quiet=args.quiet)
    return 0
