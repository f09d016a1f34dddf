"""benchmarks/jets_anomaly.py's pixel_cnn scorer joins a folder of finished units without touching them: the other
scorers' units and numbers stay as they were, pixel_cnn trains for its CPU budget (benchmarks/_budget.py, shared
with gan_architectures.py) and its AUCs are those of its cached scores; gan_architectures.py copies them."""

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from tests.helpers import load_benchmark

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name, monkeypatch):
    return load_benchmark(name, monkeypatch, "bench_pixel_cnn")


def test_fit_for_budget_stops_after_the_first_epoch_that_reaches_the_budget(monkeypatch):
    budget = load("_budget", monkeypatch)
    clock = [0.0]
    monkeypatch.setattr(budget, "time", types.SimpleNamespace(process_time=lambda: clock[0]))
    epochs = []

    def fit_epoch(epoch):
        epochs.append(epoch)
        clock[0] += 0.3

    assert budget.fit_for_budget(fit_epoch, 1.0, 100) == (4, pytest.approx(1.2))  # 0.9 < 1.0 <= 1.2
    assert epochs == [1, 2, 3, 4]
    epochs.clear()
    assert budget.fit_for_budget(fit_epoch, 1.0, 2)[0] == 2 and epochs == [1, 2]


def test_pixel_cnn_joins_cached_units_untouched(monkeypatch, tmp_path):
    bench = load("jets_anomaly", monkeypatch)
    units, out = tmp_path / "units", tmp_path / "a.json"
    common = ["--quick", "--tasks", "direct", "--seeds", "1", "--test-jets", "200", "--bootstrap", "2", "--reports",
              "--units", str(units), "--output", str(out)]

    def run(*argv):
        monkeypatch.setattr(sys, "argv", ["jets_anomaly.py", *common, *argv])
        assert bench.main() == 0
        return json.loads(out.read_text())

    first = run("--scorers", "conv_ae")
    conv = units / "direct/conv_ae/seed1.npz"
    stamp, manifest = conv.stat().st_mtime_ns, (units / "manifest.json").read_text()

    second = run("--resume", "--scorers", "conv_ae", "pixel_cnn", "--pixel-cnn-budget", "1.5")
    assert conv.stat().st_mtime_ns == stamp and (units / "manifest.json").read_text() == manifest
    assert second["by_seed"]["direct"]["conv_ae"] == first["by_seed"]["direct"]["conv_ae"]
    record = second["units"]["direct/pixel_cnn/seed1"]["pixel_cnn"]
    assert record["train_cpu_s"] >= 1.5 and record["slices_trained"] >= 1
    with np.load(units / "direct/pixel_cnn/seed1.npz") as f:  # −log P per image: the AUC of the cached scores
        b, top, w = f["background"], f["signal_top"], f["signal_w"]
    assert len(b) == len(top) == len(w) == 200 and np.all(b > 0)  # a probability's −log: positive nats
    for sig, s in (("top", top), ("w", w)):
        auc = roc_auc_score(np.r_[np.zeros(len(b)), np.ones(len(s))], np.r_[b, s])
        assert second["by_seed"]["direct"]["pixel_cnn"]["1"][sig]["auc"] == pytest.approx(auc, abs=1e-5)

    # gan_architectures.py carries these AUCs, naming their source
    gans = load("gan_architectures", monkeypatch)
    section = gans.pixel_cnn_anomaly(out)
    assert section["source"] == str(out)
    assert section["auc"]["pixel_cnn"]["top"]["auc"] == second["tasks"]["direct"]["pixel_cnn"]["top"]["auc"]
    assert section["auc"]["conv_ae"]["w"]["auc"] == second["tasks"]["direct"]["conv_ae"]["w"]["auc"]
    assert gans.pixel_cnn_anomaly(tmp_path / "none.json") is None
    assert gans.pixel_cnn_anomaly(Path(out.write_text(json.dumps(first)) and out)) is None  # no pixel_cnn entry

    # a cached pixel_cnn unit of other settings is refused, not mixed in
    with pytest.raises(SystemExit) as exit_:
        run("--resume", "--scorers", "pixel_cnn", "--pixel-cnn-budget", "1.5", "--pixel-cnn-channels", "8")
    assert exit_.value.code == 2
