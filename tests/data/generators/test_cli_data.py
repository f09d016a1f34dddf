"""``hepgen data NAME -n N -o OUT --seed S`` for every generator: the file holds exactly what the API's
``generate(N, seed=S, **options)`` returns (so the CLI is deterministic by seed), columns named; and the
jets generator without Pythia/FastJet exits 2 saying how to install them and where the shipped sample is."""

import importlib.util
import sys

import h5py
import numpy as np
import pytest

from hepgen.cli import main
from hepgen.data.generators import get_generator, jets
from hepgen.data.generators.toys import resolve_workers, usable_cores
from hepgen.errors import ConfigError

HAVE_PYTHIA = all(importlib.util.find_spec(m) is not None for m in ("pythia8mc", "fastjet"))

CASES = [
    ("toys", ["name=gaussian-mixture", "dim=3"], {"name": "gaussian-mixture", "dim": 3}),
    ("smear", ["fake_rate=0.1"], {"fake_rate": 0.1}),
    ("calo", ["particle=pi+", "energy_max=5"], {"particle": "pi+", "energy_max": 5.0}),
    ("phi4", ["L=4", "therm=5", "thin=2", "chains=2"], {"L": 4, "therm": 5, "thin": 2, "chains": 2}),
    pytest.param("jets", ["process=w", "block_size=2", "progress=false"],
                 {"process": "w", "block_size": 2, "progress": False},
                 marks=pytest.mark.skipif(not HAVE_PYTHIA, reason="pythia8mc/fastjet not importable")),
]


def _read_h5(path):
    out = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


@pytest.mark.parametrize("name, argv, options", CASES)
def test_cli_writes_what_the_api_generates(tmp_path, capsys, name, argv, options):
    out = tmp_path / f"{name}.h5"
    args = ["data", name, "-n", "6", "-o", str(out), "--seed", "4"]
    for item in argv:
        args += ["--option", item]
    assert main(args) == 0, capsys.readouterr().err
    assert f"wrote {out}" in capsys.readouterr().err
    generator = get_generator(name)
    api = generator.generate(6, seed=4, **options)
    names = generator.columns(**options) if hasattr(generator, "columns") else {}
    stored = _read_h5(out)
    expected = {}
    for key, value in api.items():
        if key in names and value.ndim == 2:
            if len(api) == 1:  # a single table is written as its columns
                expected.update({column: value[:, j] for j, column in enumerate(names[key])})
            else:
                expected.update({f"{key}/{column}": value[:, j] for j, column in enumerate(names[key])})
        elif value.ndim > 0 or key not in names:
            expected[key] = value
    assert sorted(stored) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(stored[key], value, err_msg=key)


def test_jets_without_pythia_exits_2_with_install_hint_and_shipped_sample(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pythia8mc", None)  # import now raises ImportError
    out = tmp_path / "jets.h5"
    code = main(["data", "jets", "-n", "5", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "pip install pythia8mc==8.317.2" in err and "fastjet" in err
    assert str(jets.SHIPPED_SAMPLE) in err and "load_sample" in err
    assert not out.exists()
    assert jets.load_sample("qcd")["features"].shape == (2500, 11)  # and the shipped sample serves


def test_workers_minus_one_means_every_usable_core():
    assert resolve_workers(None) is None and resolve_workers(3) == 3
    assert resolve_workers(-1) == usable_cores() >= 1
    for bad in (0, -2):
        with pytest.raises(ConfigError, match="'workers'"):
            resolve_workers(bad)
    assert jets.resolve_options(workers="-1")["workers"] == -1
    with pytest.raises(ConfigError, match="'workers'"):
        jets.resolve_options(workers=0)
