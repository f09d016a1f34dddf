"""Calorimeter showers: response, longitudinal development and radial sampling against the GFLASH
formulas integrated independently with scipy, plus the CaloGAN geometry and the generator interface."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from hepgen.data.generators import calo
from hepgen.errors import ConfigError

BOUNDARIES_X0 = np.array([0.0, 90.0, 437.0, 477.0]) / 15.6  # layer edges from the documented geometry


def fixed_energy(energy: float, n: int, seed: int = 0, **options) -> dict[str, np.ndarray]:
    return calo.generate(n, seed=seed, energy_min=energy, energy_max=energy * (1 + 1e-9), **options)


def layer_sums(out: dict[str, np.ndarray]) -> np.ndarray:
    """Visible energy per layer in MeV: (n, 3)."""
    return np.stack([out[f"layer_{i}"].sum((1, 2)) for i in range(3)], axis=1)


def gflash_layer_fractions(energy: float, start_x0: np.ndarray | float = 0.0, draws: int = 40000) -> np.ndarray:
    """Mean fraction of an EM shower's energy in each layer, from the GFLASH fluctuated Gamma profile.

    Written independently of the module: (ln T, ln alpha) drawn with numpy's multivariate normal and
    the profile integrated with scipy's Gamma CDF. Returns (3,) plus the leaked fraction as a 4th entry.
    """
    rng = np.random.default_rng(123)
    log_y = np.log(energy / 8.7e-3)
    mean = [np.log(log_y - 0.812), np.log(0.81 + (0.458 + 2.26 / 69.0) * log_y)]
    sigma = [1 / (-1.4 + 1.26 * log_y), 1 / (-0.58 + 0.86 * log_y)]
    rho = 0.705 - 0.023 * log_y
    cov = [[sigma[0] ** 2, rho * sigma[0] * sigma[1]], [rho * sigma[0] * sigma[1], sigma[1] ** 2]]
    log_t, log_a = rng.multivariate_normal(mean, cov, draws).T
    t_max, alpha = np.exp(log_t), np.maximum(np.exp(log_a), 1 + 1e-6)  # a Gamma profile needs alpha > 1
    start = start_x0 if np.ndim(start_x0) else np.full(draws, start_x0)
    cdf = stats.gamma.cdf(np.clip(BOUNDARIES_X0[None, :] - start[:, None], 0, None),
                          alpha[:, None], scale=(t_max / (alpha - 1))[:, None])
    inside = np.diff(cdf, axis=1).mean(0)
    return np.append(inside, 1 - inside.sum())


def test_geometry_shapes_units_and_energy_spectrum():
    out = calo.generate(400, seed=1, energy_max=20.0)
    assert set(out) == {"layer_0", "layer_1", "layer_2", "energy"}
    assert out["layer_0"].shape == (400, 3, 96) and out["layer_0"].dtype == np.float32
    assert out["layer_1"].shape == (400, 12, 12)
    assert out["layer_2"].shape == (400, 12, 6)
    assert stats.kstest(out["energy"], "uniform", args=(1.0, 19.0)).pvalue > 1e-3
    # Cells in MeV, energy in GeV: visible total ~ sampling fraction x 1000 x E.
    ratio = layer_sums(out).sum(1) / (1000 * out["energy"])
    assert 0.15 < np.median(ratio) < 0.21
    log_uniform = calo.generate(400, seed=1, spectrum="log-uniform", energy_max=20.0)["energy"]
    assert stats.kstest(np.log(log_uniform), "uniform", args=(0.0, np.log(20.0))).pvalue > 1e-3


@pytest.mark.parametrize("energy", [1.0, 10.0, 50.0])
def test_positron_energy_is_conserved_on_average(energy):
    """<visible> / (f E) equals the contained fraction predicted by GFLASH (lateral leakage < 0.6 %)."""
    n = 300 if energy < 50 else 120
    out = fixed_energy(energy, n, noise=0.0)
    ratio = layer_sums(out).sum(1) / (1000 * energy * calo.SAMPLING_FRACTION)
    contained = 1 - gflash_layer_fractions(energy)[3]
    error = ratio.std() / np.sqrt(n)
    assert ratio.mean() <= contained + 3 * error
    assert ratio.mean() >= contained - 0.006 - 3 * error, (ratio.mean(), contained)


@pytest.mark.parametrize("energy", [2.0, 20.0])
def test_positron_resolution_follows_the_stochastic_term(energy):
    out = fixed_energy(energy, 400, seed=2, noise=0.0)
    total = layer_sums(out).sum(1)
    expected = calo.STOCHASTIC_EM / np.sqrt(energy)  # leakage fluctuations are negligible here
    # Relative error of a standard deviation from n values: 1/sqrt(2n) = 3.5 %; allow 4 sigma + 3 %.
    assert total.std() / total.mean() == pytest.approx(expected, rel=0.17)


def test_longitudinal_development_follows_gflash_and_grows_like_ln_e():
    energies = [2.0, 8.0, 32.0]
    observed, predicted = [], []
    for i, energy in enumerate(energies):
        sums = layer_sums(fixed_energy(energy, 250, seed=10 + i, noise=0.0))
        observed.append(sums.mean(0) / sums.sum(1).mean())
        fractions = gflash_layer_fractions(energy)[:3]
        predicted.append(fractions / fractions.sum())
    observed, predicted = np.array(observed), np.array(predicted)
    np.testing.assert_allclose(observed, predicted, atol=0.008)
    # Depth centroid (layer centres, in X0): rises with ln E at the rate GFLASH predicts.
    centres = (BOUNDARIES_X0[1:] + BOUNDARIES_X0[:-1]) / 2
    depth_obs, depth_pred = observed @ centres, predicted @ centres
    slope_obs = np.polyfit(np.log(energies), depth_obs, 1)[0]
    slope_pred = np.polyfit(np.log(energies), depth_pred, 1)[0]
    assert slope_pred > 0.5
    assert slope_obs == pytest.approx(slope_pred, rel=0.1)


def test_photons_start_deeper_than_positrons_by_the_conversion_length():
    energy, n = 10.0, 300
    positron = layer_sums(fixed_energy(energy, n, seed=3, noise=0.0))
    photon = layer_sums(fixed_energy(energy, n, seed=3, particle="gamma", noise=0.0))
    f_positron = positron[:, 0] / positron.sum(1)
    f_photon = photon[:, 0] / photon.sum(1)
    error = np.hypot(f_positron.std(), f_photon.std()) / np.sqrt(n)
    assert f_positron.mean() - f_photon.mean() > 5 * error
    conversion = np.random.default_rng(5).exponential(9 / 7, 40000)
    expected = gflash_layer_fractions(energy, conversion)
    assert f_photon.mean() == pytest.approx(expected[0] / expected[:3].sum(), abs=0.012)


def test_pions_are_longer_broader_leakier_and_fluctuate_more():
    energy, n = 30.0, 300
    positron = fixed_energy(energy, n, seed=4, noise=0.0)
    pion = fixed_energy(energy, n, seed=4, particle="pi+", noise=0.0)
    e_sums, p_sums = layer_sums(positron), layer_sums(pion)
    assert p_sums.sum(1).mean() < 0.6 * e_sums.sum(1).mean()  # invisible energy and leakage
    p_rel = p_sums.sum(1).std() / p_sums.sum(1).mean()
    e_rel = e_sums.sum(1).std() / e_sums.sum(1).mean()
    assert p_rel > 5 * e_rel
    assert (p_sums[:, 2] / p_sums.sum(1)).mean() > 10 * (e_sums[:, 2] / e_sums.sum(1)).mean()

    def outside_core(out):  # share of layer-1 energy outside the 2 x 2 cells around the axis
        layer = out["layer_1"].sum(0)
        return 1 - layer[5:7, 5:7].sum() / layer.sum()

    assert outside_core(pion) > 1.5 * outside_core(positron)

    # Punch-through: with no interaction in the 30.6 X0 = 1.27 lambda, only the MIP track is seen,
    # f_mip x 9.7 MeV/X0 x 30.6 X0 = 94 MeV visible, with probability exp(-30.6/24).
    mip_only = p_sums.sum(1) < 150.0
    expected = np.exp(-calo.DEPTH_X0 / calo.LAMBDA_X0)
    assert abs(mip_only.mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / n)
    assert np.median(p_sums.sum(1)[mip_only]) == pytest.approx(
        calo.MIP_SAMPLING_FRACTION * 9.7 * calo.DEPTH_X0, rel=0.1)


def test_radius_sampler_matches_the_two_component_cdf():
    rng = np.random.default_rng(6)
    r_core, r_tail, p_core = 0.2, 1.1, 0.7
    radius = calo.sample_radius(rng, np.full(20000, r_core), np.full(20000, r_tail), np.full(20000, p_core))

    def cdf(r):
        return p_core * r**2 / (r**2 + r_core**2) + (1 - p_core) * r**2 / (r**2 + r_tail**2)

    assert stats.kstest(radius, cdf).pvalue > 1e-3


def test_gflash_radial_parameters_at_reference_points():
    # Z = 69, E = 10 GeV, tau = 1: values worked out by hand from the GFLASH coefficients.
    r_core, r_tail, p_core = calo._radial(np.array([10.0]), np.array([1.0]))
    assert r_core[0] == pytest.approx(0.0251 + 0.00319 * np.log(10) + 0.1162 - 0.000381 * 69)
    k4 = 0.3585 + 0.0412 * np.log(10)
    assert r_tail[0] == pytest.approx((0.659 - 0.00309 * 69) * (np.exp(-2.59 * 0.355) + np.exp(k4 * 0.355)))
    u = (0.401 + 0.00187 * 69 - 1) / (1.313 - 0.0686 * np.log(10))
    assert p_core[0] == pytest.approx((2.632 - 0.00094 * 69) * np.exp(u - np.exp(u)))
    assert 0 < p_core[0] < 1 and r_core[0] < r_tail[0]


def test_showers_are_centred_and_symmetric():
    out = fixed_energy(20.0, 300, seed=7, noise=0.0)
    profile = out["layer_1"].sum((0, 1))
    left, right = profile[:6].sum(), profile[6:].sum()
    assert abs(left - right) / (left + right) < 0.02
    rows = out["layer_0"].sum((0, 2))
    assert rows[1] > 0.95 * rows.sum()  # the 160 mm middle strip row holds the shower


def test_noise_is_the_only_source_of_negative_cells():
    clean = fixed_energy(5.0, 200, seed=8, noise=0.0)
    noisy = fixed_energy(5.0, 200, seed=8, noise=2.0)
    for i in range(3):
        assert clean[f"layer_{i}"].min() >= 0.0
        assert noisy[f"layer_{i}"].min() > -6 * 2.0
    # Far from the axis (x < -200 mm in layer 0) the cells hold noise only: N(0, 2^2).
    far = noisy["layer_0"][:, :, :8].ravel()
    assert np.mean(clean["layer_0"][:, :, :8] > 0) < 0.01
    assert far.std() == pytest.approx(2.0, rel=0.05)
    assert abs(far.mean()) < 5 * 2.0 / np.sqrt(far.size)


def test_generate_is_deterministic_and_independent_of_workers():
    options = dict(energy_max=3.0, particle="pi+")
    first = calo.generate(600, seed=9, **options)  # two chunks of random streams
    again = calo.generate(600, seed=9, **options)
    parallel = calo.generate(600, seed=9, workers=2, **options)
    other = calo.generate(600, seed=10, **options)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
        np.testing.assert_array_equal(first[key], parallel[key])
    assert not np.array_equal(first["layer_1"], other["layer_1"])


@pytest.mark.parametrize(
    "options, word",
    [({"particle": "proton"}, "'particle'"), ({"energy_max": 0.5}, "'energy_max'"),
     ({"spectrum": "flat"}, "'spectrum'"), ({"noise": -1.0}, "'noise'"), ({"colour": 1}, "'colour'")],
)
def test_invalid_options_raise_config_error(options, word):
    with pytest.raises(ConfigError, match=word):
        calo.generate(3, **options)
