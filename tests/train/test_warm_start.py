"""fit(warm_start=True) continues from the current weights and fitted preprocessing (fine-tuning)."""

import numpy as np
import pytest
import torch

import hepgen
from hepgen.errors import ConfigError
from tests.train.toy_models import Regressor

FIT = dict(batch_size=100, seed=0, quiet=True, val_fraction=0.0, monitor=None)


def _data(shift=0.0, n=600, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) + shift
    return np.column_stack([x, x[:, 0] - x[:, 1]]).astype(np.float32)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_warm_start_keeps_weights_and_preprocessing_while_a_plain_fit_redraws_them():
    model = Regressor(4).fit(_data(), epochs=3, lr=1e-2, **FIT)
    before = _state(model)
    # new events with other means: a plain fit would refit the standardisation; a negligible lr moves no weight
    model.fit(_data(shift=5.0, seed=1), epochs=1, lr=1e-12, warm_start=True, **FIT)
    for k, v in model.state_dict().items():
        if k != "steps":
            torch.testing.assert_close(v, before[k], atol=1e-8, rtol=0, msg=k)
    model.fit(_data(shift=5.0, seed=1), epochs=1, lr=1e-12, **FIT)
    moved = [k for k, v in model.state_dict().items() if k.startswith("preprocessor.") and v.is_floating_point()
             and not torch.allclose(v, before[k])]
    assert moved  # without warm_start the standardisation is refitted to the shifted events


def test_warm_start_fine_tunes_towards_the_new_events():
    x_old, x_new = _data(), _data(seed=2)
    model = Regressor(4).fit(x_old, epochs=2, lr=1e-2, **FIT)
    loss_start = model.fit(x_new, epochs=1, lr=1e-12, warm_start=True, **FIT).history_[-1]["train_loss"]
    tuned = model.fit(x_new, epochs=10, lr=1e-2, warm_start=True, **FIT).history_[-1]["train_loss"]
    assert tuned < 0.5 * loss_start


def test_warm_start_of_an_unfitted_model_is_refused():
    with pytest.raises(ConfigError, match="never fitted"):
        Regressor(4).fit(_data(), epochs=1, warm_start=True, **FIT)
    with pytest.raises(ConfigError, match="warm_start must be True or False"):
        hepgen.Gaussian(4).fit(_data(), epochs=1, warm_start="yes", **FIT)
