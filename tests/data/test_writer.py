"""BlockWriter: blocks appended per format read back as one table; nothing left behind on failure."""

import numpy as np
import pytest

from hepgen.data import io
from hepgen.data.writer import BlockWriter
from hepgen.errors import DataError

FORMATS = ["h5", "npy", "npz", "csv", "parquet", "root"]


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return rng.normal(size=(1000, 3)).astype(np.float32), rng.normal(size=(1000, 2)).astype(np.float32)


def write_blocks(path, n_rows, blocks, **options):
    """Every block of ``blocks`` through one BlockWriter, as the sample and score commands write."""
    with BlockWriter(path, n_rows, **options) as writer:
        for block in blocks:
            writer.write(block)


def _blocks(x, c, size):
    for s in range(0, len(x), size):
        yield {"samples": x[s:s + size], "context": c[s:s + size]}


@pytest.mark.parametrize("ext", FORMATS)
@pytest.mark.parametrize("named", [True, False])
def test_blocks_read_back_as_one_table_with_context_columns(tmp_path, arrays, ext, named):
    x, c = arrays
    path = tmp_path / f"s.{ext}"
    write_blocks(path, 1000, _blocks(x, c, 300), columns={"samples": ["a", "b", "c"] if named else None,
                                                          "context": ["e", "theta"]}, bare=("samples", "context"))
    table = io.read(path)
    assert table.columns == (["a", "b", "c"] if named else ["x0", "x1", "x2"]) + ["e", "theta"]
    np.testing.assert_array_equal(table.data, np.hstack([x, c]))
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize("ext", FORMATS)
def test_a_single_unnamed_array_is_written_as_is(tmp_path, arrays, ext):
    x, _ = arrays
    path = tmp_path / f"u.{ext}"
    with BlockWriter(path, 1000, bare=("samples",)) as writer:
        for s in range(0, 1000, 400):
            writer.write({"samples": x[s:s + 400]})
    assert writer.blocks_written == 3
    np.testing.assert_array_equal(io.read(path).data, x)
    if ext == "npy":
        assert np.load(path).shape == (1000, 3)  # a plain array, not a structured one


def test_non_bare_fields_get_prefixed_columns(tmp_path, arrays):
    x, _ = arrays
    write_blocks(tmp_path / "s.csv", 1000, [{"score": x[:, 0], "score_per_feature": x}],
                 columns={"score_per_feature": ["a", "b", "c"]})
    table = io.read(tmp_path / "s.csv")
    assert table.columns == ["score", "score_per_feature_a", "score_per_feature_b", "score_per_feature_c"]
    write_blocks(tmp_path / "s.h5", 1000, [{"score": x[:, 0], "score_per_feature": x}],
                 columns={"score_per_feature": ["a", "b", "c"]})
    np.testing.assert_array_equal(io.read(f"{tmp_path / 's.h5'}:score_per_feature").data, x)


@pytest.mark.parametrize("ext", FORMATS)
def test_an_error_mid_way_leaves_no_file_and_keeps_the_old_one(tmp_path, arrays, ext):
    x, c = arrays
    path = tmp_path / f"s.{ext}"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with BlockWriter(path, 1000, bare=("samples",)) as writer:
            writer.write({"samples": x[:500]})
            raise RuntimeError("boom")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == [path.name]
    with pytest.raises(DataError, match="500 of 1000 rows"):
        with BlockWriter(path, 1000) as writer:
            writer.write({"samples": x[:500]})
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_bad_layouts_are_data_errors_before_anything_is_written(tmp_path, arrays):
    x, _ = arrays
    with pytest.raises(DataError, match="takes no key"):
        BlockWriter(f"{tmp_path / 'a.csv'}:k", 10)
    with pytest.raises(DataError, match="extension"):
        BlockWriter(tmp_path / "a.txt", 10)
    with pytest.raises(DataError, match="1-D or 2-D"):
        write_blocks(tmp_path / "img.csv", 4, [{"images": np.zeros((4, 2, 2))}])
    with pytest.raises(DataError, match="twice"):
        write_blocks(tmp_path / "t.h5", 4, [{"samples": np.zeros((4, 1)), "context": np.zeros((4, 1))}],
                     columns={"samples": ["a"], "context": ["a"]}, bare=("samples", "context"))
    assert list(tmp_path.iterdir()) == []


def test_images_go_to_hdf5_npz_and_npy_whole(tmp_path):
    images = np.random.default_rng(2).random((20, 4, 5)).astype(np.float32)
    for ext in ("h5", "npz", "npy"):
        write_blocks(tmp_path / f"i.{ext}", 20, [{"images": images[:7]}, {"images": images[7:]}])
        key = "" if ext == "npy" else ":images"
        np.testing.assert_array_equal(io.read(f"{tmp_path / f'i.{ext}'}{key}").data, images)


@pytest.mark.parametrize("ext", ["h5", "npz", "root"])
def test_images_beside_named_context_columns_stay_one_array(tmp_path, ext):
    """A conditional image model's samples: the images one (n, H, W) array, each named context column its own."""
    images = np.random.default_rng(0).normal(size=(7, 4, 3)).astype(np.float32)
    context = np.column_stack([np.arange(7.0), np.full(7, 22.0)]).astype(np.float32)
    out = tmp_path / f"s.{ext}"
    with BlockWriter(out, 7, columns={"samples": None, "context": ["energy", "ptype"]},
                     bare={"samples", "context"}) as w:
        w.write({"samples": images[:4], "context": context[:4]})
        w.write({"samples": images[4:], "context": context[4:]})
    spec = f"{out}:events" if ext == "root" else str(out)
    np.testing.assert_array_equal(io.read(f"{spec}/samples" if ext == "root" else f"{out}:samples").data, images)
    np.testing.assert_array_equal(io.read(f"{spec}/ptype" if ext == "root" else f"{out}:ptype").data.reshape(-1),
                                  context[:, 1])
