"""The one parser and checker of named options: ``--option KEY=VALUE``, ``-c config.yaml`` values, API keywords.

Every command that takes options (``unfold``, ``design``, ``data``, ``fit``) and every library function that
takes an options mapping declares a *schema* — ``{name: Option(...)}`` — and passes the user's values through
:func:`parse_options` (command-line text) or :func:`check_options` (Python values). Both convert and check
every value before any work starts, and refuse with a :class:`~hepgen.errors.ConfigError` that names the
option, its owner and (a short excerpt of) the value:

    >>> schema = {"folds": Option(2, low=2), "lr": Option(1e-3, low=0, low_open=True)}
    >>> parse_options(["folds=3"], schema, owner="unfolding method 'omnifold'")
    {'folds': 3, 'lr': 0.001}

The grammar of a value (one for every command):

- integers and floats as Python writes them (``1e-3``, ``inf`` only where the option allows it);
- booleans: ``true/false``, ``yes/no``, ``on/off``, ``1/0`` (any case) — never ``bool("maybe")``;
- sequences (an option whose default is a tuple or list): comma separated, ``64,64``;
- ``none``/``null`` where the default is ``None`` (or ``Option(..., optional=True)``);
- ranges: ``LOW:HIGH`` (:func:`parse_range`), and ``NAME=LOW:HIGH`` (:func:`parse_named_range`).
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hepgen.errors import ConfigError

__all__ = ["Option", "excerpt", "suggest", "parse_pairs", "parse_value", "convert", "parse_options",
           "check_options", "parse_range", "parse_named_range"]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", "~", ""}


def excerpt(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to at most ``limit`` characters: what a message may quote of a user's value."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def suggest(key: str, valid: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the valid name closest to ``key``, or ``''``."""
    near = difflib.get_close_matches(str(key), list(valid), n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


@dataclass(frozen=True)
class Option:
    """One named option: its default, type and the values it accepts.

    ``kind``: int, float, str, bool, or tuple (a sequence of ``item``); inferred from ``default`` when None.
    ``low``/``high``: bounds, inclusive unless ``low_open``/``high_open``. ``choices``: the allowed values.
    ``optional``: ``None`` is accepted (always so when the default is None). ``finite``: refuse inf/nan.
    """

    default: Any = None
    kind: type | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    item: type | None = None
    optional: bool = False
    finite: bool = True
    help: str = ""

    @property
    def type(self) -> type:
        if self.kind is not None:
            return self.kind
        d = self.default
        if isinstance(d, bool):
            return bool
        if isinstance(d, int):
            return int
        if isinstance(d, float):
            return float
        if isinstance(d, (tuple, list)):
            return tuple
        return str

    @property
    def item_type(self) -> type:
        if self.item is not None:
            return self.item
        if isinstance(self.default, (tuple, list)) and self.default:
            return Option(self.default[0]).type
        return str

    def describe(self) -> str:
        """What the option accepts, for messages and ``--help``."""
        names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
        kind = self.type
        if kind is tuple:
            name = "a comma-separated list of " + names.get(self.item_type, "value").split(" ", 1)[-1] + "s"
        else:
            name = names.get(kind, kind.__name__)
        if self.choices:
            name = "one of " + ", ".join(map(str, self.choices))
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            bounds.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        return name + (" " + " and ".join(bounds) if bounds else "")


def as_option(spec: Any) -> Option:
    """An :class:`Option` from a schema entry: an Option, or a plain default value."""
    return spec if isinstance(spec, Option) else Option(spec)


def _fail(key: str, owner: str, value: Any, option: Option, why: str | None = None) -> ConfigError:
    where = f"option {key!r}" + (f" of {owner}" if owner else "")
    return ConfigError(f"{where} must be {why or option.describe()}, got {excerpt(value)}")


def _scalar(key: str, value: Any, kind: type, option: Option, owner: str) -> Any:
    text = value.strip() if isinstance(value, str) else None
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if text is not None and text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise _fail(key, owner, value, option, "true or false")
    if kind is int:
        if isinstance(value, bool):
            raise _fail(key, owner, value, option)
        if isinstance(value, numbers.Integral):  # Python and numpy integers
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if text is not None:
            try:
                return int(text)
            except ValueError:
                try:
                    f = float(text)
                except ValueError:
                    raise _fail(key, owner, value, option) from None
                if f.is_integer():
                    return int(f)
        raise _fail(key, owner, value, option)
    if kind is float:
        if isinstance(value, bool):
            raise _fail(key, owner, value, option)
        try:
            f = float(text if text is not None else value)
        except (TypeError, ValueError):
            raise _fail(key, owner, value, option) from None
        if option.finite and not math.isfinite(f):
            raise _fail(key, owner, value, option, "a finite number")
        return f
    if kind is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise _fail(key, owner, value, option)
    raise ConfigError(f"option {key!r}: unsupported option type {kind!r}")  # a schema error, not the user's


def _bounds(key: str, value: Any, option: Option, owner: str) -> None:
    if option.choices is not None and value not in option.choices:
        raise ConfigError(f"option {key!r}" + (f" of {owner}" if owner else "") +
                          f" must be one of {', '.join(map(str, option.choices))}, got {excerpt(value)}"
                          f"{suggest(str(value), map(str, option.choices))}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = option.low, option.high
        bad = (lo is not None and (value <= lo if option.low_open else value < lo)) or \
              (hi is not None and (value >= hi if option.high_open else value > hi))
        if bad:
            raise _fail(key, owner, value, option)


def convert(key: str, value: Any, spec: Any, owner: str = "") -> Any:
    """``value`` (text from a command line or a Python value) as option ``key`` of ``owner`` accepts it.

    Raises ConfigError naming the option and an excerpt of the value when it does not fit ``spec``."""
    option = as_option(spec)
    nullable = option.optional or option.default is None
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE
                         and (nullable or option.type is not str)):
        if nullable:
            return None
        raise _fail(key, owner, value, option)
    kind = option.type
    if kind is tuple:
        items = [t for t in value.split(",") if t.strip()] if isinstance(value, str) else value
        if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
            raise _fail(key, owner, value, option)
        out = tuple(_scalar(key, v, option.item_type, option, owner) for v in items)
        if not out:
            raise _fail(key, owner, value, option)
        for v in out:
            _bounds(key, v, option, owner)
        return out
    out = _scalar(key, value, kind, option, owner)
    _bounds(key, out, option, owner)
    return out


def parse_value(text: str, default: Any) -> Any:
    """A value whose option has no schema (a model's free hyper-parameter): YAML scalars, with ``a,b,c`` as a
    list where ``default`` is a sequence. Prefer :func:`convert` with an :class:`Option` where one exists."""
    from hepgen.yamlconfig import load_yaml

    if isinstance(default, (tuple, list)) and isinstance(text, str):
        return [load_yaml(t, f"the value {excerpt(t)}") for t in text.split(",") if t.strip()]
    return load_yaml(text, f"the value {excerpt(text)}") if isinstance(text, str) else text


def parse_pairs(items: Sequence[str], flag: str = "--option") -> dict[str, str]:
    """``["KEY=VALUE", ...]`` -> ``{key: "VALUE"}`` (``-`` in keys read as ``_``); a key given twice is refused."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"{flag} {excerpt(item)}: expected KEY=VALUE")
        if key in out and out[key] != value:
            raise ConfigError(f"{flag} {key} is given twice ({excerpt(out[key])} and {excerpt(value)})")
        out[key] = value
    return out


def check_options(values: Mapping[str, Any], schema: Mapping[str, Any], owner: str = "",
                  fill: bool = True) -> dict[str, Any]:
    """Every value of ``values`` converted and checked against ``schema``; unknown names refused (with the
    closest valid one suggested). ``fill``: the result holds every option, defaults for the absent ones."""
    unknown = [k for k in values if k not in schema]
    if unknown:
        key = unknown[0]
        raise ConfigError(f"{owner or 'this command'} has no option {excerpt(key)}{suggest(key, schema)}; its "
                          f"options: {', '.join(schema) or '(none)'}")
    out = {k: as_option(s).default for k, s in schema.items()} if fill else {}
    for key, value in values.items():
        out[key] = convert(key, value, schema[key], owner)
    return out


def parse_options(items: Sequence[str], schema: Mapping[str, Any], owner: str = "", flag: str = "--option",
                  fill: bool = True) -> dict[str, Any]:
    """``--option KEY=VALUE`` items parsed and checked against ``schema`` (see :func:`check_options`)."""
    return check_options(parse_pairs(items, flag), schema, owner, fill)


def parse_range(text: str, what: str, positive: bool = False, allow_equal: bool = False) -> tuple[float, float]:
    """``LOW:HIGH`` as two finite floats with LOW < HIGH (or <= with ``allow_equal``; a single number N is
    then N:N); ``positive``: LOW > 0. ``what`` names the flag or option in the message."""
    low, sep, high = str(text).partition(":")
    try:
        lo = float(low)
        hi = float(high) if sep else (lo if allow_equal else float("nan"))
    except ValueError:
        raise ConfigError(f"{what} {excerpt(text)}: expected LOW:HIGH, e.g. 10:50") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ConfigError(f"{what} {excerpt(text)}: expected LOW:HIGH with finite numbers, e.g. 10:50")
    if lo > hi or (lo == hi and not allow_equal):
        raise ConfigError(f"{what} {excerpt(text)}: LOW must be {'<=' if allow_equal else '<'} HIGH")
    if positive and lo <= 0:
        raise ConfigError(f"{what} {excerpt(text)}: LOW must be > 0")
    return lo, hi


def parse_named_range(text: str, what: str, **kwargs: Any) -> tuple[str, tuple[float, float]]:
    """``NAME=LOW:HIGH`` -> ``(name, (low, high))`` (see :func:`parse_range`)."""
    name, sep, rest = str(text).partition("=")
    if not sep or not name.strip():
        raise ConfigError(f"{what} {excerpt(text)}: expected NAME=LOW:HIGH")
    return name.strip(), parse_range(rest, f"{what} {name.strip()}", **kwargs)
