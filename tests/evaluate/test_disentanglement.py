"""Latent × quantity matrices against closed forms (Gaussian MI), numpy/scipy correlations and a hand-made
binned mutual information gap."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from hepgen.errors import DataError
from hepgen.evaluate.disentanglement import binned, latent_quantity_matrices


def _gaussian_latents(n=4000, seed=0):
    """q (n, 2) independent standard normal; z0 tracks q0 with ρ = 0.9, z1 tracks q1 with ρ = 0.6, z2 is noise."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, 2))
    rho = np.array([0.9, 0.6])
    z = np.column_stack([rho[0] * q[:, 0] + np.sqrt(1 - rho[0] ** 2) * rng.normal(size=n),
                         rho[1] * q[:, 1] + np.sqrt(1 - rho[1] ** 2) * rng.normal(size=n),
                         rng.normal(size=n)])
    return z, q, rho


def test_mutual_information_matches_the_gaussian_closed_form_in_the_right_cells():
    z, q, rho = _gaussian_latents()
    m = latent_quantity_matrices(z, q, quantity_names=["a", "b"])
    assert m.mi.shape == (3, 2) and m.pearson.shape == (3, 2)
    exact = -0.5 * np.log(1 - rho**2)  # I(z; q) of a bivariate normal with correlation ρ
    assert m.mi[0, 0] == pytest.approx(exact[0], abs=0.05)
    assert m.mi[1, 1] == pytest.approx(exact[1], abs=0.05)
    for cell in ((0, 1), (1, 0), (2, 0), (2, 1)):
        assert m.mi[cell] < 0.03
    assert m.summary["a"]["best_latent"] == "z0" and m.summary["b"]["best_latent"] == "z1"
    assert m.summary["a"]["mi_gap"] == pytest.approx(m.mi[0, 0] - np.sort(m.mi[:, 0])[-2])


def test_correlations_equal_numpy_and_scipy():
    z, q, _ = _gaussian_latents(n=500, seed=1)
    z[:, 2] = np.round(z[:, 2])  # ties: average ranks
    m = latent_quantity_matrices(z, q)
    full = np.corrcoef(np.column_stack([z, q]), rowvar=False)
    np.testing.assert_allclose(m.pearson, full[:3, 3:], atol=1e-12)
    rho = spearmanr(np.column_stack([z, q])).statistic
    np.testing.assert_allclose(m.spearman, rho[:3, 3:], atol=1e-12)


def _binned_mi(a, b):
    """Mutual information (nats) of two integer labelings from their contingency table, by hand."""
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())


def test_mig_is_the_binned_gap_over_the_binned_entropy():
    rng = np.random.default_rng(2)
    q = rng.uniform(size=(3000, 1))
    z = np.column_stack([np.exp(q[:, 0]),  # a monotone function of q: the same quantile bins, MI = H(q)
                         q[:, 0] + 0.3 * rng.normal(size=3000), rng.normal(size=3000)])
    m = latent_quantity_matrices(z, q, bins=10)
    qb = binned(q[:, 0], 10)
    entropy = _binned_mi(qb, qb)
    assert entropy == pytest.approx(np.log(10), abs=1e-9)
    mis = sorted((_binned_mi(binned(z[:, l], 10), qb) for l in range(3)), reverse=True)
    assert mis[0] == pytest.approx(entropy)
    assert m.summary["q0"]["mig"] == pytest.approx((mis[0] - mis[1]) / entropy, abs=1e-9)
    assert 0.3 < m.summary["q0"]["mig"] < 1.0


def test_constant_columns_give_zero_and_bad_inputs_are_refused():
    z, q, _ = _gaussian_latents(n=200)
    z[:, 2] = 1.5
    m = latent_quantity_matrices(z, q)
    assert np.all(m.mi[2] == 0) and np.all(m.pearson[2] == 0) and np.all(m.spearman[2] == 0)
    with pytest.raises(DataError, match="200 events of latents but 199"):
        latent_quantity_matrices(z, q[:199])
    q[7, 1] = np.nan
    with pytest.raises(DataError, match="row 7, column 1"):
        latent_quantity_matrices(z, q)


def test_the_first_call_leaves_pythons_random_state_alone():
    """sklearn.feature_selection's first import draws from Python's random (rich.style): in a fresh interpreter the
    first call must still leave the caller's random state as it was."""
    import subprocess
    import sys

    code = ("import random, numpy as np\n"
            "from hepgen.evaluate.disentanglement import latent_quantity_matrices\n"
            "random.seed(7); before = random.getstate()\n"
            "rng = np.random.default_rng(0); z = rng.normal(size=(200, 2)); q = z[:, :1] + 0.1 * rng.normal(size=(200, 1))\n"
            "latent_quantity_matrices(z, q)\n"
            "assert random.getstate() == before, 'random state moved'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
