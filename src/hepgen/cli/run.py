"""``hepgen sample``, ``score`` and ``info``: use and describe a trained run."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hepgen.cli.common import column_names, load_context, write_outputs
from hepgen.errors import ConfigError, DataError


def add_sample_parser(sub: Any) -> argparse.ArgumentParser:
    sample = sub.add_parser("sample", help="draw events from a trained model")
    sample.add_argument("run", metavar="RUN", help="run directory written by 'hepgen fit'")
    sample.add_argument("-n", type=int, required=True, help="number of events")
    sample.add_argument("-o", "--out", required=True, help="output file: .h5, .root, .npy, .npz or .csv")
    sample.add_argument("--context", help="one context row 'v1,v2,...' for all events, or FILE:KEY (one per event)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--batch-size", dest="batch_size", type=int, default=100_000)
    sample.set_defaults(handler=cmd_sample)

    return sample


def add_score_parser(sub: Any) -> argparse.ArgumentParser:
    score = sub.add_parser("score", help="log-density or anomaly score per event")
    score.add_argument("run", metavar="RUN")
    score.add_argument("data", metavar="DATA", help="events to score, path[:key]")
    score.add_argument("-o", "--out", required=True, help="output file: .h5, .root, .npy, .npz or .csv")
    score.add_argument("--context", help="columns of DATA, or FILE:KEY")
    score.add_argument("--batch-size", dest="batch_size", type=int, default=100_000)
    score.set_defaults(handler=cmd_score)

    return score


def add_info_parser(sub: Any) -> argparse.ArgumentParser:
    info = sub.add_parser("info", help="describe a run directory")
    info.add_argument("run", metavar="RUN")
    info.set_defaults(handler=cmd_info)

    return info


def cmd_sample(args: argparse.Namespace, extra: list[str]) -> int:
    import numpy as np
    import torch

    import hepgen

    if args.n < 1:
        raise ConfigError(f"-n must be a positive number of events, got {args.n}")
    model = hepgen.load(args.run)
    context = load_context(args.context, args.n)
    if context is not None and len(context) not in (1, args.n):
        raise DataError(f"--context has {len(context)} rows; give one row or one per event (-n {args.n})")
    torch.manual_seed(args.seed)
    parts = []
    for start in range(0, args.n, args.batch_size):
        stop = min(start + args.batch_size, args.n)
        ctx = None if context is None else (context if len(context) == 1 else context[start:stop])
        parts.append(model.sample(stop - start, context=ctx).cpu().numpy() if ctx is not None
                     else model.sample(stop - start).cpu().numpy())
    samples = np.concatenate(parts)
    write_outputs(args.out, {"samples": samples}, {"samples": model.columns_})
    print(f"wrote {args.n} events to {args.out}", file=sys.stderr)
    return 0


def cmd_score(args: argparse.Namespace, extra: list[str]) -> int:
    import numpy as np
    import torch

    import hepgen
    from hepgen.data import io

    model = hepgen.load(args.run)
    table = io.read(args.data, exclude=column_names(args.context))
    context = None
    if args.context:
        names = column_names(args.context)
        context = io.read(args.data, columns=names).data if names else load_context(args.context, None)
    outputs: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for start in range(0, len(table.data), args.batch_size):
            stop = min(start + args.batch_size, len(table.data))
            ctx = None if context is None else (context if len(context) == 1 else context[start:stop])
            result = model.score_outputs(table.data[start:stop], ctx)
            for k, v in result.items():
                outputs.setdefault(k, []).append(v.detach().cpu().numpy())
    arrays = {k: np.concatenate(v) for k, v in outputs.items()}
    write_outputs(args.out, arrays, {k: model.columns_ for k, v in arrays.items() if v.ndim == 2 and model.columns_
                              and v.shape[1] == len(model.columns_)})
    what = ("log_prob = log p(x) in the original units of DATA (preprocessing Jacobian included); "
            "score = -log_prob" if "log_prob" in arrays else "score = anomaly score (higher = less like training)")
    print(f"wrote {', '.join(arrays)} for {len(table.data)} events to {args.out}: {what}", file=sys.stderr)
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
    if config.get("train"):
        print(f"training   {json.dumps(config['train'])}")
    fitted = config.get("fitted") or {}
    if fitted.get("columns"):
        print(f"features   {', '.join(fitted['columns'])}")
    print(f"preprocess {', '.join(model.preprocessor.kinds)}")
    history = run.read_metrics()
    if history:
        last = history[-1]
        print(f"epochs     {len(history)}; last: " + ", ".join(f"{k}={v:.6g}" for k, v in last.items()
                                                             if k != "epoch" and v is not None))
        best = run.best_epoch()
        if best is not None:
            print(f"best       monitor={best[0]:.6g} at epoch {best[1]}")
    return 0


