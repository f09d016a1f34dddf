"""``hepgen data NAME -n N -o OUT --seed S`` for every generator: the file holds exactly what the API's
``generate(N, seed=S, **options)`` returns (so the CLI is deterministic by seed), columns named; and the
jets generator without Pythia/FastJet exits 2 saying how to install them and where the shipped sample is."""

import sys

import h5py
import numpy as np
import pytest

from hepgen.cli import main
from hepgen.data.generators import get_generator, jets
from hepgen.data.generators.shared import resolve_workers, usable_cores
from hepgen.errors import ConfigError

HAVE_PYTHIA = sys.platform != "win32"  # pythia8mc and fastjet are dependencies everywhere else

CASES = [
    ("toys", ["name=gaussian-mixture", "dim=3"], {"name": "gaussian-mixture", "dim": 3}),
    ("smear", ["fake_rate=0.1"], {"fake_rate": 0.1}),
    ("calo", ["particle=pi+", "energy_max=5"], {"particle": "pi+", "energy_max": 5.0}),
    ("phi4", ["L=4", "therm=5", "thin=2", "chains=2"], {"L": 4, "therm": 5, "thin": 2, "chains": 2}),
    pytest.param("jets", ["process=w", "block_size=2", "progress=false"],
                 {"process": "w", "block_size": 2, "progress": False},
                 marks=pytest.mark.skipif(not HAVE_PYTHIA, reason="pythia8mc/fastjet are not installed on Windows")),
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


# ---- hepgen data --help and hepgen data NAME --help ----

from hepgen.data.generators import GENERATORS, SUMMARIES


def _help(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", *argv])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    return out


def test_data_help_lists_every_generator(capsys):
    out = _help(capsys, "--help")
    assert sorted(SUMMARIES) == sorted(GENERATORS)
    for name, summary in SUMMARIES.items():
        assert f"  {name:<7} {summary}" in out
    assert "hepgen data NAME --help" in out


# what a physicist looks for, written out by hand (not read from OPTIONS): key, default, unit
KNOWN = {
    "smear": [("pt_min", "20.0", "GeV"), ("pt_max", "1000.0", "GeV"), ("reco_pt_min", "30.0", "GeV"),
              ("stochastic", "1.0", "sqrt(GeV)"), ("fake_rate", "0.0", None)],
    "calo": [("particle", "e+", None), ("energy_min", "1.0", "GeV"), ("energy_max", "100.0", "GeV"),
             ("noise", "1.0", "MeV"), ("workers", "none", None)],
    "jets": [("process", "qcd", None), ("ptmin", "550.0", "GeV"), ("ptmax", "650.0", "GeV"), ("R", "0.8", None)],
    "phi4": [("L", "8", "sites"), ("m2", "-4.0", "lattice units"), ("lam", "8.0", None), ("thin", "10", "trajectories")],
    "toys": [("name", "moons", None), ("dim", "2", None), ("noise", "none", None)],
}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generator_help_lists_its_options_with_defaults_and_units(capsys, name):
    out = _help(capsys, name, "--help")
    assert "usage: hepgen data" in out and SUMMARIES[name] in out
    table = out[out.index("options (--option KEY=VALUE"):].splitlines()[1:]
    assert table[0].split() == ["KEY", "TYPE", "DEFAULT", "UNIT", "DESCRIPTION"]
    rows = {line.split()[0]: line for line in table[1:] if line.strip()}
    module = get_generator(name)
    assert list(rows) == list(module.OPTIONS)  # every option, in order, nothing else
    for key, option in module.OPTIONS.items():
        kind = "list" if option.type is tuple else option.type.__name__
        assert option.help and option.help in rows[key] and f" {kind} " in rows[key]
    for key, default, unit in KNOWN[name]:
        assert rows[key].split()[2] == default, rows[key]
        columns = rows[key].split(module.OPTIONS[key].help)[0]  # KEY TYPE DEFAULT UNIT
        assert (f"[{unit}]" in columns) if unit else ("[" not in columns), rows[key]
    # an option whose description speaks of GeV or MeV has that unit in the UNIT column
    for key, option in module.OPTIONS.items():
        for unit in ("GeV", "MeV"):
            if f"in {unit}" in option.help or f"[{unit}]" in option.help:
                assert module.OPTION_UNITS.get(key) == unit, key


def test_help_for_an_unknown_generator_names_the_valid_ones(capsys):
    out = _help(capsys, "nosuch", "--help")
    assert "unknown data generator 'nosuch'" in out and "smear" in out


def test_unknown_option_points_to_the_help(tmp_path, capsys):
    code = main(["data", "smear", "-n", "5", "-o", str(tmp_path / "x.h5"), "--option", "ptmin=3"])
    err = capsys.readouterr().err
    assert code == 2 and "did you mean 'pt_min'" in err and "hepgen data smear --help" in err
    assert not (tmp_path / "x.h5").exists()


# -- #26: every option parsed and checked before any work, exit 2 naming it, nothing written -----------------
BAD_OPTIONS = [
    ("smear", "fake_rate=abc", ["fake_rate", "'abc'"]),
    ("smear", "fake_rate=2", ["fake_rate", "<= 1"]),
    ("phi4", "L=abc", ["'L'", "integer", "'abc'"]),
    ("phi4", "L=2.5", ["'L'", "integer", "'2.5'"]),
    ("phi4", "L=1", ["'L'", ">= 2", "got 1"]),
    ("jets", "truth_match=maybe", ["truth_match", "true or false", "'maybe'"]),
    ("toys", "name=moonz", ["'name'", "did you mean 'moons'"]),
    ("calo", "vary=absorber_mm=3:1", ["vary", "LOW must be < HIGH"]),
    ("calo", "vary=absorber=1:2", ["vary", "absorber_mm"]),
    ("calo", "max_spots=" + "9" * 5000, ["max_spots"]),
]


@pytest.mark.parametrize("name, option, words", BAD_OPTIONS)
def test_a_bad_option_exits_2_naming_it_before_any_work(tmp_path, capsys, monkeypatch, name, option, words):
    from tests.helpers import run_cli_for_error

    generator = get_generator(name)
    monkeypatch.setattr(generator, "generate", lambda *a, **k: pytest.fail("work started before the check"))
    out = tmp_path / "out.h5"
    code, err = run_cli_for_error(capsys, ["data", name, "-n", "5", "-o", out, "--option", option])
    assert code == 2 and "Traceback" not in err
    for word in words:
        assert word in err, err
    assert len(err) < 600  # the value is quoted as a short excerpt
    assert list(tmp_path.iterdir()) == []


def test_an_integer_option_refuses_a_fraction_and_a_bool_refuses_other_words():
    from hepgen.data.generators import phi4

    with pytest.raises(ConfigError, match="'L'"):
        phi4.generate(4, L=2.5)
    with pytest.raises(ConfigError, match="truth_match"):
        jets.resolve_options(truth_match="maybe")
    assert jets.resolve_options(truth_match="no")["truth_match"] is False


def test_calo_vary_reads_the_one_range_grammar_and_the_old_spelling_with_a_warning():
    from hepgen.data.generators.calo import parse_vary

    assert parse_vary("absorber_mm=0.5:4,layer_1_mm=150:650") == {"absorber_mm": (0.5, 4.0),
                                                                    "layer_1_mm": (150.0, 650.0)}
    with pytest.warns(DeprecationWarning, match="absorber_mm=0.5:4"):
        assert parse_vary("absorber_mm:0.5:4") == {"absorber_mm": (0.5, 4.0)}
