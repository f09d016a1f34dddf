"""Marginal-likelihood unfolding: the differentiable efficiency model against a closed-form turn-on, the
importance-sampling estimate and log Z(theta) against brute force, and (slow) a run with efficiency,
acceptance and fakes that moves the pt spectrum towards a steeper data truth."""

import math

import numpy as np
import pytest
import torch
from scipy.special import ndtr

from hepgen.data.generators import smear
from hepgen.unfolding.inputs import check_inputs
from hepgen.unfolding.marginal import MarginalObjective, fit_efficiency, log_acceptance, log_marginal


def test_efficiency_net_learns_a_turn_on():
    """eps(x) = 0.9 Phi(x / 0.3) on x ~ U(-1.5, 1.5): the learned, differentiable eps within 0.06 on [-1.2, 1.2]
    (10 000 events: binomial noise ~0.02 per 0.1-wide region)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.5, 1.5, (10_000, 1))
    passed = rng.random(len(x)) < 0.9 * ndtr(x[:, 0] / 0.3)
    net = fit_efficiency(x, passed, np.ones(len(x)), epochs=10, hidden=(32, 32), batch_size=256, lr=1e-2)
    grid = np.linspace(-1.2, 1.2, 25)[:, None]
    np.testing.assert_allclose(net.numpy(grid), 0.9 * ndtr(grid[:, 0] / 0.3), atol=0.06)
    t = torch.tensor(grid, dtype=torch.float32, requires_grad=True)
    net.probability(t).sum().backward()
    assert t.grad is not None and t.grad[12, 0] > 0  # rising at x = 0


def test_log_marginal_and_log_z_against_brute_force():
    from hepgen.flows import NSF

    c = torch.log(torch.tensor([[0.5, 1.5, 1.0], [2.0, 2.0, 2.0]]))
    lp = torch.log(torch.tensor([[1.0, 1.0, 2.0], [0.5, 0.5, 0.5]]))
    np.testing.assert_allclose(log_marginal(c, lp).numpy(), [math.log((0.5 + 1.5 + 2.0) / 3), math.log(1.0)],
                               rtol=1e-6)
    # log Z = log E_theta[eps]: a flow fitted to N(0, 1), eps = that turn-on in x
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 1.0, (4000, 1))
    flow = NSF(1, transforms=2, hidden=(16, 16)).fit(x.astype(np.float32), epochs=3, batch_size=256, quiet=True)
    eff = fit_efficiency(x, rng.random(4000) < ndtr(x[:, 0] / 0.5), np.ones(4000), epochs=4, hidden=(16, 16))
    obj = MarginalObjective(flow, 1, 3, eff, z_samples=20_000)
    torch.manual_seed(0)
    log_z = obj.log_z()
    assert log_z.requires_grad
    with torch.no_grad():
        xs = flow.sample(50_000)
    value = float(log_z.detach())
    with torch.no_grad():
        direct = float(eff.probability(xs).mean())
    assert value == pytest.approx(math.log(direct), abs=0.02)
    assert value == pytest.approx(math.log(0.5), abs=0.1)  # the symmetric turn-on keeps half
    log_z.backward()  # the path-wise gradient reaches the flow's weights
    assert any(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
               for p in flow.parameters())


def test_log_acceptance_against_a_closed_form():
    """p_theta = N(mu, 1), a step efficiency eps(x) = 1[x < a]: Z(theta) = Phi(a − mu) exactly. The
    self-normalised estimate on a fixed sample of p_prior = N(0.2, 1.3^2) (not p_theta: the importance
    weights matter) with random sample weights, and its gradient in mu against autograd of log Phi(a − mu);
    the pass flags as eps (Bernoulli(eps_true) with a smooth turn-on) give the same Z within its noise."""
    gen = torch.Generator().manual_seed(3)
    n, a = 400_000, 0.5
    x = 0.2 + 1.3 * torch.randn(n, generator=gen, dtype=torch.float64)
    prior = torch.distributions.Normal(torch.tensor(0.2, dtype=torch.float64), 1.3)
    w = 0.5 + torch.rand(n, generator=gen, dtype=torch.float64)
    for mu0 in (0.0, 0.7):
        mu = torch.tensor(mu0, dtype=torch.float64, requires_grad=True)
        log_z = log_acceptance(torch.distributions.Normal(mu, 1.0).log_prob(x), prior.log_prob(x), (x < a).double(), w)
        (grad,) = torch.autograd.grad(log_z, mu)
        exact_mu = torch.tensor(mu0, dtype=torch.float64, requires_grad=True)
        exact = torch.log(torch.special.ndtr(a - exact_mu))
        (exact_grad,) = torch.autograd.grad(exact, exact_mu)
        assert float(log_z.detach()) == pytest.approx(float(exact.detach()), abs=0.006)
        assert float(grad) == pytest.approx(float(exact_grad), rel=0.03)
    # flags of a smooth turn-on eps = Phi((a − x) / 0.3): Z = Phi((a − mu) / sqrt(1 + 0.3^2))
    flags = (torch.rand(n, generator=gen, dtype=torch.float64) < torch.special.ndtr((a - x) / 0.3)).double()
    log_z = log_acceptance(torch.distributions.Normal(0.3, 1.0).log_prob(x), prior.log_prob(x), flags, w)
    assert float(log_z.detach()) == pytest.approx(math.log(ndtr((a - 0.3) / math.hypot(1.0, 0.3))), abs=0.01)


def test_objective_log_z_from_the_acceptance_sample():
    """MarginalObjective.log_z with a fixed acceptance sample: the minibatch estimate of log Phi(a − mu) for a
    Gaussian 'truth flow', and its gradient reaches mu (no efficiency model, no rsample)."""

    class Gauss(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mu = torch.nn.Parameter(torch.tensor([0.4]))

        def log_prob(self, z, grad=False):
            return torch.distributions.Normal(self.mu, 1.0).log_prob(z).sum(-1)

    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 1.0, (100_000, 1))
    log_prior = -0.5 * z[:, 0] ** 2 - 0.5 * math.log(2 * math.pi)
    obj = MarginalObjective(Gauss(), 1, 2, None, z_samples=50_000,
                            acceptance=(z, log_prior, np.ones(len(z)), (z[:, 0] < 1.0).astype(float)))
    torch.manual_seed(0)
    log_z = obj.log_z()
    assert float(log_z.detach()) == pytest.approx(math.log(ndtr(0.6)), abs=0.01)
    log_z.backward()
    assert obj.truth_flow.mu.grad is not None and float(obj.truth_flow.mu.grad) == pytest.approx(
        -math.exp(-0.18) / math.sqrt(2 * math.pi) / ndtr(0.6), rel=0.1)


@pytest.mark.slow
def test_marginal_with_efficiency_acceptance_and_fakes(tmp_path):
    from hepgen.data import io
    from hepgen.unfolding.api import compute_metrics, run_method

    sim = smear.generate(8000, seed=1, pt_min=30.0, fake_rate=0.05)
    dat = smear.generate(8000, seed=2, pt_min=30.0, index=5.0, fake_rate=0.05)
    inp = check_inputs(sim["truth"], sim["reco"], dat["reco"][dat["pass_reco"]], pass_reco=sim["pass_reco"],
                       pass_truth=sim["pass_truth"], data_truth=dat["truth"][dat["pass_truth"]], names=smear.COLUMNS)
    r = run_method("marginal", inp, bins=10, epochs=8, unfold_epochs=6, proposals=8, bootstrap=0, samples=6000)
    assert np.isfinite(r.events).all() and np.all(r.events[:, 4] == np.floor(r.events[:, 4]))
    assert np.isfinite(r.extra["log_py"]).all()
    # |eta| > 2.5 is outside the acceptance: filled by the prior's share (a sixth of uniform |eta| < 3)
    outside = np.abs(r.events[:, 1]) > 2.55
    assert r.weights[outside].sum() / r.weights.sum() == pytest.approx(1 / 6, abs=0.03)
    m = compute_metrics(r)["observables"]
    assert m["pt"]["w1"] < m["pt"]["w1_prior"]
    r.write(tmp_path / "m.h5")
    assert io.read_column(f"{tmp_path}/m.h5:events/pt").shape == (len(r.events),)


def test_edge_space_round_trip_and_jacobian():
    from hepgen.unfolding.marginal import EdgeSpace, hard_edges

    g = smear.generate(20_000, seed=4, pt_min=30.0)["truth"]
    lo, hi = hard_edges(g, np.array([True, False, True, True, True]))
    # pt has the generator's cut at 30 GeV, eta the uniform |eta| < 3; mass, width, multiplicity rise smoothly
    assert 29.9 < lo[0] < 30 and np.isnan(hi[0]) and -3.1 < lo[1] < -3 and 3 < hi[1] < 3.1
    assert np.isnan(lo[2:]).all() and np.isnan(hi[2:]).all()
    space = EdgeSpace(lo, hi)
    z = space.to_z(g)
    np.testing.assert_allclose(space.to_x(z), g, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(space.to_x(torch.tensor(z)).numpy(), g, rtol=1e-9, atol=1e-9)
    h = 1e-6
    num = sum(np.log((space.to_z(g + h * np.eye(5)[j])[:, j] - space.to_z(g - h * np.eye(5)[j])[:, j]) / (2 * h))
              for j in range(5))
    np.testing.assert_allclose(space.log_jacobian(g[:200]), num[:200], rtol=1e-4)
    assert space.inside(g).all() and not space.inside(np.array([[29.0, 0, 1, 0.1, 5]])).any()


def test_bad_marginal_options():
    from hepgen.errors import ConfigError
    from hepgen.unfolding.api import run_method

    g = smear.generate(300, seed=1, pt_min=30.0)
    inp = check_inputs(g["truth"], g["reco"], g["reco"][g["pass_reco"]], pass_reco=g["pass_reco"])
    with pytest.raises(ConfigError, match="option 'output' of unfolding method 'marginal' must be one of posterior, flow"):
        run_method("marginal", inp, output="histogram")
    with pytest.raises(ConfigError, match="option 'proposals' .* >= 1, got 0"):
        run_method("marginal", inp, proposals=0)
    with pytest.raises(ConfigError, match="option 'efficiency' of unfolding method 'marginal' must be one of tree, mlp"):
        run_method("marginal", inp, efficiency="smooth")
    with pytest.raises(ConfigError, match="option 'z_samples' .* >= 1, got 0"):
        run_method("marginal", inp, z_samples=0)


def test_closure_eta_at_the_sharp_acceptance_edge():
    """Closure on 6000 simulated pairs: the unfolded eta (uniform truth, a sharp acceptance |eta_reco| < 2.5)
    within chi2/ndf < 3 of the data's truth. With the smooth MLP eps_psi in the likelihood and the output
    divided by it (``efficiency="mlp"``, the old default) the same run gives chi2/ndf ~ 21: eps_psi leaks past
    |eta| = 2.5, p_theta bends to compensate and the division by eps_psi distorts eta near the edge."""
    from hepgen.unfolding.api import compute_metrics, run_method

    sim = smear.generate(6000, seed=1, pt_min=30.0)
    dat = smear.generate(6000, seed=2, pt_min=30.0)
    inp = check_inputs(sim["truth"], sim["reco"], dat["reco"][dat["pass_reco"]], pass_reco=sim["pass_reco"],
                       pass_truth=sim["pass_truth"], data_truth=dat["truth"][dat["pass_truth"]], names=smear.COLUMNS)
    r = run_method("marginal", inp, bins=20, epochs=2, unfold_epochs=1, proposals=8, bootstrap=0,
                   posterior_batch_size=256, coverage_samples=0)
    eta = compute_metrics(r)["observables"]["eta"]
    assert eta["chi2_ndf"] < 3.0, eta
