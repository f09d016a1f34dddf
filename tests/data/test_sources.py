"""data/sources.py: what counts as a column name, and weights/contexts named as columns of the events' file are
read row by row with their events and removed from the features (in memory and streamed)."""

import numpy as np
import pytest

import hepgen
from hepgen.data import io
from hepgen.data.sources import is_column_name, load_events
from hepgen.errors import DataError


@pytest.mark.parametrize(("value", "expected"), [
    ("weight", True), ("E,theta", True), ("pt, eta", True),
    ("events.h5:jets/weight", False), ("w.npy", False), ("table.CSV", False), ("tree.root", False),
    (None, False), (3, False), (np.ones(3), False),
])
def test_is_column_name(value, expected):
    assert is_column_name(value) is expected


def test_an_existing_path_is_not_a_column_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weight").write_text("")
    assert not is_column_name("weight")


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    data = np.stack([rng.normal(size=n), rng.normal(size=n), rng.uniform(0.5, 2.0, n), rng.normal(size=n),
                     np.arange(n, dtype=float)], 1)
    path = tmp_path / "events.h5"
    io.write(f"{path}:events", data, columns=["a", "b", "weight", "c1", "row"])
    return f"{path}:events", data


@pytest.mark.parametrize("stream", [False, True])
def test_named_weight_and_context_columns_follow_their_rows_and_leave_the_features(table, stream):
    spec, data = table
    events, names = load_events(spec, weights="weight", context="c1,row", stream=stream)
    assert names["x"] == ["a", "b"] and names["context"] == ["c1", "row"]
    assert len(events) == len(data)
    rows = events.rows(10, 60)
    np.testing.assert_allclose(np.asarray(rows["x"]), data[10:60, :2], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(rows["w"]).reshape(-1), data[10:60, 2], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(rows["context"]), data[10:60][:, [3, 4]], rtol=1e-6)


def test_columns_not_named_stay_features_and_model_shape_is_checked(table):
    spec, data = table
    events, names = load_events(spec, weights="weight")
    assert names["x"] == ["a", "b", "c1", "row"] and "context" not in names
    np.testing.assert_allclose(np.asarray(events.rows(0, 5)["x"]), data[:5][:, [0, 1, 3, 4]], rtol=1e-6)
    with pytest.raises(DataError, match=r"expects events of shape \(3,\)"):
        load_events(spec, weights="weight", model=hepgen.Gaussian(3))
    load_events(spec, weights="weight", context="c1,row", model=hepgen.NSF(2, context=2, transforms=1, hidden=(4,)))
    with pytest.raises(DataError, match="context of 0 columns, got 2"):
        load_events(spec, weights="weight", context="c1,row", model=hepgen.Gaussian(2))


def test_column_names_need_a_file_and_rows_must_match(table):
    _, data = table
    with pytest.raises(DataError, match="column names need the events as a file"):
        load_events(data, weights="weight")
    with pytest.raises(DataError, match="rows"):
        load_events(data, weights=np.ones(len(data) - 1))
    with pytest.raises(DataError, match="NaN"):
        load_events(np.array([[1.0], [np.nan]]))


def test_a_context_file_with_named_columns_names_the_context(tmp_path):
    """--context FILE:KEY of named columns: the run records their names (what sample --context reads by name)."""
    x = np.random.default_rng(0).normal(size=(20, 4, 4)).astype(np.float32)
    io.write(tmp_path / "x.npy", x)
    io.write(tmp_path / "c.h5", np.column_stack([np.arange(20.0), np.ones(20)]), columns=["energy", "ptype"])
    events, names = load_events(str(tmp_path / "x.npy"), context=str(tmp_path / "c.h5"))
    assert names["context"] == ["energy", "ptype"] and events.context.shape == (20, 2)
    _, unnamed = load_events(str(tmp_path / "x.npy"), context=np.ones((20, 2), dtype=np.float32))
    assert "context" not in unnamed


def test_a_context_file_of_another_length_is_named_with_the_events(tmp_path):
    """``fit style-gan calo.h5:layer_0 --context calo.h5:short`` said "the context have 100 rows but the events have
    450", naming neither file."""
    import h5py

    from hepgen.data.sources import open_events

    with h5py.File(tmp_path / "calo.h5", "w") as f:
        f["layer_0"] = np.ones((45, 3, 8), dtype=np.float32)
        f["short"] = np.ones(10, dtype=np.float32)
    data, ctx = f"{tmp_path / 'calo.h5'}:layer_0", f"{tmp_path / 'calo.h5'}:short"
    with pytest.raises(DataError) as info:
        open_events(data, context=ctx)
    message = str(info.value)
    assert f"the context ({ctx}) has 10 rows but the events ({data}) have 45" in message, message


def test_context_columns_of_an_unnamed_image_array_say_to_give_file_key(tmp_path):
    """``fit style-gan calo.h5:layer_0 --context energy``: the image dataset has no columns, and the refusal spoke of
    "columns or exclude" (options the user never gave) without a word on --context."""
    import h5py

    from hepgen.data.sources import open_events

    with h5py.File(tmp_path / "calo.h5", "w") as f:
        f["layer_0"] = np.ones((45, 3, 8), dtype=np.float32)
        f["energy"] = np.ones(45, dtype=np.float32)
    with pytest.raises(DataError) as info:
        open_events(f"{tmp_path / 'calo.h5'}:layer_0", context="energy")
    message = str(info.value)
    assert message.startswith("--context 'energy' names columns of the events") and "unnamed array" in message
    assert f"{tmp_path / 'calo.h5'}:energy" in message, message
    with pytest.raises(DataError, match="--weights 'w' names columns"):
        open_events(f"{tmp_path / 'calo.h5'}:layer_0", weights="w")
