"""``hepgen data``'s progress bars: tqdm on stderr for the generators that run in chunks (phi4's HMC
trajectories, calo's chunks of 500 showers), only when stderr is a terminal and not with ``-q``; the data
written do not depend on whether a bar was drawn."""

import sys

import h5py
import numpy as np
import pytest

from hepgen.cli import main
from hepgen.progress import progress_enabled, show_progress

CASES = {
    "phi4": (["L=4", "therm=3", "thin=2", "chains=2"], 4, "phi4 HMC"),
    "calo": (["max_spots=20", "noise=0"], 1001, "calo e+"),  # 3 chunks of <= 500 showers
}


def _run(tmp_path, capsys, name, *extra):
    options, n, _ = CASES[name]
    out = tmp_path / f"{name}{len(list(tmp_path.iterdir()))}.h5"
    argv = ["data", name, "-n", str(n), "-o", str(out), "--seed", "1", *extra]
    for item in options:
        argv += ["--option", item]
    assert main(argv) == 0
    with h5py.File(out) as f:
        first = next(k for k in f if isinstance(f[k], h5py.Dataset))
        data = f[first][()]
    return capsys.readouterr().err, data


@pytest.mark.parametrize("name", sorted(CASES))
def test_bar_on_a_terminal_none_with_q_or_without_a_terminal(tmp_path, capsys, monkeypatch, name):
    desc = CASES[name][2]
    err_plain, data_plain = _run(tmp_path, capsys, name)  # pytest's capture is not a terminal
    assert desc not in err_plain and "wrote" in err_plain
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    err_tty, data_tty = _run(tmp_path, capsys, name)
    assert desc in err_tty and "100%" in err_tty, err_tty
    err_quiet, data_quiet = _run(tmp_path, capsys, name, "-q")
    assert err_quiet == ""  # -q: no bar and no summary line
    np.testing.assert_array_equal(data_tty, data_plain)
    np.testing.assert_array_equal(data_quiet, data_plain)


def test_progress_enabled_is_scoped(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert show_progress()
    with progress_enabled(False):
        assert not show_progress()
        with progress_enabled(True):
            assert show_progress()
        assert not show_progress()
    assert show_progress()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    with progress_enabled(True):
        assert not show_progress()
