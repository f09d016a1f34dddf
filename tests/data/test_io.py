"""Tests of hepgen.data.io: specs, round trips per format, ROOT jagged padding, errors, atomic writes, streaming."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
import pytest
import uproot

from hepgen.data import io
from hepgen.data.io import ArraySource, Table, available_keys, open_source, parse_spec, read, read_column, write
from hepgen.errors import ConfigError, DataError

FORMATS = ["h5", "hdf5", "root", "npy", "npz", "csv", "parquet", "pq"]


@pytest.fixture
def table() -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(7)
    return rng.normal(size=(257, 4)).astype(np.float32), ["pt", "eta", "phi", "mass"]


def _write_h5(path: Path, **datasets: np.ndarray) -> Path:
    with h5py.File(path, "w") as handle:
        for name, value in datasets.items():
            handle[name] = value
    return path


# ----------------------------------------------------------------------------------------- parse_spec


def test_parse_spec_splits_at_known_extension_and_keeps_slashes_in_key():
    assert parse_spec("run/data.h5:jets/images") == (Path("run/data.h5"), "jets/images")
    assert parse_spec("events.ROOT:dir/tree") == (Path("events.ROOT"), "dir/tree")
    assert parse_spec("x.npz:odd:name") == (Path("x.npz"), "odd:name")  # last ':' whose left part qualifies
    assert parse_spec("data.h5:") == (Path("data.h5"), None)
    assert parse_spec("data.parquet") == (Path("data.parquet"), None)
    assert parse_spec(Path("a.csv")) == (Path("a.csv"), None)
    assert parse_spec(r"C:\data\x.h5") == (Path(r"C:\data\x.h5"), None)  # a drive letter is not a file


def test_parse_spec_colons_in_directory_names(tmp_path):
    folder = tmp_path / "run:2024" / "v1:final"
    folder.mkdir(parents=True)
    file = _write_h5(folder / "data.h5", x=np.ones((3, 2)))
    assert parse_spec(f"{file}:x") == (file, "x")
    assert parse_spec(str(file)) == (file, None)
    assert parse_spec(f"{folder}/missing.h5") == (folder / "missing.h5", None)
    odd = folder / "table.dat"  # an existing file with an unknown extension still splits
    odd.write_text("1\n")
    assert parse_spec(f"{odd}:col") == (odd, "col")
    whole = folder / "literally.h5:x"  # an existing file named with a colon is never split
    whole.write_bytes(b"")
    assert parse_spec(str(whole)) == (whole, None)
    np.testing.assert_array_equal(read(f"{file}:x").data, np.ones((3, 2), np.float32))


# ------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("ext", FORMATS)
def test_round_trip_named_columns(tmp_path, table, ext):
    data, names = table
    path = write(tmp_path / f"t.{ext}", data, columns=names)
    assert path == tmp_path / f"t.{ext}"
    got = read(path)
    assert got.columns == names
    assert got.data.dtype == np.float32 and got.mask is None and got.source == str(path)
    np.testing.assert_array_equal(got.data, data)
    sub = read(path, ["mass", "pt"])
    np.testing.assert_array_equal(sub.data, data[:, [3, 0]])
    assert sub.columns == ["mass", "pt"]
    rest = read(path, exclude=["eta"])
    assert rest.columns == ["pt", "phi", "mass"]
    np.testing.assert_array_equal(rest.data, data[:, [0, 2, 3]])


@pytest.mark.parametrize("ext", FORMATS)
def test_round_trip_unnamed_float64_is_exact(tmp_path, ext):
    data = np.random.default_rng(1).normal(size=(50, 3)) * 1e3
    path = write(tmp_path / f"u.{ext}", data)
    got = read(path, dtype=np.float64)
    assert got.data.dtype == np.float64
    np.testing.assert_array_equal(got.data, data)  # bit-exact, incl. CSV's text round trip
    expected_columns = ["x0", "x1", "x2"] if ext in ("parquet", "pq") else None
    assert got.columns == expected_columns
    np.testing.assert_array_equal(read(path).data, data.astype(np.float32))


@pytest.mark.parametrize("ext", ["h5", "npy", "npz", "root"])
def test_round_trip_images_keep_their_shape(tmp_path, ext):
    images = np.random.default_rng(2).random((20, 6, 5)).astype(np.float32)
    got = read(write(tmp_path / f"img.{ext}", images))
    assert got.data.shape == (20, 6, 5) and got.columns is None
    np.testing.assert_array_equal(got.data, images)


@pytest.mark.parametrize("ext", ["h5", "npy", "npz", "csv"])
def test_one_dimensional_array_is_one_feature_per_event(tmp_path, ext):
    values = np.arange(10, dtype=np.float64)
    got = read(write(tmp_path / f"v.{ext}", values))
    assert got.data.shape == (10, 1)
    np.testing.assert_array_equal(got.data[:, 0], values)
    np.testing.assert_array_equal(read_column(tmp_path / f"v.{ext}"), values)


def test_hdf5_keys_groups_and_creation_order(tmp_path):
    n = 30
    a, z, m = (np.random.default_rng(s).normal(size=n) for s in range(3))
    path = write(tmp_path / "f.h5:jets/kin", {"z": z, "a": a, "m": m})
    got = read(f"{path}:jets/kin")
    assert got.columns == ["z", "a", "m"]  # creation order, tracked by write
    np.testing.assert_array_equal(got.data, np.stack([z, a, m], 1).astype(np.float32))
    np.testing.assert_array_equal(read(path).data, got.data)  # no key: descends into the lone group
    # a group written without creation-order tracking reads alphabetically (h5py's order)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as handle:
        group = handle.create_group("g")
        group["z"], group["a"], group["m"] = z, a, m
    assert read(f"{plain}:g").columns == ["a", "m", "z"]
    assert available_keys(path) == ["jets", "jets/kin", "jets/kin/z", "jets/kin/a", "jets/kin/m"]
    assert available_keys(f"{path}:jets") == ["jets/kin", "jets/kin/z", "jets/kin/a", "jets/kin/m"]


def test_hdf5_matrix_with_columns_attribute_has_named_selectable_columns(tmp_path):
    path = tmp_path / "m.h5"
    data = np.arange(24, dtype=np.float32).reshape(6, 4)
    with h5py.File(path, "w") as f:
        f.create_dataset("jets/features", data=data).attrs["columns"] = ["pt", "eta", "mass", "w"]
        f.create_dataset("bad", data=data).attrs["columns"] = ["a", "b"]  # wrong length: unnamed
    table = read(f"{path}:jets/features")
    assert table.columns == ["pt", "eta", "mass", "w"]
    np.testing.assert_array_equal(table.data, data)
    source = open_source(f"{path}:jets/features", columns=["mass", "pt"])
    assert source.columns == ["mass", "pt"]
    np.testing.assert_array_equal(source.read_rows(2, 5), data[2:5][:, [2, 0]])
    source = open_source(f"{path}:jets/features", exclude=["w"])
    np.testing.assert_array_equal(source.read_rows(0, 6), data[:, :3])
    with pytest.raises(DataError, match="'mas'.*Did you mean 'mass'"):
        open_source(f"{path}:jets/features", columns=["mas"])
    assert read(f"{path}:bad").columns is None


def test_hdf5_compound_dataset_gives_field_columns(tmp_path):
    records = np.zeros(40, dtype=[("pt", "f8"), ("n", "i4"), ("ok", "?")])
    records["pt"] = np.linspace(1, 2, 40)
    records["n"] = np.arange(40)
    records["ok"] = np.arange(40) % 2 == 0
    path = _write_h5(tmp_path / "c.h5", rec=records, other=np.zeros((40, 2)))
    got = read(f"{path}:rec", exclude=["ok"])
    assert got.columns == ["pt", "n"]
    np.testing.assert_array_equal(got.data, np.stack([records["pt"], records["n"]], 1).astype(np.float32))
    assert available_keys(f"{path}:rec") == ["pt", "n", "ok"]
    with open_source(f"{path}:rec", ["ok", "n"]) as source:
        np.testing.assert_array_equal(source.read_rows(5, 9), np.stack([records["ok"], records["n"]], 1)[5:9])


def test_hdf5_several_datasets_without_key_lists_them(tmp_path):
    path = _write_h5(tmp_path / "many.h5", images=np.zeros((5, 3, 3)), labels=np.zeros(5))
    with pytest.raises(DataError, match=r"many\.h5.*'images'.*'labels'"):
        read(path)
    assert read(f"{path}:images").data.shape == (5, 3, 3)


def test_npz_and_npy_tables(tmp_path, table):
    data, names = table
    npz = write(tmp_path / "t.npz", {name: data[:, j] for j, name in enumerate(names)} | {"extra": data})
    with pytest.raises(DataError, match="not equal-length"):
        read(npz)
    np.testing.assert_array_equal(read(f"{npz}:extra").data, data)
    np.testing.assert_array_equal(read(f"{npz}:eta").data[:, 0], data[:, 1])
    single = write(tmp_path / "s.npz:events", data)
    assert available_keys(single) == ["events"]
    np.testing.assert_array_equal(read(single).data, data)
    structured = write(tmp_path / "s.npy", data, columns=names)
    assert np.load(structured).dtype.names == tuple(names)


def test_csv_header_variants(tmp_path):
    commented = tmp_path / "c.csv"
    np.savetxt(commented, np.arange(6.0).reshape(3, 2), delimiter=",", header="a,b")
    got = read(commented)
    assert got.columns == ["a", "b"]
    np.testing.assert_array_equal(got.data, np.arange(6.0).reshape(3, 2))
    spaced = tmp_path / "spaced.csv"  # np.savetxt's default delimiter is a space
    np.savetxt(spaced, np.arange(6.0).reshape(2, 3), header="x y z")
    got = read(spaced)
    assert got.columns == ["x", "y", "z"]
    np.testing.assert_array_equal(got.data, np.arange(6.0).reshape(2, 3))
    tabbed = tmp_path / "tabbed.csv"
    tabbed.write_text("a\tb\n1\t2\n")
    assert read(tabbed).columns == ["a", "b"]
    bare = tmp_path / "bare.csv"
    bare.write_text("1.5,-2\nnan,3\n")
    got = read(bare, check_finite=False)
    assert got.columns is None
    np.testing.assert_array_equal(got.data, [[1.5, -2], [np.nan, 3]])
    with pytest.raises(DataError, match=r"bare\.csv.*row 1, column 0"):
        read(bare)


# ----------------------------------------------------------------------------------------------- ROOT


def _jagged_tree(path: Path, pt: list[list[float]], eta: list[list[float]], met: np.ndarray) -> Path:
    with uproot.recreate(path) as handle:
        pt_array, eta_array = ak.Array(pt), ak.Array(eta)
        tree = handle.mktree("Events", {"jet_pt": pt_array.type, "jet_eta": eta_array.type, "met": met.dtype},
                             counter_name=lambda name: "nJet")
        half = len(met) // 2  # two baskets, so reads cross a basket boundary
        tree.extend({"jet_pt": pt_array[:half], "jet_eta": eta_array[:half], "met": met[:half]})
        tree.extend({"jet_pt": pt_array[half:], "jet_eta": eta_array[half:], "met": met[half:]})
    return path


def test_root_jagged_padding_truncation_and_mask(tmp_path):
    rng = np.random.default_rng(3)
    counts = [0, 1, 2, 3, 4, 5, 2, 0, 7, 3]
    pt = [list(rng.uniform(20, 100, c)) for c in counts]
    eta = [list(rng.normal(size=c)) for c in counts]
    met = rng.uniform(0, 50, len(counts))
    path = _jagged_tree(tmp_path / "jets.root", pt, eta, met)
    length = 3
    got = read(path, ["jet_pt", "jet_eta"], jagged_length=length, dtype=np.float64)
    expected = np.zeros((len(counts), length, 2))
    expected_mask = np.zeros((len(counts), length), bool)
    for i, c in enumerate(counts):  # brute force: pad with 0, keep the first `length` entries
        for k in range(min(c, length)):
            expected[i, k] = pt[i][k], eta[i][k]
            expected_mask[i, k] = True
    np.testing.assert_array_equal(got.data, expected)
    np.testing.assert_array_equal(got.mask, expected_mask)
    assert got.columns == ["jet_pt", "jet_eta"]
    # default selection drops the shared counter 'nJet' but then mixes in the flat 'met'
    assert set(available_keys(f"{path}:Events")) == {"nJet", "jet_pt", "jet_eta", "met"}
    with pytest.raises(DataError, match=r"jets\.root.*jagged.*'jet_pt'.*flat.*'met'.*jagged_length"):
        read(path)
    default = read(path, exclude=["met"], jagged_length=length, dtype=np.float64)
    np.testing.assert_array_equal(default.data, expected)
    with pytest.raises(DataError, match=r"jets\.root.*jagged_length"):
        read(path, ["jet_pt"])
    flat = read(path, ["met", "nJet"], dtype=np.float64)
    np.testing.assert_array_equal(flat.data, np.stack([met, counts], 1))
    with open_source(path, ["jet_eta", "jet_pt"], jagged_length=length, dtype=np.float64) as source:
        assert source.event_shape == (length, 2) and source.has_mask
        rows, mask = source.read_masked(3, 9)  # crosses the basket boundary at 5
        np.testing.assert_array_equal(rows, expected[3:9, :, ::-1])
        np.testing.assert_array_equal(mask, expected_mask[3:9])


def test_root_flat_and_jagged_branches_with_jagged_length_read_as_one_flat_table(tmp_path):
    rng = np.random.default_rng(4)
    counts = [0, 1, 2, 3, 4, 5, 2, 0, 7, 3]
    pt = [list(rng.uniform(20, 100, c)) for c in counts]
    eta = [list(rng.normal(size=c)) for c in counts]
    met = rng.uniform(0, 50, len(counts))
    path = _jagged_tree(tmp_path / "jets.root", pt, eta, met)
    got = read(path, jagged_length=2, dtype=np.float64)  # the counter nJet is left out
    assert got.columns == ["jet_pt[0]", "jet_pt[1]", "jet_eta[0]", "jet_eta[1]", "met"]
    assert got.mask is None
    expected = np.zeros((len(counts), 5))
    for i, c in enumerate(counts):  # brute force: the first two entries of each event, padded with 0
        for k in range(min(c, 2)):
            expected[i, k], expected[i, 2 + k] = pt[i][k], eta[i][k]
    expected[:, 4] = met
    np.testing.assert_array_equal(got.data, expected)
    picked = read(f"{path}:Events/met,jet_eta", jagged_length=1, dtype=np.float64)  # a branch-level key
    assert picked.columns == ["met", "jet_eta[0]"]
    np.testing.assert_array_equal(picked.data, expected[:, [4, 2]])
    with open_source(path, exclude=["jet_eta"], jagged_length=3, dtype=np.float64) as source:
        rows = source.read_rows(3, 9)  # crosses the basket boundary at 5
        assert source.columns == ["jet_pt[0]", "jet_pt[1]", "jet_pt[2]", "met"] and not source.has_mask
    for j, i in enumerate(range(3, 9)):
        want = [pt[i][k] if k < counts[i] else 0.0 for k in range(3)] + [met[i]]
        np.testing.assert_array_equal(rows[j], want)


def test_root_branch_level_keys_select_branches(tmp_path, table):
    data, names = table
    path = write(tmp_path / "d.root:dir/tree", data, columns=names)
    got = read(f"{path}:dir/tree/eta")
    assert got.columns == ["eta"]
    np.testing.assert_array_equal(got.data, data[:, [1]])
    got = read(f"{path}:dir/tree/mass,pt")
    assert got.columns == ["mass", "pt"]
    np.testing.assert_array_equal(got.data, data[:, [3, 0]])
    assert available_keys(f"{path}:dir/tree/mass,pt") == ["mass", "pt"]
    # explicit columns (how a weight column is read from the same spec) take the key's place
    np.testing.assert_array_equal(read(f"{path}:dir/tree/mass", ["phi"]).data, data[:, [2]])
    with pytest.raises(DataError, match=r"No branch 'etaa'.*Did you mean 'eta'"):
        read(f"{path}:dir/tree/etaa")
    with pytest.raises(DataError, match=r"No tree 'dir/tre/eta'.*Did you mean 'dir/tree'"):
        read(f"{path}:dir/tre/eta")


def test_data_spec_carries_a_selection_wherever_a_string_spec_goes(tmp_path, table):
    data, names = table
    path = write(tmp_path / "d.h5:jets", data, columns=names)
    spec = io.DataSpec.parse(f"{path}:jets", columns="pt,eta,mass", exclude=["eta"])
    assert (spec.path, spec.key, spec.columns, spec.exclude) == (path, "jets", ("pt", "eta", "mass"), ("eta",))
    assert str(spec) == os.fspath(spec) == f"{path}:jets" and parse_spec(spec) == (path, "jets")
    got = read(spec)
    assert got.columns == ["pt", "mass"]
    np.testing.assert_array_equal(got.data, data[:, [0, 3]])
    assert read(spec, exclude=["mass"]).columns == ["pt"]  # exclude adds to the spec's
    assert read(spec, ["phi"]).columns == ["phi"]  # explicit columns replace the spec's selection
    np.testing.assert_array_equal(read_column(spec, "phi"), data[:, 2].astype(np.float64))
    again = io.DataSpec.parse(spec, jagged_length=4)
    assert again.columns == spec.columns and again.jagged_length == 4
    assert spec.describe() == {"spec": f"{path}:jets", "columns": ["pt", "eta", "mass"], "exclude": ["eta"],
                               "jagged_length": None}
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="jagged_length"):
            io.DataSpec.parse(path, jagged_length=bad)
    with pytest.raises(ConfigError, match="columns"):
        io.DataSpec.parse(path, columns=[1, 2])


def test_truncated_rntuple_is_a_data_error(tmp_path):
    path = tmp_path / "r.root"
    x = np.random.default_rng(1).normal(size=20000)
    with uproot.recreate(path) as handle:
        handle["ntuple"] = {"x": x, "y": 2 * x}  # uproot >= 5.7 writes an RNTuple
    whole = path.read_bytes()
    for fraction in (0.2, 0.5, 0.9):
        path.write_bytes(whole[: int(len(whole) * fraction)])
        with pytest.raises(DataError, match=r"r\.root.*truncated"):
            read(path)
        with pytest.raises(DataError, match=r"r\.root"):
            available_keys(f"{path}:ntuple")


def test_object_npy_and_npz_are_refused_without_unpickling(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "o.npz", x=np.array(["a", None], dtype=object))
    for spec in (tmp_path / "o.npy", f"{tmp_path / 'o.npz'}:x", tmp_path / "o.npz"):
        with pytest.raises(DataError, match=r"o\.np[yz].*Python objects.*dtype object") as excinfo:
            read(spec)
        assert "allow_pickle=False" not in str(excinfo.value)
    np.save(tmp_path / "t.npy", np.array([["1", "x"]]))
    with pytest.raises(DataError, match=r"t\.npy.*non-numeric type <U1"):
        read(tmp_path / "t.npy")


def test_root_jagged_branches_must_share_counts(tmp_path):
    path = tmp_path / "bad.root"
    with uproot.recreate(path) as handle:
        handle.mktree("t", {"a": ak.Array([[1.0], [2.0, 3.0]]).type, "b": ak.Array([[1.0], [2.0]]).type})
        handle["t"].extend({"a": ak.Array([[1.0], [2.0, 3.0]]), "b": ak.Array([[1.0], [2.0]])})
    with pytest.raises(DataError, match=r"bad\.root.*'a'.*'b'.*row 1"):
        read(f"{path}:t", ["a", "b"], jagged_length=2)


def test_root_fixed_size_branches_directories_and_rntuple(tmp_path, table):
    data, names = table
    vec = np.arange(len(data) * 3, dtype=np.float64).reshape(-1, 3)
    path = write(tmp_path / "f.root:dir/tree", {"pt": data[:, 0], "vec": vec})
    assert available_keys(path) == ["dir/tree"]
    got = read(f"{path}:dir/tree", dtype=np.float64)
    assert got.columns == ["pt", "vec[0]", "vec[1]", "vec[2]"]
    np.testing.assert_array_equal(got.data, np.column_stack([data[:, 0], vec]))
    alone = read(path, ["vec"], dtype=np.float64)  # one fixed-size branch keeps its shape
    assert alone.columns is None
    np.testing.assert_array_equal(alone.data, vec)
    rntuple = tmp_path / "r.root"
    with uproot.recreate(rntuple) as handle:
        handle["ntuple"] = {"x": data[:, 1], "y": data[:, 2]}  # uproot >= 5.7 writes an RNTuple here
    got = read(rntuple)
    assert got.columns == ["x", "y"]
    np.testing.assert_array_equal(got.data, data[:, 1:3])


# --------------------------------------------------------------------------------------------- errors


def _message(excinfo: pytest.ExceptionInfo) -> str:
    return str(excinfo.value)


def test_missing_file_messages(tmp_path):
    (tmp_path / "events.h5").write_bytes(b"")
    with pytest.raises(DataError) as excinfo:
        read(tmp_path / "event.h5")
    message = _message(excinfo)
    assert str(tmp_path / "event.h5") in message and "does)" in message and "'events.h5'" in message
    with pytest.raises(DataError, match=r"neither does its directory .*nowhere"):
        read(tmp_path / "nowhere" / "x.root:tree")


def test_unknown_key_column_branch_tree_suggest_nearest(tmp_path, table):
    data, names = table
    h5 = write(tmp_path / "d.h5:events", data, columns=names)
    with pytest.raises(DataError, match=r"No key 'event' in '.*d\.h5'\. Did you mean 'events'\?.*'events/pt'"):
        read(f"{h5}:event")
    with pytest.raises(DataError, match=r"No column 'etta' in '.*d\.h5:events'\. Did you mean 'eta'\?"):
        read(f"{h5}:events", ["pt", "etta"])
    with pytest.raises(DataError, match=r"No column 'mas' .*Did you mean 'mass'"):
        read(f"{h5}:events", exclude=["mas"])
    csv = write(tmp_path / "d.csv", data, columns=names)
    with pytest.raises(DataError, match=r"No column 'Pt' in '.*d\.csv'.*Did you mean 'pt'.*'phi', 'mass'"):
        read_column(csv, "Pt")
    root = write(tmp_path / "d.root", data, columns=names)
    with pytest.raises(DataError, match=r"No branch 'phii' in .*d\.root.*Did you mean 'phi'"):
        read(root, ["phii"])
    with pytest.raises(DataError, match=r"No tree 'event' in '.*d\.root'.*Did you mean 'events'"):
        read(f"{root}:event")
    npz = write(tmp_path / "d.npz", {"a": data, "b": data})
    with pytest.raises(DataError, match=r"No array 'c' in '.*d\.npz'.*'a', 'b'"):
        read(f"{npz}:c")
    with pytest.raises(DataError, match=r"unnamed array of shape \(257, 4\)"):
        read(f"{npz}:a", ["pt"])


def test_non_finite_values_report_count_row_and_column(tmp_path, table):
    data, names = table
    bad = data.copy()
    bad[40, 2] = np.nan
    bad[41, 0] = np.inf
    bad[200, 3] = -np.inf
    path = write(tmp_path / "nan.h5", bad, columns=names)
    with pytest.raises(DataError, match=r"nan\.h5' holds 3 non-finite .*row 40, column 'phi'"):
        read(path)
    np.testing.assert_array_equal(read(path, check_finite=False).data, bad)
    with open_source(path) as source:
        np.testing.assert_array_equal(source.read_rows(0, 40), data[:40])
        with pytest.raises(DataError, match=r"holds 1 non-finite value\(s\) \(NaN or inf\) in rows 190-209.*row 200, column 'mass'"):
            source.read_rows(190, 210)
    images = np.zeros((10, 4, 4))
    images[6, 1, 3] = np.nan
    with pytest.raises(DataError, match=r"row 6, feature index \(1, 3\)"):
        read(write(tmp_path / "img.npy", images))
    huge = np.array([[1.0], [1e300]])
    with pytest.raises(DataError, match=r"1e\+300 at row 1, column 0 is too large for float32.*float64"):
        read(write(tmp_path / "huge.npz", huge))
    np.testing.assert_array_equal(read(tmp_path / "huge.npz", dtype=np.float64).data, huge)


def test_empty_and_non_numeric_data(tmp_path):
    empty = _write_h5(tmp_path / "empty.h5", x=np.zeros((0, 3)))
    with pytest.raises(DataError, match=r"empty\.h5' holds 0 events"):
        read(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b\n")
    with pytest.raises(DataError, match=r"header\.csv' holds 0 events"):
        read(header_only)
    csv = tmp_path / "mixed.csv"
    csv.write_text("pt,label,eta\n1,0,2\n3,1,4\n5,b-jet,6\n")
    with pytest.raises(DataError, match=r"Column 'label' of '.*mixed\.csv' is not numeric.*row 2 \(line 4 of the file\) holds 'b-jet'"):
        read(csv)
    np.testing.assert_array_equal(read(csv, exclude=["label"]).data, [[1, 2], [3, 4], [5, 6]])
    strings = _write_h5(tmp_path / "str.h5", names=np.array([b"a", b"b"]))
    with pytest.raises(DataError, match=r"str\.h5.*non-numeric type"):
        read(strings)
    with pytest.raises(DataError, match=r"non-numeric"):
        write(tmp_path / "s.h5", np.array(["a", "b"]))
    assert not (tmp_path / "s.h5").exists()


@pytest.mark.parametrize("ext", ["h5", "root", "npy", "npz", "parquet"])
def test_truncated_or_foreign_files_raise_data_error(tmp_path, ext):
    data = np.random.default_rng(4).normal(size=(2000, 5))
    path = write(tmp_path / f"t.{ext}", {f"c{j}": data[:, j] for j in range(5)} if ext != "npy" else data)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(DataError, match=rf"t\.{ext}") as excinfo:
        read(path)
    assert excinfo.value.__cause__ is not None or "truncated" in str(excinfo.value)
    path.write_text("pt,eta\n1,2\n")  # a CSV file behind a binary extension
    with pytest.raises(DataError, match=rf"Cannot read '.*t\.{ext}'"):
        read(path)


def test_unknown_extension_and_bad_arguments(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("1,2\n")
    with pytest.raises(DataError, match=r"data\.txt.*'\.txt'.*\.h5.*\.root.*\.parquet"):
        read(path)
    with pytest.raises(DataError, match=r"extension"):
        write(tmp_path / "out.json", np.zeros(3))
    with pytest.raises(DataError, match=r"ROOT.*float16|float16.*ROOT|>f2"):
        write(tmp_path / "half.root", np.zeros(3, np.float16))
    assert not (tmp_path / "half.root").exists()
    good = write(tmp_path / "ok.npy", np.zeros((3, 2)))
    with pytest.raises(ConfigError, match="jagged_length"):
        read(good, jagged_length=0)
    with pytest.raises(ConfigError, match="floating"):
        read(good, dtype=np.int32)
    with pytest.raises(DataError, match=r"\.npy file holds one array and takes no key"):
        read(f"{good}:x")
    with pytest.raises(DataError, match=r"3 column names for an array of shape \(3, 2\)"):
        write(tmp_path / "bad.csv", np.zeros((3, 2)), columns=["a", "b", "c"])


# ------------------------------------------------------------------------------------------ atomicity


def _files(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())


@pytest.mark.parametrize("ext", ["h5", "root", "npz", "csv"])
def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch, ext):
    target = tmp_path / f"out.{ext}"
    write(target, {"a": np.arange(5.0), "b": np.ones(5)})
    before = target.read_bytes()
    calls = {"n": 0}

    def fail_midway(*args, **kwargs):  # let the library start writing, then fail
        calls["n"] += 1
        raise OSError(28, "No space left on device")

    library = {
        "h5": (h5py.Group, "create_dataset"),
        "root": (uproot.writing.writable.WritableTree, "extend"),
        "npz": (np, "savez"),
        "csv": (__import__("pyarrow.csv", fromlist=["csv"]), "write_csv"),
    }[ext]
    monkeypatch.setattr(*library, fail_midway)
    with pytest.raises(DataError, match=rf"Cannot write '.*out\.{ext}'.*No space left"):
        write(target, {"a": np.arange(7.0), "b": np.zeros(7)})
    assert calls["n"] == 1
    assert target.read_bytes() == before
    assert _files(tmp_path) == [f"out.{ext}"]
    with pytest.raises(DataError):
        write(tmp_path / f"new.{ext}", {"a": np.arange(7.0)})
    assert _files(tmp_path) == [f"out.{ext}"]


def test_interrupted_replace_and_permissions(tmp_path, monkeypatch):
    target = write(tmp_path / "sub" / "dir" / "x.npy", np.arange(4.0))  # parents are created
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    os.chmod(target, 0o640)
    write(target, np.arange(5.0))
    assert target.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its permissions

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write(target, np.arange(9.0))
    monkeypatch.undo()
    np.testing.assert_array_equal(np.load(target), np.arange(5.0))
    assert _files(target.parent) == ["x.npy"]


# --------------------------------------------------------------------------------------------- sources


def test_hdf5_source_row_ranges_equal_in_memory_slices(tmp_path, table):
    data, names = table
    plain = write(tmp_path / "p.h5", data)
    group = write(tmp_path / "g.h5:events", data, columns=names)
    for spec, columns in [(plain, None), (f"{group}:events", names)]:
        with open_source(spec) as source:
            assert len(source) == len(data) and source.event_shape == (4,) and source.columns == columns
            for start, stop in [(0, 1), (13, 101), (250, 257), (0, 257), (5, 5)]:
                np.testing.assert_array_equal(source.read_rows(start, stop), data[start:stop])
            chunks = list(source.iter_chunks(100))
            assert [len(c) for c in chunks] == [100, 100, 57]
            np.testing.assert_array_equal(np.concatenate(chunks), data)
            with pytest.raises(IndexError):
                source.read_rows(200, 258)
            clone = pickle.loads(pickle.dumps(source))  # e.g. sent to a DataLoader worker
            np.testing.assert_array_equal(clone.read_rows(17, 19), data[17:19])
            clone.close()


def test_array_source_and_table():
    values = np.arange(12.0).reshape(6, 2)
    source = ArraySource(values, ["a", "b"], spec="mem")
    assert len(source) == 6 and source.event_shape == (2,) and source.dtype == np.float32
    np.testing.assert_array_equal(source.read_rows(2, 4), values[2:4])
    values[3, 1] = np.nan
    with pytest.raises(DataError, match=r"'mem' holds 1 non-finite .*row 3, column 'b'"):
        list(source.iter_chunks(4))
    assert ArraySource(np.arange(3)).event_shape == (1,)
    assert len(Table(np.zeros((4, 1)), None, None, "x")) == 4


def test_read_column_for_weights(tmp_path, table):
    data, names = table
    weights = np.random.default_rng(5).uniform(0.5, 2.0, len(data))
    path = write(tmp_path / "w.h5:events", {**{n: data[:, j] for j, n in enumerate(names)}, "w": weights})
    got = read_column(f"{path}:events", "w")
    assert got.dtype == np.float64 and got.shape == (len(data),)
    np.testing.assert_array_equal(got, weights)
    features = read(f"{path}:events", exclude=["w"])
    assert features.columns == names
    np.testing.assert_array_equal(features.data, data)
    with pytest.raises(DataError, match=r"one number per event.*shape \(5,\).*'pt', 'eta'"):
        read_column(f"{path}:events")
    weights_bad = weights.copy()
    weights_bad[9] = np.nan
    bad = write(tmp_path / "wb.parquet", {"w": weights_bad})
    with pytest.raises(DataError, match=r"wb\.parquet.*row 9, column 'w'"):
        read_column(bad, "w")


def test_available_keys_per_format(tmp_path, table):
    data, names = table
    assert available_keys(write(tmp_path / "a.csv", data, columns=names)) == names
    assert available_keys(write(tmp_path / "a.parquet", data, columns=names)) == names
    assert available_keys(write(tmp_path / "a.npz", {"x": data, "y": data})) == ["x", "y"]
    assert available_keys(write(tmp_path / "a.npy", data)) == []
    root = write(tmp_path / "a.root:tree", data, columns=names)
    assert available_keys(root) == ["tree"]
    assert available_keys(f"{root}:tree") == names


_PEAK_RSS_SCRIPT = """
import json, sys, numpy as np
from hepgen.data.io import open_source, read
def reset_peak():
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
def peak():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
source = open_source(sys.argv[1])
source.read_rows(0, 10)
reset_peak()
before = peak()
total = np.zeros(source.event_shape)
for chunk in source.iter_chunks(50_000):
    total += chunk.sum(axis=0, dtype=np.float64)
streamed = peak()
source.close()
reset_peak()
before_whole = peak()
whole = read(sys.argv[1]).data  # control: loading everything must show up in the measure
print(json.dumps({"stream_growth": streamed - before, "whole_growth": peak() - before_whole,
                  "total": total.tolist()}))
"""


def _streaming_peak(spec: str) -> dict:
    """Iterate ``spec`` in chunks of 50000 rows in a fresh process; peak-RSS growth and column sums.

    Peak RSS is VmHWM after resetting it (/proc/self/clear_refs): importing hepgen (torch) leaves a
    process-lifetime peak (ru_maxrss) far above what reading data needs, which would hide growth.
    """
    if not os.access("/proc/self/clear_refs", os.W_OK):
        pytest.skip("needs Linux /proc/self/clear_refs to reset the peak-RSS counter")
    result = subprocess.run([sys.executable, "-c", _PEAK_RSS_SCRIPT, spec], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _rows_pattern(rows: int, features: int) -> tuple[np.ndarray, np.ndarray]:
    """A block of the test pattern x[i, j] = (i % 1000) + j, and the closed-form column sums of ``rows`` rows."""
    block = np.arange(250_000, dtype=np.float32)[:, None] % 1000 + np.arange(features, dtype=np.float32)
    sums = rows // 1000 * (999 * 1000 / 2) + rows * np.arange(features)
    return block, sums


def test_streaming_hdf5_peak_memory_stays_far_below_file_size(tmp_path):
    """A ~200 MB HDF5 file streamed in chunks: peak RSS grows by far less than the file size."""
    rows, features = 2_500_000, 20
    block, sums = _rows_pattern(rows, features)
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as handle:
        dataset = handle.create_dataset("x", shape=(rows, features), dtype="f4")
        for start in range(0, rows, len(block)):
            dataset[start : start + len(block)] = block
    size = path.stat().st_size
    assert size >= 200e6
    measured = _streaming_peak(str(path))
    np.testing.assert_allclose(measured["total"], sums, rtol=1e-12)
    growth = measured["stream_growth"]
    assert growth < 0.25 * size, f"streaming grew peak RSS by {growth / 1e6:.0f} MB for a {size / 1e6:.0f} MB file"
    assert measured["whole_growth"] > 0.9 * size  # the measurement does see a full load


@pytest.mark.slow  # ~5 s alone (uproot compression), up to 20 s on a loaded machine
def test_streaming_root_peak_memory_stays_far_below_data_size(tmp_path):
    """100 MB of ROOT branches (compressed on disk) streamed by entry range: peak RSS stays small."""
    rows, features = 1_250_000, 20
    block, sums = _rows_pattern(rows, features)
    path = write(tmp_path / "big.root", np.tile(block, (rows // len(block), 1)), columns=[f"c{j}" for j in range(features)])
    size = rows * features * 4
    measured = _streaming_peak(str(path))
    np.testing.assert_allclose(measured["total"], sums, rtol=1e-12)
    assert measured["stream_growth"] < 0.25 * size, f"streaming grew peak RSS by {measured['stream_growth'] / 1e6:.0f} MB"
    assert measured["whole_growth"] > 0.9 * size


def test_module_exports():
    assert set(io.__all__) >= {"parse_spec", "Table", "read", "read_column", "available_keys", "Source",
                                "ArraySource", "open_source", "write"}


def test_hdf5_nested_column_names_read_back_in_written_order(tmp_path):
    path = tmp_path / "nested.h5"
    cols = {"score": np.arange(3.0), "per/zeta": np.ones(3), "per/alpha": np.zeros(3), "per/mid": np.full(3, 2.0)}
    write(path, cols)
    table = read(f"{path}:per")
    assert table.columns == ["zeta", "alpha", "mid"]
    np.testing.assert_array_equal(table.data, np.stack([np.ones(3), np.zeros(3), np.full(3, 2.0)], axis=1))


def test_column_units_come_from_hdf5_unit_attributes(tmp_path):
    import h5py

    from hepgen.data.io import column_units

    write(tmp_path / "u.h5", {"f/pt": np.ones(3), "f/eta": np.zeros(3), "f/mass": np.ones(3)})
    with h5py.File(tmp_path / "u.h5", "a") as f:
        f["f/pt"].attrs["unit"] = "GeV"
        f["f/mass"].attrs["unit"] = "GeV"
        f["f/eta"].attrs["unit"] = ""
    assert column_units(f"{tmp_path / 'u.h5'}:f") == {"pt": "GeV", "mass": "GeV"}
    assert column_units(f"{tmp_path / 'u.h5'}:f/pt") == {"pt": "GeV"}
    np.save(tmp_path / "a.npy", np.ones((3, 2)))
    assert column_units(tmp_path / "a.npy") == {}


def test_read_opens_once_and_hands_back_units_and_columns(tmp_path):
    """read() gives the columns with the units the file records (HDF5 ``unit`` attributes, as hepgen data writes
    them), and Table.column takes one of them by name (the flags and weights of a table, read with it)."""
    n = 6
    write(tmp_path / "t.h5", {"reco/pt": np.arange(n, dtype=float), "reco/eta": np.zeros(n), "reco/pass": np.ones(n),
                              "w": np.full(n, 2.0)},
          attrs={"reco/pt": {"unit": "GeV"}, "w": {"unit": "pb"}})
    table = read(f"{tmp_path}/t.h5:reco", dtype=np.float64)
    assert table.units == {"pt": "GeV"} and table.columns == ["pt", "eta", "pass"]
    np.testing.assert_array_equal(table.column("pt"), np.arange(n))
    with pytest.raises(DataError, match="t.h5:reco' has no column 'weight'.*'pt'"):
        table.column("weight")
    assert read(f"{tmp_path}/t.h5:w").units == {"w": "pb"}
    assert read(f"{tmp_path}/t.h5:reco", columns=["eta"]).units == {}
    write(tmp_path / "t.csv", np.ones((3, 2)), columns=["a", "b"])
    assert read(tmp_path / "t.csv").units == {}


def test_an_hdf5_key_names_columns_of_a_group_a_compound_or_a_labelled_table_as_root_keys_name_branches(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3))
    write(tmp_path / "g.h5:truth", x, columns=["pt", "eta", "mass"])  # a group of 1-D columns
    got = read(f"{tmp_path / 'g.h5'}:truth/mass,pt", dtype=np.float64)
    assert got.columns == ["mass", "pt"]
    np.testing.assert_array_equal(got.data, x[:, [2, 0]])
    compound = np.zeros(20, dtype=[("a", "f8"), ("b", "f8")])
    compound["a"], compound["b"] = x[:, 0], x[:, 1]
    with h5py.File(tmp_path / "c.h5", "w") as f:
        f["events"] = compound
        f["plain"] = x
        f["plain"].attrs["columns"] = ["u", "v", "w"]
    assert read(f"{tmp_path / 'c.h5'}:events/b,a").columns == ["b", "a"]
    np.testing.assert_array_equal(read(f"{tmp_path / 'c.h5'}:plain/w,u", dtype=np.float64).data, x[:, [2, 0]])
    # the same selection as --columns; both at once must agree
    assert read(f"{tmp_path / 'g.h5'}:truth/pt,eta", columns=["pt", "eta"]).columns == ["pt", "eta"]
    with pytest.raises(DataError, match="give them once"):
        read(f"{tmp_path / 'g.h5'}:truth/pt,eta", columns=["mass"])
    with pytest.raises(DataError, match="'nosuch'"):
        read(f"{tmp_path / 'g.h5'}:truth/pt,nosuch")
    with pytest.raises(DataError, match="No key 'truth/nosuch'"):
        read(f"{tmp_path / 'g.h5'}:truth/nosuch")
