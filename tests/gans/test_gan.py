"""The GAN models' API: registry and config, players, EMA, weight clipping, conditioning, save/load."""

import numpy as np
import pytest
import torch

import hepgen
from hepgen.errors import ConfigError
from hepgen.gans.gan import CGAN, GAN, WGAN, WGANGP, ConvGAN
from hepgen.models import REGISTRY, model_class


def _data(n=512, d=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32) * [2.0, 0.5][:d] + 1.0


def test_registry_names_and_preset_defaults():
    import hepgen.gans  # noqa: F401

    for name in ("gan", "wgan", "wgan-gp", "cgan", "conv-gan", "cyclegan"):
        assert name in REGISTRY
    assert model_class("wgan-gp") is WGANGP and model_class("gan") is GAN
    params = WGANGP.hyperparameters()
    assert params["loss"].default == "wgan-gp" and params["critic_steps"].default == 5
    assert WGAN.hyperparameters()["loss"].default == "wgan"
    m = WGANGP(3, hidden=(16, 8), ema=0.5)
    config = m.get_config()
    assert config["loss"] == "wgan-gp" and config["hidden"] == [16, 8] and config["features"] == 3
    assert WGANGP(**config).get_config() == config
    # the preset equals the general class with the same settings
    torch.manual_seed(0)
    a = WGANGP(3, hidden=(16, 8))
    torch.manual_seed(0)
    b = GAN(3, hidden=(16, 8), loss="wgan-gp", critic_steps=5)
    for p, q in zip(a.state_dict().values(), b.state_dict().values()):
        torch.testing.assert_close(p, q)


def test_bad_settings_raise_config_errors():
    with pytest.raises(ConfigError, match="unknown GAN loss"):
        GAN(2, loss="wasserstein")
    with pytest.raises(ConfigError, match="critic_steps"):
        GAN(2, critic_steps=0)
    with pytest.raises(ConfigError, match="ema"):
        GAN(2, ema=1.0)
    with pytest.raises(ConfigError, match="needs a context"):
        CGAN(2)
    with pytest.raises(ConfigError, match="conditioning"):
        GAN(2, context=1, conditioning="film")
    with pytest.raises(ConfigError, match="images"):
        ConvGAN.from_data((5,), 0)
    with pytest.raises(ConfigError, match="tabular"):
        GAN.from_data((1, 8, 8), 0)


def test_players_have_ttur_rates_and_k_critic_steps():
    m = GAN(2, critic_steps=3, lr_critic=4e-4, lr_generator=1e-4, betas=(0.0, 0.9))
    critic, generator = m.players()
    assert (critic.name, critic.every, critic.lr, critic.betas) == ("critic", 1, 4e-4, (0.0, 0.9))
    assert (generator.name, generator.every, generator.lr) == ("generator", 3, 1e-4)
    assert {id(p) for p in critic.parameters} == {id(p) for p in m.critic.parameters()}
    assert {id(p) for p in generator.parameters} == {id(p) for p in m.generator.parameters()}


def test_fit_logs_named_diagnostics_and_steps_the_generator_every_k_batches():
    m = WGANGP(2, hidden=(16, 16), critic_steps=3)
    calls = {"critic": 0, "generator": 0}
    step = m.player_step

    def counting(player, batch):
        calls[player] += 1
        return step(player, batch)

    m.player_step = counting
    m.fit(_data(600), epochs=1, batch_size=50, val_fraction=0, quiet=True)  # 12 batches
    assert calls == {"critic": 12, "generator": 4}
    row = m.history_[0]
    for key in ("train_critic_loss", "train_critic_d_real", "train_critic_d_fake", "train_critic_wasserstein",
                "train_critic_gradient_penalty", "train_generator_loss", "train_generator_grad_norm"):
        assert np.isfinite(row[key]), key
    # per event, loss = (f − r) + penalty: the logged means obey the same identity
    assert row["train_critic_loss"] == pytest.approx(
        row["train_critic_d_fake"] - row["train_critic_d_real"] + row["train_critic_gradient_penalty"], rel=1e-5)
    assert row["train_critic_wasserstein"] == pytest.approx(row["train_critic_d_real"] - row["train_critic_d_fake"],
                                                            rel=1e-5, abs=1e-6)


def _generator_step(m, batch, lr=0.5):
    opt = torch.optim.SGD(m.generator.parameters(), lr=lr)
    m.player_step("generator", batch)["loss"].mean().backward()
    opt.step()
    opt.zero_grad()
    return [p.detach().clone() for p in m.generator.parameters()]


def test_ema_follows_the_warmed_up_update_rule_after_each_generator_step():
    """θ_ema ← d_t θ_ema + (1 − d_t) θ with d_t = min(decay, (1 + t) / (10 + t)) after the t-th step."""
    torch.manual_seed(0)
    m = GAN(2, hidden=(8,), ema=0.9, preprocess="none")
    theta0 = [p.detach().clone() for p in m.generator.parameters()]
    for q, p in zip(m.generator_ema.parameters(), theta0):
        torch.testing.assert_close(q, p)
    batch = {"x": torch.randn(32, 2), "w": torch.ones(32)}
    theta1 = _generator_step(m, batch)
    m.eval()  # the pending update is applied on eval() ...
    d0 = 1 / 10  # t = 0: the EMA mostly follows the generator at first
    expected = [d0 * a + (1 - d0) * b for a, b in zip(theta0, theta1)]
    for q, e in zip(m.generator_ema.parameters(), expected):
        torch.testing.assert_close(q, e)
    m.eval()  # ... exactly once
    for q, e in zip(m.generator_ema.parameters(), expected):
        torch.testing.assert_close(q, e)
    assert int(m.ema_updates) == 1
    m.train()
    theta2 = _generator_step(m, batch)
    m.eval()
    d1 = 2 / 11
    expected = [d1 * e + (1 - d1) * b for e, b in zip(expected, theta2)]
    for q, e in zip(m.generator_ema.parameters(), expected):
        torch.testing.assert_close(q, e)
    # after many steps the decay is capped at ema: (1 + 100) / 110 > 0.9
    m.ema_updates.fill_(100)
    m.train()
    before = [q.detach().clone() for q in m.generator_ema.parameters()]
    theta3 = _generator_step(m, batch)
    m.eval()
    for q, a, b in zip(m.generator_ema.parameters(), before, theta3):
        torch.testing.assert_close(q, 0.9 * a + 0.1 * b)
    # sample() uses the averaged generator
    z = torch.randn(5, m.latent)
    torch.testing.assert_close(m.rsample(5, z=z), m.generator_ema(z))
    # the step count is part of the state (saved, resumed) and reset with the weights
    assert "ema_updates" in m.state_dict() and "ema_updates" not in GAN(2, hidden=(8,), ema=0.0).state_dict()
    m.reset_parameters()
    assert int(m.ema_updates) == 0


def test_default_networks_are_three_layers_of_128_with_an_ema_generator():
    """The defaults of issue 11 (see benchmarks/gan_quality.py, ring6): both networks 3×128, EMA 0.99."""
    m = WGANGP(2)
    linear = [mod for mod in m.generator.modules() if isinstance(mod, torch.nn.Linear)]
    assert [(a.in_features, a.out_features) for a in linear] == [(8, 128), (128, 128), (128, 128), (128, 2)]
    linear = [mod for mod in m.critic.modules() if isinstance(mod, torch.nn.Linear)]
    assert [(a.in_features, a.out_features) for a in linear] == [(2, 128), (128, 128), (128, 128), (128, 1)]
    assert m.ema == 0.99 and m.generator_ema is not None
    for cls in (GAN, WGAN, WGANGP, CGAN):
        params = cls.hyperparameters()
        assert params["hidden"].default == (128, 128, 128) and params["ema"].default == 0.99


def test_weight_clipping_is_applied_before_the_critic_is_used_again():
    torch.manual_seed(0)
    m = WGAN(2, hidden=(8,), clip=0.05, preprocess="none")
    for p in m.critic.parameters():  # as if a big optimiser step had left the box
        p.data.mul_(100.0)
    assert max(p.abs().max() for p in m.critic.parameters()) > 0.05
    m.player_step("generator", {"x": torch.randn(4, 2), "w": torch.ones(4)})
    values = torch.cat([p.detach().flatten() for p in m.critic.parameters()])
    assert values.abs().max() == pytest.approx(0.05)
    assert (values.abs() == 0.05).float().mean() > 0.5


def test_conditional_generator_is_differentiable_in_the_context():
    torch.manual_seed(0)
    m = CGAN(2, context=2, hidden=(16,), conditioning="projection").double()
    m.context_preprocessor.fit(np.array([[0.0, 1.0], [2.0, 5.0], [1.0, 3.0]]))
    m.preprocessor.fit(_data(50).astype(np.float64))
    z = torch.randn(3, m.latent, dtype=torch.float64)
    c = torch.tensor([1.5, 2.0], dtype=torch.float64, requires_grad=True)
    out = m.rsample(3, context=c, z=z)
    assert out.shape == (3, 2)
    (grad,) = torch.autograd.grad(out.sum(), c)
    h = 1e-6
    for j in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[j] = h
        with torch.no_grad():
            fd = (m.rsample(3, context=c + e, z=z).sum() - m.rsample(3, context=c - e, z=z).sum()) / (2 * h)
        assert float(grad[j]) == pytest.approx(float(fd), rel=1e-5, abs=1e-8)


def test_projection_critic_is_head_plus_inner_product():
    torch.manual_seed(1)
    m = GAN(3, context=2, hidden=(8, 4), conditioning="projection", preprocess="none")
    x, c = torch.randn(6, 3), torch.randn(6, 2)
    d = m.critic
    phi = torch.nn.functional.leaky_relu(d.phi[0](x))
    expected = d.head(phi).squeeze(-1) + ((c @ d.embed.weight.T + d.embed.bias) * phi).sum(-1)
    torch.testing.assert_close(d(x, c), expected)


def test_spectral_norm_critic_is_reset_by_the_seed_and_stays_1_lipschitz():
    x = _data(256)
    a = GAN(2, hidden=(16, 16), spectral_norm=True).fit(x, epochs=1, batch_size=64, seed=3, quiet=True)
    b = GAN(2, hidden=(16, 16), spectral_norm=True).fit(x, epochs=1, batch_size=64, seed=3, quiet=True)
    c = GAN(2, hidden=(16, 16), spectral_norm=True).fit(x, epochs=1, batch_size=64, seed=4, quiet=True)
    for (k, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(p, q, msg=k)
    key = "critic.net.0.parametrizations.weight.original"
    assert not torch.allclose(a.state_dict()[key], c.state_dict()[key])
    for layer in (a.critic.net[0], a.critic.net[2], a.critic.net[4]):
        assert torch.linalg.matrix_norm(layer.weight.detach(), ord=2) < 1.05


def test_save_load_round_trip(tmp_path):
    x = _data(300)
    m = GAN(2, hidden=(16,), ema=0.8, loss="hinge").fit(x, epochs=2, batch_size=64, run_dir=tmp_path / "run",
                                                          quiet=True)
    loaded = hepgen.load(tmp_path / "run")
    assert isinstance(loaded, GAN) and loaded.get_config() == m.get_config()
    torch.manual_seed(7)
    a = m.sample(100)
    torch.manual_seed(7)
    b = loaded.sample(100)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(m.score(x[:20]), loaded.score(x[:20]))
    # samples come back in the original units (data centred near 1, not 0)
    assert a.shape == (100, 2)


def test_conv_gan_images_and_conditioning():
    torch.manual_seed(0)
    images = np.abs(np.random.default_rng(0).normal(size=(64, 1, 8, 8))).astype(np.float32)
    m = ConvGAN.from_data((1, 8, 8), 0, channels=(8, 16), latent=4, loss="wgan-gp", critic_steps=2)
    m.fit(images, epochs=1, batch_size=16, quiet=True, val_fraction=0)
    assert m.sample(5).shape == (5, 1, 8, 8)
    assert np.isfinite(m.history_[0]["train_critic_wasserstein"])
    flat = ConvGAN((8, 8), channels=(4,), latent=3, context=2, conditioning="projection")
    x, c = torch.randn(4, 8, 8), torch.randn(4, 2)
    assert flat.critic(x, c).shape == (4,) and flat.generator(torch.randn(4, 3), c).shape == (4, 8, 8)
