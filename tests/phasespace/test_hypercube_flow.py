"""The hypercube flow: a normalised density on [0, 1]^d, integrals within their errors, unweighting, the CLI."""

import itertools
import math

import h5py
import numpy as np
import pytest
import torch
from scipy import stats

from hepgen.cli import main
from hepgen.errors import ConfigError, DataError
from hepgen.phasespace import HypercubeFlow, summarise, unweight
from tests.phasespace._density import assert_normalised_and_draws_carry_it


def test_the_density_is_normalised_on_the_unit_square():
    model = HypercubeFlow("camel", 2, transforms=2, hidden=(8,), bins=6)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
        x, _ = assert_normalised_and_draws_carry_it(model, n=600, draws=500, tolerance=2e-3)
        assert ((x >= 0) & (x <= 1)).all()
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


@pytest.mark.parametrize("d", [2, 3, 4, 5, 8, 16])
def test_binary_masks_condition_every_dimension_on_every_other(d):
    from hepgen.phasespace.hypercube_flow import binary_masks

    masks = binary_masks(d)
    assert len(masks) == 2 * math.ceil(math.log2(d))
    for m in masks:  # both sides non-empty: a valid coupling
        assert 0 < int(m.sum()) < d
    changed = torch.stack([~m for m in masks]).int()
    assert (changed.sum(0) == math.ceil(math.log2(d))).all()  # each dimension transformed ceil(log2 d) times
    for i in range(d):
        for j in range(d):
            if i != j:  # some layer transforms i conditioned on j
                assert any(bool(~m[i] & m[j]) for m in masks), (i, j)
    model = HypercubeFlow("gaussian", d if d > 1 else 2, hidden=(4,), bins=2)
    assert model.transforms == 2 * len(masks)  # default: two passes of the masks


def test_annealing_raises_the_exponent_to_one_and_counts_steps():
    model = HypercubeFlow("camel", 2, transforms=2, hidden=(8,), bins=4, anneal=10, anneal_start=0.01)
    assert model.beta() == pytest.approx(0.01)
    model.fit(None, steps_per_epoch=5, epochs=1, batch_size=64, seed=0, quiet=True)
    assert int(model.steps_) == 5 and model.beta() == pytest.approx(0.01**0.5)
    model.fit(None, steps_per_epoch=5, epochs=2, batch_size=64, seed=0, quiet=True)
    assert int(model.steps_) == 15 and model.beta() == 1.0
    with pytest.raises(ConfigError, match="anneal"):
        HypercubeFlow("camel", 2, anneal=-1)
    with pytest.raises(ConfigError, match="anneal_start"):
        HypercubeFlow("camel", 2, anneal_start=0.0)


def test_weights_far_below_the_float_range_still_train():
    # a 16-d camel seen by a uniform flow: f/q of most draws underflows float32; the log-space
    # normalisation keeps a finite, non-zero loss coefficient on the largest weights
    model = HypercubeFlow("camel", 16, transforms=2, hidden=(8,), bins=4, loss="variance")
    out = model.training_losses({"w": torch.ones(256)})
    assert torch.isfinite(out["loss"]).all() and bool((out["loss"] != 0).any())


def test_unweighted_events_of_a_trained_flow_follow_the_exact_marginal():
    # a Gaussian of width 0.15 in d = 2: the x_1 marginal is a normal truncated to [0, 1]
    model = HypercubeFlow("gaussian", 2, width=0.15, transforms=4, hidden=(16,), bins=8)
    model.fit(None, steps_per_epoch=20, epochs=2, batch_size=512, lr=3e-3, seed=0, quiet=True)
    out = model.sample_unweighted(4000, seed=3, batch_size=20_000, calibration=50_000)
    x = out["samples"]
    assert x.shape == (4000, 2) and float(out["overweight_fraction"]) < 0.01
    dist = stats.truncnorm(-0.5 / 0.15, 0.5 / 0.15, loc=0.5, scale=0.15)
    for k in range(2):
        assert stats.kstest(x[:, k], dist.cdf).pvalue > 1e-3
    assert abs(float(out["integral"]) - model.target.integral) < 4 * float(out["integral_error"])


def test_unweighted_matrix_element_events_follow_the_exact_x1_distribution():
    # e+e- -> q qbar g: chi2 of the x_1 histogram of unweighted events against the exact marginal,
    # g(x1) = ∫ f dx2 = C/(1-x1) [(1 + x1²) ln(t_hi/t_lo) - 2 (t_hi - t_lo) + (t_hi² - t_lo²)/2] with t = 1 - x2
    # from t_lo = y to t_hi = x1 - y (the cuts), binned by quadrature
    from scipy import integrate

    y = 0.05
    model = HypercubeFlow("eeqqg", 2, ycut=y, transforms=4, hidden=(16,), bins=8)
    model.fit(None, steps_per_epoch=20, epochs=2, batch_size=512, lr=3e-3, seed=0, quiet=True)
    x = model.sample_unweighted(4000, seed=5, batch_size=20_000, calibration=50_000)["samples"]

    def g(x1):
        lo, hi = y, x1 - y
        return ((1 + x1 * x1) * math.log(hi / lo) - 2 * (hi - lo) + (hi * hi - lo * lo) / 2) / (1 - x1)

    edges = np.linspace(2 * y, 1 - y, 11)
    expected = np.array([integrate.quad(g, a, b)[0] for a, b in itertools.pairwise(edges)])
    from hepgen.targets.matrix_elements import C_F

    assert expected.sum() * C_F * 0.118 / (2 * math.pi) == pytest.approx(model.target.integral, rel=1e-8)
    expected *= len(x) / expected.sum()
    observed = np.histogram(x[:, 0], edges)[0]
    assert observed.sum() == len(x)
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert stats.chi2.sf(chi2, len(expected) - 1) > 1e-3, (observed, expected.round())
    # a mismatched reference (x_1 of uniform phase space, density ∝ x1 - 2y) is rejected: the test can fail
    flat = np.diff((edges - 2 * y) ** 2)
    flat *= len(x) / flat.sum()
    assert stats.chi2.sf(float(((observed - flat) ** 2 / flat).sum()), len(flat) - 1) < 1e-6


@pytest.mark.parametrize(("argv", "named"), [
    (["--loss", "l1"], "loss"),
    (["--anneal", "-3"], "anneal"),
    (["--anneal-start", "2"], "anneal_start"),
    (["--bins", "0"], "bins"),
    (["--target", "camel", "--dims", "1"], "dims"),
    (["--target", "ring", "--dims", "2", "--width", "0.1"], "radius"),
])
def test_cli_bad_options_exit_2_naming_the_option(tmp_path, capsys, argv, named):
    base = ["fit", "hypercube-flow", "--steps-per-epoch", "1", "--epochs", "1", "--out", str(tmp_path / "run"), "-q"]
    assert main(base + argv) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_cli_unweighted_sampling_bad_options_exit_2(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["fit", "hypercube-flow", "--target", "camel", "--transforms", "2", "--hidden", "4", "--bins", "2",
                 "--steps-per-epoch", "2", "--epochs", "1", "--batch-size", "64", "--out", str(run), "-q"]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "10", "--unweighted", "-o", str(tmp_path / "e.csv")]) == 2
    assert "-o" in capsys.readouterr().err
    assert main(["sample", str(run), "-n", "10", "--unweighted", "--mcmc", "-o", str(tmp_path / "e.h5")]) == 2
    assert "--mcmc" in capsys.readouterr().err
    assert main(["sample", str(run), "-n", "0", "--unweighted", "-o", str(tmp_path / "e.h5")]) == 2
    assert "-n" in capsys.readouterr().err
    assert not (tmp_path / "e.h5").exists() and not (tmp_path / "e.csv").exists()


def test_seeded_integration_and_unweighting_leave_the_callers_rng_alone():
    model = HypercubeFlow("camel", 2, transforms=2, hidden=(8,), bins=6)
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    first = model.integrate(2000, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    model.sample_unweighted(50, seed=4, batch_size=2000, calibration=2000)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert model.integrate(2000, seed=4) == first  # the seed alone fixes the draws
    expected = torch.rand(3)  # the caller's stream continues where it was
    torch.random.set_rng_state(state)
    assert torch.equal(torch.rand(3), expected)


def test_coupling_parameters_and_memory_estimate_without_building_the_flow():
    from hepgen.phasespace.hypercube_flow import coupling_parameters, training_memory
    from hepgen.train.resources import check_memory

    for dims, hidden, bins in ((2, (32,), 8), (7, (8, 4), 4), (100, (64, 64), 16)):
        model = HypercubeFlow("camel", dims, hidden=hidden, bins=bins)
        assert coupling_parameters(dims, model.transforms, hidden, bins) == sum(p.numel() for p in model.parameters())
    # d = 100,000 would be 34 transforms of 5.3 billion weights in all: refused from the estimate alone
    need = training_memory(100_000, 256, 34, (64, 64), 16)
    assert need > 16 * coupling_parameters(100_000, 34, (64, 64), 16) > 8e10
    with pytest.raises(ConfigError, match="needs about .* GB of memory, but this machine has 128 GB"):
        check_memory(need, "hypercube-flow training", "lower --dims", available=128e9)
    # d = 200, batch 2048 measured ~1.8 GB for one step (weights, activations; Adam's moments not yet allocated)
    assert 1.8e9 < training_memory(200, 2048, 32, (64, 64), 16) < 3.0e9


def test_an_integrand_that_is_zero_on_a_whole_first_batch_is_refused_before_training(tmp_path, capsys):
    from tests.helpers import run_cli_for_error

    model = HypercubeFlow("camel", 400, hidden=(4,), bins=2, transforms=2)
    x = torch.rand(256, 400, dtype=torch.float64)
    assert not (torch.exp(model.target.log_prob(x)) > 0).any()  # log f ~ -1500 per point: 0 in float64
    with pytest.raises(ConfigError, match=r"camel \(dims=400, width=0.1\) is 0 in float64 at every one of the 256 "
                                          r"points .* widen the peaks \(--width\) or lower --dims"):
        model.fit(None, steps_per_epoch=2, epochs=1, batch_size=256, quiet=True, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    HypercubeFlow("camel", 400, width=0.3, hidden=(4,), bins=2, transforms=2).check_target(256)  # wide: not 0
    code, err = run_cli_for_error(capsys, ["fit", "hypercube-flow", "--dims", "400", "--hidden", "4", "--bins", "2",
                                           "--transforms", "2", "--steps-per-epoch", "2", "-o", tmp_path / "cli", "-q"])
    assert code == 2 and "Traceback" not in err and "is 0 in float64" in err
    assert not (tmp_path / "cli").exists()


def test_a_ring_whose_shell_leaves_the_cube_in_high_dimension_is_refused():
    from hepgen.targets import make_target

    # the radial density r^(d-1) exp(-(r - r0)^2 / 2w^2) peaks at (r0 + sqrt(r0^2 + 4 w^2 (d - 1))) / 2
    with pytest.raises(ConfigError, match=r"dims=1000.*mass sits at r = 0.8"):
        make_target("ring", dims=1000)
    ring = make_target("ring", dims=30)  # r* = 0.335: inside; the normalisation, from a peak-scaled quadrature
    r0, w, d = 0.3, 0.02, 30
    r = np.linspace(1e-6, 1.2, 400_001)
    log_g = (d - 1) * np.log(r) - 0.5 * ((r - r0) / w) ** 2
    log_area = math.log(2.0) + 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d)
    log_n = log_area + log_g.max() + math.log(np.trapezoid(np.exp(log_g - log_g.max()), r))
    assert ring._log_n == pytest.approx(log_n, abs=1e-6)
