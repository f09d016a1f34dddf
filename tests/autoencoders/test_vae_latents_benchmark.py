"""benchmarks/vae_latents.py leaves each (task, β, seed) training with its analysis in its units folder: a killed
run resumed with --resume trains only the missing unit and writes the JSON an uninterrupted run wrote."""

import json
import sys
from pathlib import Path

import pytest
from tests.helpers import load_benchmark, without

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    return load_benchmark("vae_latents", monkeypatch, "bench_units")



def test_a_killed_run_resumes_only_the_missing_unit(bench, monkeypatch, tmp_path):
    calls, loads = [], []
    real_run, real_jets = bench.run, bench.jets
    monkeypatch.setattr(bench, "run", lambda task, beta, *a: calls.append((task, beta)) or real_run(task, beta, *a))
    monkeypatch.setattr(bench, "jets", lambda *a, **k: loads.append(a) or real_jets(*a, **k))
    units, out = tmp_path / "units", tmp_path / "v.json"
    argv = ["vae_latents", "--quick", "--tasks", "features", "--betas", "1,4", "--train", "300", "--eval", "200",
            "--epochs", "2", "--units", str(units), "--out", str(out)]

    def main(*extra):
        monkeypatch.setattr(sys, "argv", argv + list(extra))
        bench.main()
        return json.loads(out.read_text())

    first = main()
    assert calls == [("features", 1.0), ("features", 4.0)]
    stamps = {str(p.relative_to(units)): p.stat().st_mtime_ns for p in units.rglob("*.npz")}
    assert sorted(first["units"]) == ["features/beta_1/seed0", "features/beta_4/seed0"]
    assert first["cpu_hours_units"] >= 0 and set(first["results"]["features"]) == {"beta_1", "beta_4"}

    out.unlink()
    (units / "features/beta_4/seed0.npz").unlink()
    calls.clear()
    second = main("--resume")
    assert calls == [("features", 4.0)]
    assert (units / "features/beta_1/seed0.npz").stat().st_mtime_ns == stamps["features/beta_1/seed0.npz"]
    assert second["results"]["features"]["beta_1"] == first["results"]["features"]["beta_1"]
    timing = {"train_cpu_s", "machine", "command", "units", "cpu_hours_units"}
    assert without(second, timing) == without(first, timing)  # seeded, one thread: the rerun unit is the same

    out.unlink()
    calls.clear()
    loads.clear()
    third = main("--resume")  # every unit cached: the jets are not read, nothing is trained
    assert calls == [] and loads == []
    assert without(third, timing) == without(first, timing)

    # another setting with --resume, or (outside --quick) no --resume at all: the finished units are refused
    for extra in (["--resume", "--epochs", "3"], []):
        monkeypatch.setattr(sys, "argv", [a for a in argv if a != "--quick"] + extra)
        with pytest.raises(SystemExit) as exit_:
            bench.main()
        assert exit_.value.code == 2
    assert sorted(str(p.relative_to(units)) for p in units.rglob("*.npz")) == sorted(stamps)


def test_the_image_task_uses_a_fixed_sigma_gaussian_decoder_by_default(bench):
    """The Bernoulli decoder on min-max scaled pT fractions let the image latents collapse at the full scale
    (vae_latents_bernoulli.json); the default is the fixed-σ Gaussian on standardised √(pT fraction)."""
    model = bench.build("images", True, 2.0, (40, 40))
    assert model.decoder == "gaussian-fixed" and model.decoder_sigma == 1.0 and model.beta == 2.0
    old = bench.build("images", True, 2.0, (40, 40), "bernoulli")
    assert old.decoder == "bernoulli"
    collapsed = json.loads((BENCHMARKS / "results" / "vae_latents_bernoulli.json").read_text())
    assert collapsed["image_decoder"] == "bernoulli"
    assert max(collapsed["results"]["images"]["beta_1"]["kl_per_latent"]) < 0.01  # the reason for the change
