import torch

from hepgen.nn.functional import asinh


def test_asinh_values_and_gradient_match_torch_in_double():
    x = torch.cat([torch.linspace(-1e5, 1e5, 20001), torch.linspace(-3, 3, 20001), torch.tensor([0.0, -0.0])])
    exact = torch.asinh(x.double())
    assert torch.allclose(asinh(x).double(), exact, rtol=2e-7, atol=2e-7)
    xd = x.double().requires_grad_()
    asinh(xd).sum().backward()
    assert torch.allclose(xd.grad, 1 / torch.sqrt(1 + x.double() ** 2), rtol=1e-12)
    # gradcheck of the custom backward in double precision
    y = torch.randn(7, 3, dtype=torch.double, requires_grad=True) * 50
    assert torch.autograd.gradcheck(asinh, (y.detach().requires_grad_(),))


def test_asinh_is_odd_and_keeps_the_sign_of_zero():
    x = torch.tensor([1e-30, 0.5, 7.0, 3e4])
    assert torch.equal(asinh(-x), -asinh(x))
    assert torch.signbit(asinh(torch.tensor([-0.0])))[0]
