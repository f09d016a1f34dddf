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


def test_png_complexity_grows_with_the_image_content(monkeypatch):
    bench = load("jets_anomaly", monkeypatch)
    rng = np.random.default_rng(0)
    empty = np.zeros((1, 40, 40), dtype=np.int64)
    sparse = empty.copy()
    sparse[0, 20, 20] = 5
    noisy = rng.integers(0, 16, size=(1, 40, 40))
    bits = bench.complexity_bits(np.concatenate([empty, sparse, noisy]))
    assert bits[0] < bits[1] < bits[2]
    assert bits[2] > 0.5 * 4 * 1600  # 4 random bits per pixel cannot be compressed away


def test_pixel_cnn_complexity_against_a_score_that_is_the_pixel_count(monkeypatch):
    """A "PixelCNN" score equal to 3 × the non-empty pixel count: rank correlation 1 and the score's AUCs are the
    count's; with noise of the same law for every process added, nothing is left at fixed pixel count (residual
    AUC ½ within its statistical spread, ~0.02 at 400 jets per process)."""
    bench = load("jets_anomaly", monkeypatch)
    rng = np.random.default_rng(1)

    def images(n, mean_pixels, counts=None):
        x = np.zeros((n, 40, 40), dtype=np.float32)
        for i, k in enumerate(rng.poisson(mean_pixels, n) if counts is None else counts):
            x[i].flat[rng.choice(1600, size=min(k, 1600), replace=False)] = rng.uniform(0.01, 0.5, min(k, 1600))
        return x

    test = {p: {"images": images(400, m)} for p, m in (("top", 55), ("w", 30))}
    # the background spans the signals' pixel counts, so the calibration at fixed count covers them
    test["qcd"] = {"images": images(800, 0, counts=rng.integers(10, 90, 800))}
    count = {p: (v["images"] > 0).sum(axis=(1, 2)).astype(float) for p, v in test.items()}
    units = {1: {"background": 3 * count["qcd"], "signal_top": 3 * count["top"], "signal_w": 3 * count["w"]}}
    args = types.SimpleNamespace(pixel_cnn_levels=16, pixel_cnn_slices=10)
    out = bench.pixel_cnn_complexity(units, images(200, 40), test, args)
    seed = out["by_seed"]["1"]
    assert all(v == pytest.approx(1.0) for v in seed["spearman_score_nonempty"].values())
    assert seed["auc_score"] == out["auc_nonempty_pixels_alone"]
    for sig in ("top", "w"):
        expect = roc_auc_score(np.r_[np.zeros(800), np.ones(400)], np.r_[count["qcd"], count[sig]])
        assert out["auc_nonempty_pixels_alone"][sig] == pytest.approx(expect, abs=1e-4)
    assert out["auc_nonempty_pixels_alone"]["top"] > 0.55 and out["auc_nonempty_pixels_alone"]["w"] < 0.35
    noise = {p: rng.normal(0, 2, len(c)) for p, c in count.items()}
    noisy = {1: {"background": 3 * count["qcd"] + noise["qcd"], "signal_top": 3 * count["top"] + noise["top"],
                 "signal_w": 3 * count["w"] + noise["w"]}}
    seed = bench.pixel_cnn_complexity(noisy, images(200, 40), test, args)["by_seed"]["1"]
    assert seed["spearman_score_nonempty"]["qcd"] > 0.9
    assert all(abs(v - 0.5) < 0.08 for v in seed["auc_residual_at_fixed_pixel_count"].values()), seed
