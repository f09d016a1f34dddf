"""Each format backend of hepgen.data.formats against the library that defines the format: what a backend
writes, h5py / numpy / pyarrow / uproot read back as written; what those libraries write, the backend reads
(every layout its module docstring promises), by row range, with names and units."""

from __future__ import annotations

import awkward as ak
import h5py
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import uproot

from hepgen.data.formats import hdf5, numpy_files, root, tabular
from hepgen.data.formats.base import Payload, Request
from hepgen.errors import DataError

RNG = np.random.default_rng(5)
COLS = {"pt": RNG.gamma(3.0, 20.0, 50), "eta": RNG.normal(size=50), "n": RNG.integers(0, 9, 50).astype(np.int32)}
TABLE = np.column_stack(list(COLS.values()))


def _all(source, dtype=np.float64):
    assert source.dtype == dtype
    return source.read_rows(0, len(source))


def _req(path, **kw):
    return Request(str(path), dtype=np.dtype(np.float64), **kw)


# -- HDF5 ---------------------------------------------------------------------------------------------
def test_hdf5_write_is_one_dataset_per_name_in_written_order_with_attributes(tmp_path):
    path = tmp_path / "w.h5"
    hdf5.write(path, Payload({"jets/pt": COLS["pt"], "jets/eta": COLS["eta"], "weight": COLS["n"]}, False,
                             attrs={"/": {"generator": "toy"}}), key="events")
    with h5py.File(path) as f:
        assert list(f["events"]) == ["jets", "weight"] and list(f["events/jets"]) == ["pt", "eta"]
        np.testing.assert_array_equal(f["events/jets/eta"][:], COLS["eta"])
        assert f["events/weight"].dtype == np.int32 and f["events"].attrs["generator"] == "toy"
    single = tmp_path / "s.h5"
    hdf5.write(single, Payload({"x": TABLE}, True), key=None)
    with h5py.File(single) as f:
        np.testing.assert_array_equal(f["data"][:], TABLE)


def test_hdf5_reads_group_columns_compound_fields_labelled_matrices_and_images(tmp_path):
    path = tmp_path / "r.h5"
    compound = np.zeros(50, dtype=[("pt", "f8"), ("eta", "f8"), ("n", "i4")])
    for name, values in COLS.items():
        compound[name] = values
    with h5py.File(path, "w", track_order=True) as f:
        group = f.create_group("cols", track_order=True)
        for name, values in COLS.items():
            group.create_dataset(name, data=values).attrs["unit"] = "GeV" if name == "pt" else ""
        f.create_dataset("compound", data=compound)
        f.create_dataset("matrix", data=TABLE).attrs["columns"] = list(COLS)
        f.create_dataset("images", data=RNG.normal(size=(50, 4, 5)))
    source = hdf5.open_source(path, "cols", _req(f"{path}:cols"))
    assert source.columns == ["pt", "eta", "n"] and source.units == {"pt": "GeV"}
    np.testing.assert_array_equal(_all(source), TABLE)
    source = hdf5.open_source(path, "compound", _req(path, columns=["n", "pt"]))
    np.testing.assert_array_equal(_all(source), TABLE[:, [2, 0]])
    source = hdf5.open_source(path, "matrix", _req(path, exclude=["eta"]))
    assert source.columns == ["pt", "n"]
    np.testing.assert_array_equal(source.read_rows(10, 20), TABLE[10:20, [0, 2]])
    with h5py.File(path) as f:
        images = f["images"][:]
    source = hdf5.open_source(path, "images", _req(path))
    assert source.event_shape == (4, 5) and source.columns is None
    np.testing.assert_array_equal(source.read_rows(7, 9), images[7:9])
    assert hdf5.keys(path, None) == ["cols", "cols/pt", "cols/eta", "cols/n", "compound", "matrix", "images"]
    assert hdf5.keys(path, "compound") == ["pt", "eta", "n"]


def test_hdf5_refuses_what_is_not_one_table_naming_the_keys(tmp_path):
    path = tmp_path / "mixed.h5"
    with h5py.File(path, "w") as f:
        f["a"] = np.zeros(3)
        f["b"] = np.zeros(4)
        f["text"] = np.array([b"x", b"y"])
    with pytest.raises(DataError, match=r"several datasets.*mixed.h5:a'"):
        hdf5.open_source(path, None, _req(path))
    with pytest.raises(DataError, match="No key 'c'"):
        hdf5.open_source(path, "c", _req(path))
    with pytest.raises(DataError, match="non-numeric"):
        hdf5.open_source(path, "text", _req(path))
    with pytest.raises(DataError, match="unnamed array"):
        hdf5.open_source(path, "a", _req(path, columns=["x"]))


# -- NumPy ----------------------------------------------------------------------------------------------
def test_npy_and_npz_write_what_numpy_reads(tmp_path):
    numpy_files.write(tmp_path / "t.npy", Payload(dict(COLS), False), None, "npy")
    table = np.load(tmp_path / "t.npy")
    assert table.dtype.names == ("pt", "eta", "n")
    np.testing.assert_array_equal(table["n"], COLS["n"])
    numpy_files.write(tmp_path / "a.npz", Payload(dict(COLS), False), None, "npz")
    with np.load(tmp_path / "a.npz") as archive:
        assert sorted(archive.files) == sorted(COLS)
        np.testing.assert_array_equal(archive["eta"], COLS["eta"])
    with pytest.raises(DataError, match="takes no key"):
        numpy_files.write(tmp_path / "k.npy", Payload({"x": TABLE}, True), "key", "npy")


def test_npy_and_npz_read_what_numpy_writes(tmp_path):
    np.save(tmp_path / "m.npy", TABLE)
    source = numpy_files.open_source(tmp_path / "m.npy", None, _req(tmp_path / "m.npy"), "npy")
    np.testing.assert_array_equal(source.read_rows(5, 15), TABLE[5:15])  # memory-mapped, by row range
    np.savez(tmp_path / "c.npz", **COLS)
    source = numpy_files.open_source(tmp_path / "c.npz", None, _req(tmp_path / "c.npz", columns=["eta", "pt"]), "npz")
    np.testing.assert_array_equal(_all(source), TABLE[:, [1, 0]])
    np.savez(tmp_path / "two.npz", x=TABLE, y=np.zeros(3))
    source = numpy_files.open_source(tmp_path / "two.npz", "x", _req(tmp_path / "two.npz"), "npz")
    np.testing.assert_array_equal(_all(source), TABLE)
    assert numpy_files.keys(tmp_path / "two.npz", None, "npz") == ["x", "y"]
    with pytest.raises(DataError, match="not equal-length"):
        numpy_files.open_source(tmp_path / "two.npz", None, _req(tmp_path / "two.npz"), "npz")


# -- CSV and Parquet ---------------------------------------------------------------------------------------
def test_csv_and_parquet_write_what_pyarrow_reads(tmp_path):
    tabular.write(tmp_path / "t.csv", Payload(dict(COLS), False), None, "csv")
    table = pacsv.read_csv(tmp_path / "t.csv")
    assert table.column_names == list(COLS)
    np.testing.assert_allclose(table["pt"].to_numpy(), COLS["pt"], rtol=1e-15)
    tabular.write(tmp_path / "t.parquet", Payload({"x": TABLE}, True), None, "parquet")
    table = pq.read_table(tmp_path / "t.parquet")
    assert table.column_names == ["x0", "x1", "x2"]
    np.testing.assert_array_equal(table["x1"].to_numpy(), TABLE[:, 1])


def test_csv_and_parquet_read_what_pyarrow_and_numpy_write(tmp_path):
    pq.write_table(pa.table(COLS), tmp_path / "r.parquet")
    source = tabular.open_source(tmp_path / "r.parquet", None, _req(tmp_path / "r.parquet", exclude=["n"]), "parquet")
    assert source.columns == ["pt", "eta"]
    np.testing.assert_array_equal(_all(source), TABLE[:, :2])
    np.savetxt(tmp_path / "h.csv", TABLE, header="pt eta n")  # '# pt eta n', space separated
    source = tabular.open_source(tmp_path / "h.csv", None, _req(tmp_path / "h.csv"), "csv")
    assert source.columns == ["pt", "eta", "n"]
    np.testing.assert_allclose(_all(source), TABLE, rtol=1e-15)
    np.savetxt(tmp_path / "bare.csv", TABLE, delimiter=",")  # no header: unnamed columns
    source = tabular.open_source(tmp_path / "bare.csv", None, _req(tmp_path / "bare.csv"), "csv")
    assert source.columns is None
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,x\n")
    with pytest.raises(DataError, match=r"'b'.*row 1|row 1.*'b'"):
        tabular.open_source(tmp_path / "bad.csv", None, _req(tmp_path / "bad.csv"), "csv")


# -- ROOT ---------------------------------------------------------------------------------------------------
def test_root_write_is_one_tree_uproot_reads_back(tmp_path):
    images = RNG.normal(size=(50, 2, 3))
    root.write(tmp_path / "w.root", Payload({**COLS, "img": images}, False), key="tree")
    with uproot.open(tmp_path / "w.root") as f:
        tree = f["tree"]
        assert set(tree.keys()) == {"pt", "eta", "n", "img"}
        np.testing.assert_array_equal(tree["pt"].array(library="np"), COLS["pt"])
        np.testing.assert_array_equal(tree["img"].array(library="np"), images)


def test_root_reads_flat_and_jagged_branches_uproot_writes(tmp_path):
    counts = RNG.integers(0, 5, 50)
    jagged = ak.unflatten(RNG.normal(size=int(counts.sum())), counts)
    with uproot.recreate(tmp_path / "r.root") as f:
        f["events"] = {"pt": COLS["pt"], "eta": COLS["eta"]}
        f["jets"] = {"jet_pt": jagged}
    source = root.open_source(tmp_path / "r.root", "events", _req(tmp_path / "r.root"))
    with uproot.open(tmp_path / "r.root") as f:
        assert source.columns == list(f["events"].keys())  # the tree's branch order
    np.testing.assert_array_equal(_all(source), np.column_stack([COLS[c] for c in source.columns]))
    request = Request(str(tmp_path / "r.root"), dtype=np.dtype(np.float64), jagged_length=3)
    source = root.open_source(tmp_path / "r.root", "jets", request)
    data, mask = source.read_masked(0, 50)
    assert data.shape == (50, 3, 1) and mask.shape == (50, 3)
    for i in range(50):
        k = min(int(counts[i]), 3)
        np.testing.assert_array_equal(data[i, :k, 0], ak.to_numpy(jagged[i][:k]))
        assert mask[i].sum() == k and not data[i, k:].any()  # padding is 0, masked out
    assert sorted(root.keys(tmp_path / "r.root", None)) == ["events", "jets"]
    with pytest.raises(DataError, match="No branch 'phi'"):
        root.open_source(tmp_path / "r.root", "events", _req(tmp_path / "r.root", columns=["phi"]))


def test_hdf5_named_columns_of_a_group_that_holds_other_shapes_too(tmp_path):
    """Datasets side by side as ``hepgen score`` writes them (score, weight beside a 2-D score_per_feature): the
    named 1-D members read as one table, checked against h5py; a missing name is named; unnamed, the mixed group
    is still refused as no table."""
    path = tmp_path / "scores.h5"
    rng = np.random.default_rng(3)
    with h5py.File(path, "w") as f:
        f["score"], f["w"], f["score_per_feature"] = rng.normal(size=40), rng.uniform(size=40), np.ones((40, 3))
    with hdf5.open_source(path, None, _req(path, columns=["w", "score"])) as source:
        assert source.columns == ["w", "score"]
        with h5py.File(path) as f:
            np.testing.assert_array_equal(_all(source), np.column_stack([f["w"][()], f["score"][()]]))
    with pytest.raises(DataError, match="'wieght'.*'w'|'w'.*'wieght'"):
        hdf5.open_source(path, None, _req(path, columns=["score", "wieght"]))
    with pytest.raises(DataError, match="several datasets"):
        hdf5.open_source(path, None, _req(path))
