"""The lattice flow: reverse KL to exp(−S) without data, exact results through MH and reweighting (free theory)."""

import numpy as np
import pytest
import torch

import hepgen
from hepgen.data.generators.phi4 import action as phi4_action
from hepgen.errors import ConfigError
from hepgen.lattice import Phi4Flow, observables, self_normalised_weights, tau_int
from hepgen.lattice.mcmc import propose


@pytest.fixture(scope="module")
def free_flow(tmp_path_factory):
    run = tmp_path_factory.mktemp("phi4") / "run"
    model = Phi4Flow(L=4, m2=1.0, lam=0.0, layers=4, channels=(8,))
    model.fit(None, steps_per_epoch=25, epochs=3, batch_size=128, lr=1e-2, seed=0, quiet=True, run_dir=run)
    return model, run


def test_the_flow_density_is_normalised_and_consistent():
    model = Phi4Flow(L=4, m2=-4.0, lam=6.975, layers=2, channels=(4,))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)  # far from the identity
        phi, log_q = model.sample_internal(64)
        torch.testing.assert_close(model.log_prob_internal(phi), log_q, atol=1e-4, rtol=1e-5)
        assert phi.shape == (64, 4, 4)
    # a checkerboard coupling with circular padding: a shift of the lattice by two sites commutes with the flow
    with torch.no_grad():
        rolled = torch.roll(phi, (2, 2), dims=(1, 2))
        torch.testing.assert_close(model.log_prob_internal(rolled), log_q, atol=1e-4, rtol=1e-5)


def test_reverse_kl_respects_the_exact_bound_and_mcmc_gives_the_free_propagator(free_flow):
    model, run = free_flow
    log_z = model.target.log_norm
    # E_q[log q + S] = KL(q‖p) − log Z ≥ −log Z, and training brings it close
    torch.manual_seed(5)
    phi, log_p, log_q = propose(model, 4000)
    loss = log_q - log_p
    assert loss.mean() + log_z > -3 * loss.std() / np.sqrt(len(loss))
    assert loss.mean() + log_z < 0.5
    assert model.history_[0]["train_loss"] > model.history_[-1]["train_loss"]
    # the MH chain is exact: <φ²> against the Gaussian lattice propagator
    chain = model.sample_mcmc(20_000, seed=1)
    assert 0.3 < float(chain["acceptance"]) <= 1.0 and np.isfinite(chain["tau_int"])
    phi2 = (chain["configs"].astype(float) ** 2).mean((1, 2))
    err = phi2.std() * np.sqrt(tau_int(phi2) / len(phi2))
    exact = model.target.free_phi_squared()
    assert abs(phi2.mean() - exact) < 4 * err
    # and so is reweighting with w = exp(−S)/q
    w = self_normalised_weights(log_p, log_q)
    assert abs(observables(phi, w)["phi2"] - exact) < 0.01
    # the saved run rebuilds the same flow
    again = hepgen.load(run)
    torch.testing.assert_close(again.log_prob(phi[:5]), model.log_prob(phi[:5]))
    assert again.target.get_config() == {"L": 4, "m2": 1.0, "lam": 0.0}


def test_bad_hyper_parameters_are_named():
    with pytest.raises(ConfigError, match="kind"):
        Phi4Flow(L=4, kind="additive")
    with pytest.raises(ConfigError, match="layers"):
        Phi4Flow(L=4, layers=1)
    with pytest.raises(ConfigError, match="'lam'"):
        Phi4Flow(L=4, lam=-1.0)


@pytest.mark.parametrize("kind", ["affine", "spline", "equivariant"])
def test_log_det_of_the_sampling_map_against_the_autograd_jacobian(kind):
    # φ = f⁻¹(z): log q(φ) = log N(z) − log|det ∂φ/∂z|, the determinant from the dense Jacobian
    torch.manual_seed(0)
    model = Phi4Flow(L=4, m2=-4.0, lam=6.975, layers=4, channels=(4,), kind="spline" if kind == "spline" else "affine",
                     tail_bound=3.0, equivariant=kind == "equivariant").double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    z = torch.randn(3, 16, dtype=torch.float64)
    _, ladj = model.transform.inverse(z)
    for i in range(3):
        jac = torch.autograd.functional.jacobian(lambda v: model.transform.inverse(v[None])[0][0], z[i])
        assert float(ladj[i].detach()) == pytest.approx(float(torch.linalg.slogdet(jac)[1]), abs=1e-8)
        assert abs(float(ladj[i].detach())) > 0.1  # a map far from volume preserving
    # the density of its own samples equals the change of variables
    phi, log_q = model.sample_internal(8)
    torch.testing.assert_close(model.log_prob_internal(phi), log_q)


def test_an_equivariant_flow_is_odd_and_its_density_even():
    torch.manual_seed(1)
    model = Phi4Flow(L=4, layers=4, channels=(4, 4), equivariant=True).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
        z = torch.randn(16, 16, dtype=torch.float64)
        phi, ladj = model.transform.inverse(z)
        minus, ladj_minus = model.transform.inverse(-z)
        torch.testing.assert_close(minus, -phi)  # f⁻¹(−z) = −f⁻¹(z)
        torch.testing.assert_close(ladj_minus, ladj)
        x = phi.reshape(16, 4, 4)
        torch.testing.assert_close(model.log_prob_internal(-x), model.log_prob_internal(x))
        assert abs(float(ladj.std())) > 0.05  # not the identity
        # the proposal density is the flow's own: no second pass, log q_s = log q
        from hepgen.lattice.mcmc import propose
        model.float()
        phi, _, log_q = propose(model, 64)
        np.testing.assert_allclose(log_q, model.log_prob_internal(torch.as_tensor(phi).float()).double().numpy(),
                                   rtol=1e-5, atol=1e-4)
    with pytest.raises(ConfigError, match="equivariant"):
        Phi4Flow(L=4, kind="spline", equivariant=True)
    # it trains: reverse KL falls
    flow = Phi4Flow(L=4, layers=4, channels=(8,), equivariant=True, ess_draws=0)
    flow.fit(None, steps_per_epoch=20, epochs=2, batch_size=128, lr=1e-2, seed=0, quiet=True)
    assert flow.history_[-1]["train_loss"] < flow.history_[0]["train_loss"]


def test_mh_chain_is_exact_on_a_tiny_lattice_against_brute_force_quadrature():
    # L = 2 (4 sites, interacting): <|M|> and <φ²> by a 4-D trapezoid sum of exp(−S) on [−3, 3]⁴
    m2, lam = -1.0, 1.0
    grid = np.linspace(-3.0, 3.0, 25)
    phi = np.stack(np.meshgrid(grid, grid, grid, grid, indexing="ij"), -1).reshape(-1, 2, 2)
    p = np.exp(-phi4_action(phi, m2, lam))
    p /= p.sum()
    exact_m = float(p @ np.abs(phi.reshape(-1, 4).mean(1)))
    exact_phi2 = float(p @ (phi**2).reshape(-1, 4).mean(1))
    # an untrained flow with perturbed weights: a poor proposal the chain must correct
    model = Phi4Flow(L=2, m2=m2, lam=lam, layers=2, channels=(4,))
    torch.manual_seed(0)
    with torch.no_grad():
        for q in model.parameters():
            q.normal_(0.0, 0.1)
    chain = model.sample_mcmc(40_000, seed=1)
    torch.manual_seed(1)
    raw, _, _ = propose(model, 40_000)
    for series, exact, raw_mean in (
            (np.abs(chain["magnetisation"]), exact_m, np.abs(raw.mean((1, 2))).mean()),
            ((chain["configs"].astype(float) ** 2).mean((1, 2)), exact_phi2, (raw**2).mean())):
        err = series.std() * np.sqrt(tau_int(series) / len(series))
        assert abs(series.mean() - exact) < 4 * err
        assert abs(raw_mean - exact) > 6 * err  # the proposals alone are wrong
    assert 0.02 < float(chain["acceptance"]) < 0.9


def test_the_memory_estimate_refuses_a_lattice_that_cannot_fit_without_building_it():
    from hepgen.lattice.phi4_flow import training_memory
    from hepgen.train.resources import check_memory

    # the issue's run: L = 4096, batch 16, the default 8 layers of channels (16, 16): activations of
    # 16 x 4096² sites x 8 layers x (4 x 32 + 2 + 16) float32 = 1.25 TB
    need = training_memory(4096, 16)
    assert need == 4 * 16 * 4096**2 * 8 * (4 * 32 + 2 + 16)
    assert training_memory(4096, 32) == 2 * need and training_memory(2048, 16) == need // 4
    assert training_memory(64, 16, kind="spline", bins=8) > training_memory(64, 16)
    # the measured peak of one training step at L = 128, batch 16 is ~1.0 GB: the estimate is a bound within 1.5x
    assert 1.0e9 < training_memory(128, 16) < 1.5e9
    with pytest.raises(ConfigError, match="needs about 1.25 TB of memory, but this machine has 64 GB"):
        check_memory(need, "phi4-flow training", "lower --batch-size or --L", available=64e9)


def test_fit_refuses_an_oversized_batch_before_training_and_writes_nothing(tmp_path, monkeypatch):
    from hepgen.train import resources

    model = Phi4Flow(L=8, layers=2, channels=(4,))
    monkeypatch.setattr(resources, "available_memory", lambda device="cpu": 10_000)
    with pytest.raises(ConfigError, match=r"phi4-flow training at L=8 .* batch size 64 needs about .* but this "
                                          r"machine has 10 kB available; lower --batch-size or --L"):
        model.fit(None, steps_per_epoch=2, epochs=1, batch_size=64, quiet=True, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    model.check_fit(64, "cpu", available=1e9)  # fits


def test_cli_refuses_the_issues_lattice_with_exit_2(tmp_path, capsys):
    from tests.helpers import run_cli_for_error

    code, err = run_cli_for_error(capsys, ["fit", "phi4-flow", "--L", "4096", "--steps-per-epoch", "5", "--batch-size",
                                           "16", "-o", tmp_path / "run", "-q"])
    assert code == 2 and "Traceback" not in err
    assert "needs about 1.25 TB" in err and "--batch-size" in err and "--L" in err
    assert not (tmp_path / "run").exists()


def test_the_sampler_exports_to_onnx_on_whole_configurations(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    model = Phi4Flow(L=4, m2=-4.0, lam=6.975, layers=2, channels=(4,))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    path = tmp_path / "phi4.onnx"
    model.export(path, what="sample")  # was: an out-of-bounds index, the noise taken as (batch, L)
    z = np.random.default_rng(0).standard_normal((7, 4, 4)).astype(np.float32)
    phi, log_q = onnxruntime.InferenceSession(path.read_bytes()).run(None, {"z": z})
    assert phi.shape == (7, 4, 4) and log_q.shape == (7,)
    with torch.no_grad():  # the exported log q of each sample is the torch flow's density at that configuration
        expected = model.log_prob_internal(torch.as_tensor(phi)).numpy()
    np.testing.assert_allclose(log_q, expected, rtol=1e-4, atol=1e-3)


def test_an_export_graph_that_fails_while_traced_is_not_blamed_on_onnx(tmp_path, monkeypatch):
    from hepgen.flows.model import FlowModel

    model = Phi4Flow(L=4, layers=2, channels=(4,))
    monkeypatch.setattr(Phi4Flow, "export_graph", FlowModel.export_graph)  # the generic graph: noise (batch, L)
    with pytest.raises(ConfigError, match=r"out of DATA bounds.*failed while it was traced, not a missing ONNX "
                                          r"operation") as info:
        model.export(tmp_path / "x.onnx", what="sample")
    assert "lacks" not in str(info.value)
    assert not (tmp_path / "x.onnx").exists()
