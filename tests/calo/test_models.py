"""CaloGAN and CaloFlow on tiny samples of the calo simulator: they train, sample the simulator's layout from the
CLI and the API, and their showers follow the conditioning energy."""

import h5py
import numpy as np
import pytest
import torch

import hepgen
from hepgen.calo.flow import CaloFlow
from hepgen.calo.gan import CaloGAN
from hepgen.calo.showers import LAYERS, read_showers
from hepgen.data.generators import calo
from hepgen.metrics.showers import shower_features


@pytest.fixture(scope="module")
def showers(tmp_path_factory):
    path = tmp_path_factory.mktemp("calo") / "e.h5"
    from hepgen.cli import main

    assert main(["data", "calo", "-n", "1200", "-o", str(path), "--seed", "1", "-q"]) == 0
    return path


def _sum_at(model, energy, n=200):
    torch.manual_seed(0)
    s = model.sample(n, context=np.array([energy]))
    assert {k: tuple(v.shape) for k, v in s.items()} == {k: (n, *v) for k, v in LAYERS.items()}
    return shower_features([s[k].numpy() for k in LAYERS], np.full(n, energy))


@pytest.mark.parametrize("name", ["calo-gan", "calo-flow"])
def test_cli_fit_and_sample_write_the_simulator_layout(showers, tmp_path, name, capsys):
    from hepgen.cli import main

    run = tmp_path / "run"
    extra = ["--cell-transforms", "2", "--bins", "4"] if name == "calo-flow" else ["--hidden", "64,64",
                                                                                 "--critic-hidden", "64,64"]
    assert main(["fit", name, str(showers), "--context", "energy", "--out", str(run), "--epochs", "1",
                 "--batch-size", "200", "-q", *extra]) == 0, capsys.readouterr().err
    out = tmp_path / "s.h5"
    assert main(["sample", str(run), "-n", "64", "--context", "30", "-o", str(out), "-q"]) == 0, capsys.readouterr().err
    with h5py.File(out) as f:
        assert {k: f[f"samples/{k}"].shape[1:] for k in LAYERS} == LAYERS and f["energy"].shape == (64,)
    back = read_showers(out)
    assert len(back) == 64 and np.all(back.energy == 30.0)
    assert main(["score", str(run), str(showers), "--context", f"{showers}:energy", "-o", str(tmp_path / "score.h5"),
                 "-q"]) == 0, capsys.readouterr().err


def test_calo_gan_response_follows_the_conditioning_energy(showers):
    x = read_showers(showers)
    model = CaloGAN(hidden=(64, 64), critic_hidden=(64, 64)).fit(
        x.layers, context=x.energy, epochs=2, batch_size=200, quiet=True, seed=0)
    low, high = _sum_at(model, 5.0), _sum_at(model, 80.0)
    # deposited energy scales with the incident energy (a response of order the simulator's 0.2 at both ends)
    ratio = high["E_total"].mean() / low["E_total"].mean()
    assert 8.0 < ratio < 24.0, ratio
    assert 0.05 < low["response"].mean() < 0.6 and 0.05 < high["response"].mean() < 0.6
    # gradients reach the condition (the design study differentiates through it)
    e = torch.tensor([[40.0]], requires_grad=True)
    sum(v.sum() for v in model.rsample(8, context=e).values()).backward()
    assert e.grad is not None and float(e.grad) > 0


def test_calo_flow_response_within_ten_percent_of_the_simulator_after_a_short_fit(showers):
    x = read_showers(showers)
    model = CaloFlow(cell_transforms=2, bins=4).fit(x.layers, context=x.energy, epochs=3, batch_size=200,
                                                    quiet=True, seed=0)
    for e in (10.0, 80.0):
        got = _sum_at(model, e)["response"].mean()
        sim = calo.generate(300, seed=5, energy_min=e * 0.999, energy_max=e * 1.001)
        want = shower_features([sim[k] for k in LAYERS], sim["energy"])["response"].mean()
        assert got == pytest.approx(want, rel=0.10), (e, got, want)
    score = model.score(x.take(np.arange(5)).layers, context=x.energy[:5, None])
    assert score.shape == (5,) and torch.isfinite(score).all()


def test_models_refuse_a_missing_energy_context_and_single_array_data():
    with pytest.raises(hepgen.ConfigError, match="--context energy"):
        CaloGAN(context=0)
    with pytest.raises(hepgen.ConfigError, match="--context energy"):
        CaloFlow(context=0)
    with pytest.raises(hepgen.ConfigError, match="several layers"):
        CaloGAN.from_data((10,), 1)
