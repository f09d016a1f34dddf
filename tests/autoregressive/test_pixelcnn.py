"""PixelCNN: the causal masks by autograd (no dependence on a pixel at or after the output's, none missing
before it: no blind spot), the likelihood summed over every possible image by brute force, the quantiser against
numpy, the sequential sampler against the parallel log_prob, save/load and the ONNX export."""

import itertools

import numpy as np
import pytest
import torch

import hepgen
from hepgen.autoregressive import IntensityLevels, PixelCNN
from hepgen.data.generators.jets import shipped_sample_path
from hepgen.errors import ConfigError, DataError
from hepgen.nn.pixelcnn import GatedPixelCNN


def _dependence(net, h, w, levels, context=None):
    """(H·W, H·W) booleans: output pixel p's logits have a non-zero gradient from input pixel q."""
    x = torch.rand(1, levels, h, w, dtype=torch.float64, requires_grad=True)
    depends = torch.zeros(h * w, h * w, dtype=torch.bool)
    for p in range(h * w):
        out = net(x, context)[0, :, p // w, p % w]
        for k in range(levels):  # every logit, one by one (a sum could cancel)
            (grad,) = torch.autograd.grad(out[k], x, retain_graph=True)
            depends[p] |= (grad[0] != 0).any(dim=0).reshape(-1)
    return depends


@pytest.mark.parametrize(("layers", "kernel_size", "context"), [(1, 3, 0), (4, 3, 0), (3, 5, 2)])
def test_the_logits_of_a_pixel_depend_on_exactly_the_pixels_before_it_in_its_receptive_field(layers, kernel_size,
                                                                                              context):
    torch.manual_seed(0)
    h, w, levels = 6, 5, 3
    net = GatedPixelCNN(levels, channels=4, layers=layers, kernel_size=kernel_size, context=context).double()
    c = torch.rand(1, context, dtype=torch.float64) if context else None
    depends = _dependence(net, h, w, levels, c)
    reach = layers * (kernel_size // 2)  # rows above and columns either side / to the left
    for p in range(h * w):
        i, j = divmod(p, w)
        for q in range(h * w):
            a, b = divmod(q, w)
            expected = q < p and (i - a <= reach and abs(b - j) <= reach if a < i else j - b <= reach)
            assert bool(depends[p, q]) == expected, (layers, kernel_size, (i, j), (a, b))
    assert not depends[0].any()  # the first pixel sees nothing (its logits are the context's alone)


def test_the_full_model_respects_raster_order_through_the_levels():
    """log P of the first k pixels does not change when later pixels change (the chain rule's prefix)."""
    torch.manual_seed(1)
    model = PixelCNN((4, 4), levels=4, channels=6, layers=3).fit_levels(torch.rand(10, 4, 4) * 5)
    x = torch.rand(1, 4, 4) * 5
    onehot = model.quantiser.onehot(model.quantise(x))
    per_pixel = (model.net.log_probs(onehot) * onehot).sum(1).reshape(-1)
    y = x.clone()
    y[0, 2, 1:] = torch.rand(3) * 5 + 0.1
    onehot_y = model.quantiser.onehot(model.quantise(y))
    per_pixel_y = (model.net.log_probs(onehot_y) * onehot_y).sum(1).reshape(-1)
    assert torch.equal(per_pixel[:9], per_pixel_y[:9])  # pixels 0..8 come before (2, 1)
    assert torch.allclose(per_pixel.sum(), model.log_prob(x)[0])


@pytest.mark.parametrize(("shape", "levels", "context"), [((2, 2), 3, 0), ((3, 3), 2, 0), ((1, 2, 2), 3, 2)])
def test_log_prob_sums_to_one_over_every_possible_image(shape, levels, context):
    torch.manual_seed(2)
    model = PixelCNN(shape, levels=levels, channels=5, layers=2, context=context)
    model.fit_levels(torch.rand(20, *shape) * 3)
    for p in model.parameters():  # a model far from uniform
        torch.nn.init.normal_(p, std=0.7)
    pixels = int(np.prod(shape))
    every = torch.tensor(list(itertools.product(range(levels), repeat=pixels))).reshape(-1, *shape)
    x = model.quantiser.values(every, torch.rand(every.shape)).float()
    assert torch.equal(model.quantise(x), every.reshape(len(every), *model.image))
    for row in ([None] if not context else [torch.tensor([0.3, -1.0]), torch.tensor([2.0, 0.5])]):
        lp = model.log_prob(x, row).double()
        assert lp.max() < 0 and lp.min() > -40
        assert abs(float(torch.logsumexp(lp, 0))) < 1e-5


def test_levels_against_numpy_and_back():
    rng = np.random.default_rng(3)
    train = rng.exponential(2.0, size=(50, 5, 5)) * (rng.uniform(size=(50, 5, 5)) < 0.3)
    q = IntensityLevels(6).fit([train[:20], train[20:]])
    nonzero = train[train > 0]
    assert float(q.scale) == pytest.approx(np.median(nonzero)) and float(q.top) == pytest.approx(
        np.log1p(nonzero.max() / np.median(nonzero)))
    x = np.concatenate([np.zeros(3), rng.exponential(2.0, 200), [nonzero.max() * 3]])
    edges = q.edges().numpy()
    assert edges[0] == 0 and len(edges) == 5
    expected = np.where(x > 0, np.searchsorted(edges, x, side="right"), 0)
    levels = q(torch.as_tensor(x))
    np.testing.assert_array_equal(levels.numpy(), expected)
    assert levels.max() == 5  # above the training maximum: the open top level
    back = q.values(levels, torch.rand(levels.shape, dtype=torch.float64))
    assert torch.equal(q(back), levels) and (back[x == 0] == 0).all()
    with pytest.raises(DataError, match=r"index \(1,\) is negative"):
        q(torch.tensor([1.0, -0.5]))
    with pytest.raises(DataError, match="every pixel is zero"):
        IntensityLevels(4).fit([np.zeros((3, 2, 2))])


@pytest.fixture(scope="module")
def trained():
    """A small PixelCNN trained for one epoch on the central 8×8 pixels of the shipped QCD jet images."""
    import h5py

    with h5py.File(shipped_sample_path()) as f:
        x = np.asarray(f["qcd/images"][:400, 16:24, 16:24], dtype=np.float32)
    model = PixelCNN((8, 8), levels=8, channels=8, layers=3).fit(x, epochs=1, batch_size=100, lr=3e-3, quiet=True)
    return model, x


def test_sample_has_the_datas_shape_and_support_and_its_log_prob(trained):
    model, x = trained
    torch.manual_seed(4)
    samples, log_p = model.sample_and_log_prob(12)
    assert samples.shape == (12, 8, 8) and samples.dtype == torch.float32
    assert (samples >= 0).all() and torch.isfinite(samples).all() and (samples == 0).any()
    assert float(samples.max()) <= float(model.quantiser.scale * torch.expm1(model.quantiser.top)) * 1.0001
    assert (samples > 0).float().mean() < 0.9  # jet images are mostly empty, and one epoch learns that
    torch.testing.assert_close(log_p, model.log_prob(samples), rtol=1e-5, atol=1e-4)  # sequential = parallel
    with pytest.raises(ConfigError, match="no rsample"):
        model.rsample(2)


def test_the_quantiser_is_fitted_on_the_training_images_and_kept_by_a_warm_start(trained):
    model, x = trained
    # fitted on the 90 % of the images the engine trains on, not the validation share: close to the median of all
    assert bool(model.quantiser.fitted) and float(model.quantiser.scale) == pytest.approx(np.median(x[x > 0]),
                                                                                           rel=0.02)
    scale = float(model.quantiser.scale)
    model2 = PixelCNN((8, 8), levels=8, channels=8, layers=3)
    model2.load_state_dict(model.state_dict())
    model2.fit(x[:100] * 2, epochs=1, batch_size=50, quiet=True, warm_start=True)
    assert float(model2.quantiser.scale) == scale


def test_save_and_load_give_identical_log_prob(trained, tmp_path):
    model, x = trained
    model.save(tmp_path / "run")
    loaded = hepgen.load(tmp_path / "run")
    assert isinstance(loaded, PixelCNN) and loaded.get_config() == model.get_config()
    assert torch.equal(loaded.log_prob(x[:50]), model.log_prob(x[:50]))
    assert torch.equal(loaded.score(x[:50]), -model.log_prob(x[:50]))


def test_bad_images_are_refused():
    model = PixelCNN((3, 3), levels=3, channels=4, layers=1)
    with pytest.raises(DataError, match="is negative"):
        model.log_prob(-torch.ones(2, 3, 3))
    with pytest.raises(DataError, match="not finite"):
        model.log_prob(torch.full((2, 3, 3), float("nan")))
    with pytest.raises(ConfigError, match="shape"):
        model.log_prob(torch.ones(2, 4, 3))
    with pytest.raises(ConfigError, match="single-channel"):
        PixelCNN((3, 8, 8))
    with pytest.raises(ConfigError, match="kernel_size"):
        PixelCNN((8, 8), kernel_size=4)
    with pytest.raises(ConfigError, match="levels"):
        PixelCNN((8, 8), levels=1)


def test_onnx_export_of_log_prob_and_a_refusal_for_sample(trained, tmp_path):
    model, x = trained
    result = model.export(tmp_path / "pixelcnn.onnx")  # the default: log_prob, checked against onnxruntime
    assert (tmp_path / "pixelcnn.onnx").is_file() and result is not None
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "pixelcnn.onnx"))
    (out,) = session.run(None, {session.get_inputs()[0].name: x[:20]})
    np.testing.assert_allclose(out, model.log_prob(x[:20]).numpy(), rtol=1e-4, atol=1e-3)
    with pytest.raises(ConfigError, match="sequential pass"):
        model.export(tmp_path / "s.onnx", what="sample")


def test_channels_last_weights_keep_the_seeded_draws_and_the_function():
    # the network holds channels-last weights for speed: the same weights from the same seed as the plain layout,
    # the same logits and gradients
    from hepgen.models import Model

    torch.manual_seed(0)
    fast = PixelCNN((9, 7), levels=5, channels=6, layers=3)
    plain = PixelCNN((9, 7), levels=5, channels=6, layers=3)
    plain.net.to(memory_format=torch.contiguous_format)
    torch.manual_seed(1)
    fast.reset_parameters()
    torch.manual_seed(1)
    Model.reset_parameters(plain)  # the base's loop, the contiguous layout kept
    conv = fast.net.layers[1].vertical.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert plain.net.layers[1].vertical.weight.is_contiguous()
    for (name, a), b in zip(fast.state_dict().items(), plain.state_dict().values()):
        assert torch.equal(a, b), name
    onehot = torch.nn.functional.one_hot(torch.randint(0, 5, (4, 9, 7)), 5).permute(0, 3, 1, 2).float()
    out, expected = fast.net(onehot), plain.net(onehot)
    torch.testing.assert_close(out, expected)
    probe = torch.randn_like(out)
    grads = torch.autograd.grad((out * probe).sum(), list(fast.net.parameters()))
    expected_grads = torch.autograd.grad((expected * probe).sum(), list(plain.net.parameters()))
    scale = max(float(g.abs().max()) for g in expected_grads)
    for g, e in zip(grads, expected_grads):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5 * scale)
