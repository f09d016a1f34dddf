"""Shower files of the wrong layout: read_showers names the file and the dataset, and every CLI entry point that
reads showers (compare, fit, score) exits 2 with that message and no traceback, writing nothing."""

import h5py
import numpy as np
import pytest

from hepgen.calo.shower_layout import (
    LAYERS,
    find_layout,
    is_shower_file,
    read_showers,
    write_showers,
)
from hepgen.cli import main
from hepgen.data.generators import calo
from hepgen.errors import DataError


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    path = tmp_path_factory.mktemp("showers") / "good.h5"
    sim = calo.generate(30, seed=4)
    write_showers(path, {k: sim[k] for k in LAYERS}, sim["energy"])
    return path, sim


def _write(path, **arrays):
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f[k] = v
    return path


def _layers(n=6, **override):
    out = {k: np.zeros((n, *s), dtype=np.float32) for k, s in LAYERS.items()}
    out.update(override)
    return out


def test_round_trip_and_the_layouts_it_finds(good, tmp_path):
    path, sim = good
    back = read_showers(path)
    for k in LAYERS:
        np.testing.assert_array_equal(back.layers[k], sim[k])
    np.testing.assert_array_equal(back.energy, sim["energy"])
    # hepgen sample's layout: layers in samples/, the context column beside them
    _write(tmp_path / "s.h5", **{f"samples/{k}": v for k, v in _layers().items()}, energy=np.full(6, 5.0))
    assert find_layout(tmp_path / "s.h5") == (str(tmp_path / "s.h5"), "samples", "energy")
    assert len(read_showers(tmp_path / "s.h5")) == 6
    assert not is_shower_file(tmp_path / "missing.h5") and not is_shower_file(__file__)


@pytest.mark.parametrize("case, arrays, message", [
    ("no_layers", {"x": np.zeros((6, 3))},
     r"no_layers\.h5 holds no showers: expected datasets layer_0, layer_1, layer_2.*it has x"),
    ("one_missing", {k: v for k, v in _layers().items() if k != "layer_2"} | {"energy": np.ones(6)},
     r"one_missing\.h5 holds no showers.*it has energy, layer_0, layer_1"),
    ("no_energy", _layers(), r"no_energy\.h5: the layers are there but no incident energy dataset 'energy'"),
    ("shape", _layers(layer_0=np.zeros((6, 3, 95))) | {"energy": np.ones(6)},
     r"shape\.h5:layer_0 has showers of shape \(3, 95\), expected \(3, 96\)"),
    ("flat", _layers(layer_2=np.zeros((6, 72))) | {"energy": np.ones(6)},
     r"flat\.h5:layer_2 has showers of shape \(72,\), expected \(12, 6\)"),
    ("counts", _layers(layer_1=np.zeros((5, 12, 12))) | {"energy": np.ones(6)},
     r"counts\.h5: the layers and the energy have different numbers of showers: .*'layer_1': 5"),
    ("energy", _layers() | {"energy": np.array([1.0, 2, 0, 4, 5, 6])},
     r"energy\.h5:energy: the incident energy must be positive; row 2 is 0\.0"),
    ("nan", _layers(layer_1=np.where(np.arange(6)[:, None, None] == 3, np.nan, np.zeros((6, 12, 12))))
     | {"energy": np.ones(6)}, r"nan\.h5:layer_1 holds NaN/inf cell energies; the first in row 3"),
])
def test_a_file_of_the_wrong_layout_is_a_data_error_naming_file_and_dataset(good, tmp_path, capsys, case, arrays,
                                                                            message):
    bad = _write(tmp_path / f"{case}.h5", **arrays)
    with pytest.raises(DataError, match=message):
        read_showers(bad)
    # hepgen compare: as the reference, as the candidate and as the floor
    for argv in ([str(bad), str(good[0])], [str(good[0]), str(bad)], [str(good[0]), str(good[0]), "--floor", str(bad)]):
        report = tmp_path / f"report_{case}"
        assert main(["compare", *argv, "--showers", "--report", str(report), "-q"]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and bad.name in err, err
        assert not report.exists()


def test_a_missing_shower_file_is_named(good, tmp_path, capsys):
    with pytest.raises(DataError, match=r"nothere\.h5: no such file"):
        read_showers(tmp_path / "nothere.h5")
    assert main(["compare", str(good[0]), str(tmp_path / "nothere.h5"), "--showers", "-q"]) == 2
    assert "nothere.h5" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["calo-gan", "calo-flow"])
def test_fit_on_the_wrong_data_exits_2_and_writes_no_run(good, tmp_path, capsys, name):
    table = _write(tmp_path / "table.h5", x=np.zeros((20, 4)), energy=np.ones(20))
    run = tmp_path / "run"
    # single-array events: not showers
    assert main(["fit", name, f"{table}:x", "--context", f"{table}:energy", "--out", str(run), "--epochs", "1",
                 "-q"]) == 2
    assert "several layers" in capsys.readouterr().err and not run.exists()
    # showers without the energy condition
    assert main(["fit", name, str(good[0]), "--out", str(run), "--epochs", "1", "-q"]) == 2
    err = capsys.readouterr().err
    assert "--context energy" in err and "Traceback" not in err and not run.exists()
    # showers of the wrong layout, as a shower file with the energy beside the layers
    bad = _write(tmp_path / "bad.h5", **_layers(20, layer_1=np.zeros((19, 12, 12))), energy=np.ones(20))
    assert main(["fit", name, str(bad), "--context", "energy", "--out", str(run), "--epochs", "1", "-q"]) == 2
    err = capsys.readouterr().err
    assert "bad.h5" in err and "Traceback" not in err and not run.exists(), err


# -- incident energies: physical everywhere, and the training range --------------------------------------------------
def test_training_energies_must_be_positive_naming_the_file_column_and_row():
    from hepgen.calo.shower_layout import check_training_energy

    context = np.array([[10.0], [20.0], [-20.0], [0.0]])
    with pytest.raises(DataError, match=r"sim\.h5: column 'E_inc' .* is -20 at row 2; calo-gan"):
        check_training_energy(context, ["E_inc"], "sim.h5", "calo-gan")
    context[2, 0] = np.nan
    with pytest.raises(DataError, match="is nan at row 2"):
        check_training_energy(context, None, "sim.h5", "calo-flow")
    assert check_training_energy(np.array([[3.0], [40.0], [7.0]]), ["energy"], "x", "m") == (3.0, 40.0)


def test_generation_energies_physical_and_within_a_factor_of_the_training_range():
    import torch

    from hepgen.calo.shower_layout import EXTRAPOLATION_FACTOR, check_incident_energy
    from hepgen.errors import ConfigError

    for bad in (-5.0, 0.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="must be a positive number of GeV"):
            check_incident_energy(torch.tensor([bad]), "calo-flow")
        with pytest.raises(ConfigError, match="must be a positive number of GeV"):  # extrapolating or not
            check_incident_energy(torch.tensor([bad]), "calo-flow", (1.0, 100.0), extrapolate=True)
    with pytest.raises(ConfigError, match=r"row 2"):
        check_incident_energy(torch.tensor([5.0, 6.0, -1.0]), "calo-gan")
    low, high = 2.0, 50.0
    inside = torch.tensor([low / EXTRAPOLATION_FACTOR, 1.0, 30.0, high * EXTRAPOLATION_FACTOR])
    check_incident_energy(inside, "calo-gan", (low, high))  # up to the factor: allowed
    for far in (0.99 / EXTRAPOLATION_FACTOR * low, 1.01 * EXTRAPOLATION_FACTOR * high, 1e9):
        with pytest.raises(ConfigError, match=r"far outside the training range 2 to 50 GeV.*extrapolate=True "
                                              r"\(hepgen sample --extrapolate\)"):
            check_incident_energy(torch.tensor([far]), "calo-gan", (low, high))
        check_incident_energy(torch.tensor([far]), "calo-gan", (low, high), extrapolate=True)
    check_incident_energy(torch.tensor([1e9]), "calo-gan", None)  # a run saved before the range was recorded


def test_the_shapes_hyper_parameter_is_accepted_when_it_is_the_datas():
    from hepgen.calo.caloflow import CaloFlow
    from hepgen.calo.gan import CaloGAN
    from hepgen.errors import ConfigError

    data = {k: tuple(v) for k, v in LAYERS.items()}
    for cls in (CaloGAN, CaloFlow):
        small = {"hidden": (8,), "critic_hidden": (8,)} if cls is CaloGAN else {"cell_transforms": 1, "cell_hidden": (8,)}
        model = cls.from_data(data, 1, shapes={k: list(v) for k, v in LAYERS.items()}, **small)
        assert model.shapes == {k: list(v) for k, v in LAYERS.items()}
        wrong = {**{k: list(v) for k, v in LAYERS.items()}, "layer_1": [10, 12]}
        with pytest.raises(ConfigError, match=r"shapes gives layer 'layer_1' the shape \[10, 12\], but the training "
                                              r"data's layer 'layer_1' is \[12, 12\]"):
            cls.from_data(data, 1, shapes=wrong, **small)
        with pytest.raises(ConfigError, match="names layer 'layer_9'"):
            cls.from_data(data, 1, shapes={**wrong, "layer_1": [12, 12], "layer_9": [1, 1]}, **small)
        with pytest.raises(ConfigError, match="no shape for the training data's layer 'layer_2'"):
            cls.from_data(data, 1, shapes={"layer_0": [3, 96], "layer_1": [12, 12]}, **small)
