"""The VEGAS layer: the vegas package's map, its log-determinant against autograd and finite differences, its
inverse, and the adapted grid as the first layer of a hypercube flow."""

import numpy as np
import pytest
import torch

vegas = pytest.importorskip("vegas")

from hepgen.errors import ConfigError
from hepgen.phasespace import HypercubeFlow
from hepgen.phasespace.vegas_grid import VegasGrid, adapt_grid
from hepgen.targets import make_target
from tests.phasespace._density import assert_normalised_and_draws_carry_it


@pytest.fixture(scope="module")
def adapted():
    target = make_target("camel", dims=3, width=0.1)
    edges, calls = adapt_grid(lambda x: target(torch.as_tensor(x)).numpy(), 3, 6000, iterations=6, bins=24, seed=3)
    layer = VegasGrid(3, 24)
    layer.set_edges(edges)
    return layer, edges, calls


def test_the_map_is_vegas_adaptive_map(adapted):
    layer, edges, calls = adapted
    assert edges.shape == (3, 25) and 0 < calls <= 6000
    y = torch.rand(200, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x, ladj = layer.map(y)
    ref, jac = np.empty((200, 3)), np.empty(200)
    vegas.AdaptiveMap(edges).map(y.numpy(), ref, jac)
    np.testing.assert_allclose(x.numpy(), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ladj.numpy(), np.log(jac), rtol=0, atol=1e-10)
    # the grid is adapted: the camel's peaks at 1/3 and 2/3 get narrow increments
    widths = np.diff(edges, axis=1)
    assert widths.min() < 0.6 / 24 and widths.max() > 2 / 24


def test_log_det_against_autograd_and_finite_differences(adapted):
    layer, _, _ = adapted
    y = torch.rand(20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    _, ladj = layer.map(y)
    for k in range(len(y)):
        jac = torch.autograd.functional.jacobian(lambda v: layer.map(v[None])[0][0], y[k])
        assert float(torch.linalg.slogdet(jac)[1]) == pytest.approx(float(ladj[k]), abs=1e-9)
        h = 1e-7  # central differences inside one increment (none of the points is within h of an edge)
        fd = torch.stack([(layer.map((y[k] + h * e)[None])[0][0] - layer.map((y[k] - h * e)[None])[0][0]) / (2 * h)
                          for e in torch.eye(3, dtype=torch.float64)], 1)
        assert float(torch.linalg.slogdet(fd)[1]) == pytest.approx(float(ladj[k]), abs=1e-5)


def test_the_layer_is_invertible_and_its_directions_agree(adapted):
    layer, _, _ = adapted
    x = torch.rand(500, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y, ladj = layer.invmap(x)
    back, ladj_back = layer.map(y)
    torch.testing.assert_close(back, x, atol=1e-12, rtol=0)
    torch.testing.assert_close(ladj + ladj_back, torch.zeros(500, dtype=torch.float64), atol=1e-12, rtol=0)
    # the Transform directions in the flow's centred coordinates: forward x -> y, inverse y -> x
    z, l_fwd = layer(x - 0.5)
    u, l_inv = layer.inverse(z)
    torch.testing.assert_close(u, x - 0.5, atol=1e-12, rtol=0)
    torch.testing.assert_close(l_fwd, ladj)
    assert ((y >= 0) & (y <= 1)).all()


def test_adapting_is_reproducible_leaves_numpys_global_rng_alone_and_bad_grids_are_refused():
    np.random.seed(5)
    before = np.random.get_state()[1].copy()
    f = lambda x: np.exp(-((x - 0.5) ** 2).sum(1) / 0.02)  # noqa: E731
    a, b = (adapt_grid(f, 2, 2000, iterations=4, bins=8, seed=7) for _ in range(2))
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert not np.array_equal(a[0], adapt_grid(f, 2, 2000, iterations=4, bins=8, seed=8)[0])
    assert np.array_equal(np.random.get_state()[1], before)
    layer = VegasGrid(2, 4)
    with pytest.raises(ConfigError, match="increase strictly"):
        layer.set_edges(np.array([[0, 0.5, 0.4, 0.8, 1.0], [0, 0.25, 0.5, 0.75, 1.0]]))
    with pytest.raises(ConfigError, match="shape"):
        layer.set_edges(np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="vegas_calls"):
        HypercubeFlow("camel", 2, vegas_calls=5, vegas_iterations=10)


def test_a_flow_on_a_vegas_grid_is_a_normalised_density_that_starts_as_vegas():
    model = HypercubeFlow("camel", 2, transforms=2, hidden=(8,), bins=6, vegas_calls=4000, vegas_bins=16,
                          vegas_iterations=4)
    model.fit(None, steps_per_epoch=3, epochs=1, batch_size=128, seed=0, quiet=True)
    assert int(model.vegas_calls_) > 0 and model.calls_ == int(model.vegas_calls_) + 128 + 3 * 128
    edges = model.grid.edges.clone()
    assert not torch.allclose(edges, torch.linspace(0, 1, 17, dtype=torch.float64).expand(2, -1))
    assert_normalised_and_draws_carry_it(model, n=600, draws=500, tolerance=5e-3)
    # the splines start as the identity: an untrained flow on the grid is the VEGAS density 1/|det ∂x/∂y|
    fresh = HypercubeFlow("camel", 2, transforms=2, hidden=(8,), bins=6, vegas_calls=4000, vegas_bins=16,
                          vegas_iterations=4)
    fresh.grid.set_edges(edges)
    x = torch.rand(100, 2, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(fresh.log_prob_internal(x.float()).double(), fresh.grid.invmap(x)[1],
                                   atol=1e-4, rtol=1e-4)
