"""Events made of several arrays of different shapes (calorimeter layers plus incident energy), read from one
HDF5 group, batched together with one preprocessing per array, and written back in the same layout."""

import h5py
import numpy as np
import pytest
import torch

import hepgen
from hepgen.data import io
from hepgen.data.loader import Events, memory_batches
from hepgen.data.sources import load_events
from tests.train.toy_models import ThreeArrays

SHAPES = {"layer0": (3, 4), "layer1": (2, 2), "energy": (1,)}


def _events(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    return {"layer0": rng.gamma(2.0, 1.5, size=(n, 3, 4)).astype(np.float32),
            "layer1": rng.normal(5.0, 2.0, size=(n, 2, 2)).astype(np.float32),
            "energy": rng.uniform(1.0, 100.0, size=(n, 1)).astype(np.float32)}


def test_three_array_events_round_trip_through_fit_sample_and_score(tmp_path):
    x = _events()
    path = tmp_path / "calo.h5"
    io.write(path, {f"showers/{k}": v for k, v in x.items()})
    model = ThreeArrays(SHAPES, preprocess={"energy": "log", "*": "standard"})
    model.fit(f"{path}:showers", epochs=40, batch_size=500, lr=5e-2, seed=0, quiet=True, run_dir=tmp_path / "run")
    # one preprocessing per array, fitted on its own training events
    pre = model.preprocessor
    assert pre["energy"].kinds == ["log"] and set(pre["layer0"].kinds) == {"standard"}
    # the per-cell Gaussian of a standardised array converges to N(0, 1) in every cell
    for k in ("layer0", "layer1"):
        assert float(model.means[k].detach().abs().max()) < 0.1
        assert float((model.log_stds[k].detach().exp() - 1).abs().max()) < 0.1
    # sample: a dict in the original units with the simulator's layout, written back as an HDF5 group
    reloaded = hepgen.load(tmp_path / "run")
    torch.manual_seed(1)
    samples = {k: v.numpy() for k, v in reloaded.sample(4000).items()}
    assert {k: v.shape[1:] for k, v in samples.items()} == SHAPES
    io.write(tmp_path / "samples.h5", {f"showers/{k}": v for k, v in samples.items()})
    with h5py.File(tmp_path / "samples.h5") as f:
        assert sorted(f["showers"]) == sorted(SHAPES) and f["showers/layer0"].shape == (4000, 3, 4)
    np.testing.assert_allclose(samples["layer1"].mean(0), x["layer1"].mean(0), atol=0.15)
    np.testing.assert_allclose(samples["layer1"].std(0), x["layer1"].std(0), rtol=0.08)
    # score the samples read back from the file: log p is the sum of the per-array log-densities (closed form)
    back, _ = load_events(f"{tmp_path / 'samples.h5'}:showers", model=reloaded)
    lp = reloaded.log_prob(back.x).numpy()
    u = reloaded.to_internal(back.x)
    expected = sum(torch.distributions.Normal(reloaded.means[k], reloaded.log_stds[k].exp()).log_prob(u[k])
                   .reshape(len(lp), -1).sum(1) for k in SHAPES) + reloaded.preprocessor.log_abs_det_jacobian(
                       {k: torch.as_tensor(v) for k, v in back.x.items()})
    np.testing.assert_allclose(lp, expected.detach().numpy(), rtol=1e-5, atol=1e-4)
    # the log preprocessing's Jacobian is there: -sum log(E + eps) - log std(log E) per event
    jac = reloaded.preprocessor["energy"].log_abs_det_jacobian(torch.as_tensor(back.x["energy"]))
    std = float(reloaded.preprocessor["energy"].scale[0])
    np.testing.assert_allclose(jac.numpy(), -np.log(back.x["energy"][:, 0] + 1e-6) - np.log(std), rtol=1e-5)


def test_arrays_are_batched_together_row_by_row():
    x = _events(50)
    x["layer1"][:, 0, 0] = np.arange(50)
    x["energy"][:, 0] = np.arange(50) * 10.0
    data = {"x": {k: torch.as_tensor(v) for k, v in x.items()}, "w": torch.arange(50.0)}
    for batch in memory_batches(data, 16, epoch=3, seed=0):
        rows = batch["x"]["layer1"][:, 0, 0]
        assert torch.equal(batch["x"]["energy"][:, 0], rows * 10) and torch.equal(batch["w"], rows)
    events = Events(x).take(np.array([5, 7]))
    assert events.x["layer1"][:, 0, 0].tolist() == [5, 7] and len(events) == 2


def test_streamed_three_array_file_trains_like_memory(tmp_path):
    x = _events(1200)
    io.write(tmp_path / "c.h5", {f"g/{k}": v for k, v in x.items()})
    common = dict(epochs=2, batch_size=100, seed=0, quiet=True, val_fraction=0, monitor=None, chunk_size=300)
    a = ThreeArrays(SHAPES).fit(f"{tmp_path / 'c.h5'}:g", stream=True, **common)
    b = ThreeArrays(SHAPES).fit(f"{tmp_path / 'c.h5'}:g", stream=False, **common)
    for k in SHAPES:  # same preprocessing statistics either way
        torch.testing.assert_close(a.preprocessor[k].shift, b.preprocessor[k].shift)
    assert all(torch.isfinite(p).all() for p in a.parameters())


def test_missing_or_misshaped_arrays_are_named(tmp_path):
    x = _events(100)
    io.write(tmp_path / "c.h5", {f"g/{k}": v for k, v in x.items() if k != "energy"})
    with pytest.raises(hepgen.DataError, match="energy"):
        ThreeArrays(SHAPES).fit(f"{tmp_path / 'c.h5'}:g", epochs=1, quiet=True)
    bad = dict(x, layer1=x["layer1"].reshape(100, 4))
    with pytest.raises(hepgen.DataError, match="layer1.*shape"):
        ThreeArrays(SHAPES).fit(bad, epochs=1, quiet=True)
    with pytest.raises(hepgen.DataError, match="different numbers of events"):
        ThreeArrays(SHAPES).fit(dict(x, energy=x["energy"][:50]), epochs=1, quiet=True)


def test_cli_fits_scores_and_samples_three_array_events_from_a_group(tmp_path, capsys):
    from hepgen.cli import main

    x = _events(800)
    io.write(tmp_path / "c.h5", {f"showers/{k}": v for k, v in x.items()})
    run = tmp_path / "run"
    assert main(["fit", "test-three-arrays", f"{tmp_path / 'c.h5'}:showers", "--out", str(run), "--epochs", "2",
                 "-q"]) == 0, capsys.readouterr().err
    model = hepgen.load(run)
    assert model.event_shape == SHAPES
    code = main(["sample", str(run), "-n", "300", "-o", str(tmp_path / "s.h5"), "--seed", "2"])
    assert code == 0, capsys.readouterr().err
    with h5py.File(tmp_path / "s.h5") as f:
        layout = {k: f[k].shape for k in SHAPES}  # the arrays at the top level, as in the data
    assert {k: v[1:] for k, v in layout.items()} == SHAPES
    code = main(["score", str(run), f"{tmp_path / 'c.h5'}:showers", "-o", str(tmp_path / "scores.h5")])
    assert code == 0, capsys.readouterr().err
    events, _ = load_events(f"{tmp_path / 'c.h5'}:showers", model=model)
    np.testing.assert_allclose(io.read(f"{tmp_path / 'scores.h5'}:log_prob").data.reshape(-1),
                               model.log_prob(events.x).numpy(), rtol=1e-5, atol=1e-4)


def test_cli_scores_a_conditional_multi_array_model_with_its_context_beside_the_arrays(tmp_path, capsys):
    from hepgen.cli import main

    x = _events(600)
    energy = x.pop("energy")
    shapes = {k: v.shape[1:] for k, v in x.items()}
    io.write(tmp_path / "c.h5", {**x, "e_inc": energy[:, 0]})  # layers and the energy at the top level
    run = tmp_path / "run"
    assert main(["fit", "test-three-arrays", str(tmp_path / "c.h5"), "--context", "e_inc", "--out", str(run),
                 "--epochs", "1", "-q"]) == 0, capsys.readouterr().err
    model = hepgen.load(run)
    assert model.event_shape == shapes and model.context == 1 and model.context_columns_ == ["e_inc"]
    for extra in ([], ["--context", "e_inc"]):  # the context column by the model's name, or named again
        out = tmp_path / f"s{len(extra)}.h5"
        assert main(["score", str(run), str(tmp_path / "c.h5"), "-o", str(out), *extra]) == 0, capsys.readouterr().err
        events, _ = load_events(str(tmp_path / "c.h5"), context="e_inc", model=model)
        np.testing.assert_allclose(io.read(f"{out}:log_prob").data.reshape(-1), model.log_prob(events.x).numpy(),
                                   rtol=1e-5, atol=1e-4)
