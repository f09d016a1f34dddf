"""The separation power (triangular discrimination) against hand computations and the CaloChallenge's formula."""

import numpy as np
import pytest

from hepgen.errors import DataError
from hepgen.metrics import separation_power


def test_known_histograms():
    # p = (1/2, 1/2, 0), q = (1/4, 1/4, 1/2): ½ [2 (1/4)² / (3/4) + (1/2)² / (1/2)] = ½ (1/6 + 1/2) = 1/3
    assert separation_power([2, 2, 0], [1, 1, 2]) == pytest.approx(1 / 3, rel=1e-12)
    assert separation_power([3, 1], [6, 2]) == 0.0  # the same shape at another normalisation
    assert separation_power([1, 0, 0], [0, 0, 5]) == pytest.approx(1.0)  # disjoint
    with pytest.raises(DataError, match="the same bins"):
        separation_power([1, 2], [1, 2, 3])


def test_equals_the_challenges_formula_on_densities_of_unequal_bins():
    """evaluate_plotting_helper: densities × bin widths, ½ Σ (h1 − h2)² / (h1 + h2 + 1e-16)."""
    rng = np.random.default_rng(0)
    edges = np.logspace(0, 2, 15)
    a, b = rng.lognormal(2.0, 0.6, 3000), rng.lognormal(2.2, 0.5, 2000)
    da, db = (np.histogram(x, edges, density=True)[0] * np.diff(edges) for x in (a, b))
    theirs = 0.5 * np.sum((da - db) ** 2 / (da + db + 1e-16))
    assert separation_power(np.histogram(a, edges)[0], np.histogram(b, edges)[0]) == pytest.approx(theirs, rel=1e-10)
