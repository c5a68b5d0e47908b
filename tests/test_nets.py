"""The critic's fused CPU layers (bias + ReLU in one in-place pass, ReLU gradient masked in place) compute what the
plain modules compute: outputs and every gradient equal to 1e-6."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from parallel_rl.nets import EnsembleCritic
from parallel_rl.nets.mlp import EnsembleMLP


@pytest.mark.parametrize("act, num_atoms", [("relu", 101), ("relu", 1), ("elu", 11)])
def test_fused_critic_matches_plain_layers(act, num_atoms):
    torch.manual_seed(0)
    fused = EnsembleCritic(5, 2, (32, 24, 16), num_atoms, -3.0, 3.0, members=3, act=act)
    assert isinstance(fused.net, EnsembleMLP)
    plain = copy.deepcopy(fused)
    plain.net = nn.Sequential(*list(plain.net))  # same modules, plain layer-by-layer forward
    obs, action = torch.randn(64, 5, requires_grad=True), torch.randn(64, 2, requires_grad=True)
    outs, grads = [], []
    for critic in (fused, plain):
        out = critic(obs, action)
        # A loss that reaches every ReLU with gradients of both signs.
        loss = (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum() + out.square().mean()
        grads.append(torch.autograd.grad(loss, [obs, action, *critic.parameters()]))
        outs.append(out.detach())
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=1e-6)
    for g_fused, g_plain in zip(*grads):
        torch.testing.assert_close(g_fused, g_plain, rtol=0, atol=1e-6)
    assert (outs[0] != 0).any() and all(g.abs().sum() > 0 for g in grads[0])


def test_fused_critic_with_frozen_weights_gives_the_action_gradient():
    """The actor's update differentiates a frozen critic with respect to the action only."""
    torch.manual_seed(1)
    fused = EnsembleCritic(4, 3, (16, 16), 7, members=2).requires_grad_(False)
    plain = copy.deepcopy(fused)
    plain.net = nn.Sequential(*list(plain.net))
    obs = torch.randn(32, 4)
    action = torch.randn(32, 3, requires_grad=True)
    (g_fused,) = torch.autograd.grad(fused.q_values(fused(obs, action)).mean(), action)
    (g_plain,) = torch.autograd.grad(plain.q_values(plain(obs, action)).mean(), action)
    torch.testing.assert_close(g_fused, g_plain, rtol=0, atol=1e-6)


def test_whole_relu_critic_node_matches_plain_layers_for_a_critic_update():
    """Data inputs (no input gradient: the backward stops at the first layer's weights) and a no-grad target
    forward, through the one-node path, against the plain modules."""
    from parallel_rl.nets.mlp import _ReLUStack

    torch.manual_seed(2)
    fused = EnsembleCritic(6, 2, (24, 16), 9, members=2)
    assert fused.net._relu_stack
    plain = copy.deepcopy(fused)
    plain.net = nn.Sequential(*list(plain.net))
    obs, action = torch.randn(40, 6), torch.randn(40, 2)
    out = fused(obs, action)
    assert type(out.grad_fn).__name__ == _ReLUStack.__name__ + "Backward"
    outs, grads = [], []
    for critic in (fused, plain):
        out = critic(obs, action)
        loss = (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum()
        grads.append(torch.autograd.grad(loss, list(critic.parameters())))
        with torch.no_grad():
            outs.append(critic(obs, action))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=1e-6)
    for g_fused, g_plain in zip(*grads):
        torch.testing.assert_close(g_fused, g_plain, rtol=0, atol=1e-6)
