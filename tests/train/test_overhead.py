"""benchmarks/engine_overhead.py: its ratio machinery and that its plain loops take the engine's steps.

No timing is asserted (the machine is shared); what is checked is what makes the ratio mean something.
"""

import importlib.util
import time
from pathlib import Path

import pytest
import torch

import hepgen

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "engine_overhead.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("engine_overhead", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ratio_is_hepgen_over_plain_and_refuses_a_zero_plain_time(bench):
    assert bench.ratio(3.2, 1.2) == pytest.approx(8 / 3)
    assert bench.ratio(1.0, 1.0) == 1.0
    with pytest.raises(ValueError, match="plain loop"):
        bench.ratio(1.0, 0.0)


def test_cpu_seconds_counts_work_not_waiting(bench):
    assert bench.cpu_seconds(lambda: time.sleep(0.2)) < 0.1
    busy = bench.cpu_seconds(lambda: sum(i * i for i in range(300_000)))
    assert busy > 0


@pytest.mark.parametrize("name", ["gan", "ae"])
def test_plain_loops_take_as_many_steps_per_player_as_the_engine(bench, name):
    case = {**bench.cases(quick=True)[name], "n": 700, "epochs": 2, "batch_size": 64}
    x = bench.data(case["n"])
    model = case["model"]()
    engine = hepgen.Engine(epochs=case["epochs"], batch_size=case["batch_size"], lr=case["lr"], quiet=True,
                           **model.fit_defaults)
    engine.fit(model, x)
    first = {player: next(iter(opt.state.values()))["step"] for player, opt in engine.optimisers.items()}
    plain = case["plain"](case["model"](), x, case["epochs"], case["batch_size"], case["lr"])
    assert plain == {k: int(v) for k, v in first.items()}
    # 630 training events in 10 batches of 64 per epoch: the generator steps on batches 5 and 10
    assert plain == ({"critic": 20, "generator": 4} if name == "gan" else {"model": 20})


def test_the_plain_gan_trains_the_same_networks_it_is_given(bench):
    model = hepgen.GAN(2, loss="wgan-gp", critic_steps=5)
    before = [p.detach().clone() for p in model.parameters()]
    bench.plain_gan(model, bench.data(300), 1, 64, 1e-3)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # copies are trained, not the model
