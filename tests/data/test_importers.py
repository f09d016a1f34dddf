"""hepgen.data.importers: the field's jet datasets (top tagging, LHC Olympics 2020, JetNet) in hepgen's jet layout.

Small files are written in exactly the published layouts (pandas + PyTables, fixed and table format; JetNet's
HDF5) and the imported numbers are checked against independent computations: jet pT/mass/multiplicity from
the four-vectors by hand, m_jj from a direct FastJet clustering, a JetNet jet's mass rebuilt from its
relative coordinates; and the refusals name the file, the column and the row, writing nothing.
"""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from hepgen.data import importers, io
from hepgen.data.generators import jet_features as jf
from hepgen.errors import ConfigError, DataError
from tests.data.jet_dataset_files import (
    jetnet_jets,
    lhco_events,
    massless,
    top_tagging_jets,
    write_jetnet,
    write_lhco,
    write_top_tagging,
)

FEATURES = jf.FEATURE_COLUMNS


def _by_hand(constituents_e_px_py_pz):
    """pt, eta, mass, multiplicity of the sum of the non-zero constituents, with numpy only."""
    real = constituents_e_px_py_pz[constituents_e_px_py_pz[:, 0] > 0]
    e, px, py, pz = real.sum(axis=0)
    pt = np.hypot(px, py)
    return pt, np.arcsinh(pz / pt), np.sqrt(e**2 - px**2 - py**2 - pz**2), len(real)


@pytest.mark.parametrize("fmt", ["fixed", "table"])
def test_top_tagging_jets_match_four_vectors_by_hand(tmp_path, fmt):
    data, labels = top_tagging_jets(3)
    path = tmp_path / "test.h5"
    write_top_tagging(path, data, labels, fmt=fmt)
    out = importers.read_top_tagging(path)
    assert sorted(out) == ["qcd", "top"]
    assert out["qcd"]["index"].tolist() == [0, 2] and out["top"]["index"].tolist() == [1]
    assert out["qcd"]["labels"].tolist() == [0, 0] and out["top"]["labels"].tolist() == [1]
    for group in out.values():
        assert group["constituents"].shape == (len(group["index"]), 30, 3)
        assert group["images"].shape == (len(group["index"]), 40, 40)
        assert group["features"].shape == (len(group["index"]), 11)
        assert np.all(group["weights"] == 1)
        for jet, row in enumerate(group["index"]):
            pt, eta, mass, n = _by_hand(data[row])
            f = group["features"][jet]
            np.testing.assert_allclose(f[FEATURES.index("pt")], pt, rtol=1e-5)
            np.testing.assert_allclose(f[FEATURES.index("eta")], eta, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(f[FEATURES.index("mass")], mass, rtol=1e-4)
            assert f[FEATURES.index("n_constituents")] == n
            # constituents: the hardest min(n, 30) pTs, in order, and the mask marks them
            real = data[row][data[row, :, 0] > 0]
            pts = np.sort(np.hypot(real[:, 1], real[:, 2]))[::-1][:30]
            np.testing.assert_allclose(group["constituents"][jet, : len(pts), 0], pts, rtol=1e-5)
            assert group["mask"][jet].sum() == len(pts) and not group["mask"][jet, len(pts):].any()
            # the image holds all the jet's pT (every constituent lies well inside +-1.2)
            np.testing.assert_allclose(group["images"][jet].sum(), np.hypot(real[:, 1], real[:, 2]).sum(), rtol=1e-4)


def test_same_numbers_as_the_generator_code_and_independent_of_chunks(tmp_path):
    data, labels = top_tagging_jets(5, seed=3)
    path = tmp_path / "t.h5"
    write_top_tagging(path, data, labels)
    whole = importers.read_jets("top-tagging", path)
    chunked = importers.read_jets("top-tagging", path, chunk_size=2)
    for group in whole:
        for name in whole[group]:
            np.testing.assert_array_equal(whole[group][name], chunked[group][name])
    row = int(whole["top"]["index"][0])
    p4 = data[row][data[row, :, 0] > 0][:, [1, 2, 3, 0]]
    expected = jf.jet_arrays(p4, p4.sum(axis=0), 0.8)
    for name in ("constituents", "images", "features"):
        np.testing.assert_allclose(whole["top"][name][0], expected[name], rtol=1e-6, atol=1e-6)
    parallel = importers.read_jets("top-tagging", path, chunk_size=1, workers=2)
    for group in whole:
        for name in whole[group]:
            np.testing.assert_array_equal(whole[group][name], parallel[group][name])
    first_two = importers.read_jets("top-tagging", path, stop=2)
    assert sum(len(g["index"]) for g in first_two.values()) == 2


def test_lhco_dijet_mass_matches_a_direct_fastjet_clustering(tmp_path):
    import fastjet

    events = lhco_events(4)
    path = tmp_path / "events_anomalydetection.h5"
    write_lhco(path, events)
    out = importers.read_lhco(path)
    assert sorted(out) == ["background", "signal"]
    for group in out.values():
        for event, row in enumerate(group["index"]):
            hadrons = events[row, :2100].reshape(700, 3)
            hadrons = hadrons[hadrons[:, 0] > 0]
            p4 = massless(hadrons[:, 0], hadrons[:, 1], hadrons[:, 2])
            sequence = fastjet.ClusterSequence([fastjet.PseudoJet(*map(float, p)) for p in p4],
                                               fastjet.JetDefinition(fastjet.antikt_algorithm, 1.0))
            jets = fastjet.sorted_by_pt(sequence.inclusive_jets(0.0))[:2]
            total = jets[0] + jets[1]
            np.testing.assert_allclose(group["mjj"][event], total.m(), rtol=1e-5)
            for j, jet in enumerate(jets):
                f = group[f"jet{j + 1}/features"][event]
                np.testing.assert_allclose(f[FEATURES.index("pt")], jet.pt(), rtol=1e-5)
                np.testing.assert_allclose(f[FEATURES.index("mass")], jet.m(), rtol=1e-4)
                assert f[FEATURES.index("n_constituents")] == len(jet.constituents())
        assert np.all(group["labels"] == (1 if group is out["signal"] else 0))


def test_lhco_black_box_without_labels_is_one_group(tmp_path):
    path = tmp_path / "bb.h5"
    pd.DataFrame(lhco_events(2)[:, :2100]).to_hdf(path, key="df", format="table")
    out = importers.read_jets(None, path)
    assert list(out) == ["events"] and "labels" not in out["events"]


def test_jetnet_mass_rebuilt_from_relative_coordinates(tmp_path):
    pf, jets, truth = jetnet_jets(3)
    path = tmp_path / "t.hdf5"
    write_jetnet(path, pf, jets)
    out = importers.read_jetnet(path)
    assert list(out) == ["top"]
    group = out["top"]
    np.testing.assert_allclose(group["features"][:, :3], jets[:, :3], rtol=1e-5, atol=1e-6)
    for jet in range(3):
        c = group["constituents"][jet][group["mask"][jet]].astype(np.float64)
        rebuilt = massless(c[:, 0], c[:, 1] + jets[jet, 1], c[:, 2]).sum(axis=0)
        mass = np.sqrt(rebuilt[3] ** 2 - rebuilt[:3] @ rebuilt[:3])
        true_mass = np.sqrt(truth[jet, 3] ** 2 - truth[jet, :3] @ truth[jet, :3])
        np.testing.assert_allclose(mass, true_mass, rtol=1e-3)
        np.testing.assert_allclose(c[:, 0].sum(), pf[jet, :, 2].sum() * jets[jet, 0], rtol=1e-5)
    # the type from the option when the file name does not tell it
    other = tmp_path / "jets.hdf5"
    write_jetnet(other, pf, jets)
    with pytest.raises(ConfigError, match="jet_type"):
        importers.read_jetnet(other)
    assert list(importers.read_jetnet(other, jet_type="g")) == ["gluon"]


def test_import_writes_the_jet_layout_atomically(tmp_path):
    data, labels = top_tagging_jets(3)
    path, out = tmp_path / "val.h5", tmp_path / "jets.h5"
    write_top_tagging(path, data, labels)
    assert importers.import_jets("top-tagging", path, out, progress=False) == {"qcd": 2, "top": 1}
    expected = importers.read_top_tagging(path)
    with h5py.File(out, "r") as handle:
        assert handle.attrs["dataset"] == "top-tagging" and handle.attrs["source_rows"] == 3
        assert list(handle["qcd"]["features"].attrs["columns"]) == FEATURES
        assert handle["qcd"]["features"].attrs["units"][FEATURES.index("mass")] == "GeV"
        for name, array in expected["qcd"].items():
            np.testing.assert_array_equal(handle["qcd"][name][()], array)
    # read back as DATA, and as the shipped sample is read
    table = io.read(f"{out}:top/features")
    assert table.columns == FEATURES and table.units["pt"] == "GeV"
    from hepgen.data.generators.jets import load_sample

    assert load_sample("qcd", out)["images"].shape == (2, 40, 40)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_dataset_files_read_directly_as_data(tmp_path, monkeypatch):
    data, labels = top_tagging_jets(3)
    path = tmp_path / "train.h5"
    write_top_tagging(path, data, labels)
    imported = importers.read_top_tagging(path)
    np.testing.assert_array_equal(io.read(f"{path}:qcd/features").data, imported["qcd"]["features"])
    masses = io.read(f"{path}:qcd/features/mass").data
    np.testing.assert_array_equal(masses[:, 0], imported["qcd"]["features"][:, FEATURES.index("mass")])
    assert io.read(f"{path}:top/images").data.shape == (1, 40, 40)
    with pytest.raises(DataError, match="qcd/features"):
        io.read(path)  # no key: the message lists what there is
    pf, jets, _ = jetnet_jets(2)
    write_jetnet(tmp_path / "q.hdf5", pf, jets)
    assert io.read(f"{tmp_path / 'q.hdf5'}:particle_features").data.shape == (2, 30, 4)  # the raw arrays as before
    assert io.read(f"{tmp_path / 'q.hdf5'}:quark/features").data.shape == (2, 11)
    monkeypatch.setattr(importers, "DIRECT_MAX_ROWS", 2)
    with pytest.raises(DataError, match="hepgen data import top-tagging"):
        io.read(f"{path}:qcd/features")


@pytest.mark.parametrize("drop, missing", [(["PZ_7"], "PZ_7"), (["is_signal_new"], "is_signal_new"),
                                           ([f"E_{i}" for i in range(200)], "E_0"),
                                           # an E_i in the middle: not a file of 5 constituents
                                           (["E_5"], "E_5"), (["E_199"], "E_199")])
def test_wrong_columns_name_the_file_and_the_first_missing_column(tmp_path, drop, missing):
    data, labels = top_tagging_jets(2)
    path, out = tmp_path / "bad.h5", tmp_path / "out.h5"
    write_top_tagging(path, data, labels, drop=drop)
    with pytest.raises(DataError) as error:
        importers.import_jets("top-tagging", path, out, progress=False)
    assert str(path) in str(error.value) and f"'{missing}'" in str(error.value)
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))


def test_lhco_missing_column_and_wrong_key(tmp_path):
    path = tmp_path / "short.h5"
    pd.DataFrame(lhco_events(2)[:, :1500]).to_hdf(path, key="df", format="fixed")
    with pytest.raises(DataError, match="no column '1500'"):
        importers.read_lhco(path)
    data, labels = top_tagging_jets(2)
    write_top_tagging(tmp_path / "top.h5", data, labels)
    with pytest.raises(DataError, match="no pandas key 'df'.*top-tagging"):
        importers.read_lhco(tmp_path / "top.h5")
    with pytest.raises(DataError, match="not a JetNet file.*particle_features"):
        importers.read_jetnet(tmp_path / "top.h5")


def test_empty_files_nans_and_bad_labels_are_refused_naming_row_and_column(tmp_path):
    data, labels = top_tagging_jets(4)
    empty = tmp_path / "empty.h5"
    write_top_tagging(empty, data[:0], labels[:0])
    with pytest.raises(DataError, match="no rows"):
        importers.read_top_tagging(empty)
    nan = data.copy()
    nan[2, 3, 1] = np.nan
    write_top_tagging(tmp_path / "nan.h5", nan, labels)
    out = tmp_path / "out.h5"
    with pytest.raises(DataError, match=r"column 'PX_3' holds nan in row 2"):
        importers.import_jets("top-tagging", tmp_path / "nan.h5", out, progress=False, chunk_size=1)
    assert not out.exists()
    with pytest.raises(DataError, match=r"column 'PX_3' holds nan in row 2"):  # raised in a worker process
        importers.import_jets("top-tagging", tmp_path / "nan.h5", out, progress=False, chunk_size=1, workers=2)
    assert not out.exists()
    write_top_tagging(tmp_path / "label.h5", data, [0, 1, 2, 0])
    with pytest.raises(DataError, match="'is_signal_new' holds 2 in row 2"):
        importers.read_top_tagging(tmp_path / "label.h5")
    pf, jets, _ = jetnet_jets(2)
    jets[1, 0] = np.inf
    write_jetnet(tmp_path / "w.hdf5", pf, jets)
    with pytest.raises(DataError, match="jet_features pt.*row 1"):
        importers.read_jetnet(tmp_path / "w.hdf5")


def test_bad_options_and_kinds(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset kind"):
        importers.read_jets("toptag", tmp_path / "x.h5")
    with pytest.raises(ConfigError, match="R = 0.8"):
        importers.resolve_options("top-tagging", R=1.0)
    with pytest.raises(ConfigError, match="max_constituents"):
        importers.resolve_options("lhco", max_constituents=0)
    with pytest.raises(DataError, match="does not exist"):
        importers.read_jets("lhco", tmp_path / "missing.h5")
