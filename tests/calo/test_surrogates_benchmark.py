"""benchmarks/calo_surrogates.py: its cached chunks are the CLI's showers and are made once, an interrupted
training resumed with --resume ends where an uninterrupted one does, and its models fit the shipped-model budget."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hepgen.calo.caloflow import CaloFlow
from hepgen.data.generators import calo

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "calo_surrogates.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("calo_surrogates_bench", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_models_fit_the_shipped_budget(bench, monkeypatch):
    from hepgen import pretrained

    assert pretrained.MAX_BYTES == 25_000_000
    # one of each particle, the larger of the two kinds, beside what is shipped already
    left = bench.ship_budget_left()
    assert left >= 0
    flow = bench.model_bytes("calo-flow")
    assert flow > 5e6 and bench.model_bytes("calo-gan") < flow
    # the earlier benchmark's flow (256 hidden units) would not fit three times
    monkeypatch.setitem(bench.MODELS, "calo-flow", {**bench.MODELS["calo-flow"], "config": {
        **bench.MODELS["calo-flow"]["config"], "cell_hidden": (256,)}})
    assert bench.ship_budget_left() < 0


def test_chunks_are_the_clis_showers_and_are_made_once(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "CHUNKS", tmp_path)
    monkeypatch.setitem(bench.SEEDS, "val", [11, 12])
    s = bench.sample("gamma", "val", chunk=30, limit=50)
    a, b = calo.generate(30, seed=11, particle="gamma"), calo.generate(30, seed=12, particle="gamma")
    assert len(s.energy) == 50
    np.testing.assert_allclose(s.energy, np.concatenate([a["energy"], b["energy"]])[:50], rtol=1e-6)
    np.testing.assert_allclose(s.layers["layer_1"], np.concatenate([a["layer_1"], b["layer_1"]])[:50], rtol=1e-6)
    made = bench.chunk_path("gamma", 11, 30)
    stamp = made.stat().st_mtime_ns
    bench.sample("gamma", "val", chunk=30)
    assert made.stat().st_mtime_ns == stamp  # not redone


def test_a_resumed_training_ends_as_an_uninterrupted_one(bench, tmp_path, monkeypatch):
    tiny = {"cls": CaloFlow, "config": {"energy_transforms": 1, "cell_transforms": 2, "cell_hidden": (8,),
                                        "energy_hidden": (8,)}, "fit": {}}
    monkeypatch.setitem(bench.MODELS, "calo-flow", tiny)
    d, v = calo.generate(200, seed=1), calo.generate(60, seed=2)
    layers = tuple(k for k in d if k.startswith("layer_"))
    train = bench.Showers({k: d[k] for k in layers}, d["energy"])
    val = bench.Showers({k: v[k] for k in layers}, v["energy"])
    fit = {"epochs": 4, "batch_size": 100, "lr": 1e-3, "monitor_every": 2, "monitor_samples": 60}
    whole, record = bench.train("calo-flow", "e+", train, val, tmp_path / "whole" / "calo-flow", False, fit)
    assert record["finished"] and record["epochs"] == 4 and [e for e, _ in record["val_fpd"]] == [2, 4]
    # interrupted after epoch 2 (the engine's checkpoint of that epoch), then resumed
    bench.train("calo-flow", "e+", train, val, tmp_path / "parts" / "calo-flow", False, {**fit, "epochs": 2})
    (tmp_path / "parts" / "calo-flow.record.json").unlink()  # as if the session had died before finishing
    with pytest.raises(SystemExit, match="--resume"):
        bench.train("calo-flow", "e+", train, val, tmp_path / "parts" / "calo-flow", False, fit)
    resumed, rec2 = bench.train("calo-flow", "e+", train, val, tmp_path / "parts" / "calo-flow", True, fit)
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert rec2["val_fpd"] == record["val_fpd"] and rec2["best_epoch"] == record["best_epoch"]
    # a finished run is reused as it is with --resume, refused without
    again, rec3 = bench.train("calo-flow", "e+", train, val, tmp_path / "whole" / "calo-flow", True, fit)
    assert rec3 == record
    for a, b in zip(whole.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(SystemExit, match="finished"):
        bench.train("calo-flow", "e+", train, val, tmp_path / "whole" / "calo-flow", False, fit)


def test_ship_best_ships_the_lower_auc_model_with_its_training_record(bench, tmp_path, monkeypatch):
    import json

    import hepgen
    from hepgen import pretrained

    root = tmp_path / "package"
    root.mkdir()
    monkeypatch.setattr(pretrained, "ROOT", root)
    monkeypatch.setattr(pretrained, "MANIFEST", root / "manifest.json")
    monkeypatch.setattr(bench, "RUNS", tmp_path / "runs")
    model = CaloFlow(energy_transforms=1, cell_transforms=2, cell_hidden=(8,), energy_hidden=(8,))
    model.save(tmp_path / "runs" / "gamma" / "calo-flow")
    training = {"steps": 40, "cpu_s": 12.5, "best_epoch": 4, "fit_options": {"epochs": 4}}
    entry = {"train_showers": 200, "held_out_showers": 60, "max_per_class": 60, "floor": {"auc": {"high": 0.5}},
             "models": {"calo-flow": {"auc": {"high": 0.55, "low": 0.6}, "training": training},
                        "calo-gan": {"auc": {"high": 0.7, "low": 0.8}, "training": training}}}
    bench.ship_best("gamma", entry, quick=False)
    shipped = json.loads((root / "manifest.json").read_text())["models"]
    assert list(shipped) == ["calo-flow-gamma"]
    record = shipped["calo-flow-gamma"]
    assert record["model"] == "calo-flow" and record["quality"]["auc_high"] == 0.55
    assert {"command", "cpu_seconds", "steps"} <= set(record["training"]) and record["training"]["cpu_seconds"] == 12.5
    loaded = hepgen.load("pretrained:calo-flow-gamma")
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


def test_each_judged_model_is_saved_at_once_and_resume_skips_it_and_the_floor(bench, tmp_path, monkeypatch):
    """A run killed after judging calo-flow keeps calo-flow's entry; --resume then trains and judges calo-gan only,
    without judging the floor again; other settings (or no --resume) judge everything again."""
    import argparse
    import json

    d = calo.generate(40, seed=1)
    layers = tuple(k for k in d if k.startswith("layer_"))
    showers = bench.Showers({k: d[k] for k in layers}, d["energy"])
    monkeypatch.setattr(bench, "sample", lambda *a, **k: showers)
    trained, floors = [], []

    def train(name, particle, *a, **k):
        trained.append(name)
        model = CaloFlow(energy_transforms=1, cell_transforms=1, cell_hidden=(4,), energy_hidden=(4,))
        return model, {"cpu_s": 1.0}

    def compare(ref, cand, floor=None, **k):
        floors.append(floor is not None)
        cls = {f"{w}_{h}": {"auc": 0.6, "auc_err": 0.01} for w in ("candidate", "floor") for h in ("high", "low")}
        resp = {"edges": [1, 100], "ref": {"mean": [0.2], "resolution": [0.1]}, "cand": {"mean": [0.2], "resolution": [0.1]}}
        return {"classifier": cls, "response": resp}

    monkeypatch.setattr(bench, "train", train)
    monkeypatch.setattr(bench, "compare_showers", compare)
    monkeypatch.setattr(bench, "response_study", lambda *a, **k: {"showers": 0})
    monkeypatch.setattr(bench, "rate", lambda fn, batch, s: 1000.0)
    out = tmp_path / "r.json"
    args = argparse.Namespace(quick=False, train_chunks=1, data_only=False, max_per_class=40, speed_batch=5,
                              min_seconds=0.0, resume=False, models="calo-flow")
    from _machine import Meter

    bench.run_particle("gamma", args, Meter(), out)  # the first run, "killed" after calo-flow
    saved = json.loads(out.read_text())
    assert list(saved["particles"]["gamma"]["models"]) == ["calo-flow"] and trained == ["calo-flow"]
    assert floors == [True]
    args.models, args.resume = "calo-flow,calo-gan", True
    entry = bench.run_particle("gamma", args, Meter(), out)
    assert trained == ["calo-flow", "calo-gan"] and floors == [True, False]
    assert entry["floor"] == saved["particles"]["gamma"]["floor"]
    assert entry["models"]["calo-flow"] == saved["particles"]["gamma"]["models"]["calo-flow"]
    final = json.loads(out.read_text())
    assert list(final["particles"]["gamma"]["models"]) == ["calo-flow", "calo-gan"]
    assert len(final["machine"]["gamma"]) == 2  # one record per invocation
    # another protocol setting: nothing is reused
    args.max_per_class = 30
    bench.run_particle("gamma", args, Meter(), out)
    assert trained[2:] == ["calo-flow", "calo-gan"] and floors[2:] == [True, False]
    # a model whose settings changed since it was judged is judged again, the other kept
    monkeypatch.setitem(bench.MODELS, "calo-gan", {**bench.MODELS["calo-gan"], "fit": {**bench.MODELS["calo-gan"]["fit"], "epochs": 7}})
    bench.run_particle("gamma", args, Meter(), out)
    assert trained[4:] == ["calo-gan"] and floors[4:] == [False]


def test_remeasure_speed_replaces_the_speed_figures_and_keeps_the_earlier_ones(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "CHUNKS", tmp_path / "chunks")
    monkeypatch.setattr(bench, "RUNS", tmp_path / "runs")
    monkeypatch.setitem(bench.QUICK, "chunk", 30)
    monkeypatch.setitem(bench.QUICK, "held_out", 20)
    monkeypatch.setitem(bench.QUICK, "speed_batch", 50)
    monkeypatch.setitem(bench.QUICK, "min_seconds", 0.01)
    model = CaloFlow(energy_transforms=1, cell_transforms=1, cell_hidden=(4,), energy_hidden=(4,))
    model.save(tmp_path / "runs" / "e+_quick" / "calo-flow")
    out = tmp_path / "results.json"
    old = {"ms_per_shower": {"1": 9.0, "50": 1.0}, "simulator_ms_per_shower": {"50": 2.0, "1": 3.0},
           "speedup_vs_simulator": {"1": 1 / 3, "50": 2.0}, "auc": {"high": 0.7}}
    machine = {"started": "2026-12-01T10:00:00+00:00 pid 1", "timings_valid": True}
    out.write_text(json.dumps({"issue": 20, "particles": {"e+": {"held_out_showers": 20, "models": {
        "calo-flow": dict(old)}, "simulator_ms_per_shower": old["simulator_ms_per_shower"]}},
        "machine": {"e+": [machine]}}))
    for rounds in (1, 2):
        bench.main(["--quick", "--models", "calo-flow", "--remeasure-speed", "--out", str(out)])
        result = json.loads(out.read_text())
        m = result["particles"]["e+"]["models"]["calo-flow"]
        assert m["auc"] == old["auc"] and len(m["remeasured"]) == rounds  # nothing judged again
        assert set(m["ms_per_shower"]) == {"1", "50"} and m["ms_per_shower"] != old["ms_per_shower"]
        sim = result["particles"]["e+"]["simulator_ms_per_shower"]
        assert m["simulator_ms_per_shower"] == sim and sim != old["simulator_ms_per_shower"]
        for b in ("1", "50"):
            assert m["speedup_vs_simulator"][b] == pytest.approx(sim[b] / m["ms_per_shower"][b])
        assert len(result["machine"]["e+"]) == 1 + rounds
    first, second = m["remeasured"]
    assert first["ms_per_shower"] == old["ms_per_shower"] and first["machine"] == machine
    assert first["date"] == "2026-12-01" and second["machine"]["started"] == result["machine"]["e+"][1]["started"]
    # a particle without a judged model is refused before any is timed
    before = out.read_text()
    with pytest.raises(SystemExit, match="no judged"):
        bench.main(["--quick", "--particles", "e+", "gamma", "--remeasure-speed", "--out", str(out)])
    assert out.read_text() == before


def test_remeasure_response_takes_more_showers_and_keeps_the_earlier_sample(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "CHUNKS", tmp_path / "chunks")
    monkeypatch.setattr(bench, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(bench, "DATA", tmp_path / "data")
    monkeypatch.setattr(bench, "CHUNK", 40)
    monkeypatch.setattr(bench, "EDGES", (1, 30, 100))
    monkeypatch.setitem(bench.QUICK, "chunk", 30)
    monkeypatch.setitem(bench.QUICK, "held_out", 20)
    model = CaloFlow(energy_transforms=1, cell_transforms=1, cell_hidden=(4,), energy_hidden=(4,))
    model.save(tmp_path / "runs" / "e+_quick" / "calo-flow")
    out = tmp_path / "results.json"
    earlier = {"showers": 40, "response_rel_deviation": [0.5, 0.5]}
    out.write_text(json.dumps({"issue": 20, "particles": {"e+": {"held_out_showers": 20, "models": {
        "calo-flow": {"auc": {"high": 0.7}, "response_sample": earlier}}}}, "machine": {"e+": []}}))
    bench.main(["--quick", "--models", "calo-flow", "--remeasure-response", "120", "--out", str(out)])
    m = json.loads(out.read_text())["particles"]["e+"]["models"]["calo-flow"]
    assert m["auc"] == {"high": 0.7} and m["response_sample_earlier"] == [earlier]  # nothing judged again
    got = m["response_sample"]
    assert got["showers"] == 120 and sum(got["count"]) == 120
    # the simulator's side is the cached response of the seeds RESPONSE_SEEDS[0], +1, +2, as the simulator gives it
    sim = [calo.generate(40, seed=bench.RESPONSE_SEEDS[0] + k, particle="e+") for k in range(3)]
    energy = np.concatenate([d["energy"] for d in sim])
    from hepgen.metrics.shower_observables import shower_features
    response = np.concatenate([shower_features([d[k] for k in ("layer_0", "layer_1", "layer_2")], d["energy"])["response"]
                               for d in sim])
    low = energy < 30
    assert got["response_ref"][0] == pytest.approx(response[low].mean(), rel=1e-9)
    assert got["response_ref"][1] == pytest.approx(response[~low].mean(), rel=1e-9)
    for bad in ("0", "130"):
        with pytest.raises(SystemExit, match="multiple"):
            bench.main(["--quick", "--models", "calo-flow", "--remeasure-response", bad, "--out", str(out)])


def tiny_quick_setup(bench, tmp_path, monkeypatch):
    """A --quick run of tiny models on 200 / 100 simulator showers, its runs and data under tmp_path."""
    from hepgen.calo.gan import CaloGAN

    monkeypatch.setattr(bench, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(bench, "DATA", tmp_path / "data")
    monkeypatch.setattr(bench, "EDGES", (1, 30, 100))  # the response in two bins of 100 showers
    monkeypatch.setitem(bench.MODELS, "calo-flow", {**bench.MODELS["calo-flow"], "config": {
        "energy_transforms": 1, "cell_transforms": 1, "cell_hidden": (4,), "energy_hidden": (4,)}})
    monkeypatch.setitem(bench.MODELS, "calo-gan", {**bench.MODELS["calo-gan"], "cls": CaloGAN, "config": {
        "hidden": (8,), "critic_hidden": (8,), "critic_steps": 1}})
    for key, value in (("chunk", 100), ("held_out", 100), ("max_per_class", 100), ("speed_batch", 20),
                       ("min_seconds", 0.01), ("monitor_samples", 50), ("epochs", {"calo-flow": 1, "calo-gan": 1})):
        monkeypatch.setitem(bench.QUICK, key, value)
    cache = {}

    def sample(particle, part, chunk=100, chunks=None, limit=None):
        if part not in cache:
            d = calo.generate(200 if part == "train" else 100, seed=bench.SEEDS[part][0], particle=particle)
            cache[part] = bench.Showers({k: d[k] for k in d if k.startswith("layer_")}, d["energy"])
        return cache[part]

    monkeypatch.setattr(bench, "sample", sample)


def test_check_low_level_rebuilds_the_judged_sample_and_adds_only_its_key(bench, tmp_path, monkeypatch):
    """--check-low-level after a (tiny) --quick judge: each model's candidate sample is the judge's, bit for bit
    (the judge used the model it had just trained, the check loads it from its run), and only ``low_level_check``
    keys (and one machine record) are added to the results."""
    tiny_quick_setup(bench, tmp_path, monkeypatch)
    judged, compared = {}, []
    real_judged_sample, real_compare = bench.judged_sample, bench.compare_showers

    def spy(model, test):
        cand = real_judged_sample(model, test)
        judged.setdefault(type(model).__name__, []).append(cand)
        return cand

    def compare(ref, cand, **k):
        compared.append(cand)
        return real_compare(ref, cand, **k)

    monkeypatch.setattr(bench, "judged_sample", spy)
    monkeypatch.setattr(bench, "compare_showers", compare)
    out = tmp_path / "results.json"
    bench.main(["--quick", "--out", str(out)])
    before = json.loads(out.read_text())
    assert [c is judged[k][0] for c, k in zip(compared, ("CaloFlow", "CaloGAN"))] == [True, True]
    bench.main(["--quick", "--particles", "e+", "--check-low-level", "--out", str(out)])
    after = json.loads(out.read_text())
    for name, cands in judged.items():  # the judge's candidate sample and the check's are the same showers
        first, again = cands
        np.testing.assert_array_equal(first.energy, again.energy)
        for k in first.layers:
            np.testing.assert_array_equal(first.layers[k], again.layers[k])
    e_before, e_after = before["particles"]["e+"], after["particles"]["e+"]
    checks = [e_after["floor"].pop("low_level_check")] + [m.pop("low_level_check") for m in e_after["models"].values()]
    assert e_after == e_before  # nothing else in the entry changed
    assert len(after["machine"]["e+"]) == len(before["machine"]["e+"]) + 1
    for check in checks:
        assert check["protocol"].startswith("hepgen") and "600 Adam steps" in check["why"]
        assert 0.0 <= check["auc"] <= 1.0 and check["auc_err"] > 0 and check["max_per_class"] == 100
    # the floor against the test showers: two samples of the simulator, at 100 showers per class
    assert abs(checks[0]["auc"] - 0.5) < 0.25
    # a particle without judged models is refused before any check runs
    with pytest.raises(SystemExit, match="--check-low-level: .* no judged"):
        bench.main(["--quick", "--particles", "e+,gamma", "--check-low-level", "--out", str(out)])
    assert json.loads(out.read_text()) == after | {"particles": {**after["particles"], "e+": {
        **e_after, "floor": {**e_after["floor"], "low_level_check": checks[0]},
        "models": {n: {**m, "low_level_check": c} for (n, m), c in zip(e_after["models"].items(), checks[1:])}}}}


def test_check_high_level_adds_only_its_key(bench, tmp_path, monkeypatch):
    """--check-high-level after a (tiny) --quick judge: each model and the floor get 'high_level_check' (hepgen's
    classifier on the high-level features), computed on the same inputs as shower_classifier_auc(kind='high')
    gives on the rebuilt sample; nothing else in the entry changes."""
    tiny_quick_setup(bench, tmp_path, monkeypatch)
    out = tmp_path / "results.json"
    bench.main(["--quick", "--out", str(out)])
    before = json.loads(out.read_text())
    kinds = []
    real = bench.shower_classifier_auc

    def spy(ref, other, kind, **k):
        kinds.append(kind)
        return real(ref, other, kind, **k)

    monkeypatch.setattr(bench, "shower_classifier_auc", spy)
    bench.main(["--quick", "--particles", "e+", "--check-high-level", "--out", str(out)])
    after = json.loads(out.read_text())
    assert kinds == ["high"] * (1 + len(after["particles"]["e+"]["models"]))
    e_before, e_after = before["particles"]["e+"], after["particles"]["e+"]
    checks = [e_after["floor"].pop("high_level_check")] + [m.pop("high_level_check") for m in e_after["models"].values()]
    assert e_after == e_before and all("low_level_check" not in m for m in e_after["models"].values())
    for check in checks:
        assert check["protocol"].startswith("hepgen") and "high-level" in check["why"]
        assert 0.0 <= check["auc"] <= 1.0 and check["auc_err"] > 0 and check["max_per_class"] == 100
    assert abs(checks[0]["auc"] - 0.5) < 0.25


def test_check_challenge_level_records_its_own_key(bench, tmp_path, monkeypatch):
    """--check-challenge-level: the classifier on the protocol's own high-level inputs, as 'challenge_level_check'."""
    tiny_quick_setup(bench, tmp_path, monkeypatch)
    out = tmp_path / "results.json"
    bench.main(["--quick", "--out", str(out)])
    kinds = []
    real = bench.shower_classifier_auc
    monkeypatch.setattr(bench, "shower_classifier_auc", lambda r, o, kind, **k: kinds.append(kind) or real(r, o, kind, **k))
    bench.main(["--quick", "--particles", "e+", "--check-challenge-level", "--check-low-level", "--out", str(out)])
    entry = json.loads(out.read_text())["particles"]["e+"]
    assert sorted(set(kinds)) == ["cells", "challenge"]
    for record in [entry["floor"], *entry["models"].values()]:
        assert "no sparsities" in record["challenge_level_check"]["why"] and "low_level_check" in record


def test_noise_correlation_tells_independent_from_shared_noise(bench):
    """Independent N(0, 1) noise on 288 cells: the mean of a shower's noise cells spreads by ~1/sqrt(288) (the band
    |x| < 3 keeps 99.7 % of them); a shift shared by the shower's cells adds in quadrature; the hit fraction's spread
    is the binomial one, then broader."""
    from hepgen.calo.shower_layout import Showers

    rng = np.random.default_rng(1)
    noise = rng.normal(0.0, 1.0, (6000, 3, 96))
    iid = bench.noise_correlation(Showers({"layer_0": noise}, np.ones(6000)))["layer_0"]
    assert iid["noise_cell_mean_spread_mev"] == pytest.approx(1 / np.sqrt(288) * 0.986, rel=0.05)  # the band's σ
    assert iid["hit_fraction_spread"] == pytest.approx(0.5 / np.sqrt(288), rel=0.05)
    assert iid["noise_cells_above_0"] == pytest.approx(0.5, abs=0.005) and iid["noise_cells_per_shower"] > 287
    shared = bench.noise_correlation(Showers({"layer_0": noise + rng.normal(0, 0.2, (6000, 1, 1))}, np.ones(6000)))
    assert shared["layer_0"]["noise_cell_mean_spread_mev"] == pytest.approx(np.sqrt(0.986**2 / 288 + 0.2**2), rel=0.08)
    assert shared["layer_0"]["hit_fraction_spread"] > 2 * iid["hit_fraction_spread"]


def test_check_noise_adds_only_its_key(bench, tmp_path, monkeypatch):
    """--check-noise after a (tiny) --quick judge: 'noise_check' holds noise_correlation of the test showers and of
    each judged model's rebuilt candidate sample, per layer; nothing else in the entry changes."""
    tiny_quick_setup(bench, tmp_path, monkeypatch)
    out = tmp_path / "results.json"
    bench.main(["--quick", "--out", str(out)])
    before = json.loads(out.read_text())
    bench.main(["--quick", "--particles", "e+", "--check-noise", "--out", str(out)])
    after = json.loads(out.read_text())["particles"]["e+"]
    check = after.pop("noise_check")
    assert after == before["particles"]["e+"]
    assert set(check) == {"noise_mev", "test", "floor", *after["models"]}
    test = bench.sample("e+", "test", bench.QUICK["chunk"], limit=bench.QUICK["held_out"])
    assert check["test"] == bench.noise_correlation(test)
    assert set(check["calo-flow"]) == {"layer_0", "layer_1", "layer_2"}
