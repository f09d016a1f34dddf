"""The shower models' validation monitors: the best epoch is chosen on the high-level FPD (or AUC) every K
epochs, not on the loss; the kept model is that epoch's; a resumed run chooses as an uninterrupted one."""

import numpy as np
import pytest
import torch

from hepgen.calo import monitor
from hepgen.calo.caloflow import CaloFlow
from hepgen.cli import main
from hepgen.data.generators import calo
from hepgen.data.loader import Events
from hepgen.evaluate.calochallenge import ShowerSample, fpd_features
from hepgen.metrics.two_sample import fpd
from hepgen.nn.rng import seeded

LAYERS = ("layer_0", "layer_1", "layer_2")
TINY = dict(energy_transforms=1, cell_transforms=2, cell_hidden=(16,), energy_hidden=(16,))
TRAIN = dict(batch_size=100, monitor_samples=80, quiet=True, device="cpu", seed=3)


@pytest.fixture(scope="module")
def data():
    sim, val = calo.generate(300, seed=1), calo.generate(80, seed=2)
    return ({k: sim[k] for k in LAYERS}, sim["energy"][:, None], {k: val[k] for k in LAYERS}, val["energy"][:, None])


def _fit(data, **options):
    x, c, xv, cv = data
    return CaloFlow(**TINY).fit(x, context=c, val=xv, val_context=cv, **{**TRAIN, **options})


def test_the_best_epoch_is_chosen_on_the_metric_not_the_loss(data, monkeypatch):
    values = iter([1.0, 2.0])  # the metric says epoch 2 (its first evaluation) is best; the loss keeps falling
    monkeypatch.setitem(monitor.SHOWER_MONITORS, "fpd", lambda model, val, n, seed: next(values))
    model = _fit(data, epochs=4, monitor="fpd", monitor_every=2)
    history = model.history_
    assert [("monitor" in row, "val_fpd" in row) for row in history] == [(False, False), (True, True)] * 2
    assert history[3]["val_loss"] < history[1]["val_loss"]  # the loss would have kept epoch 4
    two = _fit(data, epochs=2, monitor=None)  # the same seed: epoch 2's weights
    for (k, a), b in zip(model.state_dict().items(), two.state_dict().values()):
        assert torch.equal(a, b), k


def test_the_fpd_monitor_is_the_high_level_fpd_of_the_kept_model(data):
    model = _fit(data, epochs=3, monitor="fpd")
    logged = [row["val_fpd"] for row in model.history_]
    best = int(np.argmin(logged))
    xv, cv = data[2], data[3]
    # recomputed here on the kept (restored) model: its showers at the validation energies, on the monitor's seed
    with seeded(TRAIN["seed"], model.device):
        fake = model.sample(80, context=torch.as_tensor(cv, dtype=torch.float32))
    real = ShowerSample.from_layers([xv[k] for k in LAYERS], cv[:, 0])
    gen = ShowerSample.from_layers([fake[k].double().numpy() for k in LAYERS], cv[:, 0])
    value = 1e3 * fpd(fpd_features(real), fpd_features(gen), seed=TRAIN["seed"])[0]
    assert value == pytest.approx(logged[best], rel=1e-6)
    assert monitor.shower_fpd(model, Events(xv, context=cv), 80, TRAIN["seed"]) == pytest.approx(value, rel=1e-12)


def test_a_resumed_run_monitors_and_chooses_as_an_uninterrupted_one(data, tmp_path):
    whole = _fit(data, epochs=4, monitor="fpd", monitor_every=2, run_dir=tmp_path / "whole")
    _fit(data, epochs=2, monitor="fpd", monitor_every=2, run_dir=tmp_path / "parts")
    resumed = _fit(data, epochs=4, monitor="fpd", monitor_every=2, run_dir=tmp_path / "parts", resume=True)
    assert [r.get("val_fpd") for r in resumed.history_] == [r.get("val_fpd") for r in whole.history_]
    for a, b in zip(resumed.state_dict().values(), whole.state_dict().values()):
        assert torch.equal(a, b)


def test_cli_options_and_bad_values(tmp_path, capsys):
    from hepgen.train.rundir import RunDir

    data = tmp_path / "showers.h5"
    assert main(["data", "calo", "-n", "200", "-o", str(data), "-q"]) == 0
    run = tmp_path / "run"
    args = ["fit", "calo-flow", str(data), "--context", "energy", "--epochs", "2", "--batch-size", "100",
            "--energy-transforms", "1", "--cell-transforms", "1", "--cell-hidden", "8", "--energy-hidden", "8",
            "--device", "cpu", "-q"]
    assert main([*args, "--out", str(run), "--option", "monitor=fpd", "--option", "monitor_every=2",
                 "--option", "monitor_samples=50"]) == 0, capsys.readouterr().err
    rows = RunDir(run).read_metrics()
    assert rows[0]["val_fpd"] is None and rows[1]["val_fpd"] > 0 and rows[1]["monitor"] == rows[1]["val_fpd"]
    train = RunDir(run).read_config()["train"]
    assert train["monitor"] == "fpd" and train["monitor_every"] == 2
    assert main([*args, "--out", str(tmp_path / "bad"), "--option", "monitor_every=0"]) == 2
    assert "monitor_every" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main([*args, "--out", str(tmp_path / "noval"), "--option", "monitor=auc", "--val-fraction", "0"]) == 2
    assert "monitor 'auc' of calo-flow compares samples with validation events" in capsys.readouterr().err
    assert not (tmp_path / "noval").exists()
    # an unknown monitor's message lists the model's own sample metrics (auc, fpd) beside the engine's
    assert main([*args, "--out", str(tmp_path / "typo"), "--epochs", "1", "--option", "monitor=acu"]) == 2
    err = capsys.readouterr().err
    assert "monitor 'acu'" in err and "auc" in err.rpartition("sample metric")[2] and "Traceback" not in err, err
    assert not (tmp_path / "typo").exists()


def test_the_auc_monitor_is_the_light_high_level_classifier_auc(data):
    model = _fit(data, epochs=1, monitor="auc")
    assert 0.5 <= model.history_[0]["val_auc"] <= 1.0 and model.history_[0]["monitor"] == model.history_[0]["val_auc"]


def test_the_monitor_reads_a_calochallenge_geometrys_eta_phi_features(tmp_path, capsys):
    from tests.data.challenge_files import ds1_photon_xml, write_challenge_file
    from hepgen.train.rundir import RunDir

    xml = ds1_photon_xml(tmp_path / "binning_dataset_1_photons.xml")
    data = write_challenge_file(tmp_path / "train.h5", xml, 200, seed=1)
    run = tmp_path / "run"
    assert main(["fit", "calo-flow", str(data), "--geometry", str(xml), "--epochs", "1", "--batch-size", "100",
                 "--energy-transforms", "1", "--cell-transforms", "1", "--cell-hidden", "8", "--energy-hidden", "8",
                 "--device", "cpu", "--out", str(run), "--option", "monitor=fpd", "-q"]) == 0, capsys.readouterr().err
    assert RunDir(run).read_metrics()[0]["val_fpd"] > 0


def test_cli_an_unknown_monitor_exits_2_before_any_epoch_or_write(tmp_path, capsys):
    data = tmp_path / "showers.h5"
    assert main(["data", "calo", "-n", "200", "-o", str(data), "-q"]) == 0
    args = ["fit", "calo-flow", str(data), "--context", "energy", "--epochs", "3", "--batch-size", "100",
            "--energy-transforms", "1", "--cell-transforms", "1", "--cell-hidden", "8", "--energy-hidden", "8",
            "--device", "cpu", "-q", "--option", "monitor_every=2"]
    for option in (["--option", "monitor=fdp"], ["--monitor", "val_ess"]):
        run = tmp_path / option[1].replace("=", "-")
        capsys.readouterr()
        assert main([*args, "--out", str(run), *option]) == 2
        err = capsys.readouterr().err
        name = option[1].rpartition("=")[2]
        assert f"monitor '{name}'" in err and "fpd, auc" in err and "Traceback" not in err, err
        assert not run.exists()
