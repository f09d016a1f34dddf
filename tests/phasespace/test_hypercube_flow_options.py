"""The hypercube flow's MadNIS options: multi-channel sampling (weights sum to 1, unbiased estimates), buffered
training (integrand calls counted exactly, importance weights to the stored proposal), and the options through
the CLI on a user's integrand file."""

import math
import textwrap

import h5py
import numpy as np
import pytest
import torch

from hepgen.cli import main as _main
from hepgen.errors import ConfigError
from hepgen.phasespace import HypercubeFlow
from hepgen.targets import Target
from tests.phasespace._density import assert_normalised_and_draws_carry_it


def main(argv):
    return _main([str(a) for a in argv])


class TwoPeaks(Target):
    """Two Gaussian peaks of different height and width off the diagonal: ∫ = 0.3 + 0.7 (times their box masses)."""

    name = "two-peaks"
    domain = "unit-hypercube"
    event_shape = (2,)

    def log_prob(self, x):
        x = x.double()
        a = math.log(0.3) - (((x - torch.tensor([0.25, 0.7])) / 0.05) ** 2).sum(1) / 2 - math.log(2 * math.pi * 0.05**2)
        b = math.log(0.7) - (((x - torch.tensor([0.7, 0.3])) / 0.08) ** 2).sum(1) / 2 - math.log(2 * math.pi * 0.08**2)
        inside = ((x >= 0) & (x <= 1)).all(1)
        return torch.where(inside, torch.logaddexp(a, b), -math.inf)

    @property
    def integral(self):
        from scipy.special import ndtr

        box = lambda mu, s: float(ndtr((1 - mu) / s) - ndtr(-mu / s))  # noqa: E731
        return 0.3 * box(0.25, 0.05) * box(0.7, 0.05) + 0.7 * box(0.7, 0.08) * box(0.3, 0.08)

    def get_config(self):
        return {}


@pytest.mark.parametrize("weights", ["network", "constant"])
def test_channel_weights_sum_to_one(weights):
    model = HypercubeFlow(TwoPeaks(), transforms=2, hidden=(8,), bins=4, channels=3, channel_weights=weights)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 1.0)
        alpha = model.log_alpha(torch.rand(1000, 2)).exp()
    assert alpha.shape == (1000, 3) and (alpha >= 0).all()
    torch.testing.assert_close(alpha.sum(1), torch.ones(1000))
    if weights == "network":  # α depends on x
        assert float(alpha.std(0).max()) > 1e-3
    p = model.channel_probabilities()
    assert float(p.sum()) == pytest.approx(1.0)


def test_the_multi_channel_sampler_is_a_normalised_density():
    model = HypercubeFlow("camel", 2, transforms=2, hidden=(8,), bins=6, channels=2)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
        model.log_moments_.copy_(torch.tensor([0.0, 1.0], dtype=torch.float64))  # p = (0.38, 0.62)
    assert_normalised_and_draws_carry_it(model)


def test_the_multi_channel_estimator_is_unbiased_on_two_peaks():
    target = TwoPeaks()
    model = HypercubeFlow(target, transforms=4, hidden=(32,), bins=8, channels=2)
    # untrained (random α network, uniform p) and trained: the estimate is unbiased either way
    pulls = []
    for seed in range(4):
        r = model.integrate(20_000, seed=seed)
        pulls.append((r["integral"] - target.integral) / r["error"])
    before = model.integrate(40_000, seed=10)
    model.fit(None, steps_per_epoch=40, epochs=2, batch_size=512, lr=3e-3, seed=0, quiet=True)
    assert torch.isfinite(model.log_moments_).all()
    p = model.channel_probabilities()
    assert float(p.min()) > 0.0 and float(p.sum()) == pytest.approx(1.0)
    for seed in range(6):
        r = model.integrate(20_000, seed=100 + seed)
        pulls.append((r["integral"] - target.integral) / r["error"])
    pulls = np.array(pulls)
    assert np.all(np.abs(pulls) < 4), pulls
    assert abs(pulls.mean()) < 4 / math.sqrt(len(pulls)), pulls  # no bias beyond the statistical spread
    assert 0.2 < pulls.std() < 2.0, pulls  # the quoted errors are the spread's size
    after = model.integrate(40_000, seed=11)
    assert after["variance_per_call"] < 0.5 * before["variance_per_call"]


def test_buffered_training_counts_every_integrand_call():
    calls = []

    def f(x):
        calls.append(len(x))
        return (2.0 * x).prod(1)

    model = HypercubeFlow(f, dims=2, transforms=2, hidden=(16,), bins=6, buffer_steps=3, buffer_batches=2)
    model.fit(None, steps_per_epoch=20, epochs=2, batch_size=128, lr=3e-3, seed=0, quiet=True)
    # one zero check of a batch, then one fresh batch per 1 + 3 steps: 40 steps -> 10 fresh batches
    assert sum(calls) == 128 + 10 * 128 == model.calls_
    assert len(model._buffer) == 2 and int(model.steps_) == 40
    r = model.integrate(40_000, seed=1)
    assert abs(r["integral"] - 1.0) < 4 * r["error"]
    # without the buffer every step calls f
    calls.clear()
    plain = HypercubeFlow(f, dims=2, transforms=2, hidden=(16,), bins=6)
    plain.fit(None, steps_per_epoch=20, epochs=2, batch_size=128, lr=3e-3, seed=0, quiet=True)
    assert sum(calls) == 128 + 40 * 128 == plain.calls_


def test_a_buffered_step_weighs_the_stored_events_to_their_proposal():
    # on events drawn from g, the loss coefficients are α f/g (kl) and (f/q)(f/g) (variance): with q = g they are
    # the fresh step's w and w², normalised to mean 1
    for loss in ("kl", "variance"):
        model = HypercubeFlow("camel", 2, transforms=2, hidden=(8,), bins=6, loss=loss, buffer_steps=1)
        model.train()
        torch.manual_seed(0)
        fresh = model.training_losses({"w": torch.ones(256)})
        stored = model._buffer[0]
        with torch.no_grad():
            log_q = model.channel_log_prob(stored["x"])
        log_w = stored["log_f"] - stored["log_g"]
        expected = (log_w if loss == "kl" else log_w + (stored["log_f"] - log_q.double()))
        c = torch.exp(expected - torch.logsumexp(expected, 0) + math.log(256)).float()
        torch.testing.assert_close(fresh["loss"], -c * log_q, atol=1e-4, rtol=1e-4)
        buffered = model.training_losses({"w": torch.ones(64)})  # reuses stored events: no new call
        assert buffered["loss"].shape == (64,) and torch.isfinite(buffered["loss"]).all()
        assert model.calls_ == 256


def test_bad_option_values_are_named():
    for kwargs, named in ((dict(channels=0), "channels"), (dict(buffer_steps=-1), "buffer_steps"),
                          (dict(channel_weights="learned"), "channel_weights"), (dict(vegas_bins=0), "vegas_bins")):
        with pytest.raises(ConfigError, match=named):
            HypercubeFlow("camel", 2, **kwargs)


USER_FILE = textwrap.dedent('''
    import numpy as np

    def product(x):  # prod_i 2 x_i on [0, 1]^d: integral 1
        return np.prod(2.0 * np.asarray(x), axis=1)
''')


def test_the_options_through_the_cli_on_a_user_integrand(tmp_path, capsys):
    user = tmp_path / "my_f.py"
    user.write_text(USER_FILE)
    run = tmp_path / "run"
    assert main(["fit", "hypercube-flow", "--integrand", f"{user}:product", "--dims", "3", "--vegas-calls", "4000",
                 "--vegas-bins", "16", "--buffer-steps", "1", "--channels", "2", "--channel-weights", "constant",
                 "--steps-per-epoch", "60", "--epochs", "1", "--lr", "3e-3", "--transforms", "2", "--hidden", "16",
                 "--bins", "8", "--batch-size", "256", "-o", run, "-q"]) == 0
    config = (run / "config.yaml").read_text()
    assert "vegas_calls: 4000" in config and "channels: 2" in config and "buffer_steps: 1" in config
    out = tmp_path / "events.h5"
    assert main(["sample", run, "-n", "2000", "--unweighted", "--integrand", f"{user}:product", "-o", out,
                 "--block-size", "20000", "-q"]) == 0
    with h5py.File(out) as f:
        x, integral, error = f["samples"][()], float(f["integral"][()]), float(f["integral_error"][()])
    assert abs(integral - 1.0) < 4 * error and error < 0.02
    assert x.shape == (2000, 3) and abs(x.mean() - 2 / 3) < 4 * math.sqrt(1 / 18 / x.size)
    assert main(["fit", "hypercube-flow", "--integrand", f"{user}:product", "--dims", "3", "--channels", "0",
                 "--steps-per-epoch", "1", "-o", tmp_path / "bad", "-q"]) == 2
    assert "channels" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_the_phase_space_flow_takes_the_options():
    from hepgen.phasespace import PhaseSpaceFlow

    def me(p):  # a flat |M|² = 1 over 3-body phase space: the integral is the volume (π/2)² s / 2
        return torch.ones(len(p), dtype=torch.float64)

    model = PhaseSpaceFlow(me, sqrt_s=10.0, particles=3, transforms=2, hidden=(8,), bins=4, vegas_calls=2000,
                           vegas_bins=8, vegas_iterations=4, buffer_steps=2, channels=2)
    model.fit(None, steps_per_epoch=6, epochs=1, batch_size=128, seed=0, quiet=True)
    config = model.get_config()
    assert config["vegas_calls"] == 2000 and config["buffer_steps"] == 2 and config["channels"] == 2
    assert model.calls_ == int(model.vegas_calls_) + 128 + 2 * 128
    r = model.integrate(20_000, seed=0)
    exact = (math.pi / 2) ** 2 * 100.0 / 2
    assert abs(r["integral"] - exact) < 4 * r["error"]


@pytest.mark.parametrize("grid, channels", [(False, 1), (True, 1), (True, 2)])
def test_the_defensive_mixture_is_a_normalised_density_and_its_draws_carry_it(grid, channels):
    """q_α = (1 − α) q + α q₀: normalised on the square (midpoint quadrature), the draws' log q is the density's,
    and a share α of the draws comes from q₀ (the grid alone: a flow whose density vanishes on half the square
    gets events there from q₀ only)."""
    model = HypercubeFlow("camel", 2, transforms=2, hidden=(8,), bins=6, channels=channels, defensive=0.2,
                          vegas_calls=2000 if grid else 0, vegas_bins=8, vegas_iterations=4)
    model.fit(None, steps_per_epoch=3, epochs=1, batch_size=128, seed=0, quiet=True)  # adapts the grid
    x, log_q = assert_normalised_and_draws_carry_it(model, draws=3000)
    with torch.no_grad():  # the mixture by hand from its two parts
        q0 = model.grid.invmap(x.double())[1].exp() if grid else torch.ones(len(x), dtype=torch.float64)
        model.defensive = 0.0
        q_flow = model.log_prob_internal(x).double().exp()
        model.defensive = 0.2
        torch.testing.assert_close(log_q.double().exp(), 0.8 * q_flow + 0.2 * q0, rtol=1e-4, atol=1e-6)


def test_defensive_draws_come_from_the_grid_alone_at_rate_alpha(monkeypatch):
    """A flow whose draws all lie left of x₀ = ½: events right of it can only be the α share from q₀ (uniform
    without a grid), so their fraction is α/2."""
    model = HypercubeFlow("camel", 2, transforms=2, hidden=(8,), bins=6, defensive=0.3)
    left = lambda n: (torch.rand(n, 2) * torch.tensor([0.5, 1.0]), torch.zeros(n))  # noqa: E731
    monkeypatch.setattr(model, "_flow_sample", left)
    with torch.no_grad():
        x, _ = model.sample_internal(40_000)
    share = float((x[:, 0] > 0.5).float().mean())
    assert abs(share - 0.15) < 4 * math.sqrt(0.15 * 0.85 / 40_000)


def test_the_defensive_mixture_keeps_the_integral_unbiased_and_bounds_the_weights():
    target = TwoPeaks()
    model = HypercubeFlow(target, transforms=4, hidden=(32,), bins=8, defensive=0.1)
    model.fit(None, steps_per_epoch=40, epochs=2, batch_size=512, lr=3e-3, seed=0, quiet=True)
    pulls = []
    for seed in range(6):
        r = model.integrate(20_000, seed=seed)
        pulls.append((r["integral"] - target.integral) / r["error"])
    assert np.all(np.abs(pulls) < 4) and abs(np.mean(pulls)) < 4 / math.sqrt(6), pulls
    # without a grid q₀ = 1: no weight exceeds max f / α
    with torch.random.fork_rng():
        torch.manual_seed(0)
        x, w = model.weighted_events(20_000)
    f = target(torch.as_tensor(x)).numpy()
    assert np.all(w <= f / 0.1 * (1 + 1e-5))


def test_defensive_through_the_cli_and_its_bad_values(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["fit", "hypercube-flow", "--target", "camel", "--dims", "2", "--defensive", "0.05",
                 "--steps-per-epoch", "5", "--epochs", "1", "--transforms", "2", "--hidden", "8", "--bins", "4",
                 "--batch-size", "128", "-o", run, "-q"]) == 0
    assert "defensive: 0.05" in (run / "config.yaml").read_text()
    assert hepgen_load(run).defensive == 0.05
    for bad in ("1", "-0.1", "1.5"):
        out = tmp_path / f"bad{bad}"
        assert main(["fit", "hypercube-flow", "--target", "camel", "--dims", "2", "--defensive", bad,
                     "--steps-per-epoch", "1", "-o", out, "-q"]) == 2
        assert "defensive" in capsys.readouterr().err and not out.exists()


def hepgen_load(run):
    import hepgen

    return hepgen.load(run)
