"""hepgen.files, the one atomic writer: a reader sees the old file or the whole new one, never a part; no
temporary survives a failure, Ctrl-C or SIGTERM; killed writers' leftovers are swept; permissions kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hepgen.errors import Terminated
from hepgen.files import (
    STALE_AFTER_S,
    atomic_path,
    atomic_write,
    atomic_write_text,
    remove_stale_temporaries,
    sigterm_raises,
    temporary_pattern,
    writable_location,
)

SRC = Path(__file__).resolve().parents[1] / "src"


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_write_replaces_the_file_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.bin"  # missing parents are created
    assert atomic_write(target, lambda fh: fh.write(b"\x00\x01" * 1000)) == target
    assert target.read_bytes() == b"\x00\x01" * 1000
    atomic_write_text(target, "second ünïcode\n")
    assert target.read_text(encoding="utf-8") == "second ünïcode\n"
    assert _leftovers(target.parent) == []


def test_the_temporary_is_beside_the_target_and_named_for_it(tmp_path):
    target = tmp_path / "plot.png"
    with atomic_path(target, suffix=".png") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".plot.png.") and tmp.name.endswith(".png.tmp")
        assert temporary_pattern(target).match(tmp.name)
        assert not target.exists()  # nothing at the target before the rename
        tmp.write_bytes(b"png")
    assert target.read_bytes() == b"png" and not tmp.exists()


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), ValueError("bad"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path, failure):
    target = tmp_path / "keep.txt"
    target.write_text("old\n")

    def write(fh):
        fh.write(b"half of the new cont")
        raise failure

    with pytest.raises(type(failure)):
        atomic_write(target, write)
    assert target.read_text() == "old\n"
    assert _leftovers(tmp_path) == []


def test_permissions_of_an_existing_target_are_kept_a_new_file_follows_the_umask(tmp_path):
    old = tmp_path / "script.sh"
    old.write_text("echo 1\n")
    old.chmod(0o750)
    atomic_write_text(old, "echo 2\n")
    assert old.stat().st_mode & 0o7777 == 0o750
    umask = os.umask(0o027)
    try:
        new = atomic_write_text(tmp_path / "new.txt", "x")
    finally:
        os.umask(umask)
    assert new.stat().st_mode & 0o7777 == 0o666 & ~0o027  # as open() would make it, not mkstemp's 0o600


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_stale_temporaries_are_swept_fresh_ones_and_other_files_are_not(tmp_path):
    stale, fresh = tmp_path / ".out.h5.abc123.tmp", tmp_path / ".out.h5.def456.tmp"
    other_stale, unrelated = tmp_path / ".other.h5.x.tmp", tmp_path / "out.h5.tmp"
    for path in (stale, fresh, other_stale, unrelated):
        path.write_bytes(b"partial")
    for path in (stale, other_stale, unrelated):
        _age(path, STALE_AFTER_S + 5)
    assert remove_stale_temporaries(tmp_path, "out.h5") == [stale]
    assert fresh.exists() and other_stale.exists() and unrelated.exists()
    assert remove_stale_temporaries(tmp_path) == [other_stale]  # any file's, still only stale ones
    assert sorted(remove_stale_temporaries(tmp_path, older_than_s=0.0)) == [fresh]  # --resume: the writer is dead
    assert unrelated.exists()  # not a name atomic_path gives
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_writing_sweeps_a_killed_writers_temporary_of_the_same_file(tmp_path):
    left = tmp_path / ".out.txt.dead01.tmp"
    left.write_bytes(b"x" * 100)
    _age(left, STALE_AFTER_S + 1)
    atomic_write_text(tmp_path / "out.txt", "new")
    assert _leftovers(tmp_path) == []


def test_writable_location(tmp_path):
    assert writable_location(tmp_path / "a" / "b" / "run") is None  # missing parents may be created
    (tmp_path / "file").write_text("")
    assert "is a file, not a directory" in writable_location(tmp_path / "file" / "run")
    assert writable_location(tmp_path / "file") is None  # replacing a file is allowed (the callers decide)


def test_sigterm_raises_only_where_sigterm_would_kill(tmp_path):
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with pytest.raises(Terminated), sigterm_raises():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this returns
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored

    seen = []
    previous = signal.signal(signal.SIGTERM, lambda *a: seen.append(a[0]))
    try:
        with sigterm_raises():  # the program's own handler is left alone
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [signal.SIGTERM]


# A writer that blocks mid-write until it is killed: it announces the temporary's name on stdout.
_WRITER = textwrap.dedent("""
    import sys, time
    from hepgen.files import atomic_write

    def write(fh):
        fh.write(b"x" * 1_000_000)
        fh.flush()
        print("writing", flush=True)
        time.sleep(120)
        fh.write(b"never")

    atomic_write(sys.argv[1], write)
""")


def test_sigterm_mid_write_removes_the_temporary_and_keeps_the_old_file(tmp_path):
    """The library (no CLI): the process still dies by SIGTERM, but the temporary is gone first."""
    target = tmp_path / "big.bin"
    target.write_bytes(b"old")
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "writing"
        assert len(_leftovers(tmp_path)) == 1  # mid-write: the temporary holds 1 MB
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=60)
    finally:
        child.kill() if child.poll() is None else None
    assert child.returncode == -signal.SIGTERM  # died of SIGTERM, as without hepgen's handler
    assert _leftovers(tmp_path) == []
    assert target.read_bytes() == b"old"
