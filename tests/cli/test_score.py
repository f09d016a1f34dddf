"""``hepgen score``: the model's features (and context) read by name from DATA, log p(x) checked against the
model and a closed form, every output format, a missing column named."""

import numpy as np
import pytest
import torch

import hepgen
from hepgen.data import io
from tests.helpers import run_cli


def test_score_reads_the_models_features_by_name_from_its_training_file(flat, tmp_path, capsys):
    tmp, x, _ = flat
    code, _, err = run_cli(capsys, "score", tmp / "run", f"{tmp / 'flat.root'}:events", "-o", tmp_path / "s.h5",
                           "--block-size", 1000)
    assert code == 0, err
    scores = io.read(tmp_path / "s.h5")
    model = hepgen.load(tmp / "run")
    assert model.columns_ == ["a", "b", "c", "d"]
    with torch.no_grad():
        expected = model.log_prob(torch.as_tensor(x)).numpy()  # the 4 features in the model's order
    np.testing.assert_allclose(scores.data[:, 0], expected, rtol=1e-5, atol=1e-5)
    # a Gaussian's log density, in closed form from its fitted mean and covariance, agrees too
    samples = model.sample(200_000).numpy()
    from scipy.stats import multivariate_normal

    ref = multivariate_normal(samples.mean(0), np.cov(samples.T)).logpdf(x[:50])
    np.testing.assert_allclose(scores.data[:50, 0], ref, atol=0.05)


def test_score_names_the_missing_column(flat, tmp_path, capsys):
    tmp, x, _ = flat
    io.write(tmp_path / "abc.h5", x[:, :3], columns=["a", "b", "c"])
    code, _, err = run_cli(capsys, "score", tmp / "run", tmp_path / "abc.h5", "-o", tmp_path / "s.h5")
    assert code == 2 and "'d'" in err and "abc.h5" in err and "Traceback" not in err
    assert not (tmp_path / "s.h5").exists()
