"""``--report DIR`` of every verb: a file in the way is refused before any input is read (exit 2, the flag
named, nothing written or changed)."""

import pytest

from tests.helpers import run_cli_for_error

VERBS = {
    "compare": ["compare", "{t}/no_ref.h5", "{t}/no_cand.h5"],
    "roc": ["roc", "{t}/no_bkg.h5", "{t}/no_sig.h5"],
    "unfold": ["unfold", "ibu", "--sim-truth", "{t}/no.h5:truth", "--sim-reco", "{t}/no.h5:reco", "--data",
               "{t}/no.h5:reco"],
    "design": ["design", "calo", "--param", "absorber_mm=1:3"],
}


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_a_file_in_the_way_of_the_report_is_refused_first(tmp_path, capsys, verb):
    blocker = tmp_path / "rep"
    blocker.write_text("my notes")
    argv = [a.format(t=tmp_path) for a in VERBS[verb]] + ["--report", blocker]
    code, err = run_cli_for_error(capsys, argv)
    assert code == 2, err
    assert "--report" in err and "not a folder" in err and "Traceback" not in err
    assert "does not exist" not in err  # refused before the (missing) inputs were opened
    assert blocker.read_text() == "my notes" and sorted(p.name for p in tmp_path.iterdir()) == ["rep"]
