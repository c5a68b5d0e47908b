"""The closed-form gradient path (``algos/closed_form.py``) against autograd on the plain losses: the same loss,
metrics and ``.grad`` to 1e-6, and the same trained parameters through ``TD3Family``'s updates."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from tensordict import TensorDict

from parallel_rl.algos import ALGORITHMS, Context, closed_form
from parallel_rl.algos.common import replica, td3_actor_loss, td3_critic_loss
from parallel_rl.config import AgentConfig
from parallel_rl.envs import EnvSpec
from parallel_rl.nets import Actor, EnsembleCritic

OBS, ACT, B = 5, 3, 48


def _batch(seed: int, critic_obs: int = 0) -> TensorDict:
    g = torch.Generator().manual_seed(seed)
    out = {
        "obs": torch.randn(B, OBS, generator=g),
        "action": torch.rand(B, ACT, generator=g) * 2 - 1,
        "reward": torch.randn(B, generator=g) * 3,
        "next_obs": torch.randn(B, OBS, generator=g),
        "discount": 0.99 * (torch.rand(B, generator=g) > 0.2).float(),
    }
    if critic_obs:
        out["critic_obs"] = torch.randn(B, critic_obs, generator=g)
        out["next_critic_obs"] = torch.randn(B, critic_obs, generator=g)
    return TensorDict(out, batch_size=[B])


def _nets(atoms: int, members: int = 2, critic_obs: int = 0, seed: int = 0):
    torch.manual_seed(seed)
    critic = EnsembleCritic(critic_obs or OBS, ACT, (32, 16), num_atoms=atoms, v_min=-5.0, v_max=5.0, members=members)
    actor = Actor(OBS, ACT, (24, 16), init_scale=0.3)
    return critic, replica(critic), actor


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "atoms,members,cdq_pick,critic_obs",
    [(51, 2, "projected", 0), (51, 2, "unprojected", 0), (21, 3, "projected", 7), (1, 2, "projected", 0)],
)
def test_critic_grads_match_autograd(atoms, members, cdq_pick, critic_obs):
    critic, target, actor = _nets(atoms, members, critic_obs)
    with torch.no_grad():  # a target that differs from the critic, as after training
        for p in target.parameters():
            p.add_(0.05 * torch.randn_like(p))
    hp = SimpleNamespace(target_noise=0.2, target_noise_clip=0.5, cdq_pick=cdq_pick)
    batch = _batch(1, critic_obs)
    fast = copy.deepcopy(critic)

    torch.manual_seed(5)  # the target-action noise: both paths draw the same numbers
    loss, metrics = td3_critic_loss(critic, target, actor, batch, hp)
    loss.backward()
    torch.manual_seed(5)
    fast_loss, fast_metrics = closed_form.td3_critic_grads(fast, target, actor, batch, hp)

    _close(fast_loss, loss.detach())
    for key in ("critic_loss", "q_mean", "q_max"):
        _close(fast_metrics[key], metrics[key])
    for (name, p), q in zip(critic.named_parameters(), fast.parameters()):
        assert q.grad is not None, name
        _close(q.grad, p.grad)
    assert all(p.grad is None for p in target.parameters()) and all(p.grad is None for p in actor.parameters())


def test_critic_grads_accumulate_like_backward():
    """An existing ``.grad`` is added to, as a second ``backward`` would."""
    critic, target, actor = _nets(51)
    hp = SimpleNamespace(target_noise=0.0, target_noise_clip=0.5, cdq_pick="projected")
    batch, fast = _batch(2), copy.deepcopy(critic)
    for _ in range(2):
        td3_critic_loss(critic, target, actor, batch, hp)[0].backward()
        closed_form.td3_critic_grads(fast, target, actor, batch, hp)
    for p, q in zip(critic.parameters(), fast.parameters()):
        _close(q.grad, p.grad)


@pytest.mark.parametrize(
    "atoms,reduction,action_l2,critic_obs",
    [(51, "min", 0.0, 0), (51, "mean", 0.0, 0), (51, "min", 0.3, 6), (1, "min", 0.0, 0), (1, "mean", 0.1, 0)],
)
def test_actor_grads_match_autograd(atoms, reduction, action_l2, critic_obs):
    critic, _, actor = _nets(atoms, critic_obs=critic_obs)
    critic.requires_grad_(False)  # the P-learner's critic is a frozen replica
    batch, fast = _batch(3, critic_obs), copy.deepcopy(actor)

    loss, metrics = td3_actor_loss(actor, critic, batch, reduction, action_l2)
    loss.backward()
    fast_loss, fast_metrics = closed_form.td3_actor_grads(fast, critic, batch, reduction, action_l2)

    _close(fast_loss, loss.detach())
    for key in ("actor_loss", "action_abs"):
        _close(fast_metrics[key], metrics[key])
    for (name, p), q in zip(actor.named_parameters(), fast.parameters()):
        assert q.grad is not None, name
        _close(q.grad, p.grad)


def test_min_reduction_routes_each_sample_to_the_member_it_picked():
    """By hand: with the 'min' reduction, only the picked member's output carries gradient for a sample; a member
    that is never the minimum contributes none. Check it on a critic whose second member is shifted far up."""
    critic, _, actor = _nets(1)
    with torch.no_grad():
        critic.net[-1].bias[1].add_(100.0)  # member 1's Q is always larger: never picked
    critic.requires_grad_(False)
    batch = _batch(4)
    fast = copy.deepcopy(actor)
    closed_form.td3_actor_grads(fast, critic, batch, "min", 0.0)
    # The same gradient as the actor trained against member 0 alone.
    single = EnsembleCritic(OBS, ACT, (32, 16), num_atoms=1, members=1)
    with torch.no_grad():
        for s, c in zip(single.parameters(), critic.parameters()):
            s.copy_(c[:1])
    single.requires_grad_(False)
    alone = copy.deepcopy(actor)
    closed_form.td3_actor_grads(alone, single, batch, "min", 0.0)
    for p, q in zip(fast.parameters(), alone.parameters()):
        _close(p.grad, q.grad)


def test_applies_only_to_plain_relu_networks():
    critic, target, actor = _nets(51)
    assert closed_form.critic_applies(critic, target) and closed_form.actor_applies(actor, critic)
    assert not closed_form.critic_applies(EnsembleCritic(OBS, ACT, (16,), act="elu"))
    assert not closed_form.critic_applies(EnsembleCritic(OBS, ACT, (16,), norm="layer"))
    assert not closed_form.actor_applies(Actor(OBS, ACT, (16,), act="tanh"), critic)
    assert not closed_form.actor_applies(actor, EnsembleCritic(OBS, ACT, (16,), norm="layer"))
    assert not closed_form.critic_applies(EnsembleCritic(OBS, ACT, (16,)).to("meta"))  # the fused kernel is CPU-only


def _algo(name: str, fast: bool, **hp):
    spec = EnvSpec(obs_dim=OBS, act_dim=ACT, num_envs=4, device=torch.device("cpu"), action_low=(-1.0,) * ACT,
                   action_high=(1.0,) * ACT, max_episode_steps=10)  # fmt: skip
    agent = AgentConfig(**{"critic_hidden": (32, 16), "actor_hidden": (24, 16), "num_atoms": 51, "v_min": -5.0,
                           "v_max": 5.0, **hp})  # fmt: skip
    torch.manual_seed(0)
    return ALGORITHMS[name](agent, Context(spec, torch.device("cpu"), seed=0, closed_form=fast))


@pytest.mark.parametrize("name,hp", [("fasttd3", {}), ("pql", {"max_grad_norm": 0.5}), ("fasttd3", {"num_atoms": 1})])
def test_td3_family_updates_match_autograd(name, hp):
    """A few critic and actor updates through ``update_critic`` / ``update_actor`` (normalization, clipping, AdamW,
    soft target update) give the same parameters with and without the closed-form path."""
    plain, fast = _algo(name, False, **hp), _algo(name, True, **hp)
    assert fast._closed_form_critic and fast._closed_form_actor and not plain._closed_form_critic
    for step in range(4):
        batch = _batch(10 + step)
        for algo in (plain, fast):
            torch.manual_seed(step)
            algo.update_critic(batch)
            algo.update_actor(batch)
    for net in ("critic", "critic_target", "policy"):
        for p, q in zip(getattr(plain, net).parameters(), getattr(fast, net).parameters()):
            torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-5)


def test_algorithms_with_their_own_actor_loss_keep_autograd():
    """DEA defines its own actor loss: the closed form (written for td3_actor_loss) must not stand in for it."""
    dea = _algo("dea", True)
    assert not dea._closed_form_actor


def test_critic_loss_with_logits_spread_wider_than_exp_underflows():
    """With logits spread over hundreds (a trained C51 critic's, beyond where float32 exp underflows) the
    closed-form critic loss and gradients, which take their probabilities from softmax, still equal autograd's."""
    critic, target, actor = _nets(51)
    with torch.no_grad():
        critic.net[-1].weight.mul_(1000.0)  # output logits spread over hundreds
    hp = SimpleNamespace(target_noise=0.0, target_noise_clip=0.5, cdq_pick="projected")
    batch, fast = _batch(4), copy.deepcopy(critic)
    loss, _ = td3_critic_loss(critic, target, actor, batch, hp)
    loss.backward()
    fast_loss, _ = closed_form.td3_critic_grads(fast, target, actor, batch, hp)
    with torch.no_grad():
        out = critic(batch["obs"], batch["action"])
    assert (out.amax(-1) - out.amin(-1)).min() > 100  # beyond exp's float32 range (-88): the case this is for
    _close(fast_loss, loss.detach())
    for p, q in zip(critic.parameters(), fast.parameters()):
        _close(q.grad, p.grad)
