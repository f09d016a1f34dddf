"""``hepgen roc``: ROC, AUC, significance improvement, rejection and mass sculpting of a score.

``hepgen roc BACKGROUND SIGNAL [SIGNAL ...] --report DIR`` reads one score per event from each file
(``hepgen score`` outputs, or any ``path[:key]`` with ``--score COLUMN``); a signal may be named
(``top=top_scores.h5``). Background and signal files may hold different numbers of events; within a
file the weights (``--weights COLUMN``, read from every file that has that column) and, for the
background, the mass (``--mass``) must have one value per scored event. Every file is read and
checked, and every number computed, before ``DIR`` is written.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.cli.common import add_out, check_report, check_writable, emit_result
from hepgen.errors import ConfigError, DataError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    roc = sub.add_parser("roc", help="ROC/SIC, AUC, rejection and mass sculpting of a score: metrics and a report",
                         description="Evaluate a tagger or an anomaly score: per signal the AUC, the maximal "
                                     "significance improvement ε_S/√ε_B and where it sits, and 1/ε_B at ε_S = 0.3 "
                                     "and 0.5, each with a bootstrap error; ROC and SIC curves (PNG and PDF); with "
                                     "--mass the background's mass after cuts at ε_B = 50/10/1 % and the JSD of "
                                     "passing vs failing background.")
    roc.add_argument("background", metavar="BACKGROUND", help="background scores, path[:key] (a hepgen score output)")
    roc.add_argument("signals", metavar="SIGNAL", nargs="+",
                     help="signal scores, path[:key], optionally named: top=top_scores.h5")
    roc.add_argument("--report", metavar="DIR", help="the report folder: metrics.json, plots/roc_sic.png/.pdf "
                                                     "(and plots/mass_sculpting.png/.pdf), index.html")
    add_out(roc, "also write the printed metrics (JSON) here", metavar="FILE")
    roc.add_argument("--score", default="score", metavar="COLUMN",
                     help="the score column/dataset of each file (default: score)")
    roc.add_argument("--weights", metavar="COLUMN",
                     help="per-event weights: this column of every file that has it (negative weights allowed)")
    roc.add_argument("--lower-is-signal", dest="lower_is_signal", action="store_true",
                     help="lower scores are more signal-like (default: higher)")
    roc.add_argument("--mass", metavar="COLUMN_OR_DATA",
                     help="the background's mass: a column of BACKGROUND, or path[:key] with one value per event")
    roc.add_argument("--bootstrap", type=int, default=100, metavar="N", help="bootstrap resamples (default 100)")
    roc.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    roc.add_argument("-q", "--quiet", action="store_true", help="print nothing on stderr")
    roc.set_defaults(handler=cmd_roc)
    return roc


_NAME = re.compile(r"^([A-Za-z_][\w.+-]*)=(.+)$")


def named_sample(text: str) -> tuple[str, str]:
    """``name=path[:key]`` -> (name, spec); a bare spec is named after its file (and key)."""
    from hepgen.data.io import parse_spec

    match = _NAME.match(text)
    if match and not Path(text).exists():
        return match.group(1), match.group(2)
    path, key = parse_spec(text)
    return (f"{path.stem}:{key}" if key else path.stem), text


def read_values(spec: str, column: str | None, what: str) -> np.ndarray:
    """One finite number per event of ``spec``: the table column ``column``, or the dataset of that name in an
    HDF5/npz file (``hepgen score`` writes ``score`` as a dataset beside ``score_per_feature``)."""
    from hepgen.data import io

    try:
        values = io.read_column(spec, column)
    except DataError as first:
        path, key = io.parse_spec(spec)
        if column is None or not path.exists():  # a missing file is named as such, not as a missing column
            raise
        member = f"{path}:{key}/{column}" if key else f"{path}:{column}"
        try:
            values = io.read_column(member, None)
        except DataError as second:
            if "NaN" in str(first) or "infinite" in str(first):  # the column exists; its values are bad
                raise DataError(f"{spec}: {what} '{column}': {first}") from None
            if "0 events" in str(second) or "0 events" in str(first):
                raise DataError(f"{spec}: the {what} '{column}' has no events; a ROC needs at least one event per "
                                "sample") from None
            raise DataError(f"{spec}: no {what} column or dataset '{column}' ({first}); choose it with "
                            f"--{'score' if what == 'score' else what + 's' if what == 'weight' else what}") from None
    return _checked(values, spec, column, what)


def _checked(values: Any, spec: str, column: str | None, what: str) -> np.ndarray:
    """``values`` as float64 (n,), refused when empty or not finite (the row named)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise DataError(f"{spec}: the {what} {column or ''} has no events; a ROC needs at least one event per sample")
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(f"{spec}: {what} '{column}' is NaN or infinite at row {int(np.flatnonzero(bad)[0])}")
    return values


def read_sample(spec: str, columns: list[str]) -> dict[str, np.ndarray] | None:
    """The named per-event columns of one input, the file opened once (a table's columns, or datasets side by side
    as ``hepgen score`` writes them); None when they do not read as one table (a column is missing, or their
    lengths differ): the caller then reads each on its own, for a message that says which and why."""
    from hepgen.data import io

    try:
        table = io.read(spec, columns=columns, dtype=np.float64, check_finite=False)
    except DataError:
        return None
    return {name: table.column(name) for name in columns}


def _optional(spec: str, column: str, what: str) -> np.ndarray | None:
    try:
        return read_values(spec, column, what)
    except DataError as exc:
        if "NaN or infinite" in str(exc) or "has no events" in str(exc):
            raise
        return None


def read_inputs(args: argparse.Namespace) -> dict[str, Any]:
    """Background and named signal scores, their weights and the background's mass, all checked."""
    from hepgen.data.sources import is_column_name

    samples = [("background", args.background)] + [named_sample(s) for s in args.signals]
    names = [n for n, _ in samples[1:]]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ConfigError(f"two signals are named {duplicate!r}; name them: NAME=path[:key]")
    if args.bootstrap != 0 and args.bootstrap < 2:
        raise ConfigError(f"--bootstrap must be 0 (no errors) or at least 2, got {args.bootstrap}")
    scores, weights = {}, {}
    mass_column = args.mass.strip() if args.mass and is_column_name(args.mass) else None
    mass = None
    for name, spec in samples:
        wanted = list(dict.fromkeys([args.score] + ([args.weights] if args.weights else [])
                                    + ([mass_column] if mass_column and name == "background" else [])))
        together = read_sample(spec, wanted)  # one read of the file; each column on its own only if that fails
        s = (_checked(together[args.score], spec, args.score, "score") if together
             else read_values(spec, args.score, "score"))
        scores[name] = -s if args.lower_is_signal else s
        if mass_column and name == "background" and together:
            mass = _checked(together[mass_column], spec, mass_column, "mass")
        if args.weights:
            w = (_checked(together[args.weights], spec, args.weights, "weight") if together
                 else _optional(spec, args.weights, "weight"))
            if w is not None and len(w) != len(s):
                raise DataError(f"{spec}: {len(w)} weights '{args.weights}' for {len(s)} scores '{args.score}'; "
                                "one weight per scored event is needed")
            if w is not None and not w.sum() > 0:
                raise DataError(f"{spec}: the weights '{args.weights}' sum to {w.sum():g}; the total must be positive")
            weights[name] = w
    if args.weights and all(w is None for w in weights.values()):
        raise DataError(f"--weights {args.weights}: no file has that column (looked in "
                        f"{', '.join(spec for _, spec in samples)})")
    if args.mass and mass is None:
        mass = (read_values(args.background, mass_column, "mass") if mass_column
                else read_values(args.mass, None, "mass"))
        if len(mass) != len(scores["background"]):
            raise DataError(f"--mass {args.mass}: {len(mass)} values for {len(scores['background'])} background "
                            f"scores in {args.background}; one mass per background event is needed")
    return {"samples": dict(samples), "scores": scores, "weights": weights, "mass": mass}


def cmd_roc(args: argparse.Namespace, extra: list[str]) -> int:
    check_writable(args.out, "-o")
    check_report(args.report)
    from hepgen.report.roc import roc_report

    inputs = read_inputs(args)
    scores, weights = inputs["scores"], inputs["weights"]
    background = scores.pop("background")
    meta = [f"background: {args.background}"] + [f"signal {n}: {inputs['samples'][n]}" for n in scores]
    if args.weights:
        used = [n for n, w in weights.items() if w is not None]
        meta.append(f"weights '{args.weights}' read from: {', '.join(used)}; the others unweighted")
    if args.lower_is_signal:
        meta.append("--lower-is-signal: the score was negated (thresholds are of −score)")
    record = {"inputs": {"background": args.background, "signals": {n: inputs["samples"][n] for n in scores},
                         "lower_is_signal": bool(args.lower_is_signal), "weights": args.weights,
                         "weighted": [n for n, w in weights.items() if w is not None]}}
    result = roc_report(background, scores, args.report, background_weights=weights.get("background"),
                        signal_weights={n: weights.get(n) for n in scores}, mass=inputs["mass"],
                        mass_label=args.mass or "mass", n_bootstrap=args.bootstrap, seed=args.seed,
                        title=f"{args.score}: {', '.join(scores)} vs {Path(args.background).name}", meta=meta,
                        score_name=("−" if args.lower_is_signal else "") + args.score, extra=record)
    emit_result(json.dumps(result, indent=2, allow_nan=False), args.out)
    if not args.quiet:
        for note in result["notes"]:
            print(f"warning: {note}", file=sys.stderr)
    if args.report and not args.quiet:
        print(f"report: {Path(args.report) / 'index.html'}", file=sys.stderr)
    return 0
