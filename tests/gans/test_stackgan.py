"""StackGAN: shapes at both stages, stage II built on stage I (by hand and by autograd), conditioning, the staged
schedule on the engine's ``every = 0``, save/load/resume, ONNX export and the CLI."""

import numpy as np
import pytest
import torch

import hepgen
from hepgen.cli import main
from hepgen.data import io
from hepgen.errors import ConfigError
from hepgen.gans.stackgan import StackGAN, coarse_shape
from hepgen.models import model_class


def _images(n=256, side=8, seed=0):
    """Blobs whose brightness follows the context c ∈ [1, 2]: (n, side, side) and (n, 1)."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(1.0, 2.0, (n, 1))
    y, x = np.mgrid[:side, :side] - (side - 1) / 2
    img = c[:, :, None] * np.exp(-(x**2 + y**2)[None] / 4.0) + 0.05 * rng.random((n, side, side))
    return img.astype(np.float32), c.astype(np.float32)


def _randomise_last_layer(model, seed=0):
    """Stage II's last convolution starts at zero (identity refinement); give it weights to test its dependence."""
    last = model.generator.stage2.net[-1]
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        last.weight.copy_(0.3 * torch.randn(last.weight.shape, generator=g))
        last.bias.copy_(0.1 * torch.randn(last.bias.shape, generator=g))


@pytest.mark.parametrize("shape, factor, coarse", [((40, 40), 4, (10, 10)), ((3, 96), 4, (1, 24)),
                                                   ((2, 12, 12), 4, (2, 3, 3)), ((12, 6), 5, (3, 2))])
def test_shapes_at_both_stages(shape, factor, coarse):
    assert coarse_shape(shape, factor) == coarse
    model = StackGAN(shape, latent=8, coarse_factor=factor, channels=(4, 8), refine_channels=(4,)).eval()
    coarse_img, fine = model.generator.stages(torch.randn(5, 8))
    assert coarse_img.shape == (5, *coarse) and fine.shape == (5, *shape)
    assert model.sample(3).shape == (3, *shape)
    c, f = model.sample_stages(2)
    assert c.shape == (2, *coarse) and f.shape == (2, *shape)
    x = torch.rand(4, *shape)
    assert model.downsample(x).shape == (4, *coarse)
    assert model_class("stack-gan") is StackGAN


def test_an_untrained_stage_two_passes_the_upsampled_stage_one_through():
    model = StackGAN((8, 8), latent=4, coarse_factor=4, channels=(4,), refine_channels=(4,)).eval()
    coarse = torch.randn(3, 2, 2)
    by_hand = np.kron(coarse.numpy(), np.ones((4, 4)))  # nearest upsampling: each coarse pixel a 4x4 block
    np.testing.assert_allclose(model.generator.refine(coarse).detach().numpy(), by_hand, atol=1e-6)
    # and the average pooling of the real images is what stage I's critic sees
    x = torch.rand(3, 8, 8)
    np.testing.assert_allclose(model.downsample(x).numpy(), x.numpy().reshape(3, 2, 4, 2, 4).mean(axis=(2, 4)),
                               atol=1e-6)


def test_stage_two_depends_on_stage_one_gradient_check():
    torch.manual_seed(0)
    model = StackGAN((8, 8), latent=4, channels=(4,), refine_channels=(6,)).eval()
    _randomise_last_layer(model)
    g = model.generator
    z = torch.randn(1, 4, requires_grad=True)
    coarse = g.coarse(z).detach().requires_grad_(True)
    fine = g.refine(coarse)
    # every coarse pixel reaches the fine image: d fine / d coarse has no zero column
    jac = torch.stack([torch.autograd.grad(fine.reshape(-1)[i], coarse, retain_graph=True)[0].reshape(-1)
                       for i in range(fine.numel())])
    assert jac.shape == (64, 4) and torch.all(jac.abs().sum(dim=0) > 0)
    # z reaches the fine image only through stage I: d fine/dz = (d fine/d coarse)(d coarse/dz), the chain rule
    j_coarse = torch.autograd.functional.jacobian(lambda v: g.coarse(v).reshape(-1), z.detach()).reshape(4, 4)
    j_full = torch.autograd.functional.jacobian(lambda v: g(v).reshape(-1), z.detach()).reshape(64, 4)
    torch.testing.assert_close(j_full, jac @ j_coarse, rtol=1e-4, atol=1e-5)
    assert j_full.abs().sum() > 0


def test_conditioning_changes_both_stages():
    torch.manual_seed(1)
    model = StackGAN((8, 8), latent=4, channels=(4,), refine_channels=(4,), context=1).eval()
    _randomise_last_layer(model)
    g = model.generator
    z = torch.randn(3, 4)
    lo, hi = torch.zeros(3, 1), torch.ones(3, 1)
    assert not torch.allclose(g.coarse(z, lo), g.coarse(z, hi))
    coarse = g.coarse(z, lo)
    assert not torch.allclose(g.refine(coarse, lo), g.refine(coarse, hi))  # stage II reads the condition itself
    with pytest.raises(ConfigError):
        model.sample(2)  # a conditional model needs its context


def test_staged_schedule_save_load_and_resume(tmp_path):
    images, c = _images()
    model = StackGAN((8, 8), latent=4, channels=(4, 8), refine_channels=(4,), stage_one_epochs=1, context=1)
    with pytest.warns(UserWarning, match="before stage II started"):
        model.fit(images, context=c, epochs=1, batch_size=64, quiet=True, seed=0, run_dir=tmp_path / "run")
    after = model.state_dict()
    stage2 = [k for k in after if k.startswith("generator.stage2.") or k.startswith("critic.")]
    stage1 = [k for k in after if k.startswith("generator.stage1.") and k.endswith("weight")]
    # epoch 1 trains stage I alone: stage II and its critic keep their initial draws (re-drawn by the seed)
    fresh = StackGAN((8, 8), latent=4, channels=(4, 8), refine_channels=(4,), stage_one_epochs=1, context=1)
    torch.manual_seed(0)  # as fit(seed=0) draws the weights
    fresh.reset_parameters()
    assert all(torch.equal(after[k], fresh.state_dict()[k]) for k in stage2 if "running" not in k
               and "num_batches" not in k)
    assert any(not torch.equal(after[k], fresh.state_dict()[k]) for k in stage1)
    # resume to epoch 2: stage II trains
    model2 = StackGAN((8, 8), latent=4, channels=(4, 8), refine_channels=(4,), stage_one_epochs=1, context=1)
    model2.fit(images, context=c, epochs=2, batch_size=64, quiet=True, seed=0, run_dir=tmp_path / "run", resume=True)
    assert len(model2.history_) == 2 and "train_generator_2_loss" in model2.history_[1]
    assert "train_generator_2_loss" not in model2.history_[0]
    assert any(not torch.equal(model2.state_dict()[k], after[k]) for k in stage2 if k.endswith("weight"))
    loaded = hepgen.load(tmp_path / "run")
    assert type(loaded) is StackGAN and loaded.get_config() == model2.get_config()
    for k, v in model2.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)
    torch.manual_seed(5)
    a = model2.sample(4, context=[[1.5]])
    torch.manual_seed(5)
    torch.testing.assert_close(loaded.sample(4, context=[[1.5]]), a)


def test_freezing_stage_one_keeps_its_weights_and_short_fits_warn():
    images, _ = _images(128)
    model = StackGAN((8, 8), latent=4, channels=(4, 8), refine_channels=(4,), stage_one_epochs=1,
                     freeze_stage_one=True)  # two layers each way: stage I has batch norm, whose statistics stay too
    with pytest.warns(UserWarning, match="before stage II started"):  # one epoch: stage II never trained
        model.fit(images, epochs=1, batch_size=64, quiet=True)
    model.on_epoch_start(1)
    assert {p.name: p.every for p in model.players()} == {"critic_1": 1, "generator_1": 1, "critic_2": 0,
                                                            "generator_2": 0}
    model.on_epoch_start(2)
    assert {p.name: p.every for p in model.players()} == {"critic_1": 0, "generator_1": 0, "critic_2": 1,
                                                            "generator_2": 1}
    # a fit of two epochs: stage I learns in epoch 1 only, so its weights after epoch 2 are those after epoch 1
    seen = {}

    def record(m, val):
        seen[int(m.epoch_)] = {k: v.clone() for k, v in m.generator.stage1.state_dict().items()}
        return 0.0

    model.fit(images, epochs=2, batch_size=64, quiet=True, monitor=record, val_fraction=0)
    assert any("running_mean" in k for k in seen[1])
    for k, v in seen[1].items():
        torch.testing.assert_close(seen[2][k], v)


def test_onnx_export_of_both_stages(tmp_path):
    import onnxruntime as ort

    images, c = _images(128)
    model = StackGAN((8, 8), latent=4, channels=(4,), refine_channels=(4,), stage_one_epochs=0, context=1)
    model.fit(images, context=c, epochs=1, batch_size=64, quiet=True)
    _randomise_last_layer(model)
    model.export(tmp_path / "g.onnx")
    z = torch.randn(5, 4)
    ctx = np.full((5, 1), 1.5, np.float32)
    expected = model.rsample(5, ctx, z=z).detach().numpy()
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    out = session.run(None, dict(zip(names, [z.numpy(), ctx])))[0]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_cli_fit_help_and_bad_input(tmp_path, capsys):
    images, c = _images(128)
    io.write(tmp_path / "img.h5:images", images)
    io.write(tmp_path / "ctx.h5:energy", c)
    assert main(["fit", "stack-gan", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--stage-one-epochs" in out and "--coarse-factor" in out and "--refine-channels" in out
    assert main(["fit", "stack-gan", f"{tmp_path / 'img.h5'}:images", "--context", f"{tmp_path / 'ctx.h5'}:energy",
                 "-o", str(tmp_path / "run"), "--epochs", "2", "--stage-one-epochs", "1", "--channels", "4",
                 "--refine-channels", "4", "--latent", "4", "-q"]) == 0
    assert main(["sample", str(tmp_path / "run"), "-n", "7", "--context", "1.5", "-o", str(tmp_path / "s.h5"),
                 "-q"]) == 0
    assert io.read(f"{tmp_path / 's.h5'}:samples").data.shape == (7, 8, 8)  # images beside the context column
    capsys.readouterr()
    io.write(tmp_path / "tab.h5:x", np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32))
    assert main(["fit", "stack-gan", f"{tmp_path / 'tab.h5'}:x", "-o", str(tmp_path / "bad"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "models images" in err and "Traceback" not in err and not (tmp_path / "bad").exists()
    assert main(["fit", "stack-gan", f"{tmp_path / 'img.h5'}:images", "-o", str(tmp_path / "bad"),
                 "--coarse-factor", "0", "-q"]) == 2
    assert "coarse_factor must be positive" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_a_coarse_factor_that_leaves_one_pixel_is_refused():
    """coarse_factor >= the image's larger side gives a 1x1 stage I (no coarse image at all): refused, naming
    the largest factor that still leaves one; the 3x96 calorimeter layer keeps its default (1x24)."""
    from hepgen.errors import ConfigError
    from hepgen.gans.stackgan import StackGAN

    message = "coarse_factor 40 leaves stage I one pixel of a 12x12 image; choose at most 11"
    with pytest.raises(ConfigError, match=message):
        StackGAN((12, 12), coarse_factor=40)
    StackGAN((12, 12), coarse_factor=11)
    StackGAN((3, 96))


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_channels_last_full_resolution_weights_keep_the_draws_and_the_function(spectral_norm, monkeypatch):
    # stage II and the full-resolution critic hold channels-last weights for speed: the same initial weights as a
    # model without that layout (same seed), and the same images, scores and gradients
    params = dict(context=1, channels=(4, 8), refine_channels=(6, 5), spectral_norm=spectral_norm)
    torch.manual_seed(0)
    fast = StackGAN((12, 12), **params)
    with monkeypatch.context() as m:
        m.setattr(StackGAN, "_full_resolution_layout", lambda self, memory_format: None)
        torch.manual_seed(0)
        plain = StackGAN((12, 12), **params)
    assert fast.generator.stage2.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not fast.generator.stage2.net[0].weight.is_contiguous()
    for (name, a), b in zip(fast.state_dict().items(), plain.state_dict().values()):
        assert torch.equal(a, b), name
    _randomise_last_layer(fast)
    _randomise_last_layer(plain)
    z, c, x = torch.randn(5, 64), torch.rand(5, 1), torch.randn(5, 12, 12, requires_grad=True)

    def run(model):
        image = model.generator(z, c)
        score = model.critic(x, c)
        params = [*model.generator.stage2.parameters(), *model.critic.parameters()]
        return image, score, torch.autograd.grad(image.square().sum() + score.sum(), [x, *params])

    (image, score, grads), (plain_image, plain_score, plain_grads) = run(fast), run(plain)
    torch.testing.assert_close(image, plain_image)
    torch.testing.assert_close(score, plain_score)
    # float32 sums in another order; a conv bias before batch norm has a gradient of zero up to that rounding
    scale = max(float(g.abs().max()) for g in plain_grads)
    for a, b in zip(grads, plain_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * scale)
