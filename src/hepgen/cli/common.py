"""Helpers every sub-command shares: value parsing, suggestions, data selections, progress bars."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from hepgen.errors import ConfigError
from hepgen.options import parse_value  # noqa: F401 - the one value parser (bounded YAML), kept importable here


def suggest(key: str, valid: Sequence[str]) -> str:
    near = difflib.get_close_matches(key, list(valid), n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


def column_names(value: Any) -> list[str]:
    from hepgen.data.sources import is_column_name

    return [c.strip() for c in value.split(",") if c.strip()] if is_column_name(value) else []


def _positive_int(text: str) -> int:
    import argparse

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
    """A tqdm bar on stderr, drawn only on a terminal and without ``-q`` (a disabled bar otherwise)."""
    import sys

    from tqdm import tqdm

    enabled = not quiet and bool(getattr(sys.stderr, "isatty", lambda: False)())
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr, disable=not enabled,
                dynamic_ncols=True, leave=False)


def positive(value: int | None, flag: str) -> None:
    """ConfigError unless ``value`` (of option ``flag``) is a positive integer."""
    if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
        raise ConfigError(f"{flag} must be a positive integer, got {value!r}")
