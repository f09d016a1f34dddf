"""``hepgen fit``: train a model on data and write a run directory."""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from hepgen.cli.common import column_names, context_size, parse_value, suggest
from hepgen.errors import ConfigError

#: engine settings a config file or a flag may set, with their types
TRAIN_KEYS: dict[str, type] = {
    "epochs": int, "batch_size": int, "lr": float, "seed": int, "device": str, "optimizer": str,
    "weight_decay": float, "scheduler": str, "clip_grad": float, "patience": int, "monitor": str,
    "monitor_samples": int, "val_fraction": float, "precision": str, "stream": str, "chunk_size": int,
    "memory_limit_mb": float,
}
#: data settings a config file or a flag may set
DATA_KEYS = ("weights", "context", "val", "val_weights", "val_context")
#: constructor arguments the data decide, not the user
SHAPE_KEYS = ("features", "shape", "event_shape", "context")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    fit = sub.add_parser("fit", help="train a model on data", add_help=False, description=(
        "Train MODEL on DATA and write a run directory (config.yaml, model.pt, metrics.csv, checkpoints/, "
        "plots/). Model hyper-parameters are flags too: 'hepgen fit MODEL --help' lists them."))
    fit.add_argument("-h", "--help", action="store_true", help="show this help; with MODEL, its hyper-parameters")
    fit.add_argument("model", metavar="MODEL", nargs="?", help="model name, e.g. gaussian, nsf, vae, wgan-gp")
    fit.add_argument("data", metavar="DATA", nargs="?", help="training events, path[:key]")
    fit.add_argument("-c", "--config", help="YAML file of model hyper-parameters and training settings")
    fit.add_argument("-o", "--out", help="run directory (default: runs/MODEL)")
    fit.add_argument("--epochs", type=int)
    fit.add_argument("--batch-size", dest="batch_size", type=int, help="global batch size (over all DDP ranks)")
    fit.add_argument("--lr", type=float, help="learning rate")
    fit.add_argument("--seed", type=int)
    fit.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    fit.add_argument("--precision", help="fp32 (default), bf16 or fp16 (autocast; fp16 on CUDA)")
    fit.add_argument("--optimizer", help="adam (default), adamw or sgd")
    fit.add_argument("--scheduler", help="none, cosine, exponential, step or plateau")
    fit.add_argument("--clip-grad", dest="clip_grad", type=float, help="max gradient norm")
    fit.add_argument("--patience", type=int, help="stop after this many epochs without improvement")
    fit.add_argument("--monitor", help="what picks the best epoch: val_loss (default), a metrics.csv column, "
                                       "or a sample metric (w1, fpd)")
    fit.add_argument("--val", help="validation events, path[:key] (default: a seeded 10%% of DATA)")
    fit.add_argument("--val-fraction", dest="val_fraction", type=float)
    fit.add_argument("--weights", help="per-event weights: a column of DATA, or FILE:KEY")
    fit.add_argument("--context", help="conditioning: columns of DATA (comma separated), or FILE:KEY")
    fit.add_argument("--stream", help="auto (default), true or false: read DATA chunk by chunk")
    fit.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    fit.add_argument("-q", "--quiet", action="store_true", help="no progress bar or epoch lines")
    fit.set_defaults(handler=cmd_fit, parser=fit)

    return fit


def _model_parser(cls: type, name: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"hepgen fit {name} DATA", add_help=False, allow_abbrev=False)
    for key, param in cls.hyperparameters().items():
        if key in SHAPE_KEYS:
            continue
        default = None if param.default is inspect.Parameter.empty else param.default
        p.add_argument(f"--{key.replace('_', '-')}", dest=key, default=None,
                       help=f"default: {default!r}" + (" (list: comma separated)" if isinstance(default, (list, tuple))
                                                      else ""))
    return p


def _read_config(path: str, model_keys: Sequence[str]) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must be a mapping of keys to values")
    flat: dict[str, Any] = {}
    for section in ("params", "train"):
        if isinstance(raw.get(section), dict):
            flat.update(raw.pop(section))
    raw.pop("fitted", None)
    raw.pop("hepgen_version", None)
    flat.update(raw)
    valid = list(model_keys) + list(TRAIN_KEYS) + list(DATA_KEYS) + ["model", "data", "out"]
    for key in flat:
        if key not in valid:
            raise ConfigError(f"unknown key {key!r} in {path}{suggest(key, valid)}; valid keys: {', '.join(valid)}")
    return flat


def cmd_fit(args: argparse.Namespace, extra: list[str]) -> int:
    from hepgen.data import io
    from hepgen.models import REGISTRY, model_class

    fit_parser = args.parser
    if args.model is None:
        if args.help:
            fit_parser.print_help()
            print(f"\nmodels: {', '.join(sorted(REGISTRY))}")
            return 0
        raise ConfigError(f"hepgen fit needs a MODEL; available models: {', '.join(sorted(REGISTRY))}")
    cls = model_class(args.model)
    mparser = _model_parser(cls, args.model)
    model_keys = [k for k in cls.hyperparameters() if k not in SHAPE_KEYS]
    if args.help:
        fit_parser.print_help()
        print(f"\nhyper-parameters of {args.model}:")
        for action in mparser._actions:
            print(f"  {action.option_strings[0]:<24} {action.help}")
        return 0
    margs, unknown = mparser.parse_known_args(extra)
    if unknown:
        flags = [a.option_strings[0] for a in mparser._actions]
        raise ConfigError(f"unknown option {unknown[0]!r} for model {args.model!r}"
                          f"{suggest(unknown[0].split('=')[0], flags)}; its hyper-parameters: {', '.join(flags)}")
    settings = _read_config(args.config, model_keys) if args.config else {}
    if settings.get("model") not in (None, args.model):
        raise ConfigError(f"config file {args.config} is for model {settings['model']!r}, not {args.model!r}")
    for key, value in vars(margs).items():
        if value is not None:
            settings[key] = parse_value(value, cls.hyperparameters()[key].default)
    for key in list(TRAIN_KEYS) + list(DATA_KEYS):
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    data = args.data or settings.get("data")
    if data is None:
        raise ConfigError("no training data: give DATA (path[:key]) or 'data:' in the config file")
    out = Path(args.out or settings.get("out") or f"runs/{args.model}")
    params = {k: settings[k] for k in model_keys if k in settings}
    train = {k: TRAIN_KEYS[k](settings[k]) if k != "stream" else settings[k] for k in TRAIN_KEYS if k in settings}
    if "stream" in train:
        train["stream"] = {"auto": "auto", "true": True, "false": False}.get(str(train["stream"]).lower(), "auto")
    context = settings.get("context")
    source = io.open_source(data, exclude=column_names(settings.get("weights")) + column_names(context))
    event_shape, n_context = tuple(source.event_shape), context_size(context, data)
    source.close()
    try:
        model = cls.from_data(event_shape, n_context, **params)
    except TypeError as exc:
        raise ConfigError(f"bad hyper-parameters for {args.model}: {exc}") from None
    model.fit(data, val=settings.get("val"), weights=settings.get("weights"), context=context,
              val_weights=settings.get("val_weights"), val_context=settings.get("val_context"),
              run_dir=out, resume=args.resume, quiet=args.quiet, **train)
    draw_loss_plot(out)
    if not args.quiet:
        print(f"wrote {out}/ (model.pt, config.yaml, metrics.csv, plots/loss.png)", file=sys.stderr)
    return 0




def draw_loss_plot(run_dir: Path) -> None:
    """plots/loss.png of a run from its metrics.csv (the CLI's figure; the engine writes no plots)."""
    from hepgen.report.plots import plot_loss_curves
    from hepgen.train.rundir import RunDir

    run = RunDir(run_dir)
    history = run.read_metrics()
    if history:
        plot_loss_curves(history, run.plots / "loss.png")
