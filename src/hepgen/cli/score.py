"""``hepgen score``: the log-density or anomaly score of each event of DATA under a trained run.

The model's feature (and context) columns are read by name from DATA (:mod:`hepgen.cli.columns`),
``--batch-size`` events at a time, and written with :class:`hepgen.data.writer.BlockWriter`, so memory
does not grow with the file and the output appears only when complete.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hepgen.cli.columns import OUTPUTS, context_rows, context_source, feature_names, open_by_names
from hepgen.cli.common import (add_block_size, add_data_selection, add_device, add_out, add_quiet, add_seed,
                               add_user_code, add_weights, data_selection, positive, progress_bar, resolve_device,
                               user_code)
from hepgen.errors import DataError
from hepgen.nn.rng import seeded


def add_parser(sub: Any) -> argparse.ArgumentParser:
    score = sub.add_parser("score", help="log-density or anomaly score per event")
    score.add_argument("run", metavar="RUN", help="run directory written by 'hepgen fit'")
    score.add_argument("data", metavar="DATA", help="events to score, path[:key]; the model's feature columns are "
                                                    "read from it by name")
    add_out(score, f"output file: {OUTPUTS}", required=True)
    score.add_argument("--context", help="columns of DATA (comma separated), FILE:KEY, or one row 'v1,v2' for every "
                                         "event (default: the model's context columns from DATA)")
    add_weights(score, "DATA (copied into the output as 'weight', e.g. for 'hepgen roc --weights weight')")
    add_seed(score, "seed of Monte-Carlo scores (a VAE's importance-weighted log p) (default 0)")
    add_device(score)
    add_block_size(score)
    add_quiet(score)
    add_data_selection(score)
    add_user_code(score)
    score.set_defaults(handler=cmd_score)

    return score


def cmd_score(args: argparse.Namespace, extra: list[str]) -> int:
    import torch

    import hepgen
    from hepgen.data.writer import BlockWriter

    positive(args.block_size, "--block-size")
    model = hepgen.load(args.run, device=resolve_device(args.device), **user_code(args))
    if getattr(model, "geometry_", None) is not None:  # a CaloChallenge file, laid out by the run's geometry
        from hepgen.data.calochallenge import ChallengeRows

        source = ChallengeRows(args.data, model.geometry_)
        if args.context is None:
            args.context = args.data  # its incident energies (MeV -> GeV), as sample --context reads them
    elif isinstance(model.event_shape, dict):  # events of several arrays, from one HDF5 group
        from hepgen.data.sources import GroupSource

        source = GroupSource(args.data, model.event_shape)
    else:
        source = open_by_names(args.data, feature_names(model), "features", **data_selection(args))
        if tuple(source.event_shape) != tuple(model.event_shape):
            shape = tuple(source.event_shape)
            source.close()
            raise DataError(f"{args.data}: events of shape {shape}, but the model in {args.run} was trained on events "
                            f"of shape {tuple(model.event_shape)}")
    n = len(source)
    writer = BlockWriter(args.out, n)
    context = model.context_file(args.context) if args.context and hasattr(model, "context_file") else None
    if context is None:
        context = context_source(args.context, model, data=args.data)
    if hasattr(context, "read_rows") and len(context) != n:
        raise DataError(f"the context has {len(context)} rows but {args.data} has {n} events")
    weights = _weight_source(args.weights, args.data, n)
    names = feature_names(model)
    what = ""
    # seeded draws on a fork of torch's RNG: main() called from Python leaves the caller's RNG as it was
    with seeded(args.seed), writer, torch.no_grad(), progress_bar(n, "score", args.quiet) as bar:
        for start in range(0, n, args.block_size):
            stop = min(start + args.block_size, n)
            rows = None if context is None else context_rows(context, start, stop)
            if rows is not None and hasattr(model, "check_sample_context"):  # e.g. big-gan's classes: file and row
                model.check_sample_context(rows, str(args.context or args.data), start if len(rows) > 1 else 0)
            values = source.read_rows(start, stop)
            if hasattr(model, "check_events"):  # the model's own check (pixel-cnn: intensities >= 0): file and row
                model.check_events(values, start, str(args.data))
            result = model.score_outputs(values, rows)
            block = {k: v.detach().cpu().numpy() for k, v in result.items()}
            if weights is not None:
                block["weight"] = weights.read_rows(start, stop).reshape(stop - start)
            if start == 0:
                writer.columns = {k: names for k, v in block.items()
                                  if names and v.ndim == 2 and v.shape[1] == len(names)}
                what = getattr(model, "score_description", None) or (
                    "log_prob = log p(x) in the original units of DATA (preprocessing Jacobian included); "
                    "score = -log_prob" if "log_prob" in block else
                    "score = anomaly score (higher = less like training)")
            writer.write(block)
            bar.update(stop - start)
    for s in (source, context, weights):
        if hasattr(s, "close"):
            s.close()
    if not args.quiet:
        print(f"wrote {', '.join(writer._fields)} for {n} events to {args.out}: {what}", file=sys.stderr)
    return 0


def _weight_source(value: str | None, data: str, n: int) -> Any:
    """``--weights``: a column of DATA or FILE:KEY, one finite number per scored event (a Source), or None."""
    import numpy as np

    from hepgen.data import io
    from hepgen.data.sources import is_column_name

    if value is None:
        return None
    source = io.open_source(data, columns=[value.strip()]) if is_column_name(value) else io.open_source(value)
    if len(source) != n or int(np.prod(source.event_shape)) != 1:
        shape = (len(source), *source.event_shape)
        source.close()
        raise DataError(f"--weights {value}: expected one weight per event of {data} ({n}), got shape {shape}")
    return source
