"""hepgen.data.formats.messages: the shared wording of data errors (file, key, column, row named; lists cut)."""

from __future__ import annotations

import numpy as np
import pytest

from hepgen.data.formats.messages import (
    check_finite,
    describe_position,
    missing_file,
    quoted_list,
    require_numeric,
    select_names,
    unknown_name,
)
from hepgen.errors import DataError


def test_quoted_list_is_cut_after_the_limit():
    assert quoted_list([]) == "(none)"
    assert quoted_list(["a", "b"]) == "'a', 'b'"
    names = [f"c{i}" for i in range(25)]
    assert quoted_list(names) == ", ".join(f"'c{i}'" for i in range(20)) + ", ... and 5 more"


def test_unknown_name_suggests_the_nearest_ignoring_case():
    message = str(unknown_name("column", "PT", ["pt", "eta"], "ev.h5"))
    assert "No column 'PT' in 'ev.h5'" in message and "Did you mean 'pt'?" in message
    assert "Did you mean" not in str(unknown_name("key", "zzz", ["pt", "eta"], "ev.h5"))


def test_missing_file_says_whether_the_directory_exists_and_suggests_siblings(tmp_path):
    (tmp_path / "events.h5").write_bytes(b"")
    assert "events.h5" in str(missing_file(tmp_path / "event.h5")) and "does)" in str(missing_file(tmp_path / "x.h5"))
    assert "neither does its directory" in str(missing_file(tmp_path / "nodir" / "x.h5"))


def test_select_names_keeps_the_requested_order_and_refuses_duplicates_unknowns_and_nothing():
    assert select_names(["a", "b", "c"], None, (), "f") == ["a", "b", "c"]
    assert select_names(["a", "b", "c"], ["c", "a"], (), "f") == ["c", "a"]
    assert select_names(["a", "b", "c"], "b", (), "f") == ["b"]
    assert select_names(["a", "b", "c"], None, "b", "f") == ["a", "c"]
    with pytest.raises(DataError, match="selected twice"):
        select_names(["a", "b"], ["a", "a"], (), "f")
    with pytest.raises(DataError, match="No column 'd'"):
        select_names(["a", "b"], None, ["d"], "f")
    with pytest.raises(DataError, match="No columns left"):
        select_names(["a", "b"], None, ["a", "b"], "f")


@pytest.mark.parametrize("index, columns, text", [
    ((), None, "the only value of the event"), ((2,), ["a", "b", "c"], "column 'c'"),
    ((4, 1), ["a", "b"], "entry 4 of column 'b'"), ((1,), None, "column 1"), ((3, 5), None, "feature index (3, 5)")])
def test_describe_position(index, columns, text):
    assert describe_position(index, columns) == text


def test_check_finite_counts_and_names_the_first_bad_value():
    x = np.zeros((10, 2, 3), dtype=np.float32)
    x[6, 1, 2] = np.inf
    x[8, 0, 0] = np.nan
    with pytest.raises(DataError) as refused:
        check_finite(x, "jets.h5", ["px", "py", "pz"], row_offset=100, partial=True)
    message = str(refused.value)
    assert "2 non-finite" in message and "row 106" in message and "entry 1 of column 'pz'" in message
    assert "rows 100-109" in message
    check_finite(np.arange(3), "ints.npy")  # integers are always finite


def test_require_numeric():
    for dtype in (bool, np.int8, np.uint64, np.float16):
        require_numeric(np.dtype(dtype), "f")
    with pytest.raises(DataError, match="column 'name' has the non-numeric type"):
        require_numeric(np.dtype("U3"), "f.csv", "name")
