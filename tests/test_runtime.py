"""Runtime pieces: published copies are separate and refreshed only on publish; exploration schedules."""

from __future__ import annotations

import torch
from tensordict import TensorDict

from parallel_rl.algos import ALGORITHMS, Algorithm, Context
from parallel_rl.config import AgentConfig
from parallel_rl.envs import EnvSpec
from parallel_rl.nets import Actor, RunningNorm
from parallel_rl.runtime import Channel, Lane


def make_algo(name: str, hp: AgentConfig, num_envs: int = 4, obs_dim: int = 2) -> Algorithm:
    """An algorithm built standalone (no runtime), for unit tests of its pieces."""
    spec = EnvSpec(obs_dim=obs_dim, act_dim=1, num_envs=num_envs, device=torch.device("cpu"), action_low=(-1.0,),
                   action_high=(1.0,), max_episode_steps=10)  # fmt: skip
    return ALGORITHMS[name](hp, Context(spec, torch.device("cpu"), seed=0))


def _channel(module):
    lane = Lane(torch.device("cpu"), "test")
    return Channel.for_module(module, lane, lane)


def test_published_copy_changes_only_on_publish_and_pull():
    torch.manual_seed(0)
    actor = Actor(3, 1, (8,))
    channel = _channel(actor)
    before = [p.clone() for p in channel.module.parameters()]
    with torch.no_grad():
        for p in actor.parameters():
            p.add_(1.0)
    channel.pull()
    assert all(torch.equal(a, b) for a, b in zip(channel.module.parameters(), before))  # reader unaffected
    channel.publish()
    assert all(torch.equal(a, b) for a, b in zip(channel.module.parameters(), before))  # not pulled yet
    assert channel.pull()
    assert all(torch.equal(a, b) for a, b in zip(channel.module.parameters(), actor.parameters()))
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(channel.module.parameters(), actor.parameters()))
    assert not any(p.requires_grad for p in channel.module.parameters())


def test_published_normalizer_includes_statistics():
    norm = RunningNorm(2)
    channel = _channel(norm)
    norm.update(torch.tensor([[1.0, 2.0], [3.0, 6.0]]))
    channel.publish()
    channel.pull()
    assert torch.equal(channel.module.mean, norm.mean) and channel.module.count.item() == 2


def test_fasttd3_redraws_std_only_at_episode_end():
    algo = make_algo("fasttd3", AgentConfig(std_min=0.1, std_max=0.3), num_envs=1000)
    std = algo.initial_noise_std(1000)
    assert std.min() >= 0.1 and std.max() <= 0.3 and std.std() > 0.05  # spread over [min, max]
    done = torch.zeros(1000, dtype=torch.bool)
    done[:10] = True
    new = algo.noise_std_after_step(std, done)
    assert torch.equal(new[10:], std[10:])
    assert not torch.equal(new[:10], std[:10])
    assert new.min() >= 0.1 and new.max() <= 0.3


def test_pql_mixed_exploration_is_fixed_linspace():
    algo = make_algo("pql", AgentConfig(std_min=0.05, std_max=0.8), num_envs=4)
    std = algo.initial_noise_std(4)
    assert torch.allclose(std, torch.tensor([0.05, 0.30, 0.55, 0.80]))
    assert torch.equal(algo.noise_std_after_step(std, torch.ones(4, dtype=torch.bool)), std)


def test_actor_losses_reduce_over_critics_as_documented():
    """FastTD3 with --actor-q-reduction mean maximizes the mean over critics, PQL the minimum."""
    torch.manual_seed(0)

    class TwoQ(torch.nn.Module):
        def forward(self, obs, action):
            return torch.stack([action, action * 0 + 5.0])  # member 0: Q = a, member 1: Q = 5

        def q_values(self, out):
            return out.squeeze(-1)

    actor = Actor(2, 1, (8,))
    batch = {"obs": torch.randn(16, 2)}
    a = actor(batch["obs"]).detach()
    loss_td3, _ = make_algo("fasttd3", AgentConfig(actor_q_reduction="mean")).actor_loss(actor, TwoQ(), batch)
    loss_pql, _ = make_algo("pql", AgentConfig()).actor_loss(actor, TwoQ(), batch)
    assert torch.allclose(loss_td3, -((a + 5) / 2).mean())
    assert torch.allclose(loss_pql, -torch.minimum(a, torch.full_like(a, 5.0)).mean())


class PendulumWithPrivilegedCritic:
    """Pendulum whose critic additionally sees the raw state (an asymmetric actor-critic env)."""

    def __init__(self, num_envs, device, seed):
        import dataclasses

        from tasks.pendulum import Pendulum

        self.inner = Pendulum(num_envs, device, seed)
        self.spec = dataclasses.replace(self.inner.spec, critic_obs_dim=5)

    def _with_critic(self, td):
        td["critic_obs"] = torch.cat([td["obs"], self.inner.state.float()], -1)
        return td

    def reset(self, seed=None):
        return self._with_critic(self.inner.reset(seed))

    def step(self, action):
        out = self._with_critic(self.inner.step(action))
        out["final_critic_obs"] = torch.cat([out["final_obs"], torch.zeros(out.shape[0], 2)], -1)
        return out


def test_trainer_with_asymmetric_critic_observations(tmp_path):
    from parallel_rl.runtime import Trainer
    from tests.conftest import tiny_config

    trainer = Trainer(tiny_config(total_env_steps=4 * 30), PendulumWithPrivilegedCritic)
    summary = trainer.run(tmp_path)
    assert trainer.algo.critic.net[0].weight.shape[1] == 5 + 1  # critic input: critic_obs + action
    assert trainer.buffer.critic_obs is not None and trainer.algo.critic_normalizer.count.item() == 4 * 30
    assert summary["critic_updates"] > 0


def test_periodic_evaluation_rows_and_wall_clock_limit(tmp_path):
    import csv

    import tasks
    from parallel_rl.runtime import Trainer
    from tests.conftest import tiny_config

    Trainer(tiny_config(total_env_steps=4 * 50, eval_every=4 * 20), tasks.env_factory("pendulum")).run(tmp_path / "a")
    rows = [r for r in csv.DictReader((tmp_path / "a" / "metrics.csv").open()) if r.get("eval_return")]
    assert [int(r["env_step"]) for r in rows] == [80, 160, 200]
    summary = Trainer(tiny_config(total_env_steps=4 * 10**6, max_wall_seconds=1.0),
                      tasks.env_factory("pendulum")).run(tmp_path / "b")  # fmt: skip
    assert summary["stopped_by_time_limit"] and summary["env_steps"] < 4 * 10**6
    assert (tmp_path / "b" / "checkpoints" / "final.pt").exists()


def test_config_algos_and_registry_agree():
    """--algo's Literal (config.ALGOS) and the registry name the same algorithms, each a complete Algorithm."""
    from parallel_rl.config import ALGOS

    assert set(ALGOS) == set(ALGORITHMS) and len(ALGOS) >= 2
    for name, cls in ALGORITHMS.items():
        assert cls.name == name and issubclass(cls, Algorithm) and not cls.__abstractmethods__


def test_metric_accumulator_averages_flat_and_nested_metrics():
    """``pop`` gives the mean of every added metric: flat TensorDicts summed by the foreach path, a different key
    order or a nested TensorDict by TensorDict.add_, and the sums restart from zero after a pop."""
    from parallel_rl.runtime.components import MetricAccumulator

    acc = MetricAccumulator(Lane(torch.device("cpu"), "vlearner"))
    for i in range(3):
        acc.add(TensorDict({"loss": torch.tensor(float(i)), "q": torch.tensor(10.0 * i)}))
    acc.add(TensorDict({"q": torch.tensor(30.0), "loss": torch.tensor(3.0)}))  # other order: the TensorDict path
    assert acc.pop() == {"loss": 1.5, "q": 15.0}
    acc.add(TensorDict({"loss": torch.tensor(4.0), "q": torch.tensor(2.0)}))
    assert acc.pop() == {"loss": 4.0, "q": 2.0}
    nested = MetricAccumulator(Lane(torch.device("cpu"), "vlearner"))
    for i in range(2):
        nested.add(TensorDict({"a": torch.tensor(float(i)), "sub": {"b": torch.tensor(2.0 * i)}}))
    assert nested._flat is None and nested.total["sub", "b"].item() == 2.0 and nested.n == 2
