"""One CLI grammar (#19): the README's table of verbs is the truth, each row is checked against the parsers, and
the shared flags behave the same on every verb (-q, -o, --device, --option, deprecated spellings)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from hepgen.cli import build_parser
from hepgen.data import io
from tests.helpers import run_cli, run_cli_for_error

README = Path(__file__).resolve().parents[2] / "README.md"
#: flags of one meaning across verbs: a verb that has one must list it in its README row
SHARED = ("-q", "-o", "--report", "--seed", "--device", "--option", "--batch-size", "--block-size", "--context",
          "--weights", "--ref-weights", "--cand-weights", "--sim-weights", "--data-weights")


def _table() -> dict[str, dict[str, set[str]]]:
    """verb -> {column: flags quoted in it} from the README's table of verbs."""
    text = README.read_text()
    start = text.index("| verb | inputs | outputs | shared flags |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        verb, inputs, outputs, shared = [c.strip() for c in line.strip("|").split("|")]
        flags = lambda cell: set(re.findall(r"`(-{1,2}[a-z][\w-]*)", cell))  # noqa: E731
        words = verb.strip("`").split()
        rows[" ".join(words[:2]) if words[:2] == ["data", "import"] else words[0]] = {"inputs": flags(inputs), "outputs": flags(outputs),
                                            "shared": flags(shared)}
    return rows


TABLE = _table()


def _flags(verb: str) -> set[str]:
    if verb == "data import":  # a parser of its own beside the generators' NAME
        from hepgen.cli import data_import

        sub = data_import.build_parser()
    else:
        sub = next(a for a in build_parser()._actions if a.dest == "command").choices[verb]
    return {s for action in sub._actions if action.help != "==SUPPRESS==" for s in action.option_strings}


def test_the_table_lists_every_verb_of_the_command():
    parser = build_parser()
    verbs = set(next(a for a in parser._actions if a.dest == "command").choices)
    assert set(TABLE) == verbs | {"data import"}


@pytest.mark.parametrize("verb", sorted(TABLE))
def test_each_row_matches_the_verbs_parser(verb):
    row, flags = TABLE[verb], _flags(verb)
    for flag in row["inputs"] | row["outputs"] | row["shared"]:
        assert flag in flags, f"README says 'hepgen {verb}' takes {flag}"
    for flag in SHARED:  # and the table is complete: every shared flag the verb has is in its row
        if flag in flags:
            assert flag in row["outputs"] | row["shared"] | row["inputs"], f"'{verb}' has {flag}: add it to its row"
    assert "-q" in flags and "--quiet" in flags  # every verb can be quiet
    if "-o" in flags:
        assert "--out" in flags


@pytest.mark.parametrize("verb", [v for v in sorted(TABLE) if "--device" in TABLE[v]["shared"]])
def test_device_is_checked_before_any_work(verb, tmp_path, capsys):
    argv = {"fit": ["fit", "gaussian", tmp_path / "missing.h5", "-o", tmp_path / "run"],
            "sample": ["sample", tmp_path / "norun", "-n", "5", "-o", tmp_path / "s.h5"],
            "score": ["score", tmp_path / "norun", tmp_path / "x.h5", "-o", tmp_path / "s.h5"],
            "design": ["design", "calo", "--param", "absorber_mm=1:3", "-o", tmp_path / "r.json"],
            "report": ["report", "latents", tmp_path / "norun", "--data", tmp_path / "x.h5", "--report",
                       tmp_path / "rep"],
            "unfold": ["unfold", "posterior", "--sim-truth", "s.h5", "--sim-reco", "s.h5", "--data", "d.h5",
                       "-o", tmp_path / "u.h5"]}[verb]
    code, err = run_cli_for_error(capsys, [*argv, "--device", "gpu7"])
    assert code == 2 and "gpu7" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grammar")
    x = np.random.default_rng(0).normal(size=(400, 2))
    io.write(tmp / "d.h5:truth", np.column_stack([x, np.full(400, 2.0)]), columns=["pt", "eta", "w"])
    return tmp, x


def test_fit_takes_hyper_parameters_as_option_or_as_flags_alike(small, tmp_path, capsys):
    import yaml

    tmp, _ = small
    base = ["fit", "maf", f"{tmp / 'd.h5'}:truth/pt,eta", "--epochs", 1, "-q"]
    assert run_cli(capsys, *base, "-o", tmp_path / "a", "--option", "hidden=8,8", "--option", "transforms=1")[0] == 0
    assert run_cli(capsys, *base, "-o", tmp_path / "b", "--hidden", "8,8", "--transforms", 1)[0] == 0
    params = [yaml.safe_load((tmp_path / r / "config.yaml").read_text())["params"] for r in "ab"]
    assert params[0] == params[1] and params[0]["hidden"] == [8, 8] and params[0]["features"] == 2
    code, err = run_cli_for_error(capsys, [*base, "-o", tmp_path / "c", "--option", "hiden=8"])
    assert code == 2 and "did you mean 'hidden'" in err and not (tmp_path / "c").exists()


def test_old_spellings_still_work_and_say_so(small, tmp_path, capsys):
    tmp, _ = small
    assert run_cli(capsys, "fit", "gaussian", f"{tmp / 'd.h5'}:truth/pt,eta", "-o", tmp_path / "run", "--epochs", 1,
                   "-q")[0] == 0
    code, _, err = run_cli(capsys, "sample", tmp_path / "run", "-n", 30, "-o", tmp_path / "s.h5", "--batch-size", 7)
    assert code == 0 and "--batch-size is deprecated, use --block-size" in err
    assert run_cli(capsys, "sample", tmp_path / "run", "-n", 30, "-o", tmp_path / "t.h5", "--block-size", 7,
                   "-q") == (0, "", "")
    np.testing.assert_array_equal(io.read(tmp_path / "s.h5").data, io.read(tmp_path / "t.h5").data)
    code, err = run_cli_for_error(capsys, ["design", "calo", "--param", "absorber_mm=1:3", "--lr", "nan", "-o",
                                           tmp_path / "r.json"])
    assert code == 2 and "--lr is deprecated, use --design-lr" in err and "--design-lr must be a finite" in err


def test_score_copies_the_weights_for_roc_and_quiet_verbs_print_nothing(small, tmp_path, capsys):
    tmp, x = small
    data = f"{tmp / 'd.h5'}:truth"
    assert run_cli(capsys, "fit", "gaussian", data, "--columns", "pt,eta", "-o", tmp_path / "run", "--epochs", 1,
                   "-q")[0] == 0
    assert run_cli(capsys, "score", tmp_path / "run", data, "--weights", "w", "-o", tmp_path / "s.h5",
                   "-q") == (0, "", "")
    scores = io.read(f"{tmp_path / 's.h5'}:weight").data[:, 0]
    assert scores.shape == (400,) and np.all(scores == 2.0)
    assert run_cli(capsys, "info", tmp_path / "run", "-q") == (0, "", "")
    code, out, _ = run_cli(capsys, "roc", tmp_path / "s.h5", f"sig={tmp_path / 's.h5'}", "--weights", "weight",
                           "--bootstrap", 0, "-o", tmp_path / "roc.json", "-q")
    assert code == 0 and json.loads((tmp_path / "roc.json").read_text()) == json.loads(out)


def test_compare_writes_its_metrics_with_o(small, tmp_path, capsys):
    tmp, _ = small
    data = f"{tmp / 'd.h5'}:truth/pt,eta"
    code, out, err = run_cli(capsys, "compare", data, data, "-o", tmp_path / "m.json", "-q")
    assert code == 0, err
    assert json.loads((tmp_path / "m.json").read_text()) == json.loads(out)


def test_an_old_range_spelling_in_an_option_value_is_said_once_on_stderr(tmp_path, capsys):
    code, _, err = run_cli(capsys, "data", "calo", "-n", 3, "-o", tmp_path / "c.h5", "--option", "max_spots=100",
                           "--option", "vary=absorber_mm:1:2", "-q")
    assert code == 0 and err.count("\n") == 1 and "deprecated" in err and "absorber_mm=1:2" in err
    design = io.read(f"{tmp_path / 'c.h5'}:absorber_mm").data
    assert design.shape == (3, 1) and np.all((design >= 1) & (design <= 2))


def test_context_means_what_conditions_the_model_and_fit_refuses_a_literal_row(small, tmp_path, capsys):
    tmp, _ = small
    code, err = run_cli_for_error(capsys, ["fit", "maf", f"{tmp / 'd.h5'}:truth", "--context", "0.5,1", "-o",
                                           tmp_path / "run"])
    assert code == 2 and "for sample and score" in err and not (tmp_path / "run").exists()
