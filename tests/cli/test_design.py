"""``hepgen design calo`` refuses every bad flag and option (#26) with exit 2 naming it, before anything is
simulated or written: the numeric flags, --option (simulator and surrogate), --param/--energy ranges, --start."""

import pytest

from tests.helpers import run_cli_for_error

BAD = [
    (["--design-lr", "nan"], ["--design-lr", "finite"]),
    (["--lr", "nan"], ["--design-lr", "finite", "deprecated"]),
    (["--per-metre", "inf"], ["--per-metre", "finite"]),
    (["--per-lead", "-1"], ["--per-lead", ">= 0"]),
    (["--points", "2.5"], ["--points", "integer"]),
    (["--epochs", "0"], ["--epochs", ">= 1"]),
    (["--option", "lr=abc"], ["'lr'", "'abc'"]),
    (["--option", "hidden=64,x"], ["'hidden'"]),
    (["--option", "flow=glow"], ["'flow'", "nsf, maf"]),
    (["--option", "noise=-1"], ["'noise'", ">= 0"]),
    (["--option", "hiden=3"], ["did you mean 'hidden'"]),
    (["--energy", "0:50"], ["--energy", "> 0"]),
    (["--energy", "nan:5"], ["--energy", "finite"]),
    (["--param", "absorber_mm=1-2"], ["--param", "LOW:HIGH"]),
    (["--start", "absorber_mm=abc"], ["absorber_mm", "'abc'"]),
]


@pytest.mark.parametrize("extra, words", BAD)
def test_bad_design_input_exits_2_before_any_simulation(tmp_path, capsys, monkeypatch, extra, words):
    from hepgen.calo import design

    monkeypatch.setattr(design.CaloSimulator, "__call__", lambda *a, **k: pytest.fail("simulated before the checks"))
    argv = ["design", "calo", "--param", "absorber_mm=1:3", *extra, "-o", tmp_path / "r.json", "--report",
            tmp_path / "rep"]
    code, err = run_cli_for_error(capsys, argv)
    assert code == 2 and "Traceback" not in err and len(err) < 600, err
    for word in words:
        assert word in err, err
    assert list(tmp_path.iterdir()) == []
