"""DDP: two gloo processes on the CPU train to the weights of one process on the same global batch."""

import subprocess
import sys
from pathlib import Path

import torch

import hepgen
import hepgen.train.rundir
from tests.train.run_fit import fit

SCRIPT = Path(__file__).with_name("run_fit.py")


def test_two_gloo_processes_match_one_process(tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(SCRIPT), "regressor", str(run), "fresh", '{"device": "cpu"}']
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    # written by rank 0 only, loadable in a single process without DDP
    ddp_model = hepgen.load(run)
    single = fit("regressor", None, device="cpu")
    for (name, a), b in zip(ddp_model.state_dict().items(), single.state_dict().values()):
        if a.is_floating_point():
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0, msg=name)
    config = hepgen.train.rundir.RunDir(run).read_config()
    assert config["train"]["world_size"] == 2
    # the weighted mean over the global batch: the logged training loss agrees too
    csv = (run / "metrics.csv").read_text().splitlines()
    header, last = csv[0].split(","), csv[-1].split(",")
    assert abs(float(last[header.index("train_loss")]) - single.history_[-1]["train_loss"]) < 1e-3


def _torchrun(script: Path, *args) -> None:
    """Run ``script`` as two gloo ranks under torchrun (one thread each, hepgen importable); it must exit 0."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script),
           *map(str, args)]
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(hepgen.__file__).parents[1])}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_process_group_setup_starts_is_destroyed_when_the_process_ends(tmp_path):
    """One group per torchrun process, however many fits (setup is idempotent), destroyed at exit."""
    script = tmp_path / "join.py"
    script.write_text(
        "import os, sys, torch, torch.distributed as dist\n"
        "from hepgen.train import distributed\n"
        "log = open(os.path.join(sys.argv[1], 'rank' + os.environ['RANK']), 'a', buffering=1)\n"
        "destroy = dist.destroy_process_group\n"
        "def spy(*args, **kwargs):\n"
        "    destroy(*args, **kwargs)\n"
        "    log.write(f'destroyed {dist.is_initialized()}\\n')\n"
        "dist.destroy_process_group = spy\n"
        "info = distributed.setup(torch.device('cpu'))\n"
        "assert distributed.setup(torch.device('cpu')) == info\n"
        "log.write(f'joined {info.rank} {info.world_size}\\n')\n")
    _torchrun(script, tmp_path)
    for rank in (0, 1):
        assert (tmp_path / f"rank{rank}").read_text().splitlines() == [f"joined {rank} 2", "destroyed False"]


def test_a_finished_fit_leaves_no_ddp_wrapper_holding_the_process_group(tmp_path):
    """The DDP wrapper holds the gloo group; one that outlived the fit (in a reference cycle) was freed only in
    the interpreter's C++ teardown, where gloo's thread aborted the process now and then: none may survive."""
    script = tmp_path / "fit_then_count.py"
    script.write_text(
        "import gc, os, sys, torch\n"
        f"sys.path.insert(0, {str(SCRIPT.parents[2])!r})\n"
        "from tests.train.run_fit import fit\n"
        "fit('regressor', None, device='cpu', epochs=1)\n"
        "alive = [o for o in gc.get_objects() if isinstance(o, torch.nn.parallel.DistributedDataParallel)]\n"
        "open(os.path.join(sys.argv[1], 'rank' + os.environ['RANK']), 'w').write(str(len(alive)))\n")
    _torchrun(script, tmp_path)
    assert [(tmp_path / f"rank{r}").read_text() for r in (0, 1)] == ["0", "0"]
