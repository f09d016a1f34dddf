"""Generator outputs describe themselves: HDF5 attributes (units per dataset and column, process, every
parameter, seed, hepgen version) written through ``hepgen.data.io.write(attrs=...)`` and read back with h5py."""

import json

import h5py
import numpy as np
import pytest

from hepgen._version import __version__
from hepgen.cli import main
from hepgen.data import io
from hepgen.errors import DataError


def _attrs(obj):
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in obj.attrs.items()}


def _strings(values):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def test_io_write_sets_attributes_on_the_file_groups_and_datasets(tmp_path):
    path = tmp_path / "a.h5"
    io.write(path, {"truth/pt": np.ones(3), "truth/eta": np.zeros(3), "w": np.ones(3)},
             attrs={"/": {"seed": 3, "parameters": '{"a": 1}'}, "truth": {"units": ["GeV", ""]},
                    "truth/pt": {"unit": "GeV"}, "w": {"unit": ""}})
    with h5py.File(path) as f:
        assert _attrs(f) == {"seed": 3, "parameters": '{"a": 1}'}
        assert _strings(f["truth"].attrs["units"]) == ["GeV", ""]
        assert f["truth/pt"].attrs["unit"] == "GeV" and f["w"].attrs["unit"] == ""
    # under a key: paths are relative to the group written, "/" is that group
    io.write(f"{tmp_path / 'b.h5'}:sample", {"x": np.ones(2)}, attrs={"/": {"seed": 1}, "x": {"unit": "MeV"}})
    with h5py.File(tmp_path / "b.h5") as f:
        assert f["sample"].attrs["seed"] == 1 and f["sample/x"].attrs["unit"] == "MeV"
    # a single array, and attributes read back by the data layer unchanged
    io.write(tmp_path / "c.h5", np.arange(4.0), attrs={"/": {"n_events": 4}})
    with h5py.File(tmp_path / "c.h5") as f:
        assert f.attrs["n_events"] == 4
    np.testing.assert_array_equal(io.read(tmp_path / "c.h5").data.ravel(), np.arange(4.0))
    # a path that is not written: a clear error and no file
    with pytest.raises(DataError, match="'nope'"):
        io.write(tmp_path / "d.h5", {"x": np.ones(2)}, attrs={"nope": {"unit": "GeV"}})
    assert not (tmp_path / "d.h5").exists()
    io.write(tmp_path / "e.npz", {"x": np.ones(2)}, attrs={"/": {"seed": 1}})  # formats without attributes ignore them
    assert np.load(tmp_path / "e.npz")["x"].tolist() == [1.0, 1.0]


def _generate(tmp_path, capsys, name, *options, n=6, seed=4):
    out = tmp_path / f"{name}.h5"
    argv = ["data", name, "-n", str(n), "-o", str(out), "--seed", str(seed)]
    for item in options:
        argv += ["--option", item]
    assert main(argv) == 0, capsys.readouterr().err
    return out


def test_smear_file_has_units_per_column_process_parameters_seed_and_version(tmp_path, capsys):
    out = _generate(tmp_path, capsys, "smear", "fake_rate=0.1")
    with h5py.File(out) as f:
        root = _attrs(f)
        assert root["generator"] == "smear" and root["seed"] == 4 and root["n_events"] == 6
        assert root["hepgen_version"] == __version__
        assert "detector" in root["process"]
        params = json.loads(root["parameters"])
        assert params["fake_rate"] == 0.1 and params["pt_min"] == 20.0 and params["reco_pt_min"] == 30.0  # defaults too
        for group in ("truth", "reco"):
            assert _strings(f[group].attrs["units"]) == ["GeV", "", "GeV", "", ""]
            assert f[f"{group}/pt"].attrs["unit"] == "GeV" and f[f"{group}/mass"].attrs["unit"] == "GeV"
            assert f[f"{group}/eta"].attrs["unit"] == ""
        assert "unit" not in f["pass_reco"].attrs


def test_calo_file_names_the_particle_and_energy_units(tmp_path, capsys):
    out = _generate(tmp_path, capsys, "calo", "particle=pi+", "energy_max=5", n=3)
    with h5py.File(out) as f:
        assert "pi+" in f.attrs["process"] and "1-5 GeV" in f.attrs["process"]
        assert json.loads(f.attrs["parameters"])["particle"] == "pi+"
        assert [f[f"layer_{i}"].attrs["unit"] for i in range(3)] == ["MeV"] * 3
        assert f["energy"].attrs["unit"] == "GeV"


def test_toys_single_table_carries_its_columns_and_units_on_the_file(tmp_path, capsys):
    out = _generate(tmp_path, capsys, "toys", "name=spirals")
    with h5py.File(out) as f:
        assert f.attrs["process"] == "toy density spirals in 2 dimensions"
        assert _strings(f.attrs["columns"]) == ["x0", "x1"] and _strings(f.attrs["units"]) == ["", ""]
        assert f["x0"].attrs["unit"] == ""
        assert json.loads(f.attrs["parameters"])["name"] == "spirals"


def test_phi4_file_has_lattice_units(tmp_path, capsys):
    out = _generate(tmp_path, capsys, "phi4", "L=4", "therm=2", "thin=1", "chains=1", n=3, seed=0)
    with h5py.File(out) as f:
        assert f["configs"].attrs["unit"] == "lattice units" and f["tau_int"].attrs["unit"] == "trajectories"
        assert "L=4" in f.attrs["process"] and f.attrs["seed"] == 0


def test_jets_units_match_its_columns():
    from hepgen.data.generators import jet_features as jf
    from hepgen.data.generators import jets

    units = jets.units()
    assert len(units["features"]) == len(jf.FEATURE_COLUMNS) == 11
    assert dict(zip(jf.FEATURE_COLUMNS, units["features"], strict=True))["mass"] == "GeV"
    assert units["constituents"] == ["GeV", "", "rad"] and jf.CONSTITUENT_COLUMNS == ["pt", "deta", "dphi"]
    assert "top jets" in jets.process(process="top") and "R=1" in jets.process(R=1.0)
