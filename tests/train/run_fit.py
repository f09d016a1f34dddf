"""Subprocess entry for resume and DDP tests: ``python run_fit.py MODEL RUN_DIR [resume] [extra json]``."""

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
torch.set_num_threads(1)

import hepgen  # noqa: E402
from tests.train.toy_models import Regressor, ReverseKL  # noqa: E402


def data() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 4))
    return np.column_stack([x, np.sin(x[:, 0]) + x[:, 1] * x[:, 2]]).astype(np.float32)


def fit(kind: str, run_dir: str | None, resume: bool = False, **options) -> torch.nn.Module:
    if kind == "reverse-kl":  # data-free: no input events, 25 steps of 64 draws per epoch
        settings = dict(epochs=4, batch_size=64, lr=5e-2, seed=3, quiet=True, monitor=None, steps_per_epoch=25)
        settings.update(options)
        model = ReverseKL(2, sleep=float(settings.pop("sleep", 0.0)))
        return model.fit(None, run_dir=run_dir, resume=resume, **settings)
    x = data()
    w = np.random.default_rng(1).uniform(0.2, 2.0, len(x))
    settings = dict(epochs=4, batch_size=60, lr=1e-2, seed=3, quiet=True, val_fraction=0.0, monitor=None)
    settings.update(options)
    model = Regressor(5, sleep=float(settings.pop("sleep", 0.0))) if kind == "regressor" else hepgen.Gaussian(5)
    return model.fit(x, weights=w, run_dir=run_dir, resume=resume, **settings)


def kill_in_third_epoch(kind: str, run: Path, sleep: float, pause: float) -> None:
    """Start ``fit(kind)`` into ``run`` in a subprocess and SIGKILL it once two epochs are written,
    ``pause`` seconds into the third (for the resume tests)."""
    import os
    import signal
    import subprocess
    import time

    proc = subprocess.Popen([sys.executable, __file__, kind, str(run), "fresh", json.dumps({"sleep": sleep})],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = run / "metrics.csv"
    deadline = time.time() + 120
    while time.time() < deadline:
        if metrics.exists() and metrics.read_text().count("\n") >= 3:  # header + epochs 1 and 2 done
            break
        if proc.poll() is not None:
            raise AssertionError(f"training ended before it could be killed: {proc.stderr.read().decode()}")
        time.sleep(0.02)
    time.sleep(pause)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "model.pt").exists(), "killed too late: the run had finished"


if __name__ == "__main__":
    kind, run_dir = sys.argv[1], sys.argv[2]
    resume = len(sys.argv) > 3 and sys.argv[3] == "resume"
    extra = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    fit(kind, run_dir, resume, **extra)
