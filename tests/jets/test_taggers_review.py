"""Review cases of the taggers on the engine's training labels: a pivot without validation events."""

import numpy as np
import pytest
import torch

import hepgen
from hepgen.errors import ConfigError
from tests.jets.test_taggers import toy


def _pivot():
    return hepgen.Pivot(2, pretrain_classifier=1, pretrain_adversary=1, hidden=(8,), adversary_hidden=(8,),
                        components=2)


def test_pivot_without_validation_events_is_refused_before_training_unless_monitor_is_none(monkeypatch):
    """A pivot's players have no single training loss (the classifier's L_f − λ L_r pulls against the
    adversary's L_r), so the default monitor val_loss has nothing to fall back on without validation events:
    refused before the first epoch (it was a 'neither a logged quantity' error after it); monitor=None keeps
    the last epoch."""
    x, y, z = toy(300)
    epochs_run = []
    monkeypatch.setattr(hepgen.Pivot, "on_epoch_start",
                        lambda self, epoch: (epochs_run.append(epoch), self.epoch_.fill_(epoch)))
    with pytest.raises(ConfigError, match=r"(?s)pivot.*adversary, classifier.*val_fraction > 0.*monitor=None"):
        _pivot().fit(x, labels=y, nuisance=z, epochs=2, batch_size=100, quiet=True, val_fraction=0.0)
    assert epochs_run == []
    model = _pivot().fit(x, labels=y, nuisance=z, epochs=2, batch_size=100, quiet=True, val_fraction=0.0,
                         monitor=None)
    assert epochs_run == [1, 2] and [r["epoch"] for r in model.history_] == [1, 2]
    assert torch.isfinite(model.score(np.asarray(x))).all()


def test_cli_pivot_with_val_fraction_0_exits_2_before_writing(tmp_path, capsys):
    from hepgen.cli import main
    from hepgen.data import io

    x, y, z = toy(300)
    io.write(tmp_path / "d.h5", {"a": x[:, 0], "b": x[:, 1], "label": y, "z": z})
    code = main(["fit", "pivot", f"{tmp_path}/d.h5", "--val-fraction", "0", "--epochs", "1", "-q",
                 "-o", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "val_fraction > 0" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
