"""Massless n-body phase space: volumes, conservation, distributions, cuts, the e+e- -> qqg rate, LHE through pylhe."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from hepgen.errors import ConfigError, DataError
from hepgen.phasespace import (Cuts, HypercubeFlow, MatrixElementTarget, PhaseSpaceFlow, cross_section_pb,
                               massless_momenta, phase_space_volume)
from hepgen.targets import make_target, three_jet_rate
from hepgen.targets.matrix_elements import C_F


def uniform(n, d, seed=0):
    return torch.rand(n, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_phase_space_volume_closed_form(n):
    s = 7.0**2
    # the closed form, written out independently: (pi/2)^(n-1) s^(n-2) / ((n-1)! (n-2)!)
    exact = {2: math.pi / 2, 3: math.pi**2 * s / 8, 4: math.pi**3 * s**2 / 96, 5: math.pi**4 * s**3 / 2304}[n]
    assert phase_space_volume(n, s) == pytest.approx(exact, rel=1e-14)
    target = MatrixElementTarget(lambda p: torch.ones(len(p), dtype=torch.float64), 7.0, n)
    f = torch.exp(target.log_prob(uniform(20_000, 3 * n - 4)))
    mean, err = float(f.mean()), float(f.std() / math.sqrt(len(f)))
    assert abs(mean - exact) <= 4 * err + 1e-12 * exact


@pytest.mark.parametrize("n", [3, 4, 5])
def test_single_particle_energies_follow_the_phase_space_density(n):
    # in massless n-body phase space, x = 2E/sqrt(s) of any particle has density ∝ x (1 - x)^(n - 3): Beta(2, n - 2)
    p = massless_momenta(uniform(20_000, 3 * n - 4, seed=n), 10.0)
    for i in range(n):
        assert stats.kstest(2 * p[:, i, 0].numpy() / 10.0, stats.beta(2, n - 2).cdf).pvalue > 1e-3, i
    # a wrong density (Beta(2, n - 1), the next multiplicity) is rejected: the test can fail
    assert stats.kstest(2 * p[:, 0, 0].numpy() / 10.0, stats.beta(2, n - 1).cdf).pvalue < 1e-6
    # isotropy: cos(theta) of each particle uniform on [-1, 1]
    cos = p[:, 0, 3] / p[:, 0, 0]
    assert stats.kstest(cos.numpy(), stats.uniform(-1, 2).cdf).pvalue > 1e-3


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8])
def test_momentum_conservation_and_masslessness_to_float_precision(n):
    sqrt_s = 250.0
    p = massless_momenta(uniform(5_000, 3 * n - 4, seed=1), sqrt_s)
    assert p.shape == (5_000, n, 4) and p.dtype == torch.float64
    total = p.sum(1)
    expected = torch.tensor([sqrt_s, 0.0, 0.0, 0.0], dtype=torch.float64)
    assert float((total - expected).abs().max()) < 1e-12 * sqrt_s
    m2 = p[..., 0] ** 2 - (p[..., 1:] ** 2).sum(-1)
    assert float((m2.abs() / sqrt_s**2).max()) < 1e-13
    assert bool((p[..., 0] > 0).all())
    # edges of the cube stay finite
    edge = massless_momenta(torch.tensor([[0.0] * (3 * n - 4), [1.0] * (3 * n - 4)], dtype=torch.float64), sqrt_s)
    assert bool(torch.isfinite(edge).all())


def test_cuts_are_zero_weights_with_the_exact_three_body_fraction():
    # three-body: (x1, x2) uniform on the Dalitz triangle; y_ij > y keeps a triangle of side (1 - 3y): fraction (1 - 3y)^2
    y = 0.07
    target = MatrixElementTarget(lambda p: torch.ones(len(p), dtype=torch.float64), 1.0, 3, Cuts(ymin=y))
    kept = torch.isfinite(target.log_prob(uniform(100_000, 5)))
    frac = float(kept.double().mean())
    assert abs(frac - (1 - 3 * y) ** 2) < 4 * math.sqrt(frac * (1 - frac) / len(kept))
    # the pT and ΔR cuts against a direct computation on the momenta
    p = massless_momenta(uniform(2_000, 5, seed=3), 100.0)
    pt = np.hypot(p[..., 1].numpy(), p[..., 2].numpy())
    assert np.array_equal(Cuts(ptmin=20).passed(p, 1e4).numpy(), (pt > 20).all(1))
    rap = 0.5 * np.log((p[..., 0] + p[..., 3]).numpy() / (p[..., 0] - p[..., 3]).numpy())
    phi = np.arctan2(p[..., 2].numpy(), p[..., 1].numpy())
    dr = []
    for i, j in ((0, 1), (0, 2), (1, 2)):
        dphi = np.abs(phi[:, i] - phi[:, j])
        dphi = np.minimum(dphi, 2 * np.pi - dphi)
        dr.append(np.hypot(rap[:, i] - rap[:, j], dphi))
    assert np.array_equal(Cuts(drmin=0.4).passed(p, 1e4).numpy(), (np.stack(dr, 1) > 0.4).all(1))
    assert Cuts.parse(["ptmin=20", "drmin=0.4", "ymin=0.01"]).items() == ["ptmin=20", "drmin=0.4", "ymin=0.01"]
    with pytest.raises(ConfigError, match="--cut has no option 'ptmn'.*did you mean 'ptmin'"):
        Cuts.parse(["ptmn=20"])
    with pytest.raises(ConfigError, match="ymin"):
        Cuts.parse(["ymin=2"])


def eeqqg_matrix_element(p):
    """(1/σ0) dσ/dx1dx2 of e+e- -> q qbar g over dΦ_3 = (π² s/4) dx1 dx2: ∫ · dΦ_3 = R_3 (ESW eq. 3.19)."""
    s = p[:, :, 0].sum(1) ** 2
    x1, x2 = 2 * p[:, 0, 0] / s.sqrt(), 2 * p[:, 1, 0] / s.sqrt()
    return C_F * 0.118 / (2 * math.pi) * (x1**2 + x2**2) / ((1 - x1) * (1 - x2)) / (math.pi**2 * s / 4)


def test_the_matrix_element_path_gives_the_shipped_three_jet_rate():
    y = 0.05
    target = MatrixElementTarget(eeqqg_matrix_element, 91.2, 3, Cuts(ymin=y))
    f = torch.exp(target.log_prob(uniform(200_000, 5, seed=4)))
    mean, err = float(f.mean()), float(f.std() / math.sqrt(len(f)))
    builtin = make_target("eeqqg", ycut=y)
    assert builtin.integral == pytest.approx(three_jet_rate(y))
    assert abs(mean - three_jet_rate(y)) < 4 * err and err < 0.01 * mean
    # a flow trained on it integrates to the same rate, and its unweighted events carry sigma = R3 × (2π)^-5/(2s)
    model = PhaseSpaceFlow(eeqqg_matrix_element, sqrt_s=91.2, particles=3, cut=["ymin=0.05"], transforms=4,
                           hidden=(16,), bins=8)
    model.fit(None, steps_per_epoch=30, epochs=1, batch_size=512, lr=3e-3, seed=0, quiet=True)
    out = model.integrate(50_000, seed=1)
    assert abs(out["integral"] - three_jet_rate(y)) < 4 * out["error"]
    events = model.sample_unweighted(300, seed=2, batch_size=20_000, calibration=20_000)
    p = events["momenta"]
    assert p.shape == (300, 3, 4)
    pair = p[:, [0, 0, 1]] + p[:, [1, 2, 2]]
    assert ((pair[..., 0] ** 2 - (pair[..., 1:] ** 2).sum(-1)) / 91.2**2 > y).all()
    assert float(events["cross_section_pb"]) == pytest.approx(
        float(events["integral"]) * (2 * math.pi) ** -5 / (2 * 91.2**2) * 0.3894e9, rel=1e-12)
    assert cross_section_pb(1.0, 3, 4.0) == pytest.approx((2 * math.pi) ** -5 / 8 * 0.3894e9)


def test_a_user_integrand_in_python_torch_or_numpy():
    for f in (lambda x: (2 * x).prod(1), lambda x: np.prod(2 * np.asarray(x), axis=1)):
        model = HypercubeFlow(f, dims=3, transforms=2, hidden=(8,), bins=4)
        out = model.integrate(20_000, seed=0)
        assert abs(out["integral"] - 1.0) < 4 * out["error"]
        assert model.get_config()["target"] == "user" and model.get_config()["integrand"] is None
    numpy_only = HypercubeFlow(lambda x: x.prod(axis=1, keepdims=False) * 8, dims=3, transforms=2, hidden=(8,), bins=4)
    assert abs(numpy_only.integrate(20_000, seed=0)["integral"] - 1.0) < 0.05
    with pytest.raises(ConfigError, match="needs its dimension"):
        HypercubeFlow(lambda x: x[:, 0])


@pytest.mark.parametrize(("function", "match"), [
    (lambda x: torch.where(torch.arange(len(x)) == 5, float("nan"), 1.0), r"returned nan \(not finite\) at row 5"),
    (lambda x: torch.where(torch.arange(len(x)) == 2, -1.0, 1.0), r"returned -1.0 \(negative\) at row 2"),
    (lambda x: x, r"returned shape \(64, 2\) for input of shape \(64, 2\)"),
    (lambda x: x[:, 3], r"raised IndexError"),
])
def test_a_bad_user_integrand_is_a_data_error_naming_the_row(function, match):
    model = HypercubeFlow(function, dims=2, transforms=2, hidden=(8,), bins=4)
    with pytest.raises(DataError, match=match):
        model.target.log_prob(uniform(64, 2))


def test_lhe_round_trip_through_pylhe(tmp_path):
    pylhe = pytest.importorskip("pylhe")
    from hepgen.data.lhe import write_lhe

    p = massless_momenta(uniform(25, 5, seed=6), 91.2).numpy()
    path = write_lhe(tmp_path / "e.lhe", p, [1, -1, 21], 91.2, 1234.5, 6.7)
    lhe = pylhe.LHEFile.fromfile(str(path))
    info, proc = lhe.init.initInfo, lhe.init.procInfo[0]
    assert (int(info.beamA), int(info.beamB)) == (11, -11) and int(info.weightingStrategy) == 3
    assert float(info.energyA) == pytest.approx(45.6) and float(info.energyB) == pytest.approx(45.6)
    assert float(proc.xSection) == pytest.approx(1234.5) and float(proc.error) == pytest.approx(6.7)
    events = list(lhe.events)
    assert len(events) == 25
    for k, event in enumerate(events):
        parts = event.particles
        assert [int(q.id) for q in parts] == [11, -11, 1, -1, 21] and [int(q.status) for q in parts] == [-1, -1, 1, 1, 1]
        got = np.array([[q.e, q.px, q.py, q.pz] for q in parts[2:]])
        np.testing.assert_allclose(got, p[k], rtol=1e-9, atol=1e-8)
        assert float(event.eventinfo.weight) == pytest.approx(1234.5)
        assert [(int(q.color1), int(q.color2)) for q in parts[2:]] == [(501, 0), (0, 502), (502, 501)]
    with pytest.raises(DataError, match="momenta must be"):
        write_lhe(tmp_path / "bad.lhe", p[:, :2], [1, -1, 21], 91.2, 1.0, 0.1)
    assert not (tmp_path / "bad.lhe").exists()


def rambo(n_events, n, sqrt_s, seed):
    """RAMBO (Kleiss, Stirling & Ellis 1986), written out here as an independent reference: 4n numbers per event,
    n isotropic massless momenta with energies ~ q e^-q, boosted and scaled to P = (sqrt_s, 0, 0, 0); flat weight."""
    r = np.random.default_rng(seed).random((n_events, n, 4))
    c, phi, q0 = 2 * r[..., 0] - 1, 2 * np.pi * r[..., 1], -np.log(r[..., 2] * r[..., 3])
    s_ = np.sqrt(1 - c**2)
    q = np.stack([q0, q0 * s_ * np.cos(phi), q0 * s_ * np.sin(phi), q0 * c], -1)
    big = q.sum(1)
    mass = np.sqrt(big[:, 0] ** 2 - (big[:, 1:] ** 2).sum(-1))
    b = -big[:, 1:] / mass[:, None]
    x, gamma = sqrt_s / mass, big[:, 0] / mass
    a = 1 / (1 + gamma)
    bq = (b[:, None, :] * q[..., 1:]).sum(-1)
    e = x[:, None] * (gamma[:, None] * q[..., 0] + bq)
    p3 = x[:, None, None] * (q[..., 1:] + b[:, None, :] * q[..., :1] + (a[:, None] * bq)[..., None] * b[:, None, :])
    return np.concatenate([e[..., None], p3], -1)


@pytest.mark.parametrize("n", [4, 5])
def test_the_mapping_agrees_with_rambo_on_correlations(n):
    # pair masses and the largest energy probe the joint distribution, beyond the single-particle marginals
    mine = massless_momenta(uniform(20_000, 3 * n - 4, seed=10 + n), 1.0).numpy()
    ref = rambo(20_000, n, 1.0, seed=n)
    assert np.abs(ref.sum(1) - [1, 0, 0, 0]).max() < 1e-12

    def observables(p):
        pair = p[:, 0] + p[:, 1]
        y12 = pair[:, 0] ** 2 - (pair[:, 1:] ** 2).sum(-1)
        pair = p[:, 1] + p[:, -1]
        y2n = pair[:, 0] ** 2 - (pair[:, 1:] ** 2).sum(-1)
        return y12, y2n, p[..., 0].max(1), (p[:, 0, 1:] * p[:, -1, 1:]).sum(-1) / (p[:, 0, 0] * p[:, -1, 0])

    for a, b in zip(observables(mine), observables(ref)):
        assert stats.ks_2samp(a, b).pvalue > 1e-3
    # the test can fail: n-body against (n-1)-body phase space differs
    other = rambo(20_000, n - 1, 1.0, seed=99)
    assert stats.ks_2samp(observables(mine)[0], observables(other)[0]).pvalue < 1e-6
