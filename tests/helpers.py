"""Helpers shared by the tests."""

from hepgen.cli import main


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """Run ``hepgen ARGV`` in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_cli_for_error(capsys, argv) -> tuple[int, str]:
    """Run ``hepgen ARGV`` in-process for its exit code and stderr; argparse's own usage errors (SystemExit 2)
    count as an exit code too."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def without(value, keys):
    """``value`` with the given keys (e.g. timings) dropped at every depth of its dicts and lists."""
    if isinstance(value, dict):
        return {k: without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [without(v, keys) for v in value]
    return value


def load_benchmark(name, monkeypatch, tag="bench"):
    """benchmarks/NAME.py imported as a module for one test (its folder on sys.path for its own imports, the module
    in sys.modules under NAME_TAG until the test ends)."""
    import importlib.util
    import sys
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(folder))
    spec = importlib.util.spec_from_file_location(f"{name}_{tag}", folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module
