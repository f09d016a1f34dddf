"""``hepgen data import KIND FILE -o OUT``: what the API converts, consumed by fit and roc; wrong files exit 2
naming the file and the first missing column, with no traceback and nothing written."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from hepgen.data import importers
from tests.data.jet_dataset_files import (
    jetnet_jets,
    lhco_events,
    top_tagging_jets,
    write_jetnet,
    write_lhco,
    write_top_tagging,
)
from tests.helpers import run_cli, run_cli_for_error


@pytest.fixture(scope="module")
def top_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("top") / "test.h5"
    data, labels = top_tagging_jets(40, seed=7)
    write_top_tagging(path, data, labels)
    return path


def test_import_writes_what_the_api_reads_and_roc_and_fit_consume_it(tmp_path, capsys, top_file):
    out = tmp_path / "jets.h5"
    code, _, err = run_cli(capsys, "data", "import", "top-tagging", top_file, "-o", out)
    assert code == 0, err
    assert "qcd 20 jets, top 20 jets" in err
    expected = importers.read_top_tagging(top_file)
    with h5py.File(out, "r") as handle:
        for group, arrays in expected.items():
            for name, array in arrays.items():
                np.testing.assert_array_equal(handle[group][name][()], array)
    report = tmp_path / "roc"
    code, _, err = run_cli(capsys, "roc", f"{out}:qcd/features", f"top={out}:top/features", "--score", "mass",
                           "--report", report, "--bootstrap", 5, "-q")
    assert code == 0, err
    assert 0 <= json.loads((report / "metrics.json").read_text())["signals"]["top"]["auc"] <= 1
    code, _, err = run_cli(capsys, "fit", "gaussian", f"{out}:qcd/features", "--exclude", "n_constituents",
                           "--out", tmp_path / "run", "-q")
    assert code == 0, err


def test_rows_quiet_auto_and_the_other_kinds(tmp_path, capsys, top_file):
    out = tmp_path / "first.h5"
    code, _, err = run_cli(capsys, "data", "import", "auto", top_file, "-o", out, "-n", 3, "-q")
    assert code == 0 and err == ""
    with h5py.File(out, "r") as handle:
        assert sum(len(handle[g]["index"]) for g in handle) == 3
    write_lhco(tmp_path / "lhco.h5", lhco_events(2))
    code, _, err = run_cli(capsys, "data", "import", "lhco", tmp_path / "lhco.h5", "-o", tmp_path / "dijets.h5",
                           "--option", "R=0.8", "--option", "max_constituents=20")
    assert code == 0, err
    with h5py.File(tmp_path / "dijets.h5", "r") as handle:
        assert handle["signal/jet1/constituents"].shape == (1, 20, 3)
        assert json.loads(handle.attrs["parameters"])["R"] == 0.8
    pf, jets, _ = jetnet_jets(2)
    write_jetnet(tmp_path / "z150.hdf5", pf, jets)
    code, _, err = run_cli(capsys, "data", "import", "jetnet", tmp_path / "z150.hdf5", "-o", tmp_path / "z.h5")
    assert code == 0 and "z 2 jets" in err


@pytest.mark.parametrize("kind, drop, column", [("top-tagging", ["PY_3"], "PY_3"),
                                                ("top-tagging", ["is_signal_new"], "is_signal_new"),
                                                ("auto", ["PY_3"], "PY_3")])
def test_wrong_columns_exit_2_naming_file_and_column(tmp_path, capsys, kind, drop, column):
    path, out = tmp_path / "bad.h5", tmp_path / "out.h5"
    data, labels = top_tagging_jets(2)
    write_top_tagging(path, data, labels, drop=drop)
    code, err = run_cli_for_error(capsys, ["data", "import", kind, path, "-o", out])
    assert code == 2
    assert str(path) in err and f"'{column}'" in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))


def test_other_refusals_exit_2(tmp_path, capsys, top_file):
    out = tmp_path / "out.h5"
    cases = [
        (["data", "import", "lhco", top_file, "-o", out], "no pandas key 'df'"),
        (["data", "import", "jetnet", top_file, "-o", out], "no dataset 'particle_features'"),
        (["data", "import", "top-tagging", tmp_path / "missing.h5", "-o", out], "does not exist"),
        (["data", "import", "top-tagging", top_file, "-o", tmp_path / "out.csv"], "HDF5"),
        (["data", "import", "top-tagging", top_file, "-o", out, "--option", "chunk_size=abc"], "chunk_size"),
        (["data", "import", "top-tagging", top_file, "-o", out, "-n", 0], "-n"),
        (["data", "import", "toptag", top_file, "-o", out], "invalid choice"),
        (["data", "import", "top-tagging", top_file, "-o", top_file], "the file being imported"),
    ]
    (tmp_path / "text.h5").write_text("not hdf5")
    cases.append((["data", "import", "auto", tmp_path / "text.h5", "-o", out], "not a readable HDF5 file"))
    for argv, words in cases:
        code, err = run_cli_for_error(capsys, argv)
        assert code == 2, (argv, err)
        assert words in err and "Traceback" not in err, (argv, err)
        assert not out.exists()


def test_data_help_mentions_import(capsys):
    with pytest.raises(SystemExit):
        run_cli(capsys, "data", "--help")
    assert "hepgen data import KIND FILE" in capsys.readouterr().out
