"""Training-only label columns (a tagger's label and nuisance): the engine removes them from the features,
batches them with their events (shuffled, split, streamed) unpreprocessed as ``batch["labels"]``, and a
fitted model takes the features only."""

import numpy as np
import pytest
import torch
import yaml

import hepgen
from hepgen.data import io
from hepgen.errors import ConfigError, DataError
from tests.helpers import run_cli
from tests.train.toy_models import Regressor, LabelRegressor


def _data(n=800, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) * [1.0, 3.0, 0.5] + [0.0, 10.0, -2.0]
    t = 1.5 * x[:, 0] - 0.4 * x[:, 1] + 2.0 * x[:, 2] + 7.0 + 0.1 * rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, n)
    return x.astype(np.float32), t, w


def _weighted_lstsq_predictions(x, t, w):
    a = np.column_stack([x, np.ones(len(x))]).astype(np.float64)
    coef, *_ = np.linalg.lstsq(a * np.sqrt(w)[:, None], t * np.sqrt(w), rcond=None)
    return a @ coef


def _predict(model, x):
    with torch.no_grad():
        return model.linear(model.to_internal(x))[:, 0].numpy()


FIT = dict(epochs=60, batch_size=100, lr=0.05, seed=0, quiet=True, val_fraction=0.0, monitor=None)


def test_array_labels_train_to_the_weighted_least_squares_fit():
    x, t, w = _data()
    model = LabelRegressor(3).fit(x, t=t, weights=w, **FIT)
    np.testing.assert_allclose(_predict(model, x), _weighted_lstsq_predictions(x, t, w), atol=0.05)
    assert model.context == 0 and model.context_preprocessor is None  # the label is no input


@pytest.mark.parametrize("stream", [False, True])
def test_label_column_of_a_file_is_removed_from_the_features_and_not_preprocessed(tmp_path, stream):
    x, t, w = _data()
    io.write(tmp_path / "d.h5", {"a": x[:, 0], "t": t, "b": x[:, 1], "wt": w, "c": x[:, 2]})
    model = LabelRegressor(3).fit(f"{tmp_path}/d.h5", weights="wt", stream=stream, chunk_size=256,
                                   run_dir=tmp_path / "run", **FIT)
    assert model.columns_ == ["a", "b", "c"]
    # labels in their own units (a standardised t would not reach the fit of t itself)
    np.testing.assert_allclose(_predict(model, x), _weighted_lstsq_predictions(x, t, w), atol=0.05)
    data = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]
    assert data["labels"] == ["t"] and data["columns"] == ["a", "b", "c"]
    again = hepgen.load(tmp_path / "run")
    np.testing.assert_allclose(_predict(again, x), _predict(model, x), rtol=1e-6)


def test_labels_follow_their_events_through_the_validation_split_and_shuffling():
    x, t, _ = _data(n=500)
    model = LabelRegressor(3, record=True, preprocess="none").fit(x, t=t, epochs=2, batch_size=64, seed=3,
                                                                   quiet=True, val_fraction=0.2)
    row_of = {tuple(np.round(r, 4)): i for i, r in enumerate(x.astype(np.float64))}
    seen = 0
    for xb, tb in model.seen:
        rows = [row_of[tuple(np.round(r, 4))] for r in xb.numpy().astype(np.float64)]
        np.testing.assert_allclose(tb[:, 0].numpy(), t[rows], rtol=1e-6)
        seen += len(rows)
    assert seen == 2 * 400  # two epochs of the 80 % training part


def test_missing_or_misplaced_labels_are_refused_with_the_column_named(tmp_path):
    x, t, _ = _data(n=100)
    with pytest.raises(ConfigError, match="trains on t beside the features"):
        LabelRegressor(3).fit(x, **FIT)
    with pytest.raises(ConfigError, match="takes no training labels"):
        Regressor(3).fit(x, labels=t, **FIT)
    with pytest.raises(DataError, match="the labels have 99 rows but the events have 100"):
        LabelRegressor(3).fit(x, labels=t[:99], **FIT)
    with pytest.raises(DataError, match="reads 1 label column"):
        LabelRegressor(3).fit(x, labels=np.c_[t, t], **FIT)
    with pytest.raises(DataError, match=r"column 't' is NaN or infinite at row 5"):
        LabelRegressor(3).fit(x, t=np.where(np.arange(100) == 5, np.nan, t), **FIT)
    io.write(tmp_path / "d.h5", {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2]})
    with pytest.raises(DataError, match=r"(?s)'t'.*test-label-regressor reads its training labels t"):
        LabelRegressor(3).fit(f"{tmp_path}/d.h5", **FIT)
    assert not any(tmp_path.glob("run*"))


def test_cli_fit_reads_the_declared_label_column_not_as_a_feature(tmp_path, capsys):
    x, t, _ = _data(n=400)
    io.write(tmp_path / "d.h5", {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": t})
    code, _, err = run_cli(capsys, "fit", "test-label-regressor", f"{tmp_path}/d.h5", "--label", "y",
                           "--epochs", 2, "-q", "-o", tmp_path / "run")
    assert code == 0, err
    model = hepgen.load(tmp_path / "run")
    assert model.columns_ == ["a", "b", "c"] and model.label_columns() == ["y"]
    code, _, err = run_cli(capsys, "fit", "test-label-regressor", f"{tmp_path}/d.h5", "--label", "nope",
                           "--epochs", 1, "-q", "-o", tmp_path / "run2")
    assert code == 2 and "'nope'" in err and "Traceback" not in err
    assert not (tmp_path / "run2").exists()


def test_label_columns_named_for_the_training_file_are_read_from_the_validation_file_too(tmp_path):
    """As weights and context named for the training file: ``labels="y"`` reads column y of ``val`` as well
    (not the model's default column name, which neither file has)."""
    x, t, _ = _data(n=400)
    xv, tv, _ = _data(n=200, seed=1)
    io.write(tmp_path / "tr.h5", {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": t})
    io.write(tmp_path / "va.h5", {"a": xv[:, 0], "b": xv[:, 1], "c": xv[:, 2], "y": tv})
    model = LabelRegressor(3).fit(f"{tmp_path}/tr.h5", labels="y", val=f"{tmp_path}/va.h5",
                                   **{**FIT, "epochs": 40, "monitor": "val_loss"})
    assert model.columns_ == ["a", "b", "c"]
    # the best logged validation loss (its weights are restored) is the mean squared residual of the
    # validation file's y
    pred = _predict(model, xv)
    assert min(r["val_loss"] for r in model.history_) == pytest.approx(float(np.mean((pred - tv) ** 2)), rel=1e-4)


@pytest.mark.parametrize("also", ["weights", "context"])
def test_a_label_column_also_named_as_weights_or_context_is_refused(tmp_path, also):
    """A column read as both a training label and the weights (``--weights label`` for a tagger) would train
    silently with the label as event weights: refused, naming the file and the column."""
    x, t, _ = _data(n=100)
    io.write(tmp_path / "d.h5", {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "t": t})
    with pytest.raises(DataError, match=r"d\.h5: 't' is both a training label .* the " + also) as caught:
        LabelRegressor(3).fit(f"{tmp_path}/d.h5", **{also: "t"}, **FIT)
    assert "name them with its hyper-parameters" not in str(caught.value)  # the column is there: no such hint


DDP_ENTRY = """
import sys, torch
sys.path.insert(0, {root!r})
torch.set_num_threads(1)
from tests.train.test_labels import ddp_fit
ddp_fit(sys.argv[1], sys.argv[2])
"""


def ddp_fit(data, run_dir):
    """The fit both sides of the DDP test run: a file's label column t beside weights, a seeded split."""
    return LabelRegressor(3).fit(f"{data}", weights="wt", epochs=3, batch_size=60, lr=0.05, seed=0, quiet=True,
                                  val_fraction=0.2, monitor=None, device="cpu", run_dir=run_dir)


def test_two_gloo_processes_shard_the_labels_with_their_events(tmp_path):
    """Each DDP rank's batches carry the label rows of its own events: two gloo processes train to the
    weights (and log the losses) of one process on the same global batches."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    x, t, w = _data(n=600)
    io.write(tmp_path / "d.h5", {"a": x[:, 0], "t": t, "b": x[:, 1], "wt": w, "c": x[:, 2]})
    entry = tmp_path / "entry.py"
    entry.write_text(DDP_ENTRY.format(root=str(Path(__file__).resolve().parents[2])))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(entry),
           str(tmp_path / "d.h5"), str(tmp_path / "ddp")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    ddp = hepgen.load(tmp_path / "ddp")
    single = ddp_fit(tmp_path / "d.h5", None)
    for (name, a), b in zip(ddp.state_dict().items(), single.state_dict().values()):
        if a.is_floating_point():
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0, msg=name)
    rows = (tmp_path / "ddp" / "metrics.csv").read_text().splitlines()
    header, last = rows[0].split(","), rows[-1].split(",")
    assert float(last[header.index("val_loss")]) == pytest.approx(single.history_[-1]["val_loss"], rel=1e-5)


def test_events_opened_on_disk_stay_on_disk_when_their_label_columns_are_set_apart(tmp_path):
    """open_events(stream=True) then fit: the declared label column is moved out of the features without
    reading the file into memory (the events stay streamed), and the same fit as from the file results."""
    from hepgen.data.sources import open_events, split_labels

    x, t, w = _data(n=600)
    io.write(tmp_path / "d.h5", {"a": x[:, 0], "t": t, "b": x[:, 1], "wt": w, "c": x[:, 2]})
    events = open_events(f"{tmp_path}/d.h5", weights="wt", stream=True)
    assert not events.in_memory
    split = split_labels(events, ["t"])
    assert not split.in_memory and split.names["x"] == ["a", "b", "c"]
    np.testing.assert_allclose(split.x.read_rows(10, 20), x[10:20], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(split.labels.read_rows(10, 20)).reshape(-1), t[10:20], rtol=1e-6)
    fit = {**FIT, "epochs": 3, "chunk_size": 128}
    opened = LabelRegressor(3).fit(events, run_dir=tmp_path / "run", **fit)
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]["streamed"] is True
    direct = LabelRegressor(3).fit(f"{tmp_path}/d.h5", weights="wt", stream=True, **fit)
    np.testing.assert_allclose(_predict(opened, x), _predict(direct, x), rtol=1e-6)


def test_array_labels_beside_events_opened_once(tmp_path):
    """open_events on a file of features only, the labels an array (a tagger's labels from elsewhere): the
    same fit as with the features as an array; a row-count mismatch is refused."""
    from hepgen.data.sources import open_events

    x, t, _ = _data(n=400)
    io.write(tmp_path / "d.h5", {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2]})
    opened = LabelRegressor(3).fit(open_events(f"{tmp_path}/d.h5"), t=t, **{**FIT, "epochs": 3})
    direct = LabelRegressor(3).fit(x, t=t, **{**FIT, "epochs": 3})
    np.testing.assert_allclose(_predict(opened, x), _predict(direct, x), rtol=1e-5)
    with pytest.raises(DataError, match="the labels have 399 rows but the events have 400"):
        LabelRegressor(3).fit(open_events(f"{tmp_path}/d.h5"), labels=t[:399], **FIT)


def test_an_unknown_fit_option_is_a_config_error_naming_it():
    x, t, _ = _data(n=100)
    with pytest.raises(ConfigError, match="unknown option 'nuisance'.*t="):
        LabelRegressor(3).fit(x, t=t, nuisance=t, **FIT)


def test_the_old_targets_spelling_still_trains_with_a_deprecation_warning():
    """``targets=`` was the name of ``labels=`` before hepgen.targets (integrands, actions) took the word."""
    x, t, _ = _data(n=300)
    fit = {**FIT, "epochs": 2}
    new = LabelRegressor(3).fit(x, labels=t, **fit)
    with pytest.warns(DeprecationWarning, match="targets= is now labels="):
        old = LabelRegressor(3).fit(x, targets=t, **fit)
    for a, b in zip(new.state_dict().values(), old.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.warns(DeprecationWarning, match="targets= is now labels="):
        engine_old = hepgen.Engine(**fit).fit(LabelRegressor(3), x, targets=t)
    assert torch.equal(engine_old.linear.weight, new.linear.weight)
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match="not both"):
        LabelRegressor(3).fit(x, labels=t, targets=t, **fit)
    from hepgen.data.loader import Events

    with pytest.warns(DeprecationWarning, match="Events.labels"):
        assert Events(x, labels=t).targets is t


def test_a_family_written_with_the_old_target_hooks_still_trains_on_its_labels(tmp_path):
    """A user's family from before the rename (target_keywords, target_columns, check_targets, batch["targets"])
    is warned about once, at its definition, and trains exactly as the same family on the new names."""
    from hepgen.models import Model

    with pytest.warns(DeprecationWarning, match="OldRegressor defines target_columns, target_keywords, check_targets"):
        class OldRegressor(Model):
            target_keywords = ("t",)

            def __init__(self, features):
                super().__init__((features,), 0, "standard")
                self.linear = torch.nn.Linear(features, 1)

            def target_columns(self):
                return ["t"]

            def check_targets(self, targets, where):
                super().check_targets(targets, where)

            def training_losses(self, batch):
                return {"loss": (self.linear(batch["x"])[:, 0] - batch["targets"][:, 0]) ** 2}

    x, t, w = _data(n=300)
    fit = {**FIT, "epochs": 3}
    old = OldRegressor(3).fit(x, t=t, weights=w, **fit)
    new = LabelRegressor(3).fit(x, t=t, weights=w, **fit)
    assert torch.equal(old.linear.weight, new.linear.weight)
    io.write(tmp_path / "d.h5", {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "t": t})
    assert OldRegressor(3).fit(f"{tmp_path}/d.h5", **fit).columns_ == ["a", "b", "c"]  # t set apart, not a feature
    with pytest.raises(DataError, match="column 't' is NaN"):
        OldRegressor(3).fit(x, t=np.where(np.arange(300) == 7, np.nan, t), **fit)
    with pytest.warns(DeprecationWarning, match="label_columns"):
        assert new.target_columns() == ["t"]
