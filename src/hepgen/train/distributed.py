"""torch.distributed set-up for runs launched by ``torchrun``.

``torchrun --nproc-per-node=K -m hepgen fit ...`` sets RANK, LOCAL_RANK and WORLD_SIZE; the engine
then initialises the default process group (nccl on CUDA, gloo on CPU), wraps the model in
DistributedDataParallel, shards the data with a DistributedSampler (``set_epoch`` every epoch) and
logs and checkpoints on rank 0 only. Without those variables everything runs in one process.
"""

from __future__ import annotations

import atexit
import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> DistInfo:
    """Join the process group when launched by torchrun (idempotent); return this process's place."""
    if not launched_by_torchrun():
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        # the group this process started lives as long as the process, so that several fits share it
        # (re-initialising a destroyed group is unreliable under torchrun), and is destroyed when it ends
        atexit.register(teardown)
    return DistInfo(dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_world_size())


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over ranks in place (no-op in one process)."""
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def teardown() -> None:
    """Destroy the default process group, if there is one (at exit when :func:`setup` started it).

    ``destroy_process_group`` only forgets the group; it is freed when its last holder goes. A holder left in a
    reference cycle lived until the interpreter's C++ teardown, where gloo's transport thread, still joinable,
    aborted the process ("terminate called without an active exception", one run in ~15 under load): collect
    the cycles while Python is alive."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
        gc.collect()
