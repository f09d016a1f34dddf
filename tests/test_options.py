"""hepgen.options: the one KEY=VALUE / LOW:HIGH grammar and its checks."""

import math

import pytest

from hepgen.errors import ConfigError
from hepgen.options import (Option, check_options, convert, excerpt, parse_named_range, parse_options, parse_pairs,
                            parse_range)

SCHEMA = {"folds": Option(2, low=2), "lr": Option(1e-3, low=0, low_open=True), "hidden": (64, 64),
          "device": Option("cpu", choices=("cpu", "cuda", "auto")), "truth_match": True, "samples": Option(None, kind=int),
          "fraction": Option(0.5, low=0, high=1)}


def test_parse_converts_and_fills_defaults():
    out = parse_options(["folds=3", "lr=2e-4", "hidden=32,16", "truth-match=no", "samples=7"], SCHEMA, "m")
    assert out == {"folds": 3, "lr": 2e-4, "hidden": (32, 16), "device": "cpu", "truth_match": False,
                   "samples": 7, "fraction": 0.5}
    assert parse_options([], SCHEMA, fill=False) == {}


@pytest.mark.parametrize("item, words", [
    ("folds=abc", ["folds", "integer", "'abc'"]),
    ("folds=1", ["folds", ">= 2"]),
    ("folds=2.5", ["folds", "integer"]),
    ("lr=-1", ["lr", "> 0"]),
    ("lr=nan", ["lr", "finite"]),
    ("lr=inf", ["lr", "finite"]),
    ("hidden=xyz", ["hidden", "'xyz'"]),
    ("truth_match=maybe", ["truth_match", "true or false"]),
    ("device=gpu", ["device", "one of cpu, cuda, auto"]),
    ("fraction=2", ["fraction", "<= 1"]),
    ("foldz=3", ["no option", "did you mean 'folds'"]),
    ("folds", ["expected KEY=VALUE"]),
    ("samples=x", ["samples"]),
])
def test_bad_values_are_refused_naming_the_option(item, words):
    with pytest.raises(ConfigError) as e:
        parse_options([item], SCHEMA, "unfolding method 'omnifold'")
    for w in words:
        assert w in str(e.value)


def test_messages_quote_only_an_excerpt():
    with pytest.raises(ConfigError) as e:
        convert("columns", "x" * 10_000_000, Option(1))
    assert len(str(e.value)) < 200
    assert len(excerpt(list(range(10**5)))) <= 60


def test_a_key_twice_is_refused_and_api_values_checked():
    with pytest.raises(ConfigError, match="twice"):
        parse_pairs(["a=1", "a=2"])
    assert check_options({"folds": 4.0}, SCHEMA)["folds"] == 4
    with pytest.raises(ConfigError):
        check_options({"folds": True}, SCHEMA)
    assert convert("samples", "none", SCHEMA["samples"]) is None


def test_ranges():
    assert parse_range("10:50", "--energy") == (10.0, 50.0)
    assert parse_range("3", "--energy", allow_equal=True) == (3.0, 3.0)
    assert parse_named_range("gap=0.1:0.5", "--param") == ("gap", (0.1, 0.5))
    for bad in ("50:10", "a:b", "nan:1", "1:inf", "3", "5:5"):
        with pytest.raises(ConfigError, match="--energy"):
            parse_range(bad, "--energy")
    with pytest.raises(ConfigError, match="> 0"):
        parse_range("0:1", "--energy", positive=True)
    with pytest.raises(ConfigError, match="NAME=LOW:HIGH"):
        parse_named_range("0.1:0.5", "--param")
    assert math.isfinite(parse_range("-1e3:1e3", "x")[0])


def test_numpy_integers_are_integers():
    """An API caller's numpy integer (``bins=np.int64(10)``, a value from an array) is an integer option."""
    import numpy as np

    from hepgen.options import Option, convert

    assert convert("bins", np.int64(10), Option(20, low=2)) == 10 and type(convert("n", np.int32(3), Option(1))) is int
    with pytest.raises(ConfigError, match="option 'bins'"):
        convert("bins", np.int64(1), Option(20, low=2))
