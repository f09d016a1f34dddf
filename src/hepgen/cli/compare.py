"""``hepgen compare``: metrics and an HTML report of a candidate sample against a reference.

Features are matched by name: the columns of REF (after ``--columns``/``--exclude`` and without a
weight column) are read from CAND by name, so REF may be the training file (with its weight
column) and CAND a ``hepgen sample`` output. Weights are a column of the file (``--ref-weights
weight``, as in ``fit``) or FILE:KEY.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hepgen.cli.common import (add_data_selection, add_out, check_report, check_writable, data_selection, emit_result,
                               progress_bar)
from hepgen.errors import ConfigError, DataError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    compare = sub.add_parser("compare", help="compare two samples: metrics and an HTML report")
    compare.add_argument("ref", metavar="REF", help="reference events, path[:key]")
    compare.add_argument("cand", metavar="CAND", help="candidate (e.g. generated) events, path[:key]")
    compare.add_argument("--report", metavar="DIR", help="the report folder: metrics.json, plots/, index.html")
    add_out(compare, "also write the printed metrics (JSON) here", metavar="FILE")
    compare.add_argument("--ref-weights", dest="ref_weights", help="a column of REF, or FILE:KEY")
    compare.add_argument("--cand-weights", dest="cand_weights", help="a column of CAND, or FILE:KEY")
    compare.add_argument("--protocol", choices=("hepgen", "jetnet", "calochallenge"), default="hepgen",
                         help="hepgen (default; FPD/KPD batch sizes fitted to the samples, KPD batches without "
                              "replacement; showers: a light classifier), jetnet (FPD/KPD with jetnet 0.2.5's exact "
                              "defaults) or calochallenge (showers: the CaloChallenge 2022 evaluate.py conventions: "
                              "its DNN of 3 x 2048 LeakyReLU units, 50 epochs, calibrated, AUC and JSD on high- and "
                              "low-level inputs; FPD/KPD x1e3 with jetnet's conventions; the separation power of each "
                              "feature histogram; each with its error, and the same for --floor)")
    compare.add_argument("--classifier-epochs", dest="classifier_epochs", type=int, metavar="N",
                         help="showers: train the classifiers for N epochs instead of the protocol's (30 hepgen, "
                              "50 calochallenge)")
    compare.add_argument("--seed", type=int, default=0)
    compare.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    compare.add_argument("--showers", action="store_true", help="calorimeter showers (layer_0..2 + energy, as "
                         "'hepgen data calo' and 'hepgen sample' write them; detected without the flag): CaloChallenge "
                         "features, classifier AUCs, response per E_inc bin")
    compare.add_argument("--floor", help="showers: a second, independent reference sample; its AUCs against REF are "
                                         "the floor a candidate is judged against")
    compare.add_argument("--geometry", metavar="XML", help="showers: REF, CAND (and FLOOR) are CaloChallenge files "
                         "(incident_energies, showers in MeV); this binning XML (binning.xml[:particle]) lays out "
                         "their layers and gives the η/φ bin centres of the centroids and widths")
    add_data_selection(compare, what="REF (and, by name, CAND)")
    compare.set_defaults(handler=cmd_compare)

    return compare


def _weight_column(value: str | None) -> str | None:
    """The column name of a ``--ref-weights``/``--cand-weights`` value, or None (absent, or FILE:KEY)."""
    from hepgen.data.sources import is_column_name

    return value.strip() if value is not None and is_column_name(value) else None


def _features_and_weights(table: Any, value: str | None) -> tuple[Any, list[str] | None, Any]:
    """(features, their names, weights (n,) float64 or None) of a table read once: a weight column of the
    table is set apart from the features; FILE:KEY weights are read from their own file."""
    import numpy as np

    from hepgen.data import io

    if value is None:
        return table.data, table.columns, None
    name = _weight_column(value)
    if name is None:
        return table.data, table.columns, np.asarray(io.read_column(value), dtype=np.float64)
    weights = np.asarray(table.column(name), dtype=np.float64)
    keep = [i for i, c in enumerate(table.columns) if c != name]
    return table.data[..., keep], [table.columns[i] for i in keep], weights


def read_samples(args: argparse.Namespace) -> tuple[Any, Any, list[str] | None, Any, Any, dict[str, str]]:
    """REF and CAND events with their features matched by name, their weights and REF's units: each file is
    opened once (its weight column read with its features)."""
    from hepgen.data import io
    from hepgen.data.formats.messages import check_finite

    selection = data_selection(args)
    ref_weight = _weight_column(args.ref_weights)
    if ref_weight is not None:
        if selection["columns"] is not None and ref_weight not in selection["columns"]:
            selection["columns"] = list(selection["columns"]) + [ref_weight]
        selection["exclude"] = [c for c in selection["exclude"] if c != ref_weight]
    ref_table = io.read(args.ref, **selection)
    ref, names, rw = _features_and_weights(ref_table, args.ref_weights)
    # CAND whole, once; its columns that REF lacks are not compared, so only the compared ones must be finite
    cand_table = io.read(args.cand, jagged_length=selection["jagged_length"], check_finite=False)
    cand, cand_names, cw = _features_and_weights(cand_table, args.cand_weights)
    if names is not None and cand_names is not None:
        missing = [c for c in names if c not in cand_names]
        if missing:
            raise DataError(f"{args.cand} has no column '{missing[0]}' of {args.ref} (its columns: "
                            f"{', '.join(cand_names)}); compare needs the same features in both samples "
                            "(choose them with --columns/--exclude)")
        cand = cand[..., [cand_names.index(c) for c in names]]
    check_finite(cand, cand_table.source, names if names is not None else cand_names)
    if cw is not None:
        check_finite(cw, f"{cand_table.source} (weights {args.cand_weights})")
    if ref.shape[1:] != cand.shape[1:]:
        raise DataError(f"{args.ref} has events of shape {ref.shape[1:]} but {args.cand} has "
                        f"{cand.shape[1:]}; compare needs the same features")
    names = names or cand_names
    units = {n: ref_table.units[n] for n in names or () if n in ref_table.units}
    return ref, cand, names, rw, cw, units


def cmd_compare(args: argparse.Namespace, extra: list[str]) -> int:
    check_writable(args.out, "-o")
    from hepgen.calo.shower_layout import is_shower_file
    from hepgen.report.compare import compare

    check_report(args.report)
    if args.classifier_epochs is not None and args.classifier_epochs < 1:
        raise ConfigError(f"--classifier-epochs must be a positive number of epochs, got {args.classifier_epochs}")
    if args.showers or args.floor or args.geometry or (is_shower_file(args.ref) and is_shower_file(args.cand)):
        from hepgen.calo.compare import compare_showers

        rw, cw = _shower_weights(args.ref_weights, args.ref), _shower_weights(args.cand_weights, args.cand)
        result = compare_showers(args.ref, args.cand, floor=args.floor, report_dir=args.report, seed=args.seed,
                                 ref_weights=rw, cand_weights=cw, classifier_epochs=args.classifier_epochs,
                                 protocol="calochallenge" if args.protocol == "calochallenge" else "hepgen",
                                 geometry=args.geometry,
                                 title=f"{args.ref} (reference) vs {args.cand} (candidate)")
        emit_result(json.dumps({k: v for k, v in result.items() if k not in ("features", "files")}, indent=2,
                               allow_nan=False), args.out)
        _finish(args)
        return 0
    if args.protocol == "calochallenge":
        raise ConfigError(f"--protocol calochallenge judges calorimeter showers; {args.ref} and {args.cand} are not "
                          "both shower files (layer_0..2 + energy; --showers forces the shower reading)")
    ref, cand, names, rw, cw, units = read_samples(args)
    with progress_bar(0, "compare", args.quiet, unit="steps") as bar:
        def progress(done: int, total: int, what: str) -> None:
            bar.total = total
            bar.set_postfix_str(what, refresh=False)
            bar.update(done - bar.n)

        result = compare(ref, cand, names=names, ref_weights=rw, cand_weights=cw, report_dir=args.report,
                         seed=args.seed, title=f"{args.ref} (reference) vs {args.cand} (candidate)",
                         protocol=args.protocol, progress=progress, units=units)
    emit_result(json.dumps(_summary(result), indent=2, allow_nan=False), args.out)
    _finish(args)
    return 0


def _finish(args: argparse.Namespace) -> None:
    if args.report and not args.quiet:
        print(f"report: {Path(args.report) / 'index.html'}", file=sys.stderr)


def _shower_weights(value: str | None, spec: str) -> Any:
    """Per-shower weights: a dataset of the shower file (``--ref-weights weight``, beside the layers or at
    the top level) or FILE:KEY."""
    from hepgen.calo.shower_layout import find_layout
    from hepgen.data import io
    from hepgen.data.sources import is_column_name

    if value is None:
        return None
    if not is_column_name(value):
        return io.read_column(value)
    from hepgen.data.calochallenge import find_challenge

    layout, challenge = find_layout(spec), find_challenge(spec)
    if layout is None and challenge is None:
        raise DataError(f"{spec}: not a shower file (layer_0, layer_1, layer_2 and energy, or a CaloChallenge file), "
                        f"so it has no weight dataset '{value.strip()}'")
    path, group = (layout[0], layout[1]) if layout is not None else (str(challenge[0]), challenge[1].strip("/"))
    keys = set(io.available_keys(path))
    for key in ([f"{group}/{value.strip()}"] if group else []) + [value.strip()]:
        if key in keys:
            return io.read_column(f"{path}:{key}")
    raise DataError(f"{path}: no weight dataset '{value.strip()}'{f' in {group}/ or' if group else ''} at the top "
                    f"level (it has {', '.join(sorted(keys))})")


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if not isinstance(v, (list, dict)) or k in ("c2st", "fpd", "kpd", "n_eff")}
