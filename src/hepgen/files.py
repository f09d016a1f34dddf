"""Atomic file writing, the one implementation every layer uses.

A file is written to a temporary name in its target's directory (``.NAME.XXXX.tmp``), fsync'ed,
given the permissions the target had (or ``0o666 & ~umask`` for a new file, as ``open`` would) and
renamed over the target: readers see the old file or the complete new one, never a partial file.
On any failure (KeyboardInterrupt included) the temporary file is removed and the old file is
untouched. SIGTERM too: while a temporary exists, SIGTERM (if it still has its default action, which is
to die on the spot) raises :class:`hepgen.errors.Terminated` instead, so the temporary is removed before
the process ends (:func:`sigterm_raises`; the CLI holds it for a whole command and exits 143). A process
killed by SIGKILL cannot clean up; :func:`remove_stale_temporaries` removes what such a process left, and
the writers of hepgen call it for the files they replace.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from hepgen.errors import Terminated

#: temporaries older than this (seconds) are assumed to belong to a dead process
STALE_AFTER_S = 60.0


def _umask() -> int:
    """The process umask, read without changing it (Linux /proc; 0o022 elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def _fsync_path(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:  # some platforms cannot open directories; the data itself is synced
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_pattern(target: Path) -> re.Pattern[str]:
    """The names :func:`atomic_path` gives the temporaries of ``target``."""
    return re.compile(rf"^\.{re.escape(target.name)}\.[^/]+\.tmp$")


def remove_stale_temporaries(directory: str | Path, name: str | None = None,
                             older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temporaries a killed writer left in ``directory`` (of file ``name``, or of any file).

    Only names of the form ``.NAME.XXXX.tmp`` older than ``older_than_s`` are removed, so a write in
    progress in another process is left alone. Returns the removed paths.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    pattern = temporary_pattern(directory / name) if name is not None else re.compile(r"^\..+\.tmp$")
    now, removed = time.time(), []
    for entry in directory.iterdir():
        if not pattern.match(entry.name) or not entry.is_file():
            continue
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime >= older_than_s:
                entry.unlink()
                removed.append(entry)
    return removed


@contextlib.contextmanager
def silenced_stdout() -> Iterator[None]:
    """What C and C++ code prints on the process's stdout (file descriptor 1) goes to /dev/null inside the block:
    FastJet's banner, the ONNX exporter's IR graph on failure, which Python's redirect_stdout cannot catch."""
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(f"terminated by signal {signum} (SIGTERM)")


@contextlib.contextmanager
def sigterm_raises(die: bool = False) -> Iterator[None]:
    """Inside this block SIGTERM raises :class:`~hepgen.errors.Terminated` instead of killing the process
    at once, so ``finally`` blocks and ``except BaseException`` cleanups run.

    Only where SIGTERM has its default action and in the main thread (where Python runs signal handlers):
    a handler the program installed itself is left alone. The previous action is restored on exit.
    ``die``: once the block's own cleanups ran, end the process by SIGTERM after all, as the default action
    would have (what the atomic writer does for a library user; the CLI catches Terminated and exits 143).
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    except Terminated:
        if die:
            signal.signal(signal.SIGTERM, previous)
            os.kill(os.getpid(), signal.SIGTERM)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on clean exit it atomically becomes ``target``.

    ``suffix`` goes before ``.tmp`` (``.NAME.XXXX.png.tmp``) for writers that read the extension.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target.parent, target.name)
    with sigterm_raises(die=True):
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=f"{suffix}.tmp")
        os.close(fd)
        tmp = Path(name)
        try:
            yield tmp
            _fsync_path(tmp)
            mode = target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_umask()
            os.chmod(tmp, mode)
            os.replace(tmp, target)
            _fsync_path(target.parent, directory=True)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(fh)`` on a binary temporary file, then move it atomically to ``path``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda fh: fh.write(text.encode()))


def writable_location(path: str | Path) -> str | None:
    """Why ``path`` (a file or directory to be created) cannot be written, or None when it can.

    Checks the nearest existing ancestor is a directory this process may write into; nothing is
    created. (A full disk shows only when writing; the writers turn that OSError into a clear error.)
    """
    path = Path(path).absolute()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return f"no existing parent directory of {path}"
        probe = probe.parent
    if probe != path and not probe.is_dir():
        return f"{probe} is a file, not a directory"
    if not os.access(probe if probe.is_dir() else probe.parent, os.W_OK | os.X_OK):
        return f"{probe} is not writable (read-only file system or no permission)"
    return None


def file_sha256(path: str | Path) -> str:
    """The sha256 (hex) of a file's bytes, read in 1 MiB blocks (the record of a user's code in a run)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
