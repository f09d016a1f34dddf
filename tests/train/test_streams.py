"""Several event streams: the engine batches a model's further stream (CycleGAN's domain B) like the main
one — weighted, shuffled by seeded epochs, split across DDP ranks, resumed — with its own preprocessing."""

import numpy as np
import pytest
import torch

import hepgen
import hepgen.train.distributed
import hepgen.train.rundir
from hepgen.data import io
from tests.train.toy_models import Translator


def _domains(n_a=600, n_b=400, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n_a, 2)).astype(np.float32)
    b = (rng.normal(size=(n_b, 2)) + [3.0, -1.0]).astype(np.float32)
    return a, b


def test_stream_events_are_batched_and_the_shift_is_the_difference_of_means():
    a, b = _domains()
    model = Translator(2).fit(a, streams={"b": b}, epochs=30, batch_size=100, lr=5e-2, seed=0, quiet=True,
                              val_fraction=0)
    expected = b.mean(0) - a.mean(0)
    torch.testing.assert_close(model.shift.detach(), torch.as_tensor(expected), atol=0.05, rtol=0)
    # every B event is seen, each once per pass over B: the first 4 steps (400 events) are a permutation of B
    first_pass = torch.cat(model.seen_b[:4]).numpy()
    assert sorted(map(tuple, first_pass.round(5))) == sorted(map(tuple, b.round(5)))


def test_stream_weights_move_the_optimum_to_the_weighted_mean(tmp_path):
    a, b = _domains()
    w = np.where(b[:, 0] > 3.0, 3.0, 1.0)
    io.write(tmp_path / "b.h5", {"x0": b[:, 0], "x1": b[:, 1], "w": w})
    model = Translator(2).fit(a, streams={"b": {"data": f"{tmp_path / 'b.h5'}", "weights": "w"}}, epochs=30,
                              batch_size=100, lr=5e-2, seed=0, quiet=True, val_fraction=0)
    expected = np.average(b, axis=0, weights=w) - a.mean(0)
    torch.testing.assert_close(model.shift.detach(), torch.as_tensor(expected, dtype=torch.float32), atol=0.06,
                               rtol=0)
    assert abs(expected[0] - (b.mean(0) - a.mean(0))[0]) > 0.3  # the weights matter


def test_stream_epochs_are_seeded_and_differ_between_epochs():
    a, b = _domains()
    runs = [Translator(2).fit(a, streams={"b": b}, epochs=2, batch_size=100, seed=s, quiet=True, val_fraction=0)
            for s in (1, 1, 2)]
    steps = len(runs[0].seen_b) // 2
    assert all(torch.equal(x, y) for x, y in zip(runs[0].seen_b, runs[1].seen_b))
    assert not torch.equal(runs[0].seen_b[0], runs[2].seen_b[0])
    assert not torch.equal(runs[0].seen_b[0], runs[0].seen_b[steps])  # epoch 2 reshuffles B


def test_stream_resume_continues_bit_exactly(tmp_path):
    a, b = _domains()
    full = Translator(2).fit(a, streams={"b": b}, epochs=4, batch_size=100, lr=1e-2, seed=3, quiet=True,
                             val_fraction=0, monitor=None)
    Translator(2).fit(a, streams={"b": b}, epochs=2, batch_size=100, lr=1e-2, seed=3, quiet=True, val_fraction=0,
                      monitor=None, run_dir=tmp_path / "r")
    resumed = Translator(2).fit(a, streams={"b": b}, epochs=4, batch_size=100, lr=1e-2, seed=3, quiet=True,
                                val_fraction=0, monitor=None, run_dir=tmp_path / "r", resume=True)
    assert torch.equal(full.shift, resumed.shift)
    config = hepgen.train.rundir.RunDir(tmp_path / "r").read_config()
    assert config["data"]["streams"]["b"]["n_train"] == 400


def test_ddp_ranks_see_disjoint_halves_of_the_stream():
    from hepgen.train.distributed import DistInfo
    from hepgen.train.inputs import Inputs
    from hepgen.train.settings import Settings

    a, b = _domains(n_b=400)
    inputs = Inputs(Settings(epochs=1, batch_size=100, seed=0, quiet=True, val_fraction=0), torch.device("cpu"),
                    DistInfo(rank=0, world_size=2))
    assert inputs.local_batch == 50
    inputs.open(Translator(2), None, streams={"b": b})
    inputs.place()
    seen = []
    for rank in (0, 1):
        cycle = inputs.streams["b"].cycle(inputs, 1, True, 2, rank, 50)
        seen.append(torch.cat([next(cycle)["x"] for _ in range(4)]).numpy())  # 4 x 50 = each rank's half
    both = np.concatenate(seen)
    assert len({tuple(r) for r in seen[0].round(5)} & {tuple(r) for r in seen[1].round(5)}) == 0
    assert sorted(map(tuple, both.round(5))) == sorted(map(tuple, b.round(5)))


def test_unknown_or_missing_stream_is_a_clear_error():
    a, b = _domains()
    with pytest.raises(hepgen.ConfigError, match="stream 'b'"):
        Translator(2).fit(a, epochs=1, quiet=True)
    with pytest.raises(hepgen.ConfigError, match="no event stream 'c'"):
        Translator(2).fit(a, streams={"b": b, "c": b}, epochs=1, quiet=True)
    with pytest.raises(hepgen.DataError, match="shape"):
        Translator(2).fit(a, streams={"b": b[:, :1]}, epochs=1, quiet=True)


def test_cyclegan_trains_on_the_engine_stream_with_weights_and_resumes(tmp_path):
    torch.manual_seed(0)
    a, b = _domains(400, 300)
    common = dict(epochs=2, batch_size=100, seed=0, quiet=True, val_fraction=0, monitor=None)
    weights = np.random.default_rng(2).uniform(0.5, 2.0, len(b))
    full = hepgen.CycleGAN(2, hidden=(16,)).fit(a, streams={"b": {"data": b, "weights": weights}}, **common)
    hepgen.CycleGAN(2, hidden=(16,)).fit(a, streams={"b": {"data": b, "weights": weights}}, run_dir=tmp_path / "c",
                                         **{**common, "epochs": 1})
    resumed = hepgen.CycleGAN(2, hidden=(16,)).fit(a, streams={"b": {"data": b, "weights": weights}},
                                                   run_dir=tmp_path / "c", resume=True, **common)
    for (name, x), y in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(x, y), name
    # B's preprocessing was fitted on B's (unweighted) training events
    torch.testing.assert_close(full.preprocessor_b.shift, torch.as_tensor(b.mean(0), dtype=torch.float64),
                               atol=1e-5, rtol=0)
    unweighted = hepgen.CycleGAN(2, hidden=(16,)).fit(a, streams={"b": b}, **common)
    assert any(not torch.equal(x, y) for x, y in zip(unweighted.parameters(), full.parameters()))
