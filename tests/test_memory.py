"""hepgen.memory: glibc keeps freed memory in the heap, so a loop of large temporaries stops page-faulting.

Each case runs in a fresh interpreter (the allocator's settings are per process and cannot be undone); the page
faults are the kernel's count (getrusage), an independent measure of what the setting is for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hepgen import memory

GLIBC = memory._glibc() is not None

#: a loop of 40 MB temporaries (above glibc's 32 MiB cap on its dynamic mmap threshold), as a layer's forward pass
#: makes them; the kept heap settles after a few passes, then serves them without mapping anything
LOOP = """
import json, resource, sys
import hepgen.memory as m
kept = m.keep_freed_memory() if sys.argv[1] in ("keep", "setting") else None
if sys.argv[1] == "setting":          # only whether the setting took
    print(json.dumps({"kept": kept})); sys.exit()
import torch
x = torch.ones(10 * 2**20)             # 40 MB
def layer():
    y = x * 2.0; z = y + 1.0; del y; w = z * 3.0; del z, w
for _ in range(8):                     # warm-up: the heap grows and settles
    layer()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    layer()
print(json.dumps({"kept": kept, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _run(mode: str, **env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "HEPGEN_MALLOC"}
    environ.update(OMP_NUM_THREADS="1", **env)
    out = subprocess.run([sys.executable, "-c", LOOP, mode], capture_output=True, text=True, env=environ, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="glibc's allocator only (Linux)")
def test_kept_heap_stops_the_page_faults_of_large_temporaries():
    default = _run("default")
    kept = _run("keep")
    assert kept["kept"] is True
    pages = 10 * 40 * 2**20 // 4096  # one 40 MB temporary per pass mapped afresh, one fault per 4 kB page
    assert default["faults"] > 0.5 * pages, default  # glibc maps them afresh every time (30.7k faults per pass)
    assert kept["faults"] < 0.1 * default["faults"], (default, kept)  # measured: 0 to one stray 40 MB re-fault


@pytest.mark.skipif(not GLIBC, reason="glibc's allocator only (Linux)")
@pytest.mark.parametrize("env", [{"HEPGEN_MALLOC": "system"}, {"MALLOC_TRIM_THRESHOLD_": "131072"}])
def test_user_settings_are_left_alone(env):
    assert _run("setting", **env)["kept"] is False and _run("setting")["kept"] is True


def test_warm_heap_sets_nothing_and_returns():
    assert memory.warm_heap(1024) is None


def test_command_line_keeps_freed_memory(monkeypatch):
    """`hepgen` turns the setting on before the command runs (here: `hepgen info`, in this process)."""
    calls = []
    import hepgen.cli as cli

    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append(1) or True)
    assert cli.main(["info", "pretrained:phi4-L6"]) == 0
    assert calls == [1]
