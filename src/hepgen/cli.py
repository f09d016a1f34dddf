"""The ``hepgen`` command: argument parsing and error-to-exit-code mapping over the Python API.

Every sub-command is a few lines of API calls; errors caused by the user's input (HepgenError)
print one paragraph on stderr and exit with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from hepgen.errors import ConfigError, DataError, HepgenError

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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hepgen``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        if extra and args.command != "fit":
            parser.error(f"unrecognised arguments: {' '.join(extra)}")
        return int(args.handler(args, extra) or 0)
    except HepgenError as exc:
        print(f"hepgen: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hepgen: interrupted", file=sys.stderr)
        return 130


# -- parser ------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hepgen", description="Generative models for particle physics: fit, sample, score and compare.",
        epilog="DATA arguments are path[:key] (uproot convention): events.h5:jets/features, tree.root:Events, "
               "x.npy. Run 'hepgen COMMAND --help' for each command.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

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
    fit.set_defaults(handler=cmd_fit)

    sample = sub.add_parser("sample", help="draw events from a trained model")
    sample.add_argument("run", metavar="RUN", help="run directory written by 'hepgen fit'")
    sample.add_argument("-n", type=int, required=True, help="number of events")
    sample.add_argument("-o", "--out", required=True, help="output file: .h5, .root, .npy, .npz or .csv")
    sample.add_argument("--context", help="one context row 'v1,v2,...' for all events, or FILE:KEY (one per event)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--batch-size", dest="batch_size", type=int, default=100_000)
    sample.set_defaults(handler=cmd_sample)

    score = sub.add_parser("score", help="log-density or anomaly score per event")
    score.add_argument("run", metavar="RUN")
    score.add_argument("data", metavar="DATA", help="events to score, path[:key]")
    score.add_argument("-o", "--out", required=True, help="output file: .h5, .root, .npy, .npz or .csv")
    score.add_argument("--context", help="columns of DATA, or FILE:KEY")
    score.add_argument("--batch-size", dest="batch_size", type=int, default=100_000)
    score.set_defaults(handler=cmd_score)

    info = sub.add_parser("info", help="describe a run directory")
    info.add_argument("run", metavar="RUN")
    info.set_defaults(handler=cmd_info)

    data = sub.add_parser("data", help="generate a built-in data set",
                          description="Generators: toys, jets, calo, phi4, smear. Options: --option key=value.")
    data.add_argument("name", metavar="NAME")
    data.add_argument("-n", type=int, required=True, help="number of events")
    data.add_argument("-o", "--out", required=True, help="output file (.h5 recommended)")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                      help="generator option, repeatable (e.g. --option name=moons)")
    data.set_defaults(handler=cmd_data)

    compare = sub.add_parser("compare", help="compare two samples: metrics and an HTML report")
    compare.add_argument("ref", metavar="REF", help="reference events, path[:key]")
    compare.add_argument("cand", metavar="CAND", help="candidate (e.g. generated) events, path[:key]")
    compare.add_argument("--report", metavar="DIR", help="write metrics.json, plots and index.html here")
    compare.add_argument("--ref-weights", dest="ref_weights", help="FILE:KEY")
    compare.add_argument("--cand-weights", dest="cand_weights", help="FILE:KEY")
    compare.add_argument("--seed", type=int, default=0)
    compare.set_defaults(handler=cmd_compare)

    demo = sub.add_parser("demo", help="the main end-to-end job on built-in data (fit, sample, compare, report)")
    demo.add_argument("--out", default="demo-out")
    demo.add_argument("--epochs", type=int, default=None)
    demo.add_argument("-q", "--quiet", action="store_true")
    demo.set_defaults(handler=cmd_demo)
    return parser


# -- fit -------------------------------------------------------------------------------------------------
def _parse_value(text: str, default: Any) -> Any:
    """A flag or config value: YAML scalars, with 'a,b,c' as a list where the default is a sequence."""
    if isinstance(default, (tuple, list)) and isinstance(text, str):
        return [yaml.safe_load(t) for t in text.split(",") if t.strip()]
    return yaml.safe_load(text) if isinstance(text, str) else text


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


def _suggest(key: str, valid: Sequence[str]) -> str:
    near = difflib.get_close_matches(key, list(valid), n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


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
            raise ConfigError(f"unknown key {key!r} in {path}{_suggest(key, valid)}; valid keys: {', '.join(valid)}")
    return flat


def cmd_fit(args: argparse.Namespace, extra: list[str]) -> int:
    from hepgen.data import io
    from hepgen.models import REGISTRY, model_class

    fit_parser = build_parser()._subparsers._group_actions[0].choices["fit"]
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
                          f"{_suggest(unknown[0].split('=')[0], flags)}; its hyper-parameters: {', '.join(flags)}")
    settings = _read_config(args.config, model_keys) if args.config else {}
    if settings.get("model") not in (None, args.model):
        raise ConfigError(f"config file {args.config} is for model {settings['model']!r}, not {args.model!r}")
    for key, value in vars(margs).items():
        if value is not None:
            settings[key] = _parse_value(value, cls.hyperparameters()[key].default)
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
    source = io.open_source(data, exclude=_column_names(settings.get("weights")) + _column_names(context))
    event_shape, n_context = tuple(source.event_shape), _context_size(context, data)
    source.close()
    try:
        model = cls.from_data(event_shape, n_context, **params)
    except TypeError as exc:
        raise ConfigError(f"bad hyper-parameters for {args.model}: {exc}") from None
    out.mkdir(parents=True, exist_ok=True)
    from hepgen.train.checkpoint import atomic_write_text

    atomic_write_text(out / "config.yaml", yaml.safe_dump(
        {"model": cls.cli_name, "params": model.get_config(), "train": {**train, "data": str(data)}},
        sort_keys=False))
    model.fit(data, val=settings.get("val"), weights=settings.get("weights"), context=context,
              val_weights=settings.get("val_weights"), val_context=settings.get("val_context"),
              run_dir=out, resume=args.resume, quiet=args.quiet, **train)
    if not args.quiet:
        print(f"wrote {out}/ (model.pt, config.yaml, metrics.csv, plots/loss.png)", file=sys.stderr)
    return 0


def _column_names(value: Any) -> list[str]:
    from hepgen.data.sources import is_column_name

    return [c.strip() for c in value.split(",") if c.strip()] if is_column_name(value) else []


def _context_size(context: Any, data: str) -> int:
    from hepgen.data import io

    if context is None:
        return 0
    names = _column_names(context)
    if names:
        return len(names)
    table = io.read(context)
    return 1 if table.data.ndim == 1 else int(table.data.shape[1])


# -- sample / score / info ------------------------------------------------------------------------------
def _load_context(value: str | None, n: int | None) -> Any:
    if value is None:
        return None
    import numpy as np

    from hepgen.data import io

    if ":" in value or Path(value).exists():
        c = io.read(value).data
        return c[:, None] if c.ndim == 1 else c
    try:
        return np.array([[float(v) for v in value.split(",")]], dtype=np.float32)
    except ValueError:
        raise ConfigError(f"--context {value!r} is neither FILE:KEY nor a comma-separated row of numbers") from None


def cmd_sample(args: argparse.Namespace, extra: list[str]) -> int:
    import numpy as np
    import torch

    import hepgen

    if args.n < 1:
        raise ConfigError(f"-n must be a positive number of events, got {args.n}")
    model = hepgen.load(args.run)
    context = _load_context(args.context, args.n)
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
    _write(args.out, {"samples": samples}, {"samples": model.columns_})
    print(f"wrote {args.n} events to {args.out}", file=sys.stderr)
    return 0


def _write(out: str, arrays: dict[str, Any], columns: dict[str, list[str]] | None = None) -> None:
    """Write named arrays; a 2-D array with column names becomes named columns (``key/column`` in HDF5)."""
    from hepgen.data import io

    columns = {k: v for k, v in (columns or {}).items() if k in arrays and v}
    if len(arrays) == 1:
        (key, array), = arrays.items()
        io.write(out, array, columns=columns.get(key)) if key in columns else io.write(out, {key: array})
        return
    suffix = Path(out.split(":")[0]).suffix.lower()
    if suffix in (".csv", ".parquet", ".pq"):  # one flat table: a 2-D array becomes one column per feature
        flat = {}
        for key, array in arrays.items():
            if getattr(array, "ndim", 1) == 2:
                names = columns.get(key) or [str(j) for j in range(array.shape[1])]
                flat.update({f"{key}_{c}": array[:, j] for j, c in enumerate(names)})
            else:
                flat[key] = array
        arrays = flat
    elif suffix in (".h5", ".hdf5", ".hdf"):
        flat: dict[str, Any] = {}
        for key, array in arrays.items():
            if key in columns and getattr(array, "ndim", 0) == 2 and array.shape[1] == len(columns[key]):
                flat.update({f"{key}/{c}": array[:, j] for j, c in enumerate(columns[key])})
            else:
                flat[key] = array
        arrays = flat
    io.write(out, arrays)


def cmd_score(args: argparse.Namespace, extra: list[str]) -> int:
    import numpy as np
    import torch

    import hepgen
    from hepgen.data import io

    model = hepgen.load(args.run)
    table = io.read(args.data, exclude=_column_names(args.context))
    context = None
    if args.context:
        names = _column_names(args.context)
        context = io.read(args.data, columns=names).data if names else _load_context(args.context, None)
    outputs: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for start in range(0, len(table.data), args.batch_size):
            stop = min(start + args.batch_size, len(table.data))
            ctx = None if context is None else (context if len(context) == 1 else context[start:stop])
            result = model.score_outputs(table.data[start:stop], ctx)
            for k, v in result.items():
                outputs.setdefault(k, []).append(v.detach().cpu().numpy())
    arrays = {k: np.concatenate(v) for k, v in outputs.items()}
    _write(args.out, arrays, {k: model.columns_ for k, v in arrays.items() if v.ndim == 2 and model.columns_
                              and v.shape[1] == len(model.columns_)})
    what = ("log_prob = log p(x) in the original units of DATA (preprocessing Jacobian included); "
            "score = -log_prob" if "log_prob" in arrays else "score = anomaly score (higher = less like training)")
    print(f"wrote {', '.join(arrays)} for {len(table.data)} events to {args.out}: {what}", file=sys.stderr)
    return 0


def cmd_info(args: argparse.Namespace, extra: list[str]) -> int:
    import hepgen
    from hepgen.train.checkpoint import read_config

    config = read_config(args.run)
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
    metrics = Path(args.run) / "metrics.csv"
    if metrics.is_file():
        lines = metrics.read_text().strip().splitlines()
        header = lines[0].split(",")
        last = dict(zip(header, lines[-1].split(",")))
        print(f"epochs     {len(lines) - 1}; last: " + ", ".join(f"{k}={v}" for k, v in last.items() if k != "epoch"))
        if "monitor" in header:
            values = [(float(r.split(",")[header.index("monitor")]), r.split(",")[0]) for r in lines[1:]
                      if r.split(",")[header.index("monitor")]]
            if values:
                best = min(values)
                print(f"best       monitor={best[0]:.6g} at epoch {best[1]}")
    return 0


# -- data / compare / demo ----------------------------------------------------------------------------
def cmd_data(args: argparse.Namespace, extra: list[str]) -> int:
    import numpy as np

    from hepgen.data.generators import get_generator

    generator = get_generator(args.name)
    options: dict[str, Any] = {}
    valid = getattr(generator, "OPTIONS", {})
    for item in args.option:
        if "=" not in item:
            raise ConfigError(f"--option {item!r} must be KEY=VALUE")
        key, value = item.split("=", 1)
        if key not in valid:
            raise ConfigError(f"unknown option {key!r} for generator {args.name!r}{_suggest(key, list(valid))}; "
                              f"valid: {', '.join(valid)}")
        options[key] = valid[key][0](yaml.safe_load(value)) if valid[key][0] is not bool else bool(
            yaml.safe_load(value))
    if args.n < 1:
        raise ConfigError(f"-n must be a positive number of events, got {args.n}")
    arrays = generator.generate(args.n, seed=args.seed, **options)
    names = generator.columns(**options) if hasattr(generator, "columns") else {}
    arrays = {k: v for k, v in arrays.items() if getattr(v, "ndim", 0) > 0 or k not in names}
    _write(args.out, arrays, names)
    summary = ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items() if getattr(v, "ndim", 0))
    scalars = ", ".join(f"{k} = {float(v):.4g}" for k, v in arrays.items()
                        if getattr(v, "ndim", 1) == 0 and np.issubdtype(np.asarray(v).dtype, np.number))
    print(f"wrote {args.out}: {summary}" + (f"; {scalars}" if scalars else ""), file=sys.stderr)
    return 0


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


def cmd_demo(args: argparse.Namespace, extra: list[str]) -> int:
    from hepgen.demo import run_demo

    run_demo(Path(args.out), epochs=args.epochs, quiet=args.quiet)
    return 0
