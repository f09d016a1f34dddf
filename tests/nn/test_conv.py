"""The shared conv stacks: exact shapes for any H, W, the layers they claim, and an exact mirror."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hepgen.nn.conv import ConvDecoder, ConvEncoder, auto_downsample, spatial_sizes

torch.set_num_threads(1)


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 7, 9), (40, 40), (2, 28, 28), (1, 1, 5), (1, 6, 11)])
@pytest.mark.parametrize("channels", [(4,), (4, 8, 8, 16, 16)])
@pytest.mark.parametrize("downsample", [None, 0, 1])
def test_any_image_size_round_trips_to_its_exact_shape(shape, channels, downsample):
    torch.manual_seed(0)
    enc = ConvEncoder(shape, channels, 5, downsample=downsample)
    dec = ConvDecoder(5, shape, channels, downsample=downsample)
    x = torch.randn(3, *shape)
    z = enc(x)
    assert z.shape == (3, 5)
    # the recorded feature shape is what the conv stack really produces (torch's own arithmetic)
    c = 1 if len(shape) == 2 else shape[0]
    assert enc.convs(x.reshape(3, c, *shape[-2:])).shape[1:] == enc.feature_shape
    assert dec(z).shape == (3, c, *shape[-2:])
    n_convs = sum(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in dec.modules())
    assert n_convs == len(channels) == sum(isinstance(m, nn.Conv2d) for m in enc.modules())


def test_automatic_downsampling_halves_while_the_side_stays_at_least_four():
    assert [auto_downsample(s, 5) for s in [(8, 8), (1, 40, 40), (28, 28), (3, 4, 9), (64, 64)]] == [1, 3, 3, 0, 4]
    assert auto_downsample((64, 64), 2) == 2
    assert spatial_sizes((1, 7, 9), 3) == [(7, 9), (4, 5), (2, 3), (1, 2)]
    for n in range(1, 30):  # ⌈n/2⌉ is what a stride-2, 3x3, padding-1 conv gives
        out = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, 3, 3), stride=2, padding=1)
        assert out.shape[-1] == math.ceil(n / 2)


def test_encoder_equals_hand_written_convolution_then_linear():
    torch.manual_seed(1)
    enc = ConvEncoder((2, 9, 6), (5, 3), 4, downsample=1, activation="tanh", context=2)
    x, c = torch.randn(7, 2, 9, 6), torch.randn(7, 2)
    conv0, conv1 = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    h = torch.tanh(F.conv2d(x, conv0.weight, conv0.bias, stride=2, padding=1))
    h = torch.tanh(F.conv2d(h, conv1.weight, conv1.bias, stride=1, padding=1))
    expected = F.linear(torch.cat([h.flatten(1), c], 1), enc.linear.weight, enc.linear.bias)
    torch.testing.assert_close(enc(x, c), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="context"):
        enc(x)


@pytest.mark.parametrize("h, w", [(8, 8), (7, 7), (8, 7), (5, 10), (1, 2)])
def test_decoder_upsampling_is_the_exact_adjoint_of_the_encoder_downsampling(h, w):
    """<conv(x), y> = <x, convᵀ(y)> with shared weights: the decoder mirrors the encoder size by size."""
    torch.manual_seed(2)
    enc = ConvEncoder((3, h, w), (4,), 2, downsample=1)
    dec = ConvDecoder(2, (3, h, w), (4,), downsample=1)
    conv = next(m for m in enc.modules() if isinstance(m, nn.Conv2d))
    convt = next(m for m in dec.modules() if isinstance(m, nn.ConvTranspose2d))
    x = torch.randn(1, 3, h, w, dtype=torch.float64)
    y = torch.randn(1, 4, *spatial_sizes((h, w), 1)[1], dtype=torch.float64)
    wgt = conv.weight.detach().double()
    lhs = (F.conv2d(x, wgt, stride=2, padding=1) * y).sum()
    rhs = (x * F.conv_transpose2d(y, wgt, stride=2, padding=1, output_padding=convt.output_padding)).sum()
    torch.testing.assert_close(lhs, rhs)
    assert F.conv_transpose2d(y, wgt, stride=2, padding=1, output_padding=convt.output_padding).shape == x.shape


def test_decoder_context_and_output_channels():
    torch.manual_seed(3)
    dec = ConvDecoder(3, (2, 10, 10), (4, 8), context=1, out_channels=6, norm="batch")
    z = torch.randn(5, 3)
    a, b = dec(z, torch.zeros(5, 1)), dec(z, torch.ones(5, 1))
    assert a.shape == (5, 6, 10, 10) and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="context"):
        dec(z)


def test_spectral_norm_bounds_every_layer_by_one():
    torch.manual_seed(4)
    enc = ConvEncoder((1, 8, 8), (4, 4), 1, spectral_norm=True, activation="leaky_relu")
    x = torch.randn(16, 1, 8, 8)
    for _ in range(30):  # power iterations run in train mode
        enc(x)
    enc.eval()
    lin = torch.linalg.matrix_norm(enc.linear.weight.detach(), ord=2)
    assert abs(float(lin) - 1.0) < 1e-2


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="odd"):
        ConvEncoder((1, 8, 8), (4,), 2, kernel_size=4)
    with pytest.raises(ValueError, match="downsample"):
        ConvDecoder(2, (1, 8, 8), (4,), downsample=3)
    with pytest.raises(ValueError, match="channels"):
        ConvEncoder((1, 8, 8), (), 2)
    with pytest.raises(ValueError, match="shape"):
        ConvEncoder((8,), (4,), 2)


@pytest.mark.parametrize("dims,width", [(1, 1), (2, 1), (2, 2), (3, 1)])
def test_periodic_pad_wraps_around_with_and_without_gradients(dims, width):
    """The same values as an independent construction by index arithmetic, whichever way it is computed
    (concatenation with gradients, F.pad without them in 2-D)."""
    from hepgen.nn.conv import periodic_pad

    sites = (4, 6, 5)[:dims]
    x = torch.randn(3, 2, *sites)
    index = torch.arange(x.numel()).reshape(x.shape)
    expected = index
    for axis, n in enumerate(sites, start=2):
        expected = expected.index_select(axis, (torch.arange(-width, n + width) % n))
    expected = x.reshape(-1)[expected]
    with torch.no_grad():
        assert torch.equal(periodic_pad(x, width, dims), expected)
    padded = periodic_pad(x.requires_grad_(), width, dims)
    assert torch.equal(padded.detach(), expected) and type(padded.grad_fn).__name__ == "CatBackward0"
    with torch.no_grad(), pytest.raises(ValueError, match="at least"):
        periodic_pad(x, 5, dims)
