"""``hepgen info``: the training record (data, weights, settings, epochs) of a run."""

from tests.helpers import run_cli


def test_info_shows_the_training_record_and_weights(flat, capsys):
    code, out, _ = run_cli(capsys, "info", flat[0] / "run")
    assert code == 0
    lines = out.splitlines()
    assert any(line.startswith("weights") and "weight" in line.split(None, 1)[1] for line in lines)
    assert "training" in lines and "data" in lines
    assert any(line.split() == ["lr", "0.05"] for line in lines)
    assert any(line.split() == ["epochs", "1"] for line in lines)
    assert any("flat.root" in line for line in lines)
