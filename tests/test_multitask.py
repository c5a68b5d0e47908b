"""Multi-task runs: the env's layout (padding, masks, ids, splits), task conditioning of the networks, per-task
metrics and run-table rows on toy tasks with known returns, balanced sampling, transfer and export."""

from __future__ import annotations

import csv
import dataclasses
import json

import pytest
import torch

import tasks
from parallel_rl.buffer import ReplayBuffer
from parallel_rl.config import ConfigError, TrainConfig, replace_nested, validate
from parallel_rl.envs import TorchVecEnv, make_multitask_env, split_envs
from parallel_rl.io.checkpoint import load_checkpoint, load_multitask_policy
from parallel_rl.nets import NetSpec, RunningNorm
from parallel_rl.nets.task import make_actor, make_critic
from parallel_rl.runtime import Trainer
from parallel_rl.scaling.runtable import rows_from_run_dir
from tasks.pendulum import Pendulum
from tasks.reacher import Reacher3
from tests.conftest import tiny_config


class ToyTask(TorchVecEnv):
    """Reward ``reward`` every step whatever the action, episodes of ``length`` steps: every episode's return is
    ``reward * length``. Observations are random, so that the networks see varied inputs."""

    def __init__(self, num_envs, device="cpu", seed=0, obs_dim=2, act_dim=1, reward=1.0, length=5, high=1.0):
        self.reward = reward
        super().__init__(num_envs, obs_dim=obs_dim, act_dim=act_dim, action_low=-high, action_high=high,
                         max_episode_steps=length, device=device, seed=seed)  # fmt: skip

    def _sample_initial_state(self, n):
        return self.uniform(n, -1.0, 1.0, self.spec.obs_dim)

    def _observe(self, state):
        return state

    def _dynamics(self, state, action):
        nxt = state + 0.1 * self.uniform(state.shape[0], -1.0, 1.0, state.shape[1])
        reward = torch.full((state.shape[0],), self.reward)
        return nxt, reward, torch.zeros(state.shape[0], dtype=torch.bool)


TOYS = {"toy-a": {"obs_dim": 2, "act_dim": 1, "reward": 1.0, "length": 5, "high": 2.0},
        "toy-b": {"obs_dim": 4, "act_dim": 2, "reward": -2.0, "length": 3}}  # fmt: skip
KNOWN_RETURN = {"toy-a": 5.0, "toy-b": -6.0}


def toy_factory(names=("toy-a", "toy-b"), weights=(1.0, 1.0)):
    def make(num_envs, device, seed):
        counts = split_envs(num_envs, list(weights))
        envs = [ToyTask(n, device, seed + k, **TOYS[name]) for k, (name, n) in enumerate(zip(names, counts))]
        return make_multitask_env(envs, list(names))

    return make


def test_split_envs_by_weight():
    # 96 envs at weights 4:8:10 are 17.45, 34.9, 43.6: floors 17, 34, 43, the two largest remainders get one more.
    assert split_envs(96, [4, 8, 10]) == [17, 35, 44]
    assert split_envs(7, [1, 1, 1]) == [3, 2, 2]
    assert split_envs(3, [100, 1, 1]) == [1, 1, 1]  # every task keeps an env
    with pytest.raises(ValueError, match="cannot be split"):
        split_envs(2, [1, 1, 1])


def test_layout_ids_and_true_final_observations():
    env = make_multitask_env([ToyTask(2, seed=1, **TOYS["toy-a"]), ToyTask(3, seed=2, **TOYS["toy-b"])],
                             ["toy-a", "toy-b"])  # fmt: skip
    spec = env.spec
    assert (spec.obs_dim, spec.act_dim, spec.num_envs) == (4 + 1, 2, 5)
    assert spec.task_names == ("toy-a", "toy-b") and spec.task_dims == ((2, 1), (4, 2))
    assert spec.max_episode_steps == 5
    obs = env.reset(seed=0)["obs"]
    assert obs[:, -1].tolist() == [0, 0, 1, 1, 1]
    assert torch.all(obs[:2, 2:4] == 0)  # toy-a's padding
    for step in range(1, 6):
        out = env.step(torch.zeros(5, 2))
        assert out["task_id"].tolist() == [0, 0, 1, 1, 1]
        # Per-task time limits: toy-b ends every 3 steps, toy-a every 5; final_obs is the true last state.
        assert out["truncated"].tolist() == [step == 5] * 2 + [step == 3] * 3
        ended = out["truncated"]
        if ended.any():
            assert not torch.equal(out["final_obs"][ended, :-1], out["obs"][ended, :-1])
            assert torch.equal(out["final_obs"][:, -1], out["obs"][:, -1])


def test_masked_action_dims_do_not_change_the_env_step():
    """Two copies of pendulum + reacher3 with the same seeds: actions that differ only on pendulum's masked
    dimensions give identical steps; a difference on a real dimension does not."""
    envs = [make_multitask_env([Pendulum(3, seed=5), Reacher3(2, seed=6)], ["pendulum", "reacher3"]) for _ in "ab"]
    for e in envs:
        e.reset(seed=0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(30):
        action = 2 * torch.rand(5, 3, generator=gen) - 1
        garbage = action.clone()
        garbage[:3, 1:] = 2 * torch.rand(3, 2, generator=gen) - 1  # pendulum has one action dimension
        a, b = envs[0].step(action), envs[1].step(garbage)
        for key in ("obs", "final_obs", "reward", "terminated", "truncated"):
            assert torch.equal(a[key], b[key]), key
    changed = action.clone()
    changed[0, 0] = -changed[0, 0] if changed[0, 0] != 0 else 0.5
    assert not torch.equal(envs[0].step(action)["obs"][0], envs[1].step(changed)["obs"][0])


def test_padded_obs_and_masked_actions_change_neither_critic_nor_actor():
    torch.manual_seed(0)
    task_dims, obs_dim, act_dim = [(3, 1), (13, 3)], 13 + 1, 3
    for embedding, arch in ((0, None), (8, None), (8, NetSpec("bronet", 32, 1))):  # BroNet: BRC's critic
        critic = make_critic(obs_dim, act_dim, task_dims, embedding, hidden=(32, 32), num_atoms=11, members=2,
                             spec=arch)  # fmt: skip
        actor = make_actor(obs_dim, act_dim, (32, 32), "relu", task_dims, embedding)
        norm = RunningNorm(obs_dim, passthrough=1)
        norm.update(torch.randn(64, obs_dim) * 3 + 1)
        obs = torch.randn(8, obs_dim)
        obs[:, -1] = torch.tensor([0, 1] * 4, dtype=torch.float32)
        assert torch.equal(norm(obs)[:, -1], obs[:, -1])  # the id is not normalized
        action = torch.rand(8, act_dim) * 2 - 1
        noisy_obs, noisy_action = obs.clone(), action.clone()
        first = obs[:, -1] == 0
        noisy_obs[first, 3:13] = torch.randn(int(first.sum()), 10) * 100  # task 0's padding
        noisy_action[first, 1:] = torch.rand(int(first.sum()), 2) * 2 - 1  # task 0's masked actions
        with torch.no_grad():
            assert torch.equal(critic(norm(obs), action), critic(norm(noisy_obs), noisy_action))
            out = actor(norm(obs))
            assert torch.equal(out, actor(norm(noisy_obs)))
            assert torch.all(out[first, 1:] == 0) and torch.all(out[~first] != 0)
            # A real dimension does change the value (the check above can fail).
            real = action.clone()
            real[:, 0] = -real[:, 0]
            assert not torch.equal(critic(norm(obs), action), critic(norm(obs), real))
        # Masked action dimensions get no gradient through the policy: they are never learned on. On task-0
        # samples alone, the output layer's rows of dimensions 1 and 2 get exactly zero gradient, row 0 does not.
        only_first = norm(obs[first])
        loss0 = -critic.q_values(critic(only_first, actor(only_first))).mean()
        g0 = torch.autograd.grad(loss0, [p for p in actor.parameters() if p.requires_grad])
        assert torch.all(g0[-2][1:] == 0) and torch.all(g0[-1][1:] == 0) and g0[-2][0].abs().sum() > 0


def test_per_task_metrics_summary_and_run_table(tmp_path):
    """Toy tasks whose every episode returns exactly 5 (toy-a) and -6 (toy-b): training episode returns,
    evaluation returns, summary and run-table rows are right per task; rewards stored for learning carry the
    per-task scales, the metrics do not."""
    cfg = tiny_config(task="multi:toy-a,toy-b", num_envs=6, eval_envs=4, total_env_steps=6 * 40, eval_every=6 * 20,
                      log_every=10, task_weights=(1.0, 2.0), agent={"task_reward_scales": (0.5, 3.0),
                      "task_embedding_dim": 4}, buffer={"task_balanced_sampling": True})  # fmt: skip
    trainer = Trainer(cfg, toy_factory(weights=cfg.task_weights))
    assert trainer.env.counts == [2, 4] and trainer.buffer.group_sizes.tolist() == [2, 4]
    summary = trainer.run(tmp_path / "run")
    assert summary["final_eval_return_per_task"] == pytest.approx(KNOWN_RETURN)
    # Eval envs split like training envs: 4 at 1:2 -> 1 + 3 (rounding), mean = (5 + 3 * -6) / 4.
    assert summary["final_eval_return"] == pytest.approx((5.0 - 18.0) / 4)
    with (tmp_path / "run" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    for task, ret in KNOWN_RETURN.items():
        train = [float(r[f"episode_return/{task}"]) for r in rows if r.get(f"episode_return/{task}")]
        evals = [float(r[f"eval_return/{task}"]) for r in rows if r.get(f"eval_return/{task}")]
        assert train and all(v == pytest.approx(ret) for v in train)
        assert len(evals) == 2 and all(v == pytest.approx(ret) for v in evals)
    buffer = trainer.buffer  # rows hold reward_scale (0.1) x task scale x reward; final rows hold no reward
    rewards = [buffer.reward[e][~buffer.is_final[e] & (buffer.reward[e] != 0)] for e in range(6)]
    assert all(r.numel() >= 30 for r in rewards)
    assert all(torch.allclose(r, torch.tensor(0.1 * 0.5 * 1.0)) for r in rewards[:2])  # toy-a
    assert all(torch.allclose(r, torch.tensor(0.1 * 3.0 * -2.0)) for r in rewards[2:])  # toy-b
    table = rows_from_run_dir(tmp_path / "run")
    assert sorted((r["task"], r["env_step"]) for r in table) == [("toy-a", 120), ("toy-a", 240), ("toy-b", 120),
                                                                 ("toy-b", 240)]  # fmt: skip
    assert all(r["return"] == pytest.approx(KNOWN_RETURN[r["task"]]) for r in table)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["final_eval_return_per_task"]


def test_task_balanced_sampling():
    buffer = ReplayBuffer(10, 3, 1, 10 * 20, env_groups=[1, 9], seed=0)
    for t in range(5):
        buffer.extend({"obs": torch.full((10, 3), float(t)), "action": torch.zeros(10, 1), "reward": torch.zeros(10),
                       "terminated": torch.zeros(10, dtype=torch.bool), "truncated": torch.zeros(10, dtype=torch.bool),
                       "final_obs": torch.zeros(10, 3)})  # fmt: skip
    env = torch.arange(10).float().view(10, 1, 1).expand(10, 20, 3)
    buffer.obs.copy_(env)  # each stream's rows hold its env index
    batch = buffer.sample(20_000)
    share_first = (batch["obs"][:, 0] == 0).float().mean().item()
    assert abs(share_first - 0.5) < 0.02  # task 0 (one env) gets half the samples, not a tenth


def test_transfer_to_a_new_task_keeps_weights_and_freezes(tmp_path):
    source = tiny_config(task="multi:toy-a,toy-b", num_envs=4, eval_envs=2, total_env_steps=4 * 12,
                         agent={"task_embedding_dim": 4})  # fmt: skip
    Trainer(source, toy_factory()).run(tmp_path / "src")
    ckpt_path = tmp_path / "src" / "checkpoints" / "final.pt"
    ckpt = load_checkpoint(ckpt_path)
    new_task = {"obs_dim": 3, "act_dim": 2, "reward": 0.5, "length": 4}
    cfg = tiny_config(task="toy-c", num_envs=2, eval_envs=2, total_env_steps=2 * 12, init_from=str(ckpt_path),
                      freeze=("critic_body", "actor"), agent={"task_embedding_dim": 4})  # fmt: skip
    trainer = Trainer(cfg, lambda n, device, seed: ToyTask(n, device, seed, **new_task))
    assert trainer.env.spec.task_names == ("toy-a", "toy-b", "toy-c")
    assert trainer.env.task_of_env.tolist() == [2, 2] and trainer.env.spec.obs_dim == 5
    nets = trainer.algo.networks()
    actor, critic = nets["actor"], nets["critic"]
    emb = critic.encoder.embedding.detach().clone()
    assert torch.equal(emb[:2], ckpt["algo"]["critic"]["encoder.embedding"])  # trained tasks keep their rows
    assert torch.equal(critic.critic.net[0].weight, ckpt["algo"]["critic"]["critic.net.0.weight"])
    assert torch.equal(trainer.algo.critic_target.critic.net[0].weight, critic.critic.net[0].weight)  # target too
    actor_before = {k: v.clone() for k, v in actor.state_dict().items()}
    critic_first = critic.critic.net[0].weight.detach().clone()
    summary = trainer.run(tmp_path / "dst")
    assert summary["final_eval_return_per_task"] == {"toy-c": pytest.approx(2.0)}
    after = actor.state_dict()
    assert all(torch.equal(after[k], v) for k, v in actor_before.items() if not k.endswith("encoder.embedding"))
    assert not torch.equal(after["encoder.embedding"][2], actor_before["encoder.embedding"][2])  # new row learns
    assert torch.equal(critic.critic.net[0].weight, critic_first)  # frozen body
    assert not torch.equal(critic.encoder.embedding[2], emb[2])


def test_multitask_export_takes_the_task_id(tmp_path):
    pytest.importorskip("onnxruntime")
    from parallel_rl.io.export import export_checkpoint

    cfg = tiny_config(task="multi:toy-a,toy-b", num_envs=4, eval_envs=2, total_env_steps=4 * 6)
    Trainer(cfg, toy_factory()).run(tmp_path / "run")
    path = tmp_path / "run" / "checkpoints" / "final.pt"
    report = export_checkpoint(path, "onnx", num_probe=64)
    assert report["max_abs_diff"] <= 1e-5
    policy = load_multitask_policy(path)
    obs = torch.randn(4, 4)
    action = policy(obs, torch.tensor([0, 0, 1, 1]))
    # toy-a: one action in [-2, 2] (its own bounds), padding 0; toy-b: two actions in [-1, 1].
    assert torch.all(action[:2, 1] == 0) and torch.all(action[:2, 0].abs() <= 2)
    assert torch.all(action[2:].abs() <= 1)


def test_registry_names_presets_and_errors():
    assert tasks.multitask.sub_tasks("multi:playground:CheetahRun,episode_length=200,playground:CartpoleBalance") == [
        "playground:CheetahRun,episode_length=200", "playground:CartpoleBalance"]  # fmt: skip
    env = tasks.make_env("multi:pendulum,cartpole-swingup,reacher3", 96, "cpu", 0, (4, 8, 10))
    assert env.counts == [17, 35, 44] and env.spec.obs_dim == 14 and env.spec.act_dim == 3
    preset = tasks.preset("multi:pendulum,cartpole-swingup,reacher3", "fasttd3")
    # Sums of the single-task presets (32 envs, utd 4 each; 24k + 80k + 100k steps), each task's reward scale.
    assert (preset["num_envs"], preset["schedule"]["utd"], preset["total_env_steps"]) == (
        96,
        12,
        24_000 + 80_000 + 100_000,
    )
    assert preset["agent"]["task_reward_scales"] == (0.1, 1.0, 1.0)
    brc = replace_nested(TrainConfig(task="multi:pendulum,reacher3"), tasks.preset("multi:pendulum,reacher3",
                                                                                  "fasttd3", "brc"))  # fmt: skip
    validate(brc)
    assert (brc.agent.critic_arch, brc.agent.num_atoms, brc.buffer.task_balanced_sampling) == ("bronet", 101, True)
    for bad, match in (("multi:pendulum,pendulum", "once"), ("multi:pendulum,gym:Ant-v5", "one simulator"),
                       ("multi:pendlum", "did you mean")):  # fmt: skip
        with pytest.raises(ConfigError, match=match):
            tasks.resolve(bad)
    with pytest.raises(ConfigError, match="2 weights for the 3 tasks"):
        tasks.env_factory("multi:pendulum,cartpole-swingup,reacher3", (1.0, 2.0))


def test_multitask_support_covers_every_task_at_the_shared_discount():
    """reacher3's preset support [-45, 1] is for gamma 0.97; under the shared (largest) 0.99 its values reach
    (1 - 0.97) / (1 - 0.99) = 3 times as far, so the union must reach -135 (pendulum's -50 and cartpole's 101 are
    already at 0.99)."""
    agent = tasks.preset("multi:pendulum,cartpole-swingup,reacher3", "fasttd3")["agent"]
    assert agent["gamma"] == 0.99
    assert (agent["v_min"], agent["v_max"]) == (pytest.approx(-135.0), pytest.approx(101.0))


@pytest.mark.parametrize("algo", ["fasttd3", "pql"])
def test_brc_cpu_preset_is_the_measured_recipe(algo):
    """``--preset brc-cpu`` is exactly the default preset plus the flags of benchmarks/multitask's 'brc-l2-w512'
    variant (the one that met the 80 % bar there on six seeds), so the preset and the measurement cannot drift
    apart."""
    from benchmarks.multitask.run_study import VARIANTS
    from launch.train import parse

    task = "multi:pendulum,cartpole-swingup,reacher3"
    preset = parse(["--task", task, "--algo", algo, "--preset", "brc-cpu"])
    flags = parse(["--task", task, "--algo", algo, *VARIANTS["brc-l2-w512"]])
    assert preset.preset == "brc-cpu" and dataclasses.replace(preset, preset="default") == flags
    agent = preset.agent
    assert (agent.reward_normalization, agent.v_min, agent.v_max, agent.action_l2, agent.critic_hidden) == (
        "brc", -10.0, 10.0, 0.03, (512, 512))  # fmt: skip
    assert agent.actor_hidden == parse(["--task", task, "--algo", algo]).agent.actor_hidden
