"""FastTD3 against its reference (younggyoseo/FastTD3: ``train.py`` update_main/update_pol, ``fast_td3.py``,
``fast_td3_utils.py``): one critic and one actor update computed here from the reference's equations on a fixed batch
and fixed weights equal ours; the actor's reduction over critics; the TD3 loss against torchrl's ``TD3Loss`` where it
computes the same quantity (scalar critic); per-env sampling and the reuse of the critic's batch by the P-learner."""

from __future__ import annotations

import copy

import pytest
import torch
from tensordict import TensorDict
from torch import nn

import tasks
from parallel_rl.algos import ALGORITHMS, Context
from parallel_rl.buffer import ReplayBuffer
from parallel_rl.config import AgentConfig
from parallel_rl.envs import EnvSpec
from parallel_rl.runtime import Trainer
from tests.conftest import tiny_config

OBS, ACT, B = 3, 2, 64


def _algo(hp: AgentConfig, name: str = "fasttd3"):
    spec = EnvSpec(obs_dim=OBS, act_dim=ACT, num_envs=4, device=torch.device("cpu"), action_low=(-1.0,) * ACT,
                   action_high=(1.0,) * ACT, max_episode_steps=10)  # fmt: skip
    return ALGORITHMS[name](hp, Context(spec, torch.device("cpu"), seed=0))


def _refresh_replicas(algo) -> None:
    """What the runtime's channels do between roles: every replica takes its source's current values."""
    for item in algo.shared():
        TensorDict.from_module(item.replica).data.update_(TensorDict.from_module(item.source).data)


def _batch(seed: int = 1) -> TensorDict:
    g = torch.Generator().manual_seed(seed)
    return TensorDict({
        "obs": torch.randn(B, OBS, generator=g) * 3 + 1,
        "action": torch.rand(B, ACT, generator=g) * 2.4 - 1.2,  # stored unclipped, as the reference stores them
        "reward": torch.randn(B, generator=g) * 2,
        "next_obs": torch.randn(B, OBS, generator=g) * 3 + 1,
        "discount": 0.99 * (torch.rand(B, generator=g) > 0.1).float(),
    }, batch_size=[B])  # fmt: skip


# ---- the reference's rules, written from its equations ---------------------------------------------------------
def ref_normalize(x, mean, var):
    return (x - mean) / (var.sqrt() + 0.01)  # EmpiricalNormalization: (x - mean) / (std + eps), eps = 0.01


def ref_projection(next_logits, reward, bootstrap_discount, support):
    """DistributionalQNetwork.projection: floor/ceil split with the l == u fix, index_add over the batch."""
    v_min, v_max, n = support[0], support[-1], support.numel()
    delta = (v_max - v_min) / (n - 1)
    target_z = (reward.unsqueeze(1) + bootstrap_discount.unsqueeze(1) * support).clamp(v_min, v_max)
    b = (target_z - v_min) / delta
    lo, up = torch.floor(b).long(), torch.ceil(b).long()
    is_int = lo == up
    lo = torch.where(is_int & (lo > 0), lo - 1, lo)
    up = torch.where(is_int & (lo == 0), up + 1, up)
    probs = torch.softmax(next_logits, dim=1)
    out = torch.zeros_like(probs)
    offset = (torch.arange(probs.shape[0]) * n).unsqueeze(1).expand_as(lo)
    out.view(-1).index_add_(0, (lo + offset).view(-1), (probs * (up.float() - b)).view(-1))
    out.view(-1).index_add_(0, (up + offset).view(-1), (probs * (b - lo.float())).view(-1))
    return out


def member(critic, i: int):
    """The reference's qnet i as a function (obs, act) -> logits, from our stacked ensemble's weights."""

    def forward(obs, act):
        x = torch.cat([obs, act], 1)
        layers = [m for m in critic.net if hasattr(m, "weight")]
        for k, layer in enumerate(layers):
            x = x @ layer.weight[i] + layer.bias[i]
            if k < len(layers) - 1:
                x = torch.relu(x)
        return x

    return forward


def test_one_critic_and_one_actor_update_match_the_reference_equations():
    # A narrow support: projections clamp, so the order of projecting and picking the member matters.
    hp = AgentConfig(critic_hidden=(32, 32), actor_hidden=(32, 32), num_atoms=11, v_min=-3.0, v_max=3.0,
                     target_noise=0.2, target_noise_clip=0.3, weight_decay=0.1, critic_lr=1e-3, actor_lr=1e-3,
                     tau=0.1)  # fmt: skip
    torch.manual_seed(0)
    algo = _algo(hp)
    g = torch.Generator().manual_seed(3)
    stats = torch.randn(300, OBS, generator=g) * 2 + 0.5
    algo.normalizer.update(stats)  # fixed statistics, shared with the learners' replicas
    _refresh_replicas(algo)
    batch = _batch()
    critic0, target0, actor0 = (copy.deepcopy(m) for m in (algo.critic, algo.critic_target, algo.policy))

    # reference critic update (update_main + soft_update)
    mean, var = algo.normalizer.mean, algo.normalizer.var
    obs, next_obs = ref_normalize(batch["obs"], mean, var), ref_normalize(batch["next_obs"], mean, var)
    torch.manual_seed(42)
    clipped_noise = torch.randn_like(batch["action"]).mul(hp.target_noise).clamp(-hp.target_noise_clip,
                                                                                  hp.target_noise_clip)  # fmt: skip
    with torch.no_grad():
        next_action = (actor0(next_obs) + clipped_noise).clamp(-1.0, 1.0)
        support = critic0.support
        projected = [ref_projection(member(target0, i)(next_obs, next_action), batch["reward"], batch["discount"],
                                    support) for i in range(2)]  # fmt: skip
        values = [(p * support).sum(1) for p in projected]
        target = torch.where(values[0].unsqueeze(1) < values[1].unsqueeze(1), projected[0], projected[1])
    critic_ref = copy.deepcopy(critic0)
    opt = torch.optim.AdamW(critic_ref.parameters(), lr=hp.critic_lr, weight_decay=hp.weight_decay)
    loss = sum(-(target * torch.log_softmax(member(critic_ref, i)(obs, batch["action"]), 1)).sum(1).mean()
               for i in range(2))  # fmt: skip
    opt.zero_grad()
    loss.backward()
    opt.step()
    target_ref = copy.deepcopy(target0)
    with torch.no_grad():
        for t, s in zip(target_ref.parameters(), critic_ref.parameters()):
            t.mul_(1 - hp.tau).add_(s, alpha=hp.tau)

    # ours
    torch.manual_seed(42)
    metrics = algo.update_critic(batch)
    assert torch.allclose(metrics["critic_loss"], loss.detach(), atol=1e-5)
    for ours, ref in zip(algo.critic.parameters(), critic_ref.parameters()):
        assert torch.allclose(ours, ref, atol=1e-6)
    for ours, ref in zip(algo.critic_target.parameters(), target_ref.parameters()):
        assert torch.allclose(ours, ref, atol=1e-6)
    assert not torch.allclose(algo.critic.net[0].weight, critic0.net[0].weight)  # a step was taken

    # reference actor update (update_pol, use_cdq=True) on the same batch, against the updated critic
    _refresh_replicas(algo)  # the V-learner published the critic
    actor_ref = copy.deepcopy(actor0)
    opt = torch.optim.AdamW(actor_ref.parameters(), lr=hp.actor_lr, weight_decay=hp.weight_decay)
    with torch.no_grad():
        frozen = copy.deepcopy(critic_ref)
    act = actor_ref(obs)
    q = [(torch.softmax(member(frozen, i)(obs, act), 1) * support).sum(1) for i in range(2)]
    actor_loss = -torch.minimum(q[0], q[1]).mean()
    opt.zero_grad()
    actor_loss.backward()
    opt.step()
    metrics = algo.update_actor(batch)
    assert torch.allclose(metrics["actor_loss"], actor_loss.detach(), atol=1e-5)
    for ours, ref in zip(algo.policy.parameters(), actor_ref.parameters()):
        assert torch.allclose(ours, ref, atol=1e-6)


def test_actor_output_layer_starts_small_and_exploration_is_stored_unclipped():
    algo = _algo(AgentConfig(actor_hidden=(16,), critic_hidden=(16,), std_min=0.5, std_max=0.9))
    last = algo.policy.net[-1]
    assert torch.equal(last.bias, torch.zeros_like(last.bias)) and 0.005 < last.weight.std() < 0.02
    obs = TensorDict({"obs": torch.randn(4, OBS)}, batch_size=[4])
    actions = torch.cat([algo.act(obs, explore=True) for _ in range(50)])
    assert actions.abs().max() > 1.0  # mean + noise, not clamped: the env clips
    clipped = _algo(AgentConfig(actor_hidden=(16,), critic_hidden=(16,), std_min=0.5, std_max=0.9,
                                clip_stored_actions=True))  # fmt: skip
    assert torch.cat([clipped.act(obs, explore=True) for _ in range(50)]).abs().max() <= 1.0


class TwoQ(nn.Module):
    """Member 0: Q = a, member 1: Q = 5 (scalar critic outputs)."""

    def forward(self, obs, action):
        return torch.stack([action, action * 0 + 5.0])

    def q_values(self, out):
        return out.squeeze(-1)


@pytest.mark.parametrize("reduction", ["min", "mean"])
def test_fasttd3_actor_reduction_over_critics(reduction):
    algo = _algo(AgentConfig(actor_hidden=(8,), critic_hidden=(8,), actor_q_reduction=reduction), "fasttd3")
    batch = {"obs": torch.randn(16, OBS)}
    actor = nn.Sequential(nn.Linear(OBS, 1), nn.Tanh())
    a = actor(batch["obs"]).detach()
    loss, _ = algo.actor_loss(actor, TwoQ(), batch)
    expected = -torch.minimum(a, torch.full_like(a, 5.0)).mean() if reduction == "min" else -((a + 5) / 2).mean()
    assert torch.allclose(loss, expected)
    assert AgentConfig().actor_q_reduction == "min"  # the reference's default (use_cdq=True)


def test_td3_losses_equal_torchrl_td3loss_for_a_scalar_critic():
    torchrl = pytest.importorskip("torchrl")
    from tensordict.nn import TensorDictModule
    from torchrl.modules import ValueOperator
    from torchrl.objectives import TD3Loss

    hp = AgentConfig(critic_hidden=(16, 16), actor_hidden=(16,), num_atoms=1, target_noise=0.2,
                     target_noise_clip=0.5, normalize_obs=False)  # fmt: skip
    torch.manual_seed(0)
    algo = _algo(hp)
    with torch.no_grad():  # make the target differ from the critic
        for p in algo.critic_target.parameters():
            p.add_(0.05 * torch.randn_like(p))
    batch = _batch(seed=5)
    terminated = batch["discount"] == 0

    class QNet(nn.Module):
        def __init__(self):
            super().__init__()
            layers = [nn.Linear(OBS + ACT, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1)]
            self.net = nn.Sequential(*layers)

        def forward(self, obs, act):
            return self.net(torch.cat([obs, act], -1))

    actor = TensorDictModule(algo.policy, in_keys=["observation"], out_keys=["action"])
    qvalue = ValueOperator(QNet(), in_keys=["observation", "action"])
    loss = TD3Loss(actor, qvalue, bounds=(-1.0, 1.0), num_qvalue_nets=2, policy_noise=hp.target_noise,
                   noise_clip=hp.target_noise_clip, loss_function="l2", delay_actor=False)  # fmt: skip
    loss.make_value_estimator(gamma=0.99)

    def load(params, critic):  # our stacked [member, in, out] weights into torchrl's stacked nn.Linear params
        layers = [m for m in critic.net if hasattr(m, "weight")]
        for k, layer in zip((0, 2, 4), layers):
            params["module", "net", str(k), "weight"].data.copy_(layer.weight.detach().transpose(1, 2))
            params["module", "net", str(k), "bias"].data.copy_(layer.bias.detach().squeeze(1))

    load(loss.qvalue_network_params, algo.critic)
    load(loss.target_qvalue_network_params, algo.critic_target)
    data = TensorDict({
        "observation": batch["obs"], "action": batch["action"],
        "next": {"observation": batch["next_obs"], "reward": batch["reward"].unsqueeze(-1),
                 "done": terminated.unsqueeze(-1), "terminated": terminated.unsqueeze(-1)},
    }, batch_size=[B])  # fmt: skip
    torch.manual_seed(7)
    theirs, _ = loss.value_loss(data)
    torch.manual_seed(7)
    ours = algo.critic_loss(batch)
    assert torch.allclose(ours, theirs, atol=1e-5) and ours > 0
    # actor: torchrl maximizes the first critic; with one critic the reductions agree
    one = _algo(AgentConfig(critic_hidden=(16, 16), actor_hidden=(16,), num_atoms=1, num_critics=1,
                            normalize_obs=False))  # fmt: skip
    loss1 = TD3Loss(TensorDictModule(one.policy, in_keys=["observation"], out_keys=["action"]),
                    ValueOperator(QNet(), in_keys=["observation", "action"]), bounds=(-1.0, 1.0), num_qvalue_nets=1,
                    loss_function="l2", delay_actor=False)  # fmt: skip
    load(loss1.qvalue_network_params, one.critic)
    theirs_actor, _ = loss1.actor_loss(data)
    ours_actor, _ = one.actor_loss(one.policy, one.critic, batch)
    assert torch.allclose(ours_actor, theirs_actor, atol=1e-6)
    assert torchrl.__version__


def test_per_env_sampling_takes_the_same_number_of_rows_from_every_env():
    buf = ReplayBuffer(4, 2, 1, 4 * 50, sampling="per_env")
    for t in range(30):
        buf.extend(TensorDict({"obs": torch.full((4, 2), float(t)) + torch.arange(4.0).unsqueeze(-1) * 1000,
                               "action": torch.zeros(4, 1), "reward": torch.zeros(4),
                               "terminated": torch.zeros(4, dtype=torch.bool),
                               "truncated": torch.zeros(4, dtype=torch.bool), "final_obs": torch.zeros(4, 2)},
                              batch_size=[4]))  # fmt: skip
    batch = buf.sample(21)  # 21 // 4 = 5 rows per env
    env_of_row = (batch["obs"][:, 0] // 1000).long()
    assert torch.equal(torch.bincount(env_of_row, minlength=4), torch.full((4,), 5))


@pytest.mark.parametrize("mode", ["sequential", "pipelined"])
def test_policy_updates_reuse_the_batch_of_the_critic_update_they_follow(mode):
    cfg = tiny_config(total_env_steps=4 * 30, schedule={"mode": mode, "utd": 2, "policy_ratio": 0.5})
    trainer = Trainer(cfg, tasks.env_factory("pendulum"))
    seen: dict[str, list[torch.Tensor]] = {"v": [], "p": []}
    for key, learner in (("v", trainer.vlearner), ("p", trainer.plearner)):
        fn = learner._update.fn

        def record(batch, fn=fn, key=key):
            seen[key].append(batch["obs"].clone())
            return fn(batch)

        learner._update.fn = record
    for _ in range(trainer.total_iterations):
        trainer.iteration()
    trainer.finish()
    trainer.runtime.close()
    assert len(seen["p"]) == len(seen["v"]) // 2 > 10
    for i, obs in enumerate(seen["p"]):  # policy update i follows critic update 2i + 1
        assert torch.equal(obs, seen["v"][2 * i + 1])
    assert not torch.equal(seen["v"][-2], seen["v"][-1])  # consecutive critic batches differ: not vacuous
