"""The per-member oneDNN products (``nets/onednn.py``) against the batched ``bmm`` stack they stand in for, and the
closed-form updates on that path against autograd (``test_closed_form``'s checks with ``MIN_ROWS`` lowered so the
small test batches take it)."""

from __future__ import annotations

import pytest
import test_closed_form as cf
import torch

from parallel_rl.nets import EnsembleCritic, onednn
from parallel_rl.nets.mlp import relu_stack_backward, relu_stack_forward

pytestmark = pytest.mark.skipif(not onednn.AVAILABLE, reason="this torch build has no oneDNN")


@pytest.fixture
def onednn_everywhere(monkeypatch):
    monkeypatch.setattr(onednn, "MIN_ROWS", 1)


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("members", [2, 3])
@pytest.mark.parametrize("needs_input", [False, True])
def test_members_forward_and_backward_equal_the_batched_stack(members, needs_input):
    g = torch.Generator().manual_seed(members)
    dims = [9, 32, 16, 7]
    params = []
    for a, b in zip(dims[:-1], dims[1:]):
        params += [torch.randn(members, a, b, generator=g) / a**0.5, torch.randn(members, 1, b, generator=g)]
    x = torch.randn(members, 40, dims[0], generator=g)
    grad = torch.randn(members, 40, dims[-1], generator=g)
    needs = [needs_input] + [True] * len(params)
    acts_ref, acts = [x], [x]
    _close(onednn.members_forward(x, params, acts), relu_stack_forward(x, params, acts_ref))
    assert [type(a) for a in acts[1:]] == [list, list]  # one tensor per member, no stacked copy
    ref = relu_stack_backward(grad, acts_ref, params[0::2], needs)
    got = onednn.members_backward(grad, acts, params[0::2], needs)
    for r, o in zip(ref, got):
        assert (r is None) == (o is None)
        if r is not None:
            _close(o, r)
    if needs_input:  # only the last columns of the input gradient (a critic's action part)
        cols = onednn.members_backward(grad, acts, params[0::2], needs, input_columns=3)[0]
        _close(cols, ref[0][..., -3:])
    frozen = [needs_input] + [False] * len(params)  # a frozen replica: nothing below the input gradient's need
    assert onednn.members_backward(grad, acts, params[0::2], frozen)[1:] == [None] * len(params)


def test_applies_from_min_rows_on_float32_cpu_input():
    rows = onednn.MIN_ROWS
    assert onednn.applies(torch.zeros(2, rows, 4)) and not onednn.applies(torch.zeros(2, rows - 1, 4))
    assert not onednn.applies(torch.zeros(2, rows, 4, dtype=torch.float64))


def test_ensemble_forward_without_graph_takes_the_members_path(onednn_everywhere):
    torch.manual_seed(0)
    critic = EnsembleCritic(5, 3, (16, 8), num_atoms=11)
    obs, act = torch.randn(20, 5), torch.rand(20, 3)
    with torch.no_grad():
        fast = critic(obs, act)
    onednn.MIN_ROWS = 10**9  # (monkeypatch restores it)
    with torch.no_grad():
        _close(fast, critic(obs, act))


@pytest.mark.parametrize("atoms,members,cdq_pick,critic_obs", [(51, 2, "projected", 0), (1, 3, "projected", 4)])
def test_closed_form_critic_on_the_members_path(onednn_everywhere, atoms, members, cdq_pick, critic_obs):
    cf.test_critic_grads_match_autograd(atoms, members, cdq_pick, critic_obs)


@pytest.mark.parametrize("atoms,reduction,action_l2,critic_obs", [(51, "min", 0.0, 0), (1, "mean", 0.1, 4)])
def test_closed_form_actor_on_the_members_path(onednn_everywhere, atoms, reduction, action_l2, critic_obs):
    cf.test_actor_grads_match_autograd(atoms, reduction, action_l2, critic_obs)


def test_td3_updates_on_the_members_path_match_autograd(onednn_everywhere):
    cf.test_td3_family_updates_match_autograd("fasttd3", {})
