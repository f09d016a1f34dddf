"""adversarial: a generator step through the :func:`frozen` critic (style-gan, stack-gan and big-gan opt in) gives
the same losses and generator gradients as through the critic as it is, and builds no critic weight gradients."""

import contextlib
import copy

import numpy as np
import pytest
import torch

from hepgen.gans import stackgan, stylegan
from hepgen.gans.adversarial import frozen
from hepgen.gans.biggan import BigGAN
from hepgen.gans.stackgan import StackGAN
from hepgen.gans.stylegan import StyleGAN


def _setup(family):
    """(model, batch, generator players) of a small model of ``family`` with a conditioned batch of 16."""
    torch.manual_seed(0)
    x, energy = torch.randn(16, 8, 8), torch.rand(16, 1) + 1.0
    if family == "style-gan":
        return StyleGAN((8, 8), context=1, latent=4, style=8, mapping_layers=2, channels=8, min_channels=4), \
            {"x": x, "context": energy}, ["generator"]
    if family == "stack-gan":
        return StackGAN((8, 8), context=1, channels=(4, 8), refine_channels=(4,)), {"x": x, "context": energy}, \
            ["generator_1", "generator_2"]
    model = BigGAN((8, 8), context=2, class_column="context_1", latent=6, channels=(4, 8), width=8, embed=3,
                   classes=[11.0, 22.0])
    ptype = torch.as_tensor(np.resize([11.0, 22.0], 16), dtype=torch.float32)[:, None]
    model.check_context(torch.cat([energy, ptype], 1).numpy(), None, "test")
    return model, {"x": x, "context": torch.cat([energy, ptype], 1)}, ["generator"]


def _step(model, batch, player):
    torch.manual_seed(3)
    loss = model.player_step(player, batch)["loss"]
    loss.sum().backward()
    grads = {n: p.grad.clone() for n, p in model.generator.named_parameters() if p.grad is not None}
    critic = {n: p.grad for n, p in model.critic.named_parameters()}
    if isinstance(model, StackGAN):
        critic.update({f"coarse.{n}": p.grad for n, p in model.critic_coarse.named_parameters()})
    return loss.detach(), grads, critic


@pytest.mark.parametrize("family", ["style-gan", "stack-gan", "big-gan"])
def test_generator_step_through_the_frozen_critic_keeps_losses_and_generator_gradients(family, monkeypatch):
    model, batch, players = _setup(family)
    model.eval()  # no power-iteration or batch-norm statistics moving between the two runs
    plain_model = copy.deepcopy(model)  # path length's running mean and the counters move: a copy for the plain run
    for player in players:
        loss, grads, critic = _step(model, batch, player)
        assert grads and all(g is None for g in critic.values())  # no critic weight gradients were built
        assert all(p.requires_grad for p in model.critic.parameters())  # and the critic trains again afterwards
        with monkeypatch.context() as m:  # the critic as it is: its weights in the graph
            m.setattr(stylegan, "frozen", contextlib.nullcontext)
            m.setattr(stackgan, "frozen", contextlib.nullcontext)
            m.setattr(BigGAN, "freeze_critic_in_generator_step", False)
            plain_loss, plain_grads, plain_critic = _step(plain_model, batch, player)
        assert any(g is not None for g in plain_critic.values())
        torch.testing.assert_close(loss, plain_loss, rtol=0, atol=0)
        assert grads.keys() == plain_grads.keys()
        for name in grads:
            torch.testing.assert_close(grads[name], plain_grads[name], rtol=1e-6, atol=1e-7)
        model.zero_grad(set_to_none=True)
        plain_model.zero_grad(set_to_none=True)


def test_frozen_restores_each_flag_even_after_an_error():
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    net[1].bias.requires_grad_(False)
    with pytest.raises(RuntimeError), frozen(net):
        assert not any(p.requires_grad for p in net.parameters())
        raise RuntimeError("inside")
    assert [p.requires_grad for p in net.parameters()] == [True, True, True, False]
