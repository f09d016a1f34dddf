"""Invertible preprocessing: exact inverse, log-determinant equal to autograd's, statistics from streams."""

import numpy as np
import pytest
import torch
from torch.autograd.functional import jacobian

from hepgen.data.preprocess import Preprocessor, resolve_kinds
from hepgen.errors import ConfigError, DataError

KINDS = ["standard", "log", "logit", "minmax", "none"]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return np.stack([rng.normal(3, 2, 4000), rng.exponential(5, 4000), rng.uniform(-1, 4, 4000),
                     rng.normal(0, 1, 4000), rng.normal(0, 1, 4000)], axis=1)


def test_standardised_kinds_have_zero_mean_unit_variance_and_exact_inverse(data):
    p = Preprocessor((5,), KINDS).fit(data)
    x = torch.tensor(data)
    u = p(x)
    for j in (0, 1, 2):
        assert abs(float(u[:, j].mean())) < 1e-9 and abs(float(u[:, j].std(unbiased=False)) - 1) < 1e-9
    assert float(u[:, 3].min()) == pytest.approx(0.0) and float(u[:, 3].max()) == pytest.approx(1.0)
    torch.testing.assert_close(u[:, 4], x[:, 4])
    torch.testing.assert_close(p.inverse(u), x, atol=1e-9, rtol=1e-9)


def test_log_abs_det_jacobian_matches_autograd(data):
    p = Preprocessor((5,), KINDS).fit(data)
    x = torch.tensor(data[:6])
    for row in x:
        J = jacobian(lambda a: p(a[None])[0], row)
        expected = torch.linalg.slogdet(J).logabsdet
        assert float(p.log_abs_det_jacobian(row[None])[0]) == pytest.approx(float(expected), abs=1e-9)


def test_streamed_fit_equals_in_memory_fit(data):
    whole = Preprocessor((5,), KINDS).fit(data)
    chunked = Preprocessor((5,), KINDS).fit(lambda: (data[i:i + 333] for i in range(0, len(data), 333)))
    for name in ("shift", "scale", "lo", "hi"):
        torch.testing.assert_close(getattr(whole, name), getattr(chunked, name), rtol=1e-10, atol=1e-10)


def test_images_share_scalar_statistics_and_state_reloads():
    rng = np.random.default_rng(1)
    images = rng.exponential(2.0, size=(50, 1, 4, 4))
    p = Preprocessor((1, 4, 4), "log").fit(images)
    q = Preprocessor((1, 4, 4), "none")
    q.load_state_dict(p.state_dict())
    assert q.kinds == ["log"]
    x = torch.tensor(images)
    torch.testing.assert_close(q.inverse(q(x)), x, atol=1e-9, rtol=1e-7)


def test_kinds_by_column_name_and_errors():
    assert resolve_kinds({"E": "log", "*": "none"}, 3, ["px", "E", "m"]) == ["none", "log", "none"]
    with pytest.raises(ConfigError, match="not a column"):
        resolve_kinds({"energy": "log"}, 2, ["px", "E"])
    with pytest.raises(ConfigError, match="unknown preprocessing"):
        resolve_kinds("whiten", 2)
    with pytest.raises(DataError, match="non-negative"):
        Preprocessor((2,), ["standard", "log"]).fit(np.array([[0.0, 1.0], [1.0, -2.0]]))
    with pytest.raises(DataError, match="empty"):
        Preprocessor((2,), "standard").fit(np.zeros((0, 2)))
