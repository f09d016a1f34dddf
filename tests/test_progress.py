"""The one progress-bar owner: tqdm on stderr only on a terminal, off with quiet or progress_enabled(False)."""

import sys

from hepgen.progress import progress_bar, progress_enabled, show_progress


def test_bar_only_on_a_terminal_and_not_quiet(monkeypatch, capsys):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not show_progress() and progress_bar(3, "x").disable
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert show_progress() and not show_progress(quiet=True)
    with progress_bar(3, "counting", unit="ev") as bar:
        bar.update(3)
    assert "counting" in capsys.readouterr().err
    with progress_bar(3, "hushed", quiet=True) as bar:
        bar.update(3)
    assert capsys.readouterr().err == ""


def test_progress_enabled_is_scoped_and_nests(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    with progress_enabled(False):
        assert not show_progress() and progress_bar(1).disable
        with progress_enabled(True):
            assert show_progress()
    assert show_progress()


def test_the_generators_and_the_cli_use_this_owner():
    from hepgen.cli import common
    from hepgen.data.generators import jets, phi4, shared

    assert shared.progress_bar is progress_bar and jets.progress_bar is progress_bar
    assert phi4.show_progress is show_progress
    assert common.progress_bar(5, "x", quiet=True).disable
