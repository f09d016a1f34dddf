"""Truth/reco smearing: the recovered resolution, scale, efficiency and spectrum against the stated
parametrisation (binned, with statistical errors), acceptance, fakes and the generator interface."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from hepgen.data.generators import smear
from hepgen.errors import ConfigError

NO_ACCEPTANCE = {"reco_pt_min": 0.0, "eta_max": 1e9}


def test_truth_pt_follows_the_power_law():
    out = smear.generate(20000, seed=0, pt_min=20.0, pt_max=500.0, index=4.0)
    pt = out["truth"][:, 0]
    assert pt.min() >= 20.0 and pt.max() <= 500.0

    def cdf(x):  # integral of x^-4 on [20, x] over [20, 500]
        return (20.0**-3 - x**-3) / (20.0**-3 - 500.0**-3)

    assert stats.kstest(pt, cdf).pvalue > 1e-3


def test_pt_resolution_and_scale_match_the_parametrisation():
    a, c, s = 1.2, 0.04, 0.95
    out = smear.generate(60000, seed=1, stochastic=a, constant=c, scale=s, index=2.5, **NO_ACCEPTANCE)
    pt_true, pt_reco = out["truth"][:, 0], out["reco"][:, 0]
    ratio = pt_reco / pt_true
    edges = np.array([20, 25, 32, 45, 70, 120, 250, 1000])
    bins = np.digitize(pt_true, edges) - 1
    for b in range(len(edges) - 1):
        in_bin = bins == b
        k = in_bin.sum()
        assert k > 500
        # Expected spread in the bin: s sqrt(<sigma^2(pt)>) over the truth pt in the bin.
        expected_std = s * np.sqrt(np.mean((a**2 / pt_true[in_bin]) + c**2))
        mean, std = ratio[in_bin].mean(), ratio[in_bin].std()
        assert abs(mean - s) < 4 * std / np.sqrt(k)
        assert std == pytest.approx(expected_std, rel=4 / np.sqrt(2 * k) + 0.005)
    np.testing.assert_allclose(smear.pt_resolution(np.array([25.0, 400.0]), 1.0, 0.05),
                               [np.sqrt(1 / 25 + 0.0025), np.sqrt(1 / 400 + 0.0025)])


def test_efficiency_turn_on_is_recovered_within_binomial_errors():
    options = dict(efficiency_max=0.9, efficiency_pt50=30.0, efficiency_width=6.0, **NO_ACCEPTANCE)
    out = smear.generate(60000, seed=2, index=2.0, pt_max=100.0, **options)
    pt, passed = out["truth"][:, 0], out["pass_reco"]
    edges = np.linspace(20, 100, 17)
    bins = np.digitize(pt, edges) - 1
    chi2 = 0.0
    for b in range(len(edges) - 1):
        in_bin = bins == b
        expected = smear.efficiency(pt[in_bin], 0.9, 30.0, 6.0).mean()
        error = np.sqrt(expected * (1 - expected) / in_bin.sum())
        assert abs(passed[in_bin].mean() - expected) < 4 * error
        chi2 += ((passed[in_bin].mean() - expected) / error) ** 2
    assert stats.chi2.sf(chi2, len(edges) - 1) > 1e-3
    assert smear.efficiency(np.array([30.0]), 0.9, 30.0, 6.0)[0] == pytest.approx(0.45)


def test_acceptance_cuts_are_applied_to_reco():
    out = smear.generate(20000, seed=3, efficiency_max=1.0, efficiency_pt50=0.0, efficiency_width=1e-6)
    reco, passed = out["reco"], out["pass_reco"]
    in_acceptance = (reco[:, 0] > 30.0) & (np.abs(reco[:, 1]) < 2.5)
    np.testing.assert_array_equal(passed, in_acceptance)
    # eta is uniform on [-3, 3] and barely smeared: ~5/6 of the jets are inside |eta| < 2.5.
    assert np.mean(np.abs(reco[:, 1]) < 2.5) == pytest.approx(5 / 6, abs=0.01)


def test_observables_are_physical_and_correlated():
    truth = smear.generate(20000, seed=4)["truth"]
    pt, eta, mass, width, multiplicity = truth.T
    assert np.all((mass > 0) & (mass < 0.35 * pt)) and np.all((width > 0) & (width <= 0.4))
    assert np.all(multiplicity >= 1) and np.all(multiplicity == np.round(multiplicity))
    assert stats.spearmanr(mass / pt, width).statistic > 0.8
    assert stats.spearmanr(pt, multiplicity).statistic > 0.2
    assert np.abs(eta).max() <= 3.0


def test_multiplicity_and_mass_response():
    out = smear.generate(40000, seed=5, **NO_ACCEPTANCE)
    truth, reco = out["truth"], out["reco"]
    # Binomial(n, 0.9) + Poisson(0.5): mean 0.9 n + 0.5.
    assert (reco[:, 4] - 0.9 * truth[:, 4]).mean() == pytest.approx(0.5, abs=0.03)
    # Mass follows the pt response: median of (m_reco/m)/(pt_reco/pt) is 1, spread 8 %.
    ratio = (reco[:, 2] / truth[:, 2]) / (reco[:, 0] / truth[:, 0])
    assert np.median(ratio) == pytest.approx(1.0, abs=0.005)
    assert ratio.std() == pytest.approx(0.08, rel=0.05)


def test_fakes_have_no_truth_and_occur_at_the_stated_rate():
    n, rate = 20000, 0.1
    out = smear.generate(n, seed=6, fake_rate=rate)
    fake = ~out["pass_truth"]
    assert abs(fake.mean() - rate) < 4 * np.sqrt(rate * (1 - rate) / n)
    assert np.all(out["truth"][fake] == 0.0) and np.all(out["reco"][fake, 0] > 0)
    # Fakes are steeper: they pass the reco pt cut less often than real jets.
    assert out["pass_reco"][fake].mean() < out["pass_reco"][~fake].mean()
    assert np.all(smear.generate(100, seed=6)["pass_truth"])


def test_generate_is_deterministic_and_columns_are_named():
    a, b, c = smear.generate(500, seed=7), smear.generate(500, seed=7), smear.generate(500, seed=8)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["truth"], c["truth"])
    assert a["pass_reco"].dtype == bool and a["truth"].shape == a["reco"].shape == (500, 5)
    assert smear.columns() == {"truth": ["pt", "eta", "mass", "width", "multiplicity"],
                               "reco": ["pt", "eta", "mass", "width", "multiplicity"]}


@pytest.mark.parametrize(
    "options, word",
    [({"pt_max": 10.0}, "'pt_max'"), ({"fake_rate": 1.5}, "'fake_rate'"), ({"resolution": 0.1}, "'resolution'"),
     ({"scale": 0.0}, "'scale'"), ({"eta_max": -1.0}, "'eta_max'"), ({"index": "steep"}, "'index'")],
)
def test_invalid_options_raise_config_error(options, word):
    with pytest.raises(ConfigError, match=word):
        smear.generate(10, **options)
