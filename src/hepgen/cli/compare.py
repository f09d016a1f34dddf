"""``hepgen compare``: metrics and an HTML report of a candidate sample against a reference."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hepgen.errors import DataError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    compare = sub.add_parser("compare", help="compare two samples: metrics and an HTML report")
    compare.add_argument("ref", metavar="REF", help="reference events, path[:key]")
    compare.add_argument("cand", metavar="CAND", help="candidate (e.g. generated) events, path[:key]")
    compare.add_argument("--report", metavar="DIR", help="write metrics.json, plots and index.html here")
    compare.add_argument("--ref-weights", dest="ref_weights", help="FILE:KEY")
    compare.add_argument("--cand-weights", dest="cand_weights", help="FILE:KEY")
    compare.add_argument("--seed", type=int, default=0)
    compare.set_defaults(handler=cmd_compare)

    return compare


def cmd_compare(args: argparse.Namespace, extra: list[str]) -> int:
    from hepgen.data import io
    from hepgen.report.compare import compare

    ref, cand = io.read(args.ref), io.read(args.cand)
    if ref.data.shape[1:] != cand.data.shape[1:]:
        raise DataError(f"{args.ref} has events of shape {ref.data.shape[1:]} but {args.cand} has "
                        f"{cand.data.shape[1:]}; compare needs the same features")
    rw = io.read(args.ref_weights, dtype=float).data.reshape(-1) if args.ref_weights else None
    cw = io.read(args.cand_weights, dtype=float).data.reshape(-1) if args.cand_weights else None
    result = compare(ref.data, cand.data, names=ref.columns or cand.columns, ref_weights=rw, cand_weights=cw,
                     report_dir=args.report, seed=args.seed, title=f"{args.cand} vs {args.ref}")
    print(json.dumps(_summary(result), indent=2))
    if args.report:
        print(f"report: {Path(args.report) / 'index.html'}", file=sys.stderr)
    return 0


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if not isinstance(v, (list, dict)) or k in ("c2st", "fpd", "kpd")}


