"""``hepgen sample``, ``score`` and ``info``: use and describe a trained run.

A fitted model knows the names of its features (``model.columns_``) and context
(``model.context_columns_``); models fitted on unnamed arrays answer to the default names
``x0 .. x{d-1}`` and ``context_0 ..`` that ``sample`` writes. ``score`` reads those columns by
name from DATA (a file may hold more, e.g. the weight column it was trained with), and so does
``sample --context FILE``. Both commands stream: events are produced and appended to the output
(:class:`hepgen.data.writer.BlockWriter`) ``--batch-size`` at a time, so memory does not grow with
``-n`` or the file, and the output appears only when complete.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from hepgen.cli.common import add_data_selection, data_selection, positive, progress_bar
from hepgen.errors import ConfigError, DataError

OUTPUTS = ".h5, .npy, .npz, .csv, .parquet or .root"


def add_sample_parser(sub: Any) -> argparse.ArgumentParser:
    sample = sub.add_parser("sample", help="draw events from a trained model")
    sample.add_argument("run", metavar="RUN", help="run directory written by 'hepgen fit'")
    sample.add_argument("-n", type=int, required=True, help="number of events")
    sample.add_argument("-o", "--out", required=True, help=f"output file: {OUTPUTS}")
    sample.add_argument("--context", help="one context row 'v1,v2,...' for all events, or FILE[:KEY] with one row "
                                          "per event (the model's context columns are taken from it by name)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--batch-size", dest="batch_size", type=int, default=100_000,
                        help="events per block (memory scales with it, not with -n)")
    sample.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sample.add_argument("--mcmc", action="store_true", help="a model trained on a lattice target (phi4-flow): an "
                        "independence Metropolis-Hastings chain of N steps (configs, acceptance, tau_int); .h5/.npz")
    sample.add_argument("--unweighted", action="store_true", help="a model trained on an integrand "
                        "(hypercube-flow): N unweighted events by accept-reject against the max weight; .h5/.npz")
    sample.set_defaults(handler=cmd_sample)

    return sample


def add_score_parser(sub: Any) -> argparse.ArgumentParser:
    score = sub.add_parser("score", help="log-density or anomaly score per event")
    score.add_argument("run", metavar="RUN")
    score.add_argument("data", metavar="DATA", help="events to score, path[:key]; the model's feature columns are "
                                                    "read from it by name")
    score.add_argument("-o", "--out", required=True, help=f"output file: {OUTPUTS}")
    score.add_argument("--context", help="columns of DATA (comma separated), or FILE:KEY (default: the model's "
                                         "context columns from DATA)")
    score.add_argument("--batch-size", dest="batch_size", type=int, default=100_000)
    score.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_data_selection(score)
    score.set_defaults(handler=cmd_score)

    return score


def add_info_parser(sub: Any) -> argparse.ArgumentParser:
    info = sub.add_parser("info", help="describe a run directory")
    info.add_argument("run", metavar="RUN")
    info.set_defaults(handler=cmd_info)

    return info


# -- names the model answers to -------------------------------------------------------------------------
def feature_names(model: Any) -> list[str] | None:
    """The model's feature columns, or ``x0 ..`` for a tabular model fitted on an unnamed array."""
    if model.columns_:
        return list(model.columns_)
    if isinstance(model.event_shape, dict):  # events of several arrays: no columns
        return None
    return [f"x{j}" for j in range(model.event_shape[0])] if len(model.event_shape) == 1 else None


def context_names(model: Any) -> list[str]:
    """The model's context columns, or ``context_0 ..`` when they had no names."""
    if model.context_columns_:
        return list(model.context_columns_)
    return [f"context_{j}" for j in range(model.context)]


def _open_by_names(spec: Any, names: list[str] | None, what: str, **selection: Any) -> Any:
    """A source over ``spec`` reading ``names`` when the file has named columns (DataError naming a missing
    one); an unnamed array is taken whole. An explicit ``columns`` selection wins over ``names``."""
    from hepgen.data import io

    if selection.get("columns") or names is None:
        return io.open_source(spec, **selection)
    source = io.open_source(spec, jagged_length=selection.get("jagged_length"))
    if source.columns is None or source.columns == names:
        return source
    source.close()
    missing = [n for n in names if n not in source.columns]
    if missing and names[0] == "x0":  # an unnamed model: a named file is read whole
        return io.open_source(spec, **selection)
    if missing:
        raise DataError(f"'{spec}' has no column '{missing[0]}' of the model's {what} ({', '.join(names)}); "
                        f"its columns: {', '.join(source.columns)}. Select them with --columns, or pass a file "
                        "with those columns.")
    return io.open_source(spec, columns=names, jagged_length=selection.get("jagged_length"))


def _literal_row(value: str, size: int) -> Any:
    """``"v1,v2"`` as a (1, size) float32 row, or None when ``value`` is not a list of numbers."""
    import numpy as np

    parts = [p.strip() for p in value.split(",") if p.strip()]
    try:
        row = np.array([[float(p) for p in parts]], dtype=np.float64)
    except ValueError:
        return None
    bad = [p for p, v in zip(parts, row[0]) if not math.isfinite(v)]
    if bad:
        raise ConfigError(f"--context {value!r}: the value {bad[0]!r} is not a finite number")
    if row.shape[1] != size:
        raise ConfigError(f"--context {value!r} has {row.shape[1]} value(s); the model's context has {size}")
    return row.astype(np.float32)


def _context_source(value: str | None, model: Any, data: Any = None) -> Any:
    """What conditions ``model``: None, a (1, c) row (a literal), or a Source of one row per event.

    ``value``: a literal row, FILE[:KEY] (its columns named like the model's context are read by name)
    or, with ``data``, columns of DATA. Without ``value`` the model's context columns are read from
    ``data``. Raises ConfigError when a context is given to an unconditional model or is missing.
    """
    from hepgen.data import io
    from hepgen.data.sources import is_column_name

    if not model.context:
        if value is not None:
            raise ConfigError(f"--context given, but the model ({model.cli_name}) was trained without a context")
        return None
    names = context_names(model)
    multi = isinstance(model.event_shape, dict)  # context columns are datasets beside the arrays
    if value is None:
        if data is None:
            raise ConfigError(f"the model is conditional on a context of {model.context} value(s) "
                              f"({', '.join(names)}); give --context v1,v2,... or FILE:KEY")
        if multi:
            from hepgen.data.sources import GroupColumns

            return GroupColumns(data, names)
        return _open_by_names(data, names, "context")
    row = _literal_row(value, model.context)
    if row is not None:
        return row
    if is_column_name(value):
        if data is None:
            raise ConfigError(f"--context {value!r} is neither a row of numbers nor an existing FILE[:KEY]")
        columns = [c.strip() for c in value.split(",") if c.strip()]
        if multi:
            from hepgen.data.sources import GroupColumns

            return GroupColumns(data, columns)
        return io.open_source(data, columns=columns)
    return _open_by_names(value, names, "context")


def _rows(source: Any, start: int, stop: int) -> Any:
    """Rows of a context: a broadcast literal row, or rows ``start:stop`` of a source."""
    return source if not hasattr(source, "read_rows") else source.read_rows(start, stop)


# -- commands ---------------------------------------------------------------------------------------------
def cmd_sample(args: argparse.Namespace, extra: list[str]) -> int:
    import torch

    import hepgen
    from hepgen.data.writer import BlockWriter

    positive(args.n, "-n")
    positive(args.batch_size, "--batch-size")
    if args.mcmc or args.unweighted:
        return _sample_exact(args)
    writer = BlockWriter(args.out, args.n)  # checks the output spec before the model is even loaded
    model = hepgen.load(args.run)
    context = _context_source(args.context, model)
    if hasattr(context, "read_rows") and len(context) != args.n:
        raise DataError(f"--context {args.context} has {len(context)} rows; give one row 'v1,v2' or one per event "
                        f"(-n {args.n})")
    # unnamed models write one plain array (x0 .. beside named context columns: see hepgen.data.writer)
    writer.columns = {"samples": model.columns_, "context": context_names(model)}
    writer.bare = {"samples", "context"}
    torch.manual_seed(args.seed)
    with writer, torch.no_grad(), progress_bar(args.n, "sample", args.quiet) as bar:
        for start in range(0, args.n, args.batch_size):
            stop = min(start + args.batch_size, args.n)
            block: dict[str, Any] = {}
            if context is None and hasattr(model, "sample_weighted"):  # trained on a target: events and weights
                drawn, weights = model.sample_weighted(stop - start)
                block.update(weights)
            elif context is None:
                drawn = model.sample(stop - start)
            else:
                c = _rows(context, start, stop)
                drawn = model.sample(stop - start, context=c)
            if isinstance(drawn, dict):  # events of several arrays: samples/<name>, the training layout
                block.update({f"samples/{k}": v.cpu().numpy() for k, v in drawn.items()})
            else:
                block["samples"] = drawn.cpu().numpy()
            if context is not None:
                block["context"] = c if len(c) == stop - start else c.repeat(stop - start, axis=0)
            writer.write(block)
            bar.update(stop - start)
    if hasattr(context, "close"):
        context.close()
    if not args.quiet:
        print(f"wrote {args.n} events to {args.out}", file=sys.stderr)
    return 0


def _sample_exact(args: argparse.Namespace) -> int:
    """--mcmc / --unweighted: the whole chain or event set in memory, then written with its summary numbers."""
    from pathlib import Path

    import hepgen
    from hepgen.data import io

    flag = "--mcmc" if args.mcmc else "--unweighted"
    if args.mcmc and args.unweighted:
        raise ConfigError("give --mcmc (lattice flows) or --unweighted (integration flows), not both")
    if args.context is not None:
        raise ConfigError(f"{flag} samples a model trained on a target, which takes no --context")
    if Path(args.out.split(":")[0]).suffix.lower() not in (".h5", ".hdf5", ".npz"):
        raise ConfigError(f"{flag} writes arrays and summary numbers: -o must be .h5 or .npz, got {args.out}")
    model = hepgen.load(args.run)
    method = "sample_mcmc" if args.mcmc else "sample_unweighted"
    if not hasattr(model, method):
        kind = "lattice target (phi4-flow)" if args.mcmc else "integrand (hypercube-flow)"
        raise ConfigError(f"{flag} needs a model trained on a {kind}; {args.run} holds a {model.cli_name}")
    result = getattr(model, method)(args.n, seed=args.seed, batch_size=args.batch_size)
    io.write(args.out, result)
    if not args.quiet:
        keys = ("acceptance", "tau_int", "tau_int_action") if args.mcmc else \
            ("efficiency", "max_weight", "overweight_fraction", "integral", "integral_error", "calls")
        print(f"wrote {args.n} {'configurations' if args.mcmc else 'events'} to {args.out}; "
              + ", ".join(f"{k} = {float(result[k]):.4g}" for k in keys), file=sys.stderr)
    return 0


def cmd_score(args: argparse.Namespace, extra: list[str]) -> int:
    import torch

    import hepgen
    from hepgen.data.writer import BlockWriter

    positive(args.batch_size, "--batch-size")
    model = hepgen.load(args.run)
    if isinstance(model.event_shape, dict):  # events of several arrays, from one HDF5 group
        from hepgen.data.sources import GroupSource

        source = GroupSource(args.data, model.event_shape)
    else:
        source = _open_by_names(args.data, feature_names(model), "features", **data_selection(args))
    n = len(source)
    writer = BlockWriter(args.out, n)
    context = _context_source(args.context, model, data=args.data)
    if hasattr(context, "read_rows") and len(context) != n:
        raise DataError(f"the context has {len(context)} rows but {args.data} has {n} events")
    names = feature_names(model)
    what = ""
    with writer, torch.no_grad(), progress_bar(n, "score", args.quiet) as bar:
        for start in range(0, n, args.batch_size):
            stop = min(start + args.batch_size, n)
            result = model.score_outputs(source.read_rows(start, stop), None if context is None
                                         else _rows(context, start, stop))
            block = {k: v.detach().cpu().numpy() for k, v in result.items()}
            if start == 0:
                writer.columns = {k: names for k, v in block.items()
                                  if names and v.ndim == 2 and v.shape[1] == len(names)}
                what = ("log_prob = log p(x) in the original units of DATA (preprocessing Jacobian included); "
                        "score = -log_prob" if "log_prob" in block else
                        "score = anomaly score (higher = less like training)")
            writer.write(block)
            bar.update(stop - start)
    for s in (source, context):
        if hasattr(s, "close"):
            s.close()
    if not args.quiet:
        print(f"wrote {', '.join(writer._fields)} for {n} events to {args.out}: {what}", file=sys.stderr)
    return 0


def cmd_info(args: argparse.Namespace, extra: list[str]) -> int:
    import hepgen
    from hepgen.train.rundir import RunDir

    run = RunDir(args.run)
    config = run.read_config()
    model = hepgen.load(args.run)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"run        {args.run}")
    print(f"model      {config['model']}  ({n_params:,} parameters)")
    print(f"params     {json.dumps(config['params'])}")
    fitted = config.get("fitted") or {}
    if fitted.get("columns"):
        print(f"features   {', '.join(fitted['columns'])}")
    if fitted.get("context_columns"):
        print(f"context    {', '.join(fitted['context_columns'])}")
    print(f"preprocess {', '.join(model.preprocessor.kinds)}")
    for line in describe_training(config):
        print(line)
    history = run.read_metrics()
    if history:
        last = history[-1]
        print(f"epochs     {len(history)}; last: " + ", ".join(f"{k}={v:.6g}" for k, v in last.items()
                                                             if k != "epoch" and v is not None))
        best = run.best_epoch()
        if best is not None:
            print(f"best       monitor={best[0]:.6g} at epoch {best[1]}")
    return 0


def describe_training(config: dict[str, Any]) -> list[str]:
    """Readable lines of config.yaml's ``data`` (inputs, weights, context) and ``train`` (settings) sections."""
    lines = []
    data = config.get("data") or {}
    if isinstance(data, dict) and data:
        lines.append("data")
        for key, value in data.items():
            if value is not None:
                lines.append(f"  {key:<16} {_plain(value)}")
    if isinstance(data, dict):
        lines.append(f"weights    {_plain(data['weights']) if data.get('weights') is not None else 'none (unweighted)'}")
    train = config.get("train") or {}
    if isinstance(train, dict) and train:
        lines.append("training")
        for key, value in train.items():
            if value is not None:
                lines.append(f"  {key:<16} {_plain(value)}")
    return lines


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items() if v is not None) or "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value) or "-"
    return str(value)
