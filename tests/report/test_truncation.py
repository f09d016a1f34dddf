"""The fidelity–diversity curve: each row is the metrics of the model's seeded samples at that ψ, computed here
directly; a toy model whose truncation is exact (a truncated normal) trades coverage for precision as it should."""

import numpy as np
import pytest
import torch

from hepgen.errors import ConfigError, DataError
from hepgen.report.truncation import physics_features, truncation_curve
from hepgen.gans.biggan import truncated_normal
from hepgen.metrics import fpd, precision_recall_coverage
from hepgen.nn.rng import seeded


class TruncatedToy:
    """Events N(0, I₂), truncated per component at ψ: a sampler whose fidelity–diversity trade is known."""

    cli_name = "toy"
    device = torch.device("cpu")

    def sample(self, n, context=None, truncation=None):
        return torch.randn(n, 2) if truncation is None else truncated_normal((n, 2), truncation)


class Plain:
    cli_name = "plain"

    def sample(self, n, context=None):
        return torch.randn(n, 2)


def test_rows_are_the_metrics_of_the_seeded_samples_and_truncation_trades_coverage_for_precision():
    reference = np.random.default_rng(0).normal(size=(800, 2))
    rows = truncation_curve(TruncatedToy(), reference, truncations=(0.3, 1.0, None), seed=4, classifier_auc=False)
    assert [r["truncation"] for r in rows] == [0.3, 1.0, None]
    for row in rows:
        with seeded(4):
            fake = TruncatedToy().sample(800, truncation=row["truncation"]).numpy()
        direct = precision_recall_coverage(reference, fake, k=5)
        assert {k: row[k] for k in direct} == pytest.approx(direct, abs=1e-12)
        assert (row["fpd"], row["fpd_error"]) == pytest.approx(fpd(reference, fake))
        assert row["auc"] is None
    coverage = [r["coverage"] for r in rows]
    assert coverage[0] < coverage[1] < coverage[2] and rows[2]["coverage"] > 0.9
    assert rows[0]["precision"] >= rows[2]["precision"] - 0.02 and rows[0]["fpd"] > rows[2]["fpd"]


def test_the_classifier_auc_is_near_one_half_without_truncation_and_higher_with_it():
    reference = np.random.default_rng(1).normal(size=(1000, 2))
    rows = truncation_curve(TruncatedToy(), reference, truncations=(0.2, None), seed=0)
    assert rows[1]["auc"] < 0.6 < rows[0]["auc"]


def test_refusals_and_image_features():
    with pytest.raises(ConfigError, match="without a truncation trick"):
        truncation_curve(Plain(), np.zeros((50, 2)))
    with pytest.raises(DataError, match="context has 3 rows"):
        truncation_curve(TruncatedToy(), np.zeros((50, 2)), context=np.zeros((3, 1)))
    images = np.random.default_rng(0).uniform(size=(5, 6, 4))
    assert physics_features(images).shape == (5, 6) and physics_features(images[:, 0]).shape == (5, 4)
