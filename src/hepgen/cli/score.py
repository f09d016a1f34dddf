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
from hepgen.cli.common import add_data_selection, data_selection, positive, progress_bar
from hepgen.errors import DataError


def add_parser(sub: Any) -> argparse.ArgumentParser:
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
        source = open_by_names(args.data, feature_names(model), "features", **data_selection(args))
    n = len(source)
    writer = BlockWriter(args.out, n)
    context = context_source(args.context, model, data=args.data)
    if hasattr(context, "read_rows") and len(context) != n:
        raise DataError(f"the context has {len(context)} rows but {args.data} has {n} events")
    names = feature_names(model)
    what = ""
    with writer, torch.no_grad(), progress_bar(n, "score", args.quiet) as bar:
        for start in range(0, n, args.batch_size):
            stop = min(start + args.batch_size, n)
            result = model.score_outputs(source.read_rows(start, stop), None if context is None
                                         else context_rows(context, start, stop))
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
