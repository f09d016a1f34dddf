"""The memory a run may use: /proc/meminfo read as the kernel writes it, and the refusal of an oversized run."""

import pytest

from hepgen.errors import ConfigError
from hepgen.train import resources


def test_meminfo_available_is_read_in_bytes(tmp_path):
    info = tmp_path / "meminfo"
    info.write_text("MemTotal:       24683784 kB\nMemFree:        17836976 kB\nMemAvailable:   21355788 kB\n")
    assert resources._meminfo_available(info) == 21355788 * 1024
    info.write_text("MemTotal: 1 kB\n")
    assert resources._meminfo_available(info) is None
    assert resources._meminfo_available(tmp_path / "missing") is None


def test_available_memory_of_this_machine_is_plausible():
    import os

    got = resources.available_memory("cpu")
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert got is None or 0 < got <= total


def test_check_memory_refuses_what_does_not_fit_and_names_the_options():
    resources.check_memory(10e9, "x", "lower --batch-size", available=20e9)
    with pytest.raises(ConfigError, match=r"^x needs about 30 GB of memory, but this machine has 20 GB available; "
                                          r"lower --batch-size$"):
        resources.check_memory(30e9, "x", "lower --batch-size", available=20e9)
    assert [resources.format_bytes(v) for v in (1.25e12, 8.2e8, 4000, 12)] == ["1.25 TB", "820 MB", "4 kB", "12 B"]
