"""The hypercube flow: a normalised density on [0, 1]^d, integrals within their errors, unweighting, the CLI."""

import math

import h5py
import numpy as np
import pytest
import torch
from scipy import stats

from hepgen.cli import main
from hepgen.errors import ConfigError, DataError
from hepgen.phasespace import HypercubeFlow, summarise, unweight


def test_the_density_is_normalised_on_the_unit_square():
    model = HypercubeFlow("camel", 2, transforms=2, hidden=(8,), bins=6)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
        n = 600
        t = (torch.arange(n, dtype=torch.float32) + 0.5) / n
        grid = torch.stack(torch.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)
        assert float(model.log_prob_internal(grid).exp().mean()) == pytest.approx(1.0, abs=2e-3)
        x, log_q = model.sample_internal(500)
        assert ((x >= 0) & (x <= 1)).all()
        torch.testing.assert_close(model.log_prob_internal(x), log_q, atol=1e-4, rtol=1e-4)
        assert torch.isinf(model.log_prob_internal(torch.tensor([[1.5, 0.5]]))).all()


@pytest.mark.parametrize(("target", "loss"), [("camel", "kl"), ("eeqqg", "variance")])
def test_training_lowers_the_variance_and_the_integral_is_right(target, loss):
    model = HypercubeFlow(target, 2, transforms=4, hidden=(32,), bins=8, loss=loss)
    before = model.integrate(20_000, seed=1)
    model.fit(None, steps_per_epoch=30, epochs=2, batch_size=512, lr=3e-3, seed=0, quiet=True)
    after = model.integrate(50_000, seed=2)
    exact = model.target.integral
    assert abs(after["integral"] - exact) < 4 * after["error"]
    assert after["variance_per_call"] < 0.5 * before["variance_per_call"]
    assert after["unweighting_efficiency"] > before["unweighting_efficiency"]


def test_unweighted_events_follow_the_integrand():
    # a uniform sampler of f(x) = 2x on [0, 1]: kept events follow the density 2x (CDF x²)
    rng = np.random.default_rng(0)

    def draw(k):
        x = rng.random((k, 1))
        return x, 2.0 * x[:, 0]

    out = unweight(draw, 20_000, seed=1, calibration=50_000, batch_size=10_000)
    assert out["samples"].shape == (20_000, 1)
    assert stats.kstest(out["samples"][:, 0], lambda v: v**2).pvalue > 1e-3
    assert float(out["efficiency"]) == pytest.approx(0.5, abs=0.02)
    assert abs(float(out["integral"]) - 1.0) < 4 * float(out["integral_error"])
    # a max weight at the median: more efficient, but overweights are counted (the quantile caveat)
    low = unweight(draw, 5_000, seed=1, quantile=0.5, batch_size=10_000)
    # E[min(1, w)] = 3/4 kept, of which P(w > 1) / (3/4) = 2/3 overweight, excess Σ(w − 1)₊/Σw = 1/4
    assert float(low["efficiency"]) == pytest.approx(0.75, abs=0.02)
    assert float(low["overweight_fraction"]) == pytest.approx(2 / 3, abs=0.03)
    assert float(low["overweight_excess"]) == pytest.approx(0.25, abs=0.02)
    with pytest.raises(DataError, match="calibration weights is 0"):
        unweight(lambda k: (np.zeros((k, 1)), np.zeros(k)), 10)
    with pytest.raises(ConfigError, match="quantile"):
        unweight(draw, 10, quantile=0.0)
    assert summarise(np.full(10, 2.0))["unweighting_efficiency"] == 1.0


def test_cli_fits_an_integrand_and_writes_unweighted_events(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["fit", "hypercube-flow", "--target", "eeqqg", "--ycut", "0.05", "--transforms", "2", "--hidden", "16",
                 "--steps-per-epoch", "10", "--epochs", "1", "--batch-size", "256", "--out", str(run), "-q"]) == 0
    out = tmp_path / "events.h5"
    assert main(["sample", str(run), "-n", "2000", "--unweighted", "-o", str(out), "--batch-size", "20000"]) == 0
    assert "efficiency" in capsys.readouterr().err
    with h5py.File(out) as f:
        x = f["samples"][()]
        integral, error = float(f["integral"][()]), float(f["integral_error"][()])
    y = 0.05
    assert x.shape == (2000, 2) and np.all(x[:, 0] < 1 - y) and np.all(x.sum(1) > 1 + y)
    from hepgen.targets import three_jet_rate

    assert abs(integral - three_jet_rate(0.05)) < 5 * error
    weighted = tmp_path / "weighted.h5"
    assert main(["sample", str(run), "-n", "1000", "-o", str(weighted), "-q"]) == 0
    with h5py.File(weighted) as f:
        assert f["weight"].shape == (1000,) and math.isfinite(float(f["weight"][()].mean()))
    assert main(["fit", "hypercube-flow", "--target", "phi4", "--steps-per-epoch", "1", "--out",
                 str(tmp_path / "bad"), "-q"]) == 2
    assert "target must be one of" in capsys.readouterr().err
    assert main(["fit", "hypercube-flow", "--target", "eeqqg", "--dims", "3", "--steps-per-epoch", "1", "--out",
                 str(tmp_path / "bad"), "-q"]) == 2
