"""Independence Metropolis–Hastings, τ_int and reweighting, checked against closed forms."""

import numpy as np
import pytest

from hepgen.lattice import metropolis_chain, self_normalised_weights, tau_int


def test_independence_mh_leaves_a_discrete_target_invariant():
    pi = np.array([0.1, 0.2, 0.3, 0.4])
    q = np.array([0.4, 0.3, 0.2, 0.1])  # a poor proposal: the chain must correct it
    w = pi / q
    # the rule's transition matrix T_ij = q_j min(1, w_j/w_i) leaves π exactly invariant
    t = q[None, :] * np.minimum(1.0, w[None, :] / w[:, None])
    np.fill_diagonal(t, 0.0)
    t[np.diag_indices(4)] = 1.0 - t.sum(1)
    np.testing.assert_allclose(pi @ t, pi, rtol=1e-14)
    # the code implements that rule: its transition frequencies match T, its state frequencies match π
    rng = np.random.default_rng(1)
    states = rng.choice(4, size=400_000, p=q)
    indices, accepted, acceptance = metropolis_chain(np.log(pi[states]), np.log(q[states]), seed=2)
    chain = states[indices]
    counts = np.zeros((4, 4))
    np.add.at(counts, (chain[:-1], chain[1:]), 1.0)
    t_hat = counts / counts.sum(1, keepdims=True)
    err = np.sqrt(t * (1 - t) / counts.sum(1, keepdims=True)) + 1e-12
    assert np.all(np.abs(t_hat - t) < 5 * err)
    freq = np.bincount(chain, minlength=4) / len(chain)
    tau = tau_int(chain.astype(float))
    assert np.all(np.abs(freq - pi) < 5 * np.sqrt(pi * (1 - pi) * tau / len(chain)))
    assert acceptance == pytest.approx(accepted[1:].mean())
    # accepted proposals, a repeat of the current state included: Σ_i π_i Σ_j q_j min(1, w_j/w_i)
    expected = float(np.sum(pi[:, None] * q[None, :] * np.minimum(1.0, w[None, :] / w[:, None])))
    assert acceptance == pytest.approx(expected, abs=0.005)


def test_tau_int_of_an_ar1_chain():
    rng = np.random.default_rng(0)
    phi, n = 0.8, 200_000
    x = np.empty(n)
    x[0] = rng.standard_normal() / np.sqrt(1 - phi**2)
    noise = rng.standard_normal(n)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + noise[i]
    assert tau_int(x) == pytest.approx((1 + phi) / (1 - phi), rel=0.08)
    assert tau_int(np.ones(10)) == float("inf")


def test_reweighting_recovers_a_gaussian_mean():
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 2.0, 200_000)  # q = N(0, 4), p ∝ N(1, 1)
    log_q = -x**2 / 8
    log_p = -((x - 1.0) ** 2) / 2
    w = self_normalised_weights(log_p, log_q)
    assert float(np.dot(w, x)) == pytest.approx(1.0, abs=0.02)
    assert w.sum() == pytest.approx(1.0)


def test_z2_symmetrised_proposals_balance_a_one_sided_flow():
    import torch

    from hepgen.lattice import Phi4Flow
    from hepgen.lattice.mcmc import propose

    def one_sided(z2):
        model = Phi4Flow(L=4, m2=-4.0, lam=6.975, layers=2, channels=(4,), z2=z2)
        with torch.no_grad():
            for t in model.transform.transforms:
                t.conditioner[-1].bias[0] = 1.5  # every shift t = +1.5: sampled φ = (z − t) e^{−s} sits at M < 0
        return model

    torch.manual_seed(0)
    phi, _, log_q = propose(one_sided(False), 2000)
    assert np.mean(phi.mean((1, 2)) > 0) < 0.05
    model = one_sided(True)
    torch.manual_seed(0)
    phi, log_p, log_q = propose(model, 2000)
    assert abs(np.mean(phi.mean((1, 2)) > 0) - 0.5) < 0.05
    # log q_s(φ) = log ½[q(φ) + q(−φ)] from the flow's own density, and −S unchanged by the flip
    x = torch.as_tensor(phi, dtype=torch.float32)
    with torch.no_grad():
        expected = torch.logaddexp(model.log_prob_internal(x), model.log_prob_internal(-x)) - np.log(2.0)
        np.testing.assert_allclose(log_q, expected.double().numpy(), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(log_p, model.target.log_prob(x).double().numpy(), rtol=1e-5, atol=1e-3)
    # the chain samples both signs: <M> = 0 within its error, as the even action requires
    chain = model.sample_mcmc(4000, seed=2)
    m = chain["magnetisation"]
    assert abs(m.mean()) < 4 * m.std() * np.sqrt(tau_int(m) / len(m))


def test_flow_mcmc_leaves_the_callers_rng_alone():
    import torch

    from hepgen.lattice import Phi4Flow, flow_mcmc

    model = Phi4Flow(L=4, m2=1.0, lam=0.0, layers=2, channels=(4,))
    torch.manual_seed(7)
    state = torch.random.get_rng_state()
    first = flow_mcmc(model, 50, seed=3, batch_size=20)
    assert torch.equal(torch.random.get_rng_state(), state)
    again = flow_mcmc(model, 50, seed=3, batch_size=20)
    np.testing.assert_array_equal(first["configs"], again["configs"])
    assert not np.array_equal(first["configs"], flow_mcmc(model, 50, seed=4, batch_size=20)["configs"])


def _spline_flow(L=4, layers=4):
    """A phi4 spline flow away from the identity (seeded random weights), Z2-symmetrised proposals."""
    import torch

    from hepgen.lattice import Phi4Flow
    from hepgen.nn.rng import seeded

    model = Phi4Flow(L=L, m2=-4.0, lam=6.975, layers=layers, channels=(8,), kind="spline", z2=True, ess_draws=0)
    with torch.no_grad(), seeded(11):
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def test_proposals_in_bounded_passes_are_those_of_one_pass(monkeypatch):
    import torch

    import hepgen.lattice.flow as flow
    from hepgen.lattice.mcmc import propose
    from hepgen.nn.rng import seeded

    model = _spline_flow()
    monkeypatch.setattr(flow, "PASS_SITES", 10**9)  # one pass per block: the path before passes were bounded
    with seeded(5):
        ref = propose(model, 70, batch_size=64)
    monkeypatch.setattr(flow, "PASS_SITES", 16 * 16)  # 16 events of 16 sites per pass
    with torch.no_grad():
        assert model._rows_per_pass(None) == 16
    passes = []
    hook = model.transform.register_forward_hook(lambda *args: passes.append(args[1][0].shape[0]))
    with seeded(5):
        out = propose(model, 70, batch_size=64)
    hook.remove()
    assert passes == [16, 16, 16, 16, 6]  # log q(−φ) of the blocks of 64 and 6, in passes of at most 16 events
    for a, b in zip(ref, out):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
    assert np.ptp(ref[2]) > 1.0  # a flow far from the identity: the comparison means something
    # and the same as the flow's density evaluated in one pass with autograd on (no passes then)
    x = torch.as_tensor(out[0], dtype=torch.float32)
    with torch.enable_grad():
        log_q = torch.logaddexp(model.log_prob_internal(x), model.log_prob_internal(-x)) - np.log(2.0)
    np.testing.assert_allclose(out[2], log_q.detach().double().numpy(), rtol=1e-5, atol=1e-4)
    # sampling without a gradient draws the same noise as with one
    with seeded(2), torch.no_grad():
        phi, lq = model.sample_internal(40)
    with seeded(2):
        phi_g, lq_g = model.sample_internal(40)
    np.testing.assert_allclose(phi.numpy(), phi_g.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(lq.numpy(), lq_g.detach().numpy(), rtol=1e-6, atol=1e-5)


def test_passes_are_multiples_of_16_events_within_the_bound():
    import torch

    import hepgen.lattice.flow as flow
    from hepgen.lattice import LatticeFlow, Phi4Flow

    for model in (Phi4Flow(L=12, layers=2, channels=(4,)), LatticeFlow(target=lambda phi: (phi**2).sum((1, 2, 3)),
                                                                       shape=(6, 6, 6), layers=2, channels=(4,))):
        sites = int(np.prod(model.lattice))
        with torch.no_grad():
            rows = model._rows_per_pass(None)
        assert rows % 16 == 0 and rows * sites <= flow.PASS_SITES < (rows + 16) * sites
        assert model._rows_per_pass(None) is None  # training: one pass, the graph as before


@pytest.mark.skipif(not __import__("platform").libc_ver()[0] == "glibc", reason="glibc's malloc thresholds")
def test_proposing_does_not_page_fault_once_the_heap_has_grown():
    """The flow's temporaries stay in malloc's heap (hepgen.lattice.mcmc.HEAP_BLOCK) instead of being mapped
    afresh at every layer: before, a fresh process took 50-300 minor page faults per proposal at L = 8-12."""
    import os
    import subprocess
    import sys

    code = """
import resource, torch
from hepgen.lattice import Phi4Flow
from hepgen.lattice.mcmc import propose
torch.set_num_threads(1)
model = Phi4Flow(L=12, layers=2, channels=(16, 16), kind="spline", ess_draws=0)
propose(model, 2048, batch_size=1024)  # the heap grows to the working set once
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
propose(model, 2048, batch_size=1024)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 2048)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.split()[-1]) < 1.0


@pytest.mark.parametrize("L,kind", [(6, "spline"), (8, "affine"), (12, "spline")])
def test_proposals_are_bitwise_those_of_the_general_convolution_path(L, kind, monkeypatch):
    """Without gradients a checkerboard coupling convolves only the changed sites (and pads by F.pad): the
    same φ, log p and log q, bit for bit, as the full convolutions padded by concatenation (forced here);
    the last block of one event takes the general path anyway."""
    import types

    import torch

    import hepgen.nn.conv as conv
    from hepgen.flows.transforms import ConvCoupling
    from hepgen.lattice import Phi4Flow
    from hepgen.lattice.mcmc import propose
    from hepgen.nn.rng import seeded

    model = _spline_flow(L=L, layers=4)
    if kind == "affine":
        model = Phi4Flow(L=L, m2=-4.0, lam=6.975, layers=4, channels=(8,), kind="affine", z2=True, ess_draws=0)
        with torch.no_grad(), seeded(12):
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
    layers = [t for t in model.modules() if isinstance(t, ConvCoupling)]
    assert [t.board_parity for t in layers] == [0, 1, 0, 1]
    calls = []
    board = ConvCoupling._board_params
    with monkeypatch.context() as m:
        m.setattr(ConvCoupling, "_board_params", lambda *a: calls.append(1) or board(*a))
        with seeded(5):
            fast = propose(model, 101, 50)
    assert calls
    for t in layers:
        t.board_parity = None
    proxy = types.SimpleNamespace(**{k: getattr(torch, k) for k in ("cat", "Tensor")}, is_grad_enabled=lambda: True)
    monkeypatch.setattr(conv, "torch", proxy)  # periodic_pad by concatenation
    with seeded(5):
        general = propose(model, 101, 50)
    for a, b in zip(fast, general):
        np.testing.assert_array_equal(a, b)
