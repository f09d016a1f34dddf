"""data/loader.py: every event exactly once per epoch, weights and contexts follow their events, DDP rank
shares disjoint and complete (and equal to the one-process batch), streamed epochs the same from chunks."""

import numpy as np
import pytest
import torch

from hepgen.data.loader import (
    Events,
    epoch_order,
    memory_batch_count,
    memory_batches,
    stream_batch_count,
    stream_batches,
)


def _memory(n):
    ids = torch.arange(n, dtype=torch.float64)
    return {"x": torch.stack([ids, -ids], 1), "w": 0.5 * ids + 1, "context": (2 * ids)[:, None]}


def _check_follow(batch):
    ids = np.asarray(batch["x"])[:, 0]
    np.testing.assert_array_equal(np.asarray(batch["x"])[:, 1], -ids)
    np.testing.assert_array_equal(np.asarray(batch["w"]), 0.5 * ids + 1)
    np.testing.assert_array_equal(np.asarray(batch["context"])[:, 0], 2 * ids)
    return ids


@pytest.mark.parametrize("n", [1, 10, 103])
def test_memory_epoch_sees_every_event_once_with_its_weight_and_context(n):
    data = _memory(n)
    orders = []
    for epoch in range(3):
        batches = list(memory_batches(data, batch_size=16, epoch=epoch, seed=7))
        assert len(batches) == memory_batch_count(n, 16)
        ids = np.concatenate([_check_follow(b) for b in batches])
        assert sorted(ids) == list(range(n))
        orders.append(ids)
    if n > 2:
        assert not np.array_equal(orders[0], orders[1])  # reshuffled each epoch ...
    again = np.concatenate([_check_follow(b) for b in memory_batches(data, batch_size=16, epoch=1, seed=7)])
    np.testing.assert_array_equal(again, orders[1])  # ... reproducibly from (seed, epoch)


def test_memory_without_shuffle_is_file_order():
    ids = np.concatenate([_check_follow(b) for b in memory_batches(_memory(25), batch_size=4, epoch=3, seed=1,
                                                                   shuffle=False)])
    np.testing.assert_array_equal(ids, np.arange(25))


@pytest.mark.parametrize("world", [2, 3, 4])
def test_ddp_rank_shares_are_disjoint_complete_and_the_single_process_batches(world):
    n, per_rank = 96, 4  # n divisible by world: no padding
    data = _memory(n)
    shares = [[_check_follow(b) for b in memory_batches(data, batch_size=per_rank, epoch=2, seed=3, rank=r,
                                                          world=world)] for r in range(world)]
    flat = [np.concatenate(s) for s in shares]
    assert sum(len(f) for f in flat) == n
    assert sorted(np.concatenate(flat)) == list(range(n))  # disjoint and complete
    single = [_check_follow(b) for b in memory_batches(data, batch_size=per_rank * world, epoch=2, seed=3)]
    assert all(len(s) == len(single) == memory_batch_count(n, per_rank, world) for s in shares)
    for step, batch in enumerate(single):  # step k on K ranks = step k of one process with the global batch
        assert sorted(batch) == sorted(np.concatenate([s[step] for s in shares]))


def test_ddp_pads_an_uneven_split_with_repeats_only():
    n, world = 10, 3
    ids = [np.asarray(epoch_order(n, 0, 0, rank=r, world=world)) for r in range(world)]
    assert {len(i) for i in ids} == {4}  # ceil(10/3): torch's DistributedSampler pads by repeating
    flat = np.concatenate(ids)
    assert set(flat) == set(range(n)) and len(flat) - n == 2


def test_multi_array_events_are_cut_by_the_same_indices():
    ids = torch.arange(40, dtype=torch.float64)
    data = {"x": {"layer0": ids[:, None].repeat(1, 3), "layer1": (10 * ids)[:, None, None].repeat(1, 2, 2)},
            "w": ids + 0.5}
    seen = []
    for batch in memory_batches(data, batch_size=7, epoch=0, seed=0):
        first = batch["x"]["layer0"][:, 0]
        torch.testing.assert_close(batch["x"]["layer1"][:, 0, 0], 10 * first)
        torch.testing.assert_close(batch["w"], first + 0.5)
        seen += first.tolist()
    assert sorted(seen) == list(range(40))


class _Reader:
    """A file-like row source: only ``read_rows`` and ``len``; counts the rows it was asked for."""

    def __init__(self, array):
        self.array, self.reads = array, 0

    def __len__(self):
        return len(self.array)

    def read_rows(self, start, stop):
        self.reads += stop - start
        return self.array[start:stop].copy()


def _streamed(n):
    ids = np.arange(n, dtype=np.float64)
    return Events(_Reader(np.stack([ids, -ids], 1)), _Reader(0.5 * ids + 1), _Reader((2 * ids)[:, None]))


@pytest.mark.parametrize(("n", "chunk", "batch"), [(1000, 128, 50), (257, 64, 32), (50, 100, 16)])
def test_streamed_epoch_sees_every_event_once_with_its_weight_and_context(n, chunk, batch):
    events = _streamed(n)
    orders = []
    for epoch in range(2):
        batches = list(stream_batches(events, batch_size=batch, chunk_size=chunk, epoch=epoch, seed=5))
        assert len(batches) == stream_batch_count(n, batch, chunk)
        assert all(len(b["x"]) == batch for b in batches[:-1])
        ids = np.concatenate([_check_follow(b) for b in batches])
        assert sorted(ids) == list(range(n))
        orders.append(ids)
    assert not np.array_equal(orders[0], orders[1])
    assert events.x.reads == 2 * n  # each row read once per epoch


def test_streamed_rank_shares_are_disjoint_in_lockstep_and_skip_only_a_few_rows():
    n, chunk, batch, world = 1000, 100, 25, 3
    events = _streamed(n)
    shares = [[_check_follow(b) for b in stream_batches(events, batch_size=batch, chunk_size=chunk, epoch=1, seed=2,
                                                        rank=r, world=world)] for r in range(world)]
    count = stream_batch_count(n, batch, chunk, world)
    assert all(len(s) == count for s in shares)  # every rank steps the same number of times
    flat = np.concatenate([np.concatenate(s) for s in shares])
    assert len(set(flat)) == len(flat)  # disjoint
    assert n - len(flat) < world * chunk  # the rows skipped to keep ranks in lockstep are under a chunk per rank
