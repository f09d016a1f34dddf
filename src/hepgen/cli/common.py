"""The one grammar of the ``hepgen`` verbs: the flags they share, each with one meaning everywhere.

=================== ==================================================================================
``-o/--out PATH``   the verb's main output: a run directory (fit), an events file (sample, score, data,
                    unfold), an ONNX graph (export), the metrics as JSON (compare, roc, design)
``--report DIR``    a report folder (figures, metrics.json, index.html), written only after every check
``-q/--quiet``      no progress bar and no messages on stderr (results on stdout stay)
``--seed N``        the seed of everything random the verb does (default 0)
``--device DEV``    auto, cpu, cuda, cuda:N or mps: where a model trains or evaluates (default auto)
``--option K=V``    a named option of the model, method or generator (repeatable), read by
                    :mod:`hepgen.options`; ``fit`` also takes its hyper-parameters as ``--KEY VALUE``
``--weights W``     per-event weights of the verb's DATA: a column of it or FILE:KEY; a verb reading
                    several inputs names them after the input (``--ref-weights``, ``--sim-weights``)
``--context C``     what conditions the model: columns of DATA, FILE:KEY, or one row ``v1,v2`` for all
``--batch-size N``  events per optimisation step of the model a verb trains (never an I/O block)
``--block-size N``  events read, scored or drawn at once (memory scales with it, not with the file)
``--action F.py:S`` the user's own code a run was trained on, given again (also ``--integrand``,
                    ``--matrix-element``): sample, score and export load such a run (:func:`add_user_code`)
=================== ==================================================================================

Old spellings that users may have in scripts (``sample --batch-size``, ``design --lr``) still work and
print a deprecation line on stderr (:func:`add_deprecated`). The ``--columns``/``--exclude``/``--jagged-length``
selection of a DATA argument is :func:`add_data_selection`; progress bars on stderr are :func:`progress_bar`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hepgen.errors import ConfigError
from hepgen.options import parse_value, suggest  # noqa: F401  (the one grammar; re-exported for old imports)

DEVICES = "auto, cpu, cuda, cuda:N or mps"


def add_out(parser: argparse.ArgumentParser, help: str, required: bool = False, metavar: str = "PATH") -> None:
    """``-o/--out``: the verb's main output."""
    parser.add_argument("-o", "--out", required=required, metavar=metavar, help=help)


def add_report(parser: argparse.ArgumentParser, help: str = "write figures, metrics.json and index.html here") -> None:
    """``--report DIR``: a report folder."""
    parser.add_argument("--report", metavar="DIR", help=help)


def add_quiet(parser: argparse.ArgumentParser, help: str = "no progress bar and no messages on stderr") -> None:
    """``-q/--quiet``."""
    parser.add_argument("-q", "--quiet", action="store_true", help=help)


def add_seed(parser: argparse.ArgumentParser, help: str = "seed of everything random (default 0)",
             default: Any = 0) -> None:
    """``--seed N``: an integer seeding everything random the verb does."""
    parser.add_argument("--seed", type=int if default is not None else None, default=default, metavar="N", help=help)


def add_device(parser: argparse.ArgumentParser, default: str | None = "auto",
               help: str = f"where the model runs: {DEVICES} (default auto: CUDA when there is one)") -> None:
    """``--device DEV``."""
    parser.add_argument("--device", default=default, metavar="DEV", help=help)


def resolve_device(name: str | None, flag: str = "--device") -> str:
    """``--device`` as the engine resolves it (``auto``: CUDA, then MPS, then the CPU); a device this machine
    lacks is a ConfigError naming the flag."""
    from hepgen.train.engine import resolve_device as engine_device

    try:
        return str(engine_device((name or "auto").strip().lower()))
    except ConfigError as exc:
        raise ConfigError(f"{flag} {name}: {exc}") from None


def add_options(parser: argparse.ArgumentParser, help: str) -> None:
    """``--option KEY=VALUE``, repeatable (parsed with :func:`hepgen.options.parse_options`)."""
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help=help)


def add_weights(parser: argparse.ArgumentParser, what: str = "DATA", prefix: str = "") -> None:
    """``--[PREFIX-]weights COL|FILE:KEY``: per-event weights of the input ``what``."""
    flag = f"--{prefix}-weights" if prefix else "--weights"
    parser.add_argument(flag, dest=f"{prefix.replace('-', '_')}_weights" if prefix else "weights",
                        metavar="COL|FILE:KEY", help=f"per-event weights of {what}: a column of it, or FILE:KEY")


def add_block_size(parser: argparse.ArgumentParser, default: int = 100_000) -> None:
    """``--block-size N`` (and the old ``--batch-size``, deprecated): events handled at once."""
    parser.add_argument("--block-size", dest="block_size", type=int, default=default, metavar="N",
                        help=f"events handled at once; memory scales with it, not with the file (default {default})")
    add_deprecated(parser, "--batch-size", "--block-size", dest="block_size", type=int)


class _Deprecated(argparse.Action):
    """An old spelling: stores into the new flag's ``dest`` and says so on stderr."""

    def __init__(self, option_strings: list[str], dest: str, new: str = "", **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"hepgen {parser.prog.split()[-1]}: {option_string} is deprecated, use {self.new} (same value)",
              file=sys.stderr)
        setattr(namespace, self.dest, values)


#: the options that give a run its user's own code again (a run never imports code on its own)
USER_CODE = ("integrand", "matrix_element", "action")


def add_user_code(parser: argparse.ArgumentParser) -> None:
    """``--integrand``, ``--matrix-element``, ``--action``: the file a run was trained on, given again to a verb
    that loads the run (its sha256 is checked against the recorded one)."""
    parser.add_argument("--integrand", metavar="FILE.py:NAME", help="a hypercube-flow trained on your own integrand: "
                        "the same file again (its sha256 is checked; a run never imports code on its own)")
    parser.add_argument("--matrix-element", dest="matrix_element", metavar="FILE.py:NAME", help="a phase-space-flow: "
                        "the matrix-element file it was trained with, again (sha256 checked)")
    parser.add_argument("--action", metavar="FILE.py:NAME", help="a lattice-flow trained on your own action S (S "
                        "takes phi (batch, *shape), returns (batch,), differentiable torch): the same file again "
                        "(sha256 checked; a run never imports code on its own)")


def user_code(args: argparse.Namespace) -> dict[str, str]:
    """The user's code given on this command line (:func:`add_user_code`), for :func:`hepgen.load`."""
    return {k: getattr(args, k) for k in USER_CODE if getattr(args, k, None) is not None}


def add_deprecated(parser: argparse.ArgumentParser, old: str, new: str, dest: str, **kwargs: Any) -> None:
    """Keep ``old`` working as ``new`` (hidden from --help), printing a deprecation line when used."""
    parser.add_argument(old, dest=dest, action=_Deprecated, new=new, help=argparse.SUPPRESS,
                        default=argparse.SUPPRESS, **kwargs)


def check_writable(target: str | Path | None, flag: str) -> None:
    """ConfigError naming ``flag`` when ``target`` (a file or folder to create) cannot be written; before any work."""
    from hepgen.files import writable_location

    if target:
        why = writable_location(target)
        if why:
            raise ConfigError(f"{flag} {target}: {why}")


def check_report(target: str | Path | None, flag: str = "--report") -> None:
    """ConfigError naming ``flag`` when ``target`` cannot be a report folder (a file in the way, a place this
    process cannot write); before any work (:func:`hepgen.report.folder.report_problem`)."""
    from hepgen.report.folder import report_problem

    if target:
        why = report_problem(target)
        if why:
            raise ConfigError(f"{flag} {target}: {why}")


def emit_result(text: str, out: str | Path | None) -> None:
    """A verb's result (JSON text): on stdout, and with ``-o FILE`` also into FILE (atomically)."""
    print(text)
    if out:
        from hepgen.files import atomic_write_text

        atomic_write_text(out, text + "\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_data_selection(parser: Any, prefix: str = "", what: str = "DATA") -> None:
    """``--[PREFIX]columns``, ``--[PREFIX]exclude`` and ``--[PREFIX]jagged-length`` for a command reading ``what``.

    ``prefix`` (e.g. ``"ref-"``) tells apart the selections of a command reading two data arguments;
    :func:`data_selection` turns the parsed flags into :func:`hepgen.data.io.open_source` keywords.
    """
    dest = prefix.replace("-", "_")
    parser.add_argument(f"--{prefix}columns", dest=f"{dest}columns", metavar="COLS",
                        help=f"columns/branches of {what} to read, comma separated (default: all)")
    parser.add_argument(f"--{prefix}exclude", dest=f"{dest}exclude", metavar="COLS",
                        help=f"columns/branches of {what} to leave out, comma separated")
    parser.add_argument(f"--{prefix}jagged-length", dest=f"{dest}jagged_length", metavar="N", type=_positive_int,
                        help=f"pad or truncate jagged ROOT branches of {what} to N entries per event "
                             "(with flat branches: columns NAME[0] ... NAME[N-1], padding 0)")


def data_selection(args: Any, prefix: str = "") -> dict[str, Any]:
    """The ``columns``/``exclude``/``jagged_length`` keywords of :func:`hepgen.data.io.open_source` from
    the flags :func:`add_data_selection` added (same ``prefix``); absent flags give the defaults."""
    dest = prefix.replace("-", "_")
    columns = getattr(args, f"{dest}columns", None)
    exclude = getattr(args, f"{dest}exclude", None)
    split = lambda text: [c.strip() for c in text.split(",") if c.strip()]  # noqa: E731
    return {"columns": split(columns) if columns else None, "exclude": split(exclude) if exclude else [],
            "jagged_length": getattr(args, f"{dest}jagged_length", None)}


def progress_bar(total: int, desc: str, quiet: bool = False, unit: str = "events") -> Any:
    """A tqdm bar on stderr, drawn only on a terminal and without ``-q`` (:mod:`hepgen.progress`)."""
    from hepgen.progress import progress_bar as bar

    return bar(total, desc, quiet=quiet, unit=unit, unit_scale=True, leave=False)


def positive(value: int | None, flag: str) -> None:
    """ConfigError unless ``value`` (of option ``flag``) is a positive integer."""
    if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
        raise ConfigError(f"{flag} must be a positive integer, got {value!r}")
