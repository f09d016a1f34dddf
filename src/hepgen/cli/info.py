"""``hepgen info``: describe a run directory (model, features, preprocessing, training record, last epoch)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from hepgen.cli.common import add_quiet


def add_parser(sub: Any) -> argparse.ArgumentParser:
    info = sub.add_parser("info", help="describe a run directory")
    info.add_argument("run", metavar="RUN", help="run directory written by 'hepgen fit', or pretrained:NAME (a model "
                      "shipped with hepgen: how it was trained is shown)")
    add_quiet(info, "print nothing: only check that RUN loads (exit 0) or say why not (exit 2)")
    info.set_defaults(handler=cmd_info)

    return info


def cmd_info(args: argparse.Namespace, extra: list[str]) -> int:
    import hepgen
    from hepgen.train.rundir import RunDir

    from hepgen.models import resolve_run
    from hepgen.pretrained import describe, is_pretrained

    run = RunDir(resolve_run(args.run))
    config = run.read_config()
    code = config.get("user_code")
    # a run trained on the user's own code is described from its files: info never imports that code
    model = None if isinstance(code, dict) else hepgen.load(args.run)
    if args.quiet:
        return 0
    print(f"run        {args.run}" + (f"  (shipped with hepgen: {run.path})" if is_pretrained(args.run) else ""))
    if is_pretrained(args.run):
        entry = describe(args.run)
        print(f"about      {entry.get('description', '')}")
        for key, value in (entry.get("training") or {}).items():
            print(f"  {key:<16} {_plain(value)}")
        quality = dict(entry.get("quality") or {})
        if quality:  # what the shipped model measured, and the command that measures it again
            command = quality.pop("command", None)
            print(f"recorded   {_plain({k: f'{v:.4g}' if isinstance(v, float) else v for k, v in quality.items()})}")
            if command:
                print(f"  {'reproduce':<16} {command}")
    if model is None:
        where = f"{code.get('path')}:{code.get('name')}" if code.get("path") else str(code.get("name"))
        print(f"model      {config['model']}  (not loaded: it needs the user's {str(code.get('option')).replace('_', ' ')})")
        print(f"user code  {where}" + (f"  sha256 {code['sha256']}" if code.get("sha256") else ""))
    else:
        print(f"model      {config['model']}  ({sum(p.numel() for p in model.parameters()):,} parameters)")
    print(f"params     {json.dumps(_shown_params(config['params']))}")
    fitted = config.get("fitted") or {}
    if fitted.get("columns"):
        print(f"features   {', '.join(fitted['columns'])}")
    if fitted.get("context_columns"):
        print(f"context    {', '.join(fitted['context_columns'])}")
    if model is not None:
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


def _shown_params(params: Any) -> Any:
    """The hyper-parameters for one line: a recorded CaloChallenge geometry (its layers' edges) as its one-line
    summary, and the layer shapes it decides as their number (config.yaml keeps the whole record)."""
    from hepgen.data.calochallenge import ChallengeGeometry
    from hepgen.errors import DataError

    if not isinstance(params, dict) or not isinstance(params.get("geometry"), dict):
        return params
    try:
        geometry = ChallengeGeometry.from_dict(params["geometry"]).summary()
    except DataError:  # not a geometry record hepgen reads: shown as recorded
        return params
    shown = {**params, "geometry": geometry}
    if isinstance(params.get("shapes"), dict):
        shown["shapes"] = f"{len(params['shapes'])} layers, from the geometry"
    return shown


def describe_training(config: dict[str, Any]) -> list[str]:
    """Readable lines of config.yaml's ``data`` (inputs, weights, context) and ``train`` (settings) sections."""
    lines = []
    for section, title in (("data", "data"), ("train", "training")):
        values = config.get(section) or {}
        if isinstance(values, dict) and values:
            lines.append(title)
            lines += [f"  {key:<16} {_plain(value)}" for key, value in values.items() if value is not None]
        if section == "data" and isinstance(values, dict):
            weights = values.get("weights")
            lines.append(f"weights    {_plain(weights) if weights is not None else 'none (unweighted)'}")
    return lines


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items() if v is not None) or "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value) or "-"
    return str(value)
