"""Run directories and checkpoints: atomic writes, ``weights_only`` loads.

A run directory holds ``config.yaml`` (all that is needed to rebuild the model), ``model.pt`` (its
``state_dict``: weights and preprocessing statistics), ``metrics.csv``, ``checkpoints/`` (``last.pt``
for ``--resume``, ``best.pt`` for the monitored best) and ``plots/``. Every file is written to a
temporary name in the same directory, fsync'ed, then renamed, so a killed run never leaves a
half-written file. Loading uses ``torch.load(weights_only=True)``: a checkpoint never runs code.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import torch
import yaml

from hepgen.errors import CheckpointError

FORMAT_VERSION = 1


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    On any exception the temporary file is removed and ``path`` keeps its previous content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
        with contextlib.suppress(OSError):  # make the rename itself durable
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(fh)`` on a binary temp file, then move it atomically to ``path``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda fh: fh.write(text.encode()))


def save_checkpoint(obj: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` a dict of tensors and plain values atomically."""
    return atomic_write(path, lambda fh: torch.save(obj, fh))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with a clear error for missing, corrupted or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle is a bad checkpoint
        raise CheckpointError(
            f"{path} is not a readable hepgen checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
            "it may be truncated, corrupted, or written by another program. hepgen only loads checkpoints "
            "with torch.load(weights_only=True), so files that would need to run code are refused."
        ) from exc
    if not isinstance(obj, dict) or obj.get("format") != "hepgen" or "state_dict" not in obj:
        raise CheckpointError(f"{path} was not written by hepgen (no hepgen header); refusing to load it")
    return obj


def save_model(model: torch.nn.Module, run_dir: str | Path) -> Path:
    """Write ``config.yaml`` and ``model.pt`` for ``model`` into ``run_dir``."""
    import hepgen

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_checkpoint({"format": "hepgen", "version": FORMAT_VERSION, "model": model.cli_name,
                     "state_dict": state}, run_dir / "model.pt")
    config = {
        "model": model.cli_name,
        "hepgen_version": hepgen.__version__,
        "params": model.get_config(),
        "fitted": model.extra_state(),
    }
    previous = read_config(run_dir) if (run_dir / "config.yaml").is_file() else {}
    if "train" in previous:
        config["train"] = previous["train"]
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    return run_dir


def read_config(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not a hepgen run directory: {path.name} is missing")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CheckpointError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(config, dict) or "model" not in config or "params" not in config:
        raise CheckpointError(f"{path} is not a hepgen run configuration (needs 'model' and 'params')")
    return config


def load(run_dir: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model saved in ``run_dir``, ready to ``sample``, ``log_prob``, ``encode`` or ``score``."""
    from hepgen.models import model_class

    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise CheckpointError(f"run directory {run_dir} does not exist")
    config = read_config(run_dir)
    cls = model_class(config["model"])
    try:
        model = cls(**config["params"])
    except TypeError as exc:
        raise CheckpointError(f"{run_dir / 'config.yaml'} does not fit model {config['model']!r}: {exc}") from exc
    checkpoint = load_checkpoint(run_dir / "model.pt")
    if checkpoint.get("model") != config["model"]:
        raise CheckpointError(f"{run_dir / 'model.pt'} holds a {checkpoint.get('model')!r} model but "
                              f"config.yaml says {config['model']!r}")
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{run_dir / 'model.pt'} does not match its config.yaml: {exc}") from exc
    model.load_extra_state(config.get("fitted") or {})
    model.eval()
    return model.to(device)
