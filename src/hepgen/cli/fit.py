"""``hepgen fit``: train a model on data and write a run directory.

Settings come from the model's hyper-parameters and the engine's training settings, given as flags
or in a YAML config file (flags win). Every value is checked against the type of its default and
the constructor's annotation (``int``, ``float``, ``bool``, ``str``, ``Sequence[int]`` ...) before any
data is read or anything written: a wrong type, NaN/inf, or an out-of-range training setting is a
ConfigError naming the key and where it came from.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hepgen.errors import ConfigError, HepgenError
from hepgen.options import Option, convert, excerpt, parse_pairs, suggest
from hepgen.yamlconfig import read_yaml

#: engine settings a config file or a flag may set (their types are those of Engine.__init__)
TRAIN_KEYS = ("epochs", "batch_size", "lr", "seed", "device", "optimizer", "weight_decay", "scheduler", "clip_grad",
              "patience", "monitor", "monitor_samples", "monitor_every", "val_fraction", "precision", "stream",
              "chunk_size", "memory_limit_mb", "steps_per_epoch")
#: data settings a config file or a flag may set, with their annotations
DATA_KEYS: dict[str, str] = {
    "weights": "str | None", "context": "str | None", "val": "str | None", "val_weights": "str | None",
    "val_context": "str | None", "columns": "Sequence[str] | None", "exclude": "Sequence[str] | None",
    "jagged_length": "int | None",
}
#: constructor arguments the data decide, not the user
SHAPE_KEYS = ("features", "shape", "event_shape", "context")
#: the options that give a model the user's own code (imported from the path given; a run never imports it)
USER_CODE = ("integrand", "matrix_element", "action")


def shape_keys(cls: type) -> tuple[str, ...]:
    """The constructor arguments the data decide: none is ``shape`` for a model trained without data (a lattice
    flow's ``--shape 16,16`` is the user's)."""
    return tuple(k for k in SHAPE_KEYS if not (k == "shape" and getattr(cls, "data_free", False)))
#: (lowest allowed value, whether it is excluded, highest excluded value) of numeric settings
BOUNDS: dict[str, tuple[float, bool, float | None]] = {
    "epochs": (1, False, None), "batch_size": (1, False, None), "lr": (0, True, None),
    "monitor_samples": (1, False, None), "monitor_every": (1, False, None), "chunk_size": (1, False, None),
    "patience": (1, False, None), "clip_grad": (0, True, None), "weight_decay": (0, False, None),
    "memory_limit_mb": (0, True, None),
    "val_fraction": (0, False, 1), "jagged_length": (1, False, None), "steps_per_epoch": (1, False, None),
}
#: values ``stream`` accepts, and what they mean to the engine
STREAM_VALUES = {"auto": "auto", "true": True, "false": False}


def add_parser(sub: Any) -> argparse.ArgumentParser:
    from hepgen.cli.common import add_data_selection, add_options, add_quiet

    fit = sub.add_parser("fit", help="train a model on data", add_help=False, allow_abbrev=False, description=(
        "Train MODEL on DATA and write a run directory (config.yaml, model.pt, metrics.csv, checkpoints/, "
        "plots/). Model hyper-parameters are flags too: 'hepgen fit MODEL --help' lists them."))
    fit.add_argument("-h", "--help", action="store_true", help="show this help; with MODEL, its hyper-parameters")
    fit.add_argument("model", metavar="MODEL", nargs="?", help="model name, e.g. gaussian, nsf, vae, wgan-gp")
    fit.add_argument("data", metavar="DATA", nargs="?",
                     help="training events, path[:key]; ROOT/HDF5 keys may name branches or datasets "
                          "(tree.root:events/pt,eta; file.h5:group/dataset)")
    fit.add_argument("-c", "--config", help="YAML file of model hyper-parameters and training settings")
    fit.add_argument("-o", "--out", metavar="DIR", help="run directory (default: runs/MODEL)")
    fit.add_argument("--epochs", help="passes over the training events (default: 20)")
    fit.add_argument("--batch-size", dest="batch_size", help="global batch size over all DDP ranks (default: 256)")
    fit.add_argument("--lr", help="learning rate (default: 0.001)")
    fit.add_argument("--seed", help="seed of weights, shuffling and the validation split (default: 0)")
    fit.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    fit.add_argument("--precision", help="fp32 (default), bf16 or fp16 (autocast; fp16 on CUDA)")
    fit.add_argument("--optimizer", help="adam (default), adamw or sgd")
    fit.add_argument("--scheduler", help="none, cosine, exponential, step or plateau")
    fit.add_argument("--clip-grad", dest="clip_grad", help="max gradient norm")
    fit.add_argument("--patience", help="stop after this many epochs without improvement")
    fit.add_argument("--steps-per-epoch", dest="steps_per_epoch",
                     help="data-free models (trained from a target they evaluate, no DATA): steps per epoch")
    fit.add_argument("--monitor", help="what picks the best epoch: val_loss (default), a metrics.csv column, "
                                       "or a sample metric (w1, fpd; calo-flow and calo-gan: fpd, the high-level "
                                       "FPD x1e3, or auc, the high-level classifier AUC, of monitor_samples showers "
                                       "against the validation showers); --option monitor_every=K computes it after "
                                       "every K-th epoch only")
    fit.add_argument("--val", help="validation events, path[:key] (default: a seeded 10%% of DATA)")
    fit.add_argument("--val-fraction", dest="val_fraction", help="share of DATA held out for validation")
    fit.add_argument("--weights", help="per-event weights: a column of DATA, or FILE:KEY")
    fit.add_argument("--context", help="conditioning: columns of DATA (comma separated), or FILE:KEY")
    add_data_selection(fit)
    fit.add_argument("--stream", help="auto (default), true or false: read DATA chunk by chunk")
    fit.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    add_options(fit, "a hyper-parameter or training setting, KEY=VALUE (the same as --KEY VALUE), repeatable")
    add_quiet(fit, "no progress bar or epoch lines")
    fit.set_defaults(handler=cmd_fit, parser=fit)

    return fit


# -- values ------------------------------------------------------------------------------------------
def _kinds(annotation: Any, default: Any) -> list[str]:
    """The alternatives of an annotation (``'int | None'`` -> ``['int', 'None']``), else the default's type."""
    if isinstance(annotation, str) and annotation:
        return [part.strip() for part in re.split(r"\|(?![^\[]*\])", annotation)]
    if annotation is not inspect.Parameter.empty and annotation is not None:
        return [getattr(annotation, "__name__", str(annotation))]
    if default is None or default is inspect.Parameter.empty:
        return []
    if isinstance(default, (list, tuple)):
        inner = type(default[0]).__name__ if default else "str"
        return [f"Sequence[{inner}]"]
    return [type(default).__name__]


def _scalar(kind: str, value: Any) -> tuple[bool, Any]:
    """(accepted, value) of ``value`` as a ``kind`` ('int', 'float', 'bool', 'str'): numbers and booleans by the one
    value grammar of :mod:`hepgen.options` (``2.5`` is no integer, ``maybe`` no boolean, NaN/inf refused)."""
    types = {"int": int, "float": float, "bool": bool}
    if kind in types:
        try:
            return True, convert(kind, value, Option(types[kind]()))
        except ConfigError:
            return False, None
    if kind in ("str", "Path"):
        return (True, value) if isinstance(value, str) else (False, None)
    return True, value  # a type the CLI cannot check (Callable): passed on for the model to judge


_NAMES = {"int": "an integer", "float": "a finite number", "bool": "true or false", "str": "a string",
          "Path": "a path"}


def coerce(key: str, value: Any, kinds: Sequence[str], origin: str, from_flag: bool) -> Any:
    """``value`` (a flag's text or a YAML value) as one of ``kinds``, or a ConfigError naming ``key``."""
    kinds = list(kinds)
    if key == "stream":
        text = str(value).lower() if isinstance(value, (str, bool)) else None
        if text not in STREAM_VALUES:
            raise ConfigError(f"bad value for stream ({origin}): expected auto, true or false, got {excerpt(value)}")
        return STREAM_VALUES[text]
    if from_flag and isinstance(value, str) and value.strip().lower() in ("null", "none", "~") and "None" in kinds:
        return None
    if value is None:
        if "None" in kinds or not kinds:
            return None
        raise ConfigError(f"bad value for {key} ({origin}): expected {_expected(kinds)}, got null")
    for kind in kinds:
        if kind == "None":
            continue
        inner = re.fullmatch(r"(?:Sequence|list|tuple)\[(\w+)(?:, \.\.\.)?\]", kind)
        if inner:
            items = value
            if isinstance(items, str):
                items = [t.strip() for t in items.split(",") if t.strip()]
            elif not isinstance(items, (list, tuple)):
                items = [items]
            parsed = [_scalar(inner.group(1), item) for item in items]
            bad = [item for item, (ok, _) in zip(items, parsed) if not ok]
            if not bad:
                return [v for _, v in parsed]
            if len(kinds) == 1 or (len(kinds) == 2 and "None" in kinds):
                raise ConfigError(f"bad value for {key} ({origin}): expected a list of "
                                  f"{_NAMES.get(inner.group(1), inner.group(1)).split(' ', 1)[-1]}s (comma separated on the "
                                  f"command line), got {excerpt(bad[0])} in {excerpt(value)}")
            continue
        if kind == "PreprocessSpec":
            if isinstance(value, str) or (isinstance(value, dict) and all(
                    isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
                return value
            continue
        ok, parsed = _scalar(kind, value)
        if ok:
            return parsed
    raise ConfigError(f"bad value for {key} ({origin}): expected {_expected(kinds)}, got {excerpt(value)}")


def _expected(kinds: Sequence[str]) -> str:
    words = []
    for kind in kinds:
        if kind == "None":
            words.append("null")
        elif kind == "PreprocessSpec":
            words.append("a preprocessing name or a mapping of column to name")
        else:
            words.append(_NAMES.get(kind, kind))
    return " or ".join(words)


def _bounded(key: str, value: Any, origin: str) -> None:
    if key not in BOUNDS or value is None or isinstance(value, (bool, str)):
        return
    low, strict, high = BOUNDS[key]
    if value < low or (strict and value == low) or (high is not None and value >= high):
        allowed = f"> {low:g}" if strict else f">= {low:g}"
        allowed += f" and < {high:g}" if high is not None else ""
        raise ConfigError(f"bad value for {key} ({origin}): must be {allowed}, got {excerpt(value)}")


def _engine_parameters() -> dict[str, inspect.Parameter]:
    from hepgen.train.engine import Engine

    return dict(inspect.signature(Engine.__init__).parameters)


# -- model flags ---------------------------------------------------------------------------------------
def _model_flags(cls: type) -> dict[str, inspect.Parameter]:
    """``--flag-name`` -> constructor parameter, for the hyper-parameters the user chooses."""
    return {f"--{key.replace('_', '-')}": param for key, param in cls.hyperparameters().items()
            if key not in shape_keys(cls)}


BOOLEAN_WORDS = ("true", "false", "yes", "no", "on", "off", "1", "0")


def _parse_model_flags(cls: type, name: str, extra: Sequence[str],
                       stray: list[str] | None = None) -> dict[str, str | bool]:
    """``--key value``/``--key=value`` pairs of ``extra`` by parameter name (values still text; a boolean flag
    alone, or followed by anything but true/false/yes/no/on/off/1/0, means true). A token that is neither a
    flag nor a flag's value goes to ``stray`` when given (DATA written after the flags), else is refused."""
    flags = _model_flags(cls)
    out: dict[str, str | bool] = {}
    tokens = list(extra)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        flag, eq, text = token.partition("=")
        if flag not in flags:
            if stray is not None and not token.startswith("-"):
                stray.append(token)
                i += 1
                continue
            what = "option" if token.startswith("-") else "argument"
            raise ConfigError(f"unknown {what} {token!r} for model {name!r}{suggest(flag, list(flags))}; its "
                              f"hyper-parameters: {', '.join(flags) or '(none)'}")
        param = flags[flag]
        if not eq:
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            if isinstance(param.default, bool):
                if following is not None and following.lower() in BOOLEAN_WORDS:
                    text, i = following, i + 1
                else:
                    text = "true"
            elif following is not None and not following.startswith("--"):
                text, i = following, i + 1
            else:
                raise ConfigError(f"{flag} of model {name!r} needs a value")
        if param.name in out and "Sequence" in str(param.annotation):  # a list flag given again (--cut A --cut B)
            text = f"{out[param.name]},{text}"
        out[param.name] = text
        i += 1
    return out


def _read_config(path: str, model_keys: Sequence[str]) -> dict[str, Any]:
    raw = read_yaml(path, "config file") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must be a mapping of keys to values")
    own_run = "fitted" in raw or "hepgen_version" in raw  # a run's own config.yaml: its records are skipped
    flat: dict[str, Any] = {}
    for section in ("params", "train"):
        if isinstance(raw.get(section), dict):
            flat.update(raw.pop(section))
    if isinstance(raw.get("data"), dict):  # a run's own record of its inputs (a flat 'data' key is DATA)
        raw.pop("data")
    for ignored in ("fitted", "hepgen_version", "command", "user_code"):  # sections of a run's own config.yaml
        raw.pop(ignored, None)
    if own_run:  # what the data decided and the engine noted (features, world_size, ...): records, not settings
        for recorded in ("warm_start", "world_size", *SHAPE_KEYS):
            if recorded not in model_keys:
                flat.pop(recorded, None)
    flat.update(raw)
    valid = list(model_keys) + list(TRAIN_KEYS) + list(DATA_KEYS) + ["model", "data", "out"]
    for key in flat:
        if key not in valid:
            raise ConfigError(f"unknown key {excerpt(key)} in {path}{suggest(str(key), valid)}; valid keys: "
                              f"{', '.join(valid)}")
    return flat


def resolve_settings(cls: type, name: str, args: argparse.Namespace, extra: Sequence[str]) -> dict[str, Any]:
    """Model, training and data settings from the config file and the flags, each checked (see module doc)."""
    hyper = {k: p for k, p in cls.hyperparameters().items() if k not in shape_keys(cls)}
    engine = _engine_parameters()
    raw: dict[str, tuple[Any, str, bool]] = {}  # key -> (value, origin, from a flag)
    if args.config:
        for key, value in _read_config(args.config, list(hyper)).items():
            raw[key] = (value, f"in config file {args.config}", False)
    valid = [*hyper, *TRAIN_KEYS, *DATA_KEYS]
    for key, text in parse_pairs(getattr(args, "option", None) or []).items():
        if key not in valid:
            raise ConfigError(f"--option {excerpt(key)}: {name!r} has no hyper-parameter or training setting of that "
                              f"name{suggest(key, valid)}; valid: {', '.join(valid)}")
        raw[key] = (text, f"--option {key}", True)
    stray: list[str] = []
    for key, text in _parse_model_flags(cls, name, extra, stray).items():
        raw[key] = (text, f"--{key.replace('_', '-')}", True)
    if stray:  # argparse takes DATA only right after MODEL: 'fit MODEL --flag V DATA' leaves it here
        if getattr(args, "data", None) is None and len(stray) == 1:
            args.data = stray[0]
        else:
            token = stray[1] if getattr(args, "data", None) is None else stray[0]
            raise ConfigError(f"unknown argument {token!r} for model {name!r}: fit takes one DATA (given: "
                              f"{args.data or stray[0]!r}); its hyper-parameters: {', '.join(_model_flags(cls)) or '(none)'}")
    for key in list(TRAIN_KEYS) + list(DATA_KEYS):
        value = getattr(args, key, None)
        if value is not None:
            raw[key] = (value, f"--{key.replace('_', '-')}", True)
    settings: dict[str, Any] = {}
    for key, (value, origin, from_flag) in raw.items():
        if key in ("model", "data", "out"):
            if not isinstance(value, str):
                raise ConfigError(f"bad value for {key} ({origin}): expected a string, got {excerpt(value)}")
            settings[key] = value
            continue
        if key in hyper:
            kinds = _kinds(hyper[key].annotation, hyper[key].default)
        elif key in DATA_KEYS:
            kinds = [k.strip() for k in DATA_KEYS[key].split("|")]
        else:
            param = engine.get(key)
            kinds = _kinds(param.annotation, param.default) if param is not None else []
        settings[key] = coerce(key, value, kinds, origin, from_flag)
        _bounded(key, settings[key], origin)
    return settings


# -- the command -----------------------------------------------------------------------------------------
def cmd_fit(args: argparse.Namespace, extra: list[str]) -> int:
    from hepgen.cli.columns import literal_row
    from hepgen.data.io import DataSpec
    from hepgen.models import REGISTRY, model_class

    fit_parser = args.parser
    if args.model is None:
        if args.help:
            fit_parser.print_help()
            print(f"\nmodels: {', '.join(sorted(REGISTRY))}")
            return 0
        raise ConfigError(f"hepgen fit needs a MODEL; available models: {', '.join(sorted(REGISTRY))}")
    cls = model_class(args.model)
    if args.help:
        fit_parser.print_help()
        print(model_help(cls, args.model))
        return 0
    settings = resolve_settings(cls, args.model, args, extra)
    if settings.get("device") is not None:  # a device this machine lacks is refused before DATA is opened
        from hepgen.cli.common import resolve_device

        resolve_device(settings["device"])
    if settings.get("model") not in (None, args.model):
        raise ConfigError(f"config file {args.config} is for model {settings['model']!r}, not {args.model!r}")
    data = args.data or settings.get("data")
    out = Path(args.out or settings.get("out") or f"runs/{args.model}")
    params = {k: settings[k] for k in cls.hyperparameters() if k in settings and k not in shape_keys(cls)}
    train = {k: settings[k] for k in TRAIN_KEYS if k in settings}
    if getattr(cls, "data_free", False):  # trained from a target it evaluates: no DATA
        if isinstance(params.get("integrand"), str) and params.get("target") not in (None, "user"):
            raise ConfigError(f"{args.model}: --integrand {excerpt(params['integrand'])} and --target "
                              f"{excerpt(params['target'])} name two integrands; give one of them")
        if data is not None:
            raise ConfigError(f"{args.model} is trained without input events; drop DATA ({data}) and give "
                              "--steps-per-epoch N")
        if "steps_per_epoch" not in train:
            raise ConfigError(f"{args.model} is trained without data: give --steps-per-epoch N (steps of "
                              "--batch-size events it draws itself per epoch)")
        if args.resume:  # the user's code of a resumed run: the recorded file (sha256), checked before it is imported
            from hepgen.train.rundir import RunDir

            run = RunDir(out)
            if run.config_path.is_file():
                run.check_user_code(run.read_config(), {k: params[k] for k in USER_CODE
                                                        if isinstance(params.get(k), str)})
        model = _build(cls, args.model, lambda: cls(**params))
        model.fit(None, run_dir=out, resume=args.resume, quiet=args.quiet, **train)
        draw_loss_plot(out)
        if not args.quiet:
            print(f"wrote {out}/ (model.pt, config.yaml, metrics.csv, plots/loss.png)", file=sys.stderr)
        return 0
    if data is None:
        raise ConfigError("no training data: give DATA (path[:key]) or 'data:' in the config file")
    train.pop("steps_per_epoch", None)
    selection = {"columns": settings.get("columns"), "exclude": settings.get("exclude") or (),
                 "jagged_length": settings.get("jagged_length")}
    spec = DataSpec.parse(data, **selection)
    val = settings.get("val")
    val = DataSpec.parse(val, **selection) if val is not None else None
    context = settings.get("context")
    if context is not None and literal_row(context, None) is not None:
        raise ConfigError(f"--context {excerpt(context)}: fit needs the context of each training event, columns of "
                          "DATA or FILE:KEY; one row 'v1,v2' for every event is for sample and score")
    from hepgen.data.sources import open_events

    stream = train.get("stream", "auto")
    # DATA is opened once, here: its shape builds the model and the same events train it
    labels = cls.label_columns_for(params) or None  # a tagger's label/nuisance columns: not features
    # a shower model's geometry (a CaloChallenge binning XML) lays out DATA's voxels: read once, recorded by the model
    geometry = params.get("geometry")
    events = open_events(spec, settings.get("weights"), context, stream=None if stream == "auto" else stream,
                         memory_limit_mb=train.get("memory_limit_mb", 1024.0), labels=labels, geometry=geometry)
    if geometry is not None:
        params["geometry"] = events.geometry
        if val is not None:
            val = open_events(val, settings.get("val_weights"), stream=None if stream == "auto" else stream,
                              memory_limit_mb=train.get("memory_limit_mb", 1024.0), geometry=events.geometry)
    model = _build(cls, args.model, lambda: _from_data(cls, spec, events, params))
    model.fit(events, val=val, weights=settings.get("weights"), context=context,
              val_weights=settings.get("val_weights"), val_context=settings.get("val_context"),
              run_dir=out, resume=args.resume, quiet=args.quiet, **train)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one process writes
        record_command(out, args)
    draw_loss_plot(out)
    if not args.quiet:
        print(f"wrote {out}/ (model.pt, config.yaml, metrics.csv, plots/loss.png)", file=sys.stderr)
    return 0


def _from_data(cls: type, spec: Any, events: Any, params: dict[str, Any]) -> Any:
    """``cls.from_data`` on DATA's events; a refusal of their shape (an image model given a table, a pixel-cnn given
    three channels) names DATA, which the family cannot know (the same error type, the family's words after it)."""
    try:
        return cls.from_data(events.event_shape, events.context_size, **params)
    except HepgenError as exc:
        message, shape = str(exc), events.event_shape
        quoted = ({str(shape), str(tuple(shape)), str(list(shape))} if not isinstance(shape, dict) else
                  {f"{k} {tuple(int(s) for s in v)}" for k, v in shape.items()})
        if str(spec) in message or not any(q in message for q in quoted):
            raise
        raise type(exc)(f"{spec}: {message}") from None


def _build(cls: type, name: str, make: Any) -> Any:
    try:
        return make()
    except HepgenError:
        raise
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"bad hyper-parameters for {name}: {exc}") from None


def record_command(run_dir: Path, args: argparse.Namespace) -> None:
    """The ``command:`` section of the run's config.yaml: what only the CLI knows of how it was trained.

    ``line`` (the command as typed, shell-quoted), ``cwd`` (relative paths in it are relative to
    that), ``config_file`` (absolute path, or null) and ``config`` (that file's settings as read, so
    the record survives edits of the file). A ``--resume`` keeps the first command and appends its
    own line to ``resumed``.
    """
    from hepgen.train.rundir import RunDir

    run = RunDir(run_dir)
    argv = getattr(args, "argv", None)
    line = shlex.join(["hepgen", *(sys.argv[1:] if argv is None else argv)])
    previous = (run.read_config().get("command") if run.config_path.is_file() else None) or {}
    if args.resume and isinstance(previous, dict) and previous.get("line"):
        command = {**previous, "resumed": [*previous.get("resumed", []), line]}
    else:
        config = None
        if args.config:
            try:
                config = read_yaml(args.config)
            except ConfigError:  # read once already; changed since
                config = None
        command = {"line": line, "cwd": os.getcwd(),
                   "config_file": str(Path(args.config).absolute()) if args.config else None, "config": config}
    run.write_config(command=command)


# -- help from the docstrings -------------------------------------------------------------------------
_POINTER = re.compile(r"^(?:as|see)\s+:class:`~?([\w.]+)`\.?$")


def _args_text(doc: str | None) -> str:
    """The ``Args:`` section of a Google-style docstring as one line (empty when there is none)."""
    if not doc:
        return ""
    lines = inspect.cleandoc(doc).splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^Args\b[^:]*:\s*$", line):
            body = []
            for entry in lines[i + 1:]:
                if entry.strip() and not entry[:1].isspace():  # the next section
                    break
                body.append(entry.strip())
            return " ".join(body)
    return ""


def _args_entries(doc: str | None, known: set[str]) -> dict[str, str]:
    """``name: text`` entries of the Args section; ``a, b: text`` gives both names that text. Entries
    may share a line (``bins: K. tail_bound: B.``): a new one starts where known names and a colon follow
    the start or the end of a sentence."""
    text = _args_text(doc)
    starts = [m for m in re.finditer(r"(?:^|(?<=[.)]\s))(\w+(?:,\s*\w+)*):\s+", text)
              if all(n.strip() in known for n in m.group(1).split(","))]
    out: dict[str, str] = {}
    for m, after in zip(starts, [*starts[1:], None]):
        description = text[m.end():after.start() if after else len(text)].strip()
        for name in m.group(1).split(","):
            out.setdefault(name.strip(), description)
    return out


def _resolve_class(name: str, home: type) -> type | None:
    import importlib

    if "." in name:
        module, _, attribute = name.rpartition(".")
        try:
            return getattr(importlib.import_module(module), attribute, None)
        except ImportError:
            return None
    return getattr(sys.modules.get(home.__module__), name, None)


def describe_hyperparameters(cls: type, _depth: int = 0) -> dict[str, str]:
    """Each constructor parameter's description from the ``Args:`` sections of ``cls`` and its bases
    (the nearest class first); ``as/see :class:`Other``` entries are followed to ``Other``."""
    known = set(cls.hyperparameters()) | {"event_shape"}
    found: dict[str, str] = {}
    pointers: dict[str, type] = {}
    for klass in cls.__mro__:
        for name, text in _args_entries(klass.__dict__.get("__doc__"), known).items():
            pointer = _POINTER.match(text)
            if pointer:
                target = _resolve_class(pointer.group(1), klass)
                if target is not None and name not in found:
                    pointers.setdefault(name, target)
            elif name not in found:
                found[name] = text
    for name, target in pointers.items():
        if name not in found and _depth < 3 and hasattr(target, "hyperparameters"):
            text = describe_hyperparameters(target, _depth + 1).get(name)
            if text:
                found[name] = text
    return found


def _plain_text(text: str) -> str:
    """Docstring markup for a terminal: ``x`` -> x, :class:`~a.B` -> B, :mod:`a.b` -> a.b."""
    text = re.sub(r":\w+:`~([\w.]+)`", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    text = re.sub(r":\w+:`([^`]+)`", r"\1", text)
    return re.sub(r"``([^`]+)``", r"\1", text)


def model_help(cls: type, name: str) -> str:
    """The hyper-parameter section of ``hepgen fit MODEL --help``: each flag, its description from the
    class docstrings, its type and its default."""
    import textwrap

    described = describe_hyperparameters(cls)
    lines = [f"\nhyper-parameters of {name} (flags, or keys of a -c config file):"]
    for flag, param in _model_flags(cls).items():
        default = None if param.default is inspect.Parameter.empty else param.default
        kinds = _kinds(param.annotation, default)
        if isinstance(default, (list, tuple)):
            shown = ",".join(map(str, default))
        else:
            shown = "null" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
        listed = any(re.match(r"(?:Sequence|list|tuple)\[", k) for k in kinds)
        text = _plain_text(described.get(param.name, "")).rstrip(".")
        text += (" " if text else "") + f"(default: {shown}" + ("; a comma-separated list" if listed else "") + ")"
        head = f"  {flag:<22} "
        lines.append(textwrap.fill(text, width=100, initial_indent=head, subsequent_indent=" " * len(head),
                                   break_on_hyphens=False)
                     if len(head) <= 25 else f"{head}\n" + textwrap.fill(text, 100, initial_indent=" " * 25,
                                                                          subsequent_indent=" " * 25))
    return "\n".join(lines)


def draw_loss_plot(run_dir: Path) -> None:
    """plots/loss.png of a run from its metrics.csv (the CLI's figure; the engine writes no plots)."""
    from hepgen.errors import CheckpointError
    from hepgen.report.plots import plot_loss_curves
    from hepgen.train.rundir import RunDir

    run = RunDir(run_dir)
    history = run.read_metrics()
    if history:
        try:
            plot_loss_curves(history, run.plots / "loss.png")
        except OSError as exc:
            raise CheckpointError(f"the run in {run_dir} is complete, but {run.plots / 'loss.png'} could not be "
                                  f"written: {exc.strerror or exc}") from None
