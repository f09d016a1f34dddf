"""One check of a hypercube sampler on the unit square, shared by the tests of its options."""

import pytest
import torch


def assert_normalised_and_draws_carry_it(model, n: int = 400, draws: int = 300, tolerance: float = 3e-3):
    """exp(log_prob_internal) integrates to 1 on [0, 1]² (midpoint rule on n × n cells), and the log q that
    ``sample_internal`` returns with its draws is the density's at those draws. Returns the draws (x, log q)."""
    with torch.no_grad():
        t = (torch.arange(n, dtype=torch.float32) + 0.5) / n
        square = torch.stack(torch.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)
        assert float(model.log_prob_internal(square).exp().mean()) == pytest.approx(1.0, abs=tolerance)
        x, log_q = model.sample_internal(draws)
        torch.testing.assert_close(model.log_prob_internal(x), log_q, atol=1e-4, rtol=1e-4)
    return x, log_q
