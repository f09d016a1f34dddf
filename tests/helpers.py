"""Helpers shared by the tests."""

from hepgen.cli import main


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """Run ``hepgen ARGV`` in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err
