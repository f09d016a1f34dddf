"""benchmarks/_jets_data.py reads the jets of `hepgen data jets` (features: a group of one dataset per column) and of
the shipped sample (one (n, 11) dataset) into the same (n, 11) array in COLUMNS' order."""

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from _jets_data import COLUMNS, _array  # noqa: E402


def test_a_features_group_is_stacked_in_column_order_and_a_missing_column_is_named(tmp_path):
    rng = np.random.default_rng(0)
    values = {c: rng.normal(size=5) for c in COLUMNS}
    path = tmp_path / "jets.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("features")
        for c in reversed(COLUMNS):  # written in another order than COLUMNS
            g[c] = values[c]
        f["images"] = np.ones((5, 4, 4))
        bad = f.create_group("bad")
        for c in COLUMNS[:-1]:
            bad[c] = values[c]
    with h5py.File(path) as f:
        np.testing.assert_array_equal(_array(f["features"], path), np.column_stack([values[c] for c in COLUMNS]))
        assert _array(f["images"], path).shape == (5, 4, 4)
        with pytest.raises(SystemExit, match="no column 'n_constituents'"):
            _array(f["bad"], path)
