"""hepgen.data.formats.base and the extension table: row-range reads, chunking, dtype, the finite check with
absolute rows, lazy per-process file handles, read failures as DataError naming the rows."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from hepgen.data.formats import EXTENSIONS, backend, kind_of
from hepgen.data.formats.base import ArraySource, FileSource, Request, stack_columns
from hepgen.errors import DataError


@pytest.mark.parametrize("name, kind", [("a.npy", "npy"), ("a.NPZ", "npz"), ("dir.v2/a.h5", "hdf5"),
                                        ("a.hdf5", "hdf5"), ("a.hdf", "hdf5"), ("a.root", "root"),
                                        ("a.csv", "csv"), ("a.parquet", "parquet"), ("a.pq", "parquet")])
def test_the_kind_comes_from_the_extension_in_any_case(name, kind):
    assert kind_of(Path(name)) == kind
    assert backend(kind).__name__.startswith("hepgen.data.formats.")


def test_an_unknown_extension_names_the_file_and_lists_the_supported_ones():
    with pytest.raises(DataError) as refused:
        kind_of(Path("events.txt"))
    assert "events.txt" in str(refused.value) and all(ext in str(refused.value) for ext in EXTENSIONS)


def test_request_selects_only_with_columns_or_exclude():
    assert not Request("x.h5").selects
    assert Request("x.h5", columns=["a"]).selects and Request("x.h5", exclude=["b"]).selects
    assert Request("x.h5").dtype == np.float32


def test_array_source_reads_row_ranges_in_its_dtype():
    x = np.arange(40, dtype=np.float64).reshape(10, 4)
    source = ArraySource(x, ["a", "b", "c", "d"], spec="mem")
    assert len(source) == 10 and source.event_shape == (4,) and source.columns == ["a", "b", "c", "d"]
    rows = source.read_rows(3, 7)
    assert rows.dtype == np.float32 and rows.shape == (4, 4)
    np.testing.assert_array_equal(rows, x[3:7].astype(np.float32))
    assert source.read_rows(5, 5).shape == (0, 4)
    exact = ArraySource(x, dtype=np.float64).read_rows(0, 10)
    np.testing.assert_array_equal(exact, x)
    for start, stop in ((-1, 2), (3, 11), (6, 5)):
        with pytest.raises(IndexError, match="out of range"):
            source.read_rows(start, stop)


def test_a_one_dimensional_array_is_one_feature_and_a_scalar_or_text_is_refused():
    assert ArraySource(np.arange(5)).event_shape == (1,)
    with pytest.raises(DataError, match="single number"):
        ArraySource(np.float64(3.0), spec="s.npy")
    with pytest.raises(DataError, match="non-numeric"):
        ArraySource(np.array(["a", "b"]), spec="t.npy")
    with pytest.raises(ValueError, match="3 column names"):
        ArraySource(np.zeros((2, 4)), ["a", "b", "c"])


@pytest.mark.parametrize("chunk", [1, 3, 7, 10, 100])
def test_chunks_cover_every_row_once_in_order(chunk):
    x = np.random.default_rng(0).normal(size=(10, 2, 3))
    chunks = list(ArraySource(x, dtype=np.float64).iter_chunks(chunk))
    assert all(len(c) <= chunk for c in chunks) and len(chunks) == -(-10 // chunk)
    np.testing.assert_array_equal(np.concatenate(chunks), x)
    with pytest.raises(ValueError, match="chunk_size"):
        next(ArraySource(x).iter_chunks(0))


def test_the_finite_check_names_the_absolute_row_and_the_column():
    x = np.ones((100, 3))
    x[57, 2] = np.nan
    source = ArraySource(x, ["pt", "eta", "phi"], spec="ev.h5")
    source.read_rows(0, 50)  # the NaN is not in these rows
    with pytest.raises(DataError) as refused:
        source.read_rows(50, 60)
    message = str(refused.value)
    assert "ev.h5" in message and "row 57" in message and "'phi'" in message and "rows 50-59" in message
    data, _ = source.read_masked(50, 60, check_finite=False)
    assert np.isnan(data[7, 2])


def test_a_value_too_large_for_float32_is_reported_as_overflow_not_as_nan():
    x = np.ones((4, 2))
    x[2, 1] = 1e300
    with pytest.raises(DataError, match="too large for float32"):
        ArraySource(x, spec="big.npy").read_rows(0, 4)
    assert ArraySource(x, dtype=np.float64).read_rows(0, 4)[2, 1] == 1e300


def test_a_mask_travels_with_its_rows():
    x = np.zeros((6, 4, 2))
    mask = np.arange(24).reshape(6, 4) % 3 == 0
    source = ArraySource(x, mask=mask)
    assert source.has_mask
    _, got = source.read_masked(2, 5)
    np.testing.assert_array_equal(got, mask[2:5])
    with pytest.raises(ValueError, match="mask"):
        ArraySource(x, mask=mask[:5])


class _CountingSource(FileSource):
    """A FileSource over an in-memory 'file' that counts how often it was opened; fails on request."""

    format_name = "test"

    def __init__(self, data: np.ndarray, fail: BaseException | None = None):
        super().__init__("f.test", len(data), data.shape[1:])
        self.data, self.fail, self.opened = data, fail, 0

    def _open(self):
        self.opened += 1
        return _Handle(self.data)

    def _read_file(self, handle, start, stop):
        if self.fail is not None:
            raise self.fail
        return handle.data[start:stop], None


class _Handle:
    def __init__(self, data):
        self.data, self.closed = data, False

    def close(self):
        self.closed = True


def test_a_file_source_opens_once_per_process_and_pickles_without_its_handle():
    source = _CountingSource(np.arange(12.0).reshape(6, 2))
    source.read_rows(0, 2)
    source.read_rows(2, 6)
    assert source.opened == 1
    clone = pickle.loads(pickle.dumps(source))
    assert clone._handle is None  # reopened lazily where it is used (a DataLoader worker, a DDP rank)
    np.testing.assert_array_equal(clone.read_rows(0, 6), source.read_rows(0, 6))
    handle = source._handle
    source.close()
    assert handle.closed
    source.read_rows(0, 1)
    assert source.opened == 2


@pytest.mark.parametrize("failure", [OSError("disk gone"), KeyError("chunk"), EOFError(), RuntimeError("zip")])
def test_a_library_failure_while_reading_is_a_data_error_naming_the_rows(failure):
    with pytest.raises(DataError) as refused:
        _CountingSource(np.zeros((9, 2)), fail=failure).read_rows(3, 7)
    assert "rows 3-6 of 'f.test'" in str(refused.value) and "truncated or corrupted" in str(refused.value)


def test_stack_columns_keeps_the_common_dtype():
    out = stack_columns([np.arange(3, dtype=np.int32), np.array([0.5, 1.5, 2.5], dtype=np.float32)])
    assert out.shape == (3, 2) and out.dtype == np.float64  # int32 with float32: float64, as NumPy promotes
    np.testing.assert_array_equal(out[:, 1], [0.5, 1.5, 2.5])
