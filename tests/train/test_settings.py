"""The engine's settings: one frozen object, every value checked before any work, clear ConfigErrors."""

import dataclasses

import pytest
import torch

import hepgen
from hepgen.train.settings import RECORDED, Settings


@pytest.mark.parametrize(("key", "value", "message"), [
    ("epochs", 0, "'epochs' must be >= 1"),
    ("epochs", 2.5, "'epochs' must be an integer"),
    ("batch_size", True, "'batch_size' must be an integer"),
    ("lr", 0.0, "'lr' must be a finite number > 0"),
    ("lr", float("nan"), "'lr' must be a finite number"),
    ("weight_decay", -1.0, "'weight_decay' must be a finite number >= 0"),
    ("val_fraction", 1.0, r"val_fraction must be in \[0, 1\)"),
    ("clip_grad", 0, "'clip_grad' must be a finite number > 0"),
    ("patience", 0, "'patience' must be >= 1"),
    ("scheduler", "linear", "unknown scheduler 'linear'; choose one of none, cosine"),
    ("optimizer", "lbfgs", "unknown optimizer 'lbfgs'; choose one of adam, adamw, sgd"),
    ("precision", "fp8", "unknown precision 'fp8'"),
    ("precision", "fp16", "fp16 mixed precision needs CUDA"),
    ("stream", "sometimes", "stream must be 'auto', True or False"),
    ("warm_start", "yes", "warm_start must be True or False"),
    ("resume", 1, "resume must be True or False"),
    ("device", "tpu", "unknown device 'tpu'"),
    ("diagnostics", [42], "diagnostics must be callables"),
    ("diagnostics", 42, "diagnostics must be a list of callables"),
])
def test_each_bad_setting_is_a_config_error_naming_it(key, value, message):
    if key == "precision" and value == "fp16" and torch.cuda.is_available():
        pytest.skip("fp16 is allowed on CUDA")
    with pytest.raises(hepgen.ConfigError, match=message):
        Settings(**{key: value, **({"device": "cpu"} if key != "device" else {})})
    with pytest.raises(hepgen.ConfigError, match=message):  # the engine builds the same object
        hepgen.Engine(**{key: value, **({"device": "cpu"} if key != "device" else {})})


def test_a_long_bad_value_is_quoted_truncated():
    with pytest.raises(hepgen.ConfigError) as info:
        Settings(scheduler="x" * 500)
    assert len(str(info.value)) < 150


def test_settings_are_frozen_normalised_and_recorded():
    s = Settings(epochs=3, lr=1, run_dir="runs/a", device="cpu", diagnostics=[len])
    assert s.lr == 1.0 and isinstance(s.lr, float) and s.device == torch.device("cpu")
    assert str(s.run_dir) == "runs/a" and s.diagnostics == (len,)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.epochs = 4
    record = s.record(torch.device("cpu"), 1)
    assert set(record) == set(RECORDED) | {"device", "monitor", "world_size"}
    assert record["monitor"] == "val_loss" and record["epochs"] == 3


def test_the_engine_signature_lists_every_setting():
    """The CLI and Model.fit learn the engine's options from Engine.__init__: it must name every setting."""
    import inspect

    params = set(inspect.signature(hepgen.Engine.__init__).parameters) - {"self"}
    assert params == {f.name for f in dataclasses.fields(Settings)}
    engine = hepgen.Engine(epochs=4, device="cpu")
    assert engine.epochs == 4 and engine.settings.epochs == 4  # old attribute spelling still reads
