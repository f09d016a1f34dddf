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
from hepgen.unfolding.marginal import MarginalObjective, fit_efficiency, log_marginal


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
