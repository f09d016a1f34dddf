"""style-gan: the modulated convolution against per-event convolutions by hand, demodulation, the geometry of
non-square images, the truncation trick, lazy R1 and path-length terms, save/load, resume, ONNX and the CLI."""

import math

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hepgen
from hepgen.errors import ConfigError
from hepgen.gans.style_networks import MappingNetwork, StyleConv, stage_plan
from hepgen.gans.stylegan import StyleGAN
from hepgen.models import REGISTRY, model_class
from tests.helpers import run_cli, run_cli_for_error

SMALL = dict(latent=4, style=8, mapping_layers=2, channels=8, min_channels=4)


def _images(n=96, shape=(8, 8), seed=0):
    return np.random.default_rng(seed).gamma(2.0, 1.0, (n, *shape)).astype(np.float32)


# -- the layers --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_convolution_is_a_plain_convolution_with_each_events_scaled_weights(demodulate):
    torch.manual_seed(0)
    layer = StyleConv(3, 5, style=6, kernel_size=3, demodulate=demodulate, noise=False, activate=False).double()
    with torch.no_grad():
        layer.bias.normal_()
    x, w = torch.randn(4, 3, 7, 9, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    out = layer(x, w)
    # by hand: s = A w / √style + b_A; W' = W / √(in k²) · s_i; demodulated W'' = W' / ‖W'_o‖ (over in, k, k)
    a = layer.affine_weight.detach().numpy() / math.sqrt(6)
    s = w.numpy() @ a.T + layer.affine_bias.detach().numpy()
    base = layer.weight.detach().numpy() / math.sqrt(3 * 9)
    for b in range(4):
        weight = base * s[b][None, :, None, None]
        if demodulate:
            weight = weight / np.sqrt((weight**2).sum(axis=(1, 2, 3), keepdims=True) + 1e-8)
        expected = F.conv2d(x[b:b + 1], torch.from_numpy(weight), torch.as_tensor(layer.bias.detach()), padding=1)
        torch.testing.assert_close(out[b:b + 1], expected)
        torch.testing.assert_close(layer.modulated_weight(w)[b], torch.from_numpy(weight))
    # the same as one grouped convolution with the batch's weights stacked (StyleGAN's fused form)
    grouped = F.conv2d(x.reshape(1, -1, 7, 9), layer.modulated_weight(w).reshape(-1, 3, 3, 3), padding=1, groups=4)
    torch.testing.assert_close(out, grouped.reshape(4, 5, 7, 9) + layer.bias[None, :, None, None])


def _plain_style_conv(layer, x, w, noise):
    """StyleGAN2's style conv spelled out per event: conv with s_i w_oik [/ ‖·‖], + γ n + b, lrelu(·, 0.2) · √2."""
    out = []
    for b in range(x.shape[0]):
        y = F.conv2d(x[b:b + 1], layer.modulated_weight(w[b:b + 1])[0], padding=layer.padding)
        y = y + layer.noise_strength * noise[b:b + 1] + layer.bias[None, :, None, None]
        out.append(F.leaky_relu(y, 0.2) * math.sqrt(2.0))
    return torch.cat(out)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_activated_style_conv_with_noise_matches_the_per_event_plain_computation(memory_format):
    # forward folds the gain √2 into d, γ and b and may run channels-last: the same function, forward and backward
    torch.manual_seed(3)
    layer = StyleConv(5, 6, style=7, kernel_size=3)
    with torch.no_grad():
        layer.noise_strength.fill_(0.4)
        layer.bias.normal_()
        layer.affine_weight.mul_(2.0)
    x = torch.randn(4, 5, 9, 8).contiguous(memory_format=memory_format).requires_grad_(True)
    w, noise = torch.randn(4, 7, requires_grad=True), torch.randn(4, 1, 9, 8)
    out, expected = layer(x, w, noise), _plain_style_conv(layer, x, w, noise)
    torch.testing.assert_close(out, expected)
    probe = torch.randn_like(expected)
    grads = torch.autograd.grad((out * probe).sum(), [x, w, *layer.parameters()])
    expected_grads = torch.autograd.grad((expected * probe).sum(), [x, w, *layer.parameters()])
    for g, e in zip(grads, expected_grads):
        torch.testing.assert_close(g, e)


def test_equalised_layers_with_activation_match_lrelu_times_root_two():
    from hepgen.gans.style_networks import EqualConv2d, EqualLinear

    torch.manual_seed(4)
    conv, linear = EqualConv2d(3, 4, 3, activate=True), EqualLinear(6, 5, lr_mul=0.01, bias_init=0.3, activate=True)
    with torch.no_grad():
        conv.bias.normal_()
    x, v = torch.randn(2, 3, 6, 7), torch.randn(8, 6)
    plain_conv = F.leaky_relu(F.conv2d(x, conv.weight / math.sqrt(27), conv.bias, padding=1), 0.2) * math.sqrt(2.0)
    plain_linear = F.leaky_relu(F.linear(v, linear.weight * 0.01 / math.sqrt(6), linear.bias * 0.01), 0.2) * math.sqrt(2)
    torch.testing.assert_close(conv(x), plain_conv)
    torch.testing.assert_close(linear(v), plain_linear)


@pytest.mark.parametrize("shape", [(40, 40), (3, 96), (12, 6)])
def test_channels_last_layout_leaves_generator_and_critic_unchanged(shape, monkeypatch):
    # the networks run their feature maps channels-last for speed: against the same networks in NCHW
    from hepgen.gans import style_networks

    torch.manual_seed(5)
    m = StyleGAN(shape, context=1, **SMALL)
    z, c = torch.randn(6, 4), torch.randn(6, 1)
    noise = torch.randn(6, m.noise_size)
    x = torch.randn(6, *shape, requires_grad=True)

    def run():
        image = m.generator(z, c, noise)
        score = m.critic(x, c)
        grads = torch.autograd.grad(image.square().sum() + score.sum(), [x, *m.generator.parameters(),
                                                                          *m.critic.parameters()])
        return image, score, grads

    fast = run()
    monkeypatch.setattr(style_networks, "channels_last", lambda t: t.contiguous())
    plain = run()
    torch.testing.assert_close(fast[0], plain[0])
    torch.testing.assert_close(fast[1], plain[1])
    for g, e in zip(fast[2], plain[2]):  # float32 sums in another order: relative rounding ~1e-6 of the largest
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5 * float(e.abs().max()))


def test_demodulation_gives_unit_output_variance_for_unit_variance_input():
    torch.manual_seed(1)
    layer = StyleConv(16, 6, style=8, kernel_size=3, noise=False, activate=False)
    with torch.no_grad():
        layer.affine_weight.mul_(3.0)  # styles far from one, different per event and channel
    x, w = torch.randn(3, 16, 130, 130), torch.randn(3, 8)
    with torch.no_grad():
        y = layer(x, w)[:, :, 1:-1, 1:-1]  # inside the zero padding
        plain = StyleConv(16, 6, style=8, kernel_size=3, demodulate=False, noise=False, activate=False)
        plain.load_state_dict(layer.state_dict())
        undemodulated = plain(x, w)[:, :, 1:-1, 1:-1]
    std = y.std(dim=(2, 3))
    assert torch.allclose(std, torch.ones_like(std), atol=0.03), std
    assert (undemodulated.std(dim=(2, 3)) - 1).abs().max() > 0.2  # without demodulation it is not


def test_noise_enters_with_its_learned_strength_and_the_constant_is_learned():
    torch.manual_seed(2)
    layer = StyleConv(2, 3, style=4, kernel_size=3)
    x, w, noise = torch.randn(2, 2, 5, 5), torch.randn(2, 4), torch.randn(2, 1, 5, 5)
    torch.testing.assert_close(layer(x, w, noise), layer(x, w))  # the strength starts at 0
    with torch.no_grad():
        layer.noise_strength.fill_(0.7)
        layer.activate = False
    torch.testing.assert_close(layer(x, w, noise) - layer(x, w), 0.7 * noise.expand(-1, 3, -1, -1))
    m = StyleGAN((8, 8), **SMALL)
    names = {n for n, _ in m.generator.named_parameters()}
    assert "synthesis.const.value" in names and any(n.endswith("noise_strength") for n in names)


@pytest.mark.parametrize("shape, base, factors", [
    ((40, 40), (5, 5), [(2, 2)] * 3),
    ((3, 96), (3, 12), [(1, 2)] * 3),
    ((12, 12), (3, 3), [(2, 2)] * 2),
    ((12, 6), (3, 3), [(2, 1), (2, 2)]),
    ((28, 28), (4, 4), [(2, 2)] * 3),  # 32×32 generated, cropped to 28×28
])
def test_stage_plan_of_the_physics_images(shape, base, factors):
    assert stage_plan(*shape) == (base, factors)
    assert stage_plan(*shape, upsamples=0) == (shape, [])


@pytest.mark.parametrize("shape", [(40, 40), (12, 6), (3, 96), (1, 12, 12), (7, 5)])
def test_shapes_of_generator_critic_and_samples(shape):
    torch.manual_seed(0)
    m = StyleGAN(shape, context=1, **SMALL)
    z, c = torch.randn(5, 4), torch.randn(5, 1)
    image = m.generator(z, c)
    assert image.shape == (5, *shape) and torch.isfinite(image).all()
    assert m.critic(image, c).shape == (5,)
    m.preprocessor.fit(np.abs(np.random.default_rng(0).normal(size=(20, *shape))).astype(np.float32))
    m.context_preprocessor.fit(np.array([[10.0], [50.0]]))
    assert m.sample(3, context=[20.0]).shape == (3, *shape)
    assert m.sample(4, context=np.array([[20.0], [30.0], [40.0], [50.0]]), truncation=0.5).shape == (4, *shape)
    noise = m.noise_size
    assert noise == sum(h * w for h, w in m.generator.synthesis.noise_sizes)


def test_registry_config_and_bad_settings():
    assert "style-gan" in REGISTRY and model_class("style-gan") is StyleGAN and hepgen.StyleGAN is StyleGAN
    m = StyleGAN((12, 6), context=2, **SMALL)
    assert StyleGAN(**m.get_config()).get_config() == m.get_config()
    assert m.players()[0].betas == (0.0, 0.99)
    with pytest.raises(ConfigError, match="images"):
        StyleGAN.from_data((5,), 0)
    with pytest.raises(ConfigError, match="kernel_size"):
        StyleGAN((8, 8), kernel_size=2)
    for bad in ({"r1_weight": -1.0}, {"pl_interval": 0}, {"style_mixing": 1.5}, {"w_avg_decay": 1.0},
                {"channels": 0}, {"upsamples": -1}, {"mapping_lr": 0.0}, {"loss": "nope"}):
        with pytest.raises(ConfigError):
            StyleGAN((8, 8), **bad)


# -- truncation --------------------------------------------------------------------------------------------------------
def _fitted(shape=(8, 8), context=None, **options):
    images = _images(96, shape)
    m = StyleGAN(shape, context=0 if context is None else context.shape[1], **{**SMALL, **options})
    return m.fit(images, context=context, epochs=2, batch_size=32, seed=0, quiet=True, val_fraction=0), images


def test_truncation_at_zero_gives_the_mean_w_image_and_psi_scales_the_deviation():
    m, _ = _fitted()
    mapping = m.generator_ema.mapping
    assert int(mapping.w_avg_updates) == 6 and mapping.w_avg.abs().sum() > 0  # tracked over the 6 generator steps
    z = torch.randn(6, 4)
    noise = torch.randn(1, m.noise_size).expand(6, -1)  # the same noise for every event
    with torch.no_grad():
        at_zero = m.rsample(6, z=z, noise=noise, truncation=0.0)
        mean_image = m.to_external(m.generator_ema.synthesis(mapping.w_avg[None, None].expand(6, mapping_ws(m), -1),
                                                             noise).reshape(6, 8, 8))
        torch.testing.assert_close(at_zero, mean_image)
        assert (at_zero - at_zero[:1]).abs().max() < 1e-5  # one image, whatever z
        # ψ = 0.5: w̄ + ψ (w − w̄), by hand
        w = mapping(z)
        half = m.to_external(m.generator_ema.synthesis((mapping.w_avg + 0.5 * (w - mapping.w_avg))[:, None].expand(
            -1, mapping_ws(m), -1), noise).reshape(6, 8, 8))
        torch.testing.assert_close(m.rsample(6, z=z, noise=noise, truncation=0.5), half)
        torch.testing.assert_close(m.rsample(6, z=z, noise=noise, truncation=1.0), m.rsample(6, z=z, noise=noise))
        # None: no truncation, as big-gan spells it (the truncation curve's "none")
        torch.testing.assert_close(m.rsample(6, z=z, noise=noise, truncation=None), m.rsample(6, z=z, noise=noise))
    for bad in (-0.1, float("nan"), "x"):
        with pytest.raises(ConfigError, match="truncation"):
            m.sample(2, truncation=bad)


def test_sample_at_psi_zero_is_one_image_per_condition_even_with_strong_noise():
    """``sample(n, truncation=0)`` as a user calls it (no noise passed): the mean w's image, so the per-pixel noise
    sits at its mean too; with noise strengths far from their zero start the images differed by the noise alone."""
    energy = np.random.default_rng(1).uniform(10, 50, (96, 1)).astype(np.float32)
    m, _ = _fitted(context=energy)
    with torch.no_grad():
        for layer in m.modules():
            if getattr(layer, "noise_strength", None) is not None:
                layer.noise_strength.fill_(0.5)
    at_one = m.sample(4, context=np.full((4, 1), 30.0), truncation=1.0)
    assert (at_one - at_one[:1]).abs().max() > 1e-3  # the noise (and z) do move the images
    at_zero = m.sample(4, context=np.full((4, 1), 30.0), truncation=0)
    torch.testing.assert_close(at_zero, at_zero[:1].expand_as(at_zero), rtol=0, atol=1e-5)
    with torch.no_grad():  # the image of w̄(c) with zero noise, by hand
        ws = m.mean_w(np.array([[30.0]])).reshape(1, 1, -1).expand(1, mapping_ws(m), -1)
        by_hand = m.to_external(m.generator_ema.synthesis(ws, torch.zeros(1, m.noise_size)).reshape(1, 8, 8))
    torch.testing.assert_close(at_zero[:1], by_hand)
    other = m.sample(4, context=np.full((4, 1), 45.0), truncation=0)
    assert (other[0] - at_zero[0]).abs().max() > 1e-4  # the mean w of another energy is another image
    state = torch.get_rng_state()
    m.sample(3, truncation=0, context=np.full((3, 1), 30.0))
    after_zero = torch.get_rng_state()
    torch.set_rng_state(state)
    m.sample(3, truncation=1.0, context=np.full((3, 1), 30.0))
    assert torch.equal(after_zero, torch.get_rng_state())  # the same draws as at any other ψ


def test_the_truncation_curve_takes_a_style_gan_with_none_among_its_values():
    """``hepgen report truncation RUN`` visits ψ = none by default; a style-gan refused it (big-gan's spelling)."""
    from hepgen.report.truncation import truncation_curve

    m, images = _fitted()
    rows = truncation_curve(m, images, truncations=[None, 0.5], k=3, classifier_auc=False)
    assert [r["truncation"] for r in rows] == [None, 0.5] and all(np.isfinite(r["fpd"]) for r in rows)


def mapping_ws(m):
    return m.generator.synthesis.num_ws


def test_conditional_mean_w_is_the_regression_of_w_on_the_condition():
    """w̄(c) from the tracked moments equals the least-squares line of w on c of the same (stationary) events."""
    torch.manual_seed(3)
    mapping = MappingNetwork(latent=2, context=2, style=3, layers=1, w_avg_decay=0.9)
    rng = np.random.default_rng(0)
    slope, intercept = rng.normal(size=(3, 2)), rng.normal(size=3)
    c = rng.normal(size=(4000, 2)) * [1.0, 3.0] + [0.5, -1.0]
    w = c @ slope.T + intercept + 0.1 * rng.normal(size=(4000, 3))
    for _ in range(400):  # the same batch each step: the EMAs converge to its moments
        mapping.update_average(torch.as_tensor(w, dtype=torch.float32), torch.as_tensor(c, dtype=torch.float32))
    design = np.column_stack([np.ones(len(c)), c])
    coef = np.linalg.lstsq(design, w, rcond=None)[0]
    at = np.array([[0.0, 0.0], [2.0, 1.0], [-1.0, 4.0]])
    expected = np.column_stack([np.ones(3), at]) @ coef
    got = mapping.mean(torch.as_tensor(at, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-3)
    truncated = mapping.truncate(torch.zeros(3, 3), torch.as_tensor(at, dtype=torch.float32), 0.0)
    np.testing.assert_allclose(truncated.numpy(), expected, atol=2e-3)


# -- the lazy regularisers ---------------------------------------------------------------------------------------------
def test_lazy_r1_on_every_kth_critic_step_matches_the_gradient_norm_by_hand():
    torch.manual_seed(0)
    m = StyleGAN((8, 8), r1_interval=3, r1_weight=2.0, minibatch_std=0, **SMALL)
    batch = {"x": torch.randn(5, 8, 8), "w": torch.ones(5)}
    logged = []
    for step in range(7):
        out = m.player_step("critic", batch)
        logged.append("r1" in out)
        if step == 3:
            x = batch["x"].clone().requires_grad_(True)
            grads = torch.stack([torch.autograd.grad(m.critic(x[i:i + 1]).sum(), x)[0][i] for i in range(5)])
            r1 = grads.square().sum((1, 2))
            torch.testing.assert_close(out["r1"], r1)
            # the loss is the logistic loss plus (γ/2) k ‖∇D‖², the lazy term scaled by its interval
            adversarial = F.softplus(-out["d_real"].logit()) + F.softplus(out["d_fake"].logit())
            torch.testing.assert_close(out["loss"], adversarial + 0.5 * 2.0 * 3 * r1, rtol=1e-4, atol=1e-4)
    assert logged == [True, False, False, True, False, False, True] and int(m.critic_updates) == 7


def test_path_length_penalty_every_kth_generator_step_against_the_jacobian():
    torch.manual_seed(0)
    m = StyleGAN((6, 6), pl_interval=2, pl_weight=1.0, pl_decay=0.5, style_mixing=0.0, **SMALL).double()
    m.preprocessor.fit(np.random.default_rng(0).normal(size=(10, 6, 6)))
    batch = {"x": torch.randn(3, 6, 6, dtype=torch.float64), "w": torch.ones(3, dtype=torch.float64)}
    state = torch.random.get_rng_state()
    out = m.player_step("generator", batch)
    assert "path_length" in out and "path_length" not in m.player_step("generator", batch)
    # by hand: the same draws, then ‖J_wᵀ y‖ per event from the full Jacobian of the image in the layers' ws
    torch.random.set_rng_state(state)
    synthesis, mapping = m.generator.synthesis, m.generator.mapping
    z = torch.randn(3, 4, dtype=torch.float64)
    ws = mapping(z)[:, None].repeat(1, synthesis.num_ws, 1).detach()
    noise = torch.randn(3, synthesis.noise_size, dtype=torch.float64)
    fake = synthesis(ws, noise)
    y = torch.randn_like(fake) / 6.0
    lengths = []
    for i in range(3):
        jac = torch.autograd.functional.jacobian(lambda v: synthesis(v[None], noise[i:i + 1])[0], ws[i])
        g = (jac * y[i][..., None, None]).sum((0, 1, 2))  # (num_ws, style)
        lengths.append(g.square().sum(1).mean().sqrt())
    torch.testing.assert_close(out["path_length"], torch.stack(lengths))
    a = 0.5 * torch.stack(lengths).mean()  # the running mean moved half way from 0
    torch.testing.assert_close(out["pl_penalty"], (torch.stack(lengths) - a) ** 2)


# -- save, load, resume, export ----------------------------------------------------------------------------------------
def test_save_load_round_trip_gives_identical_samples(tmp_path):
    energy = np.random.default_rng(1).uniform(10, 100, (96, 1)).astype(np.float32)
    images = _images(96, (3, 12))
    m = StyleGAN((3, 12), context=1, **SMALL).fit(images, context=energy, epochs=1, batch_size=32, quiet=True,
                                                  run_dir=tmp_path / "run", val_fraction=0)
    loaded = hepgen.load(tmp_path / "run")
    assert isinstance(loaded, StyleGAN) and loaded.get_config() == m.get_config()
    for psi in (1.0, 0.3):
        torch.manual_seed(5)
        a = m.sample(20, context=[30.0], truncation=psi)
        torch.manual_seed(5)
        b = loaded.sample(20, context=[30.0], truncation=psi)
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(m.mean_w([30.0]), loaded.mean_w([30.0]))


def test_resume_continues_counters_running_means_and_weights(tmp_path):
    images = _images(64, (8, 8))
    common = dict(epochs=2, batch_size=16, seed=0, quiet=True, val_fraction=0)
    options = dict(r1_interval=3, pl_interval=3, **SMALL)
    full = StyleGAN((8, 8), **options).fit(images, **common)
    StyleGAN((8, 8), **options).fit(images, run_dir=tmp_path / "r", **{**common, "epochs": 1})
    resumed = StyleGAN((8, 8), **options).fit(images, run_dir=tmp_path / "r", resume=True, **common)
    assert int(resumed.critic_updates) == 8 and int(resumed.generator_updates) == 8
    for (name, x), y in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(x, y), name


def test_onnx_sample_matches_torch_and_score_is_refused_with_minibatch_std(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    energy = np.random.default_rng(1).uniform(10, 100, (64, 1)).astype(np.float32)
    m = StyleGAN((12, 6), context=1, **SMALL).fit(_images(64, (12, 6)), context=energy, epochs=1, batch_size=32,
                                                  quiet=True, val_fraction=0)
    m.export(tmp_path / "g.onnx")
    c = np.full((10, 1), 40.0, dtype=np.float32)
    torch.manual_seed(4)
    expected = m.sample(10, context=c).numpy()
    torch.manual_seed(4)
    z, noise = torch.randn(10, 4).numpy(), torch.randn(10, m.noise_size).numpy()
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    (out,) = session.run(["x"], {"z": z, "noise": noise, "context": c})
    assert out.shape == (10, 12, 6)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    with pytest.raises(ConfigError, match="minibatch"):
        m.export(tmp_path / "s.onnx", what="score")
    assert not (tmp_path / "s.onnx").exists()
    with pytest.raises(ConfigError, match="density"):
        m.export(tmp_path / "l.onnx", what="log_prob")
    plain = StyleGAN((8, 8), minibatch_std=0, **SMALL).fit(_images(32), epochs=1, batch_size=16, quiet=True,
                                                           val_fraction=0)
    plain.export(tmp_path / "score.onnx", what="score")  # checked against torch by the exporter itself


# -- the CLI -----------------------------------------------------------------------------------------------------------
def test_cli_fit_sample_with_truncation_and_help(tmp_path, capsys):
    data = tmp_path / "calo.h5"
    rng = np.random.default_rng(0)
    with h5py.File(data, "w") as f:
        f["layer_2"] = rng.gamma(2.0, 1.0, (64, 12, 6)).astype(np.float32)
        f["energy"] = rng.uniform(10, 100, 64).astype(np.float32)
    code, out, _ = run_cli(capsys, "fit", "style-gan", "--help")
    assert code == 0 and "--r1-interval" in out and "--pl-weight" in out and "--mapping-layers" in out
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "fit", "style-gan", f"{data}:layer_2", "--context", f"{data}:energy", "-o", run,
                           "--epochs", 1, "--batch-size", 32, "--channels", 8, "--min-channels", 4, "--style", 8,
                           "--mapping-layers", 2, "--val-fraction", 0, "-q")
    assert code == 0, err
    conditional = hepgen.load(run)  # a calorimeter layer conditioned on the energy
    code, _, err = run_cli(capsys, "sample", run, "-n", 5, "-o", tmp_path / "c.npz", "--context", "50",
                           "--truncation", "0.5", "--seed", 2, "-q")
    assert code == 0, err
    torch.manual_seed(2)
    expected = conditional.sample(5, context=[50.0], truncation=0.5).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "c.npz")["samples"], expected, rtol=1e-5, atol=1e-5)
    plain = tmp_path / "plain"
    code, _, err = run_cli(capsys, "fit", "style-gan", f"{data}:layer_2", "-o", plain, "--epochs", 1, "--batch-size",
                           32, "--channels", 8, "--min-channels", 4, "--style", 8, "--mapping-layers", 2,
                           "--val-fraction", 0, "-q")
    assert code == 0, err
    out_file = tmp_path / "s.h5"
    code, _, err = run_cli(capsys, "sample", plain, "-n", 7, "-o", out_file, "--truncation", "0.7", "--seed", 3, "-q")
    assert code == 0, err
    model = hepgen.load(plain)
    torch.manual_seed(3)
    with h5py.File(out_file) as f:
        np.testing.assert_allclose(f["samples"][:], model.sample(7, truncation=0.7).numpy(), rtol=1e-5, atol=1e-5)
    code, err = run_cli_for_error(capsys, ["sample", run, "-n", 7, "-o", tmp_path / "t.h5", "--context", "50",
                                           "--truncation", "-1", "-q"])
    assert code == 2 and "--truncation" in err and not (tmp_path / "t.h5").exists()
    code, err = run_cli_for_error(capsys, ["fit", "style-gan", f"{data}:energy", "-o", tmp_path / "bad", "-q"])
    assert code == 2 and "images" in err and not (tmp_path / "bad").exists()
