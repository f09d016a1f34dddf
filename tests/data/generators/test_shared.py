"""What every generator shares: option checking and the split of a sample into near-equal chunks (the
progress bars are tested through ``hepgen data`` in test_progress.py, the workers in tests/cli/test_data.py)."""

import pytest

from hepgen.data.generators.shared import check_options, split_counts
from hepgen.errors import ConfigError


def test_check_options_and_split_counts():
    spec = {"a": (int, 1, "a"), "b": (float, 0.5, "b"), "c": (bool, False, "c")}
    assert check_options({"c": "true", "a": "4"}, spec, "t") == {"a": 4, "b": 0.5, "c": True}
    with pytest.raises(ConfigError, match="'a'"):
        check_options({"a": "1.5"}, spec, "t")
    assert split_counts(10, 4) == [3, 3, 2, 2]
    assert sum(split_counts(7, 3)) == 7
