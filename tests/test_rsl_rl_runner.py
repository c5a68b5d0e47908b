"""OffPolicyRunner with rsl_rl's runner contract, through Isaac Lab's train-script flow on the Isaac Lab fakes
(rsl_rl wrapper interface, time-outs, observation groups, one simulation per process), save/load and play-style
loading. The mjlab train/play scripts are tested in test_mjlab_runner.py."""

from __future__ import annotations

import glob
import os
import subprocess

import fake_isaac
import gymnasium as gym
import pytest
import torch
from tensordict import TensorDict

from parallel_rl.config import ConfigError
from parallel_rl.integrations.rsl_rl import OffPolicyRunner, RslRlEnvAdapter, train_config

TASK = "Isaac-Fake-Manager-v0"

#: What Isaac Lab's RslRlOnPolicyRunnerCfg.to_dict() holds (abridged), with our algorithm's sections added.
ISAAC_AGENT_CFG = {
    "seed": 0,
    "device": "cpu",
    "num_steps_per_env": 2,
    "max_iterations": 12,
    "save_interval": 5,
    "experiment_name": "fake",
    "obs_groups": {"policy": ["policy"], "critic": ["critic"]},
    "clip_actions": None,
    "algorithm": {"class_name": "FastTD3", "critic_hidden": [32, 32], "actor_hidden": [32, 32], "num_atoms": 11,
                  "v_min": -10.0, "v_max": 10.0},
    "schedule": {"learning_starts": 4, "utd": 1.0},
    "buffer": {"buffer_size": 2000, "batch_size": 32},
}  # fmt: skip


def make_env(monkeypatch, task: str = TASK, num_envs: int = 4):
    """Isaac Lab's train.py: parse_env_cfg, gym.make, RslRlVecEnvWrapper (fakes with the real signatures)."""
    fake_isaac.install(monkeypatch, fake_isaac.isaaclab_modules())
    from isaaclab_rl.rsl_rl import RslRlVecEnvWrapper
    from isaaclab_tasks.utils import parse_env_cfg

    env_cfg = parse_env_cfg(task, device="cpu", num_envs=num_envs)
    return RslRlVecEnvWrapper(gym.make(task, cfg=env_cfg), clip_actions=None)


@pytest.mark.parametrize("task", fake_isaac.FAKE_LAB_IDS)
def test_isaac_lab_train_script_flow_saves_and_loads(task, monkeypatch, tmp_path):
    env = make_env(monkeypatch, task)
    runner = OffPolicyRunner(env, ISAAC_AGENT_CFG, log_dir=str(tmp_path), device="cpu")
    assert runner.train_cfg.algo == "fasttd3" and runner.vec_env.spec.critic_obs_dim == 3
    runner.add_git_repo_to_log(__file__)
    runner.learn(num_learning_iterations=12, init_at_random_ep_len=True)
    assert env.unwrapped.reset_calls == 1  # the wrapper's reset at construction only: one simulation, never rebuilt
    assert runner.trainer.scheduler.env_steps == 24 and runner.trainer.scheduler.critic_updates > 0
    names = sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "model_*.pt")))
    assert names == ["model_0.pt", "model_10.pt", "model_12.pt", "model_5.pt"]
    assert glob.glob(str(tmp_path / "events.out.tfevents.*"))
    in_git_checkout = subprocess.run(["git", "-C", os.path.dirname(__file__), "rev-parse"], capture_output=True)
    assert bool(glob.glob(str(tmp_path / "git" / "*.diff"))) == (in_git_checkout.returncode == 0)  # rsl_rl's git/
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = EventAccumulator(str(tmp_path)).Reload().Tags()["scalars"]
    assert {"Train/mean_reward", "Train/mean_episode_length", "Perf/total_fps", "Loss/critic_loss"} <= set(tags)

    # Resume in the same process and simulation (Isaac Lab allows one): the whole state comes back.
    again = OffPolicyRunner(env, ISAAC_AGENT_CFG, log_dir=None, device="cpu")
    again.load(str(tmp_path / "model_12.pt"))
    assert again.current_learning_iteration == 12
    obs = env.get_observations()
    torch.testing.assert_close(again.get_inference_policy()(obs), runner.get_inference_policy()(obs))
    assert again.trainer.scheduler.env_steps == 24
    again.learn(2)
    assert again.current_learning_iteration == 14

    # play: load the actor only; the policy takes the observation groups as the env returns them.
    play = OffPolicyRunner(env, ISAAC_AGENT_CFG, device="cpu")
    play.load(str(tmp_path / "model_12.pt"), load_cfg={"actor": True}, strict=True, map_location="cpu")
    policy = play.get_inference_policy(device="cpu")
    actions = policy(obs)
    assert actions.shape == (4, 2) and actions.abs().max() <= 1.0
    torch.testing.assert_close(actions, runner.get_inference_policy()(obs))
    assert play._trainer is None  # playing built no replay buffer or learners


def test_true_final_observations_and_time_outs_on_the_isaac_fake(monkeypatch):
    """A time-out's final observation is the state the episode reached (x + 0.1 a), not the reset one; terminated
    (|x| > 1) and truncated (time limit, rsl_rl's extras["time_outs"]) are told apart."""
    env = make_env(monkeypatch, TASK, num_envs=3)
    adapter = RslRlEnvAdapter(env, {"policy": ["policy"], "critic": ["critic"]}, 1.0, "cpu")
    assert adapter.final_obs_source == "capture"
    obs = adapter.reset()["obs"]
    action = torch.tensor([[1.0, 0.5], [-1.0, 0.5], [0.2, 0.5]])
    ended = {"terminated": 0, "truncated": 0}
    for _ in range(25):
        out = adapter.step(action)
        done = out["terminated"] | out["truncated"]
        expected_x = obs[:, 0] + 0.1 * action[:, 0]
        torch.testing.assert_close(out["final_obs"][:, 0], expected_x)
        torch.testing.assert_close(out["final_critic_obs"][:, 0], expected_x)
        assert (out["obs"][done, 0].abs() <= 0.1).all()  # reset states
        assert torch.equal(out["terminated"], expected_x.abs() > 1.0)
        ended["terminated"] += int(out["terminated"].sum())
        ended["truncated"] += int(out["truncated"].sum())
        obs = out["obs"]
    assert ended["terminated"] >= 1 and ended["truncated"] >= 2, ended


def test_train_config_errors_name_the_field(monkeypatch):
    with pytest.raises(ConfigError, match=r"train_cfg: unknown config field 'gama'; did you mean 'gamma'"):
        train_config({"algorithm": {"gama": 0.9}}, 4, "cpu")
    with pytest.warns(UserWarning, match="'ppo', not one of ours"):
        cfg = train_config({"algorithm": {"class_name": "PPO", "value_loss_coef": 1.0}}, 4, "cpu")
    assert cfg.algo == "fasttd3"
    cfg = train_config({"algo": "pql", "transitions_per_env": 100, "schedule": {"utd": 2}}, 8, "cpu")
    assert (cfg.algo, cfg.buffer.buffer_size, cfg.schedule.utd, cfg.num_envs) == ("pql", 800, 2, 8)


def test_inference_policy_reads_tensordicts_and_tensors(monkeypatch):
    env = make_env(monkeypatch, TASK, num_envs=2)
    runner = OffPolicyRunner(env, ISAAC_AGENT_CFG, device="cpu")
    policy = runner.get_inference_policy()
    obs = TensorDict({"policy": torch.randn(2, 2), "critic": torch.randn(2, 3)}, batch_size=[2])
    torch.testing.assert_close(policy(obs), policy(obs["policy"]))
