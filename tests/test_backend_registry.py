"""Task names with backend prefixes and options, the backend table, and the presets every backend task gets."""

from __future__ import annotations

import pytest

import tasks
from launch.train import parse
from parallel_rl.config import ConfigError, TrainConfig, replace_nested, validate
from tasks.backend import parse_task_name

PRESET_TASKS = [
    *(f"playground:{t}" for t in tasks.presets_playground.DM_CONTROL + tasks.presets_playground.HUMANOID_LOCOMOTION),
    *(f"isaaclab:{t}" for t in tasks.presets_isaaclab.VELOCITY + tasks.presets_isaaclab.HANDS
      + tasks.presets_isaaclab.HUMANOID),
    *(f"isaacgym:{t}" for t in tasks.presets_isaacgym.TUNED),
    *(f"gym:{t}" for t in tasks.presets_gym.TUNED),
    "playground:AcrobotSwingup", "isaaclab:Isaac-Cartpole-v0", "gym:Pendulum-v1",  # untuned: backend defaults
]  # fmt: skip


def test_parse_task_names():
    assert parse_task_name("pendulum").backend is None
    name = parse_task_name("playground:CheetahRun,impl=warp,episode_length=500,push_config.magnitude_range=[0, 0.5]")
    assert (name.backend, name.task, name.base) == ("playground", "CheetahRun", "playground:CheetahRun")
    assert name.options == {"impl": "warp", "episode_length": 500, "push_config.magnitude_range": [0, 0.5]}
    assert parse_task_name("gym:Hopper-v5,render_mode=rgb_array,x=true,y=None").options == {
        "render_mode": "rgb_array", "x": True, "y": None}  # fmt: skip
    assert parse_task_name("isaaclab:Isaac-Velocity-Flat-H1-v0").task == "Isaac-Velocity-Flat-H1-v0"
    with pytest.raises(ConfigError, match="key=value"):
        parse_task_name("gym:Hopper-v5,oops")


def test_unknown_backend_and_task_get_suggestions():
    with pytest.raises(ConfigError, match="did you mean 'playground'"):
        tasks.resolve("playgrund:CheetahRun")
    with pytest.raises(ConfigError, match="simulator tasks: playground:<task>"):
        tasks.resolve("CheetahRun")
    assert set(tasks.BACKENDS) >= {"playground", "isaaclab", "isaacgym", "gym"}


@pytest.mark.parametrize("task", PRESET_TASKS)
@pytest.mark.parametrize("algo", ["fasttd3", "pql"])
def test_every_preset_is_a_valid_config(task, algo):
    """Both presets of every backend task produce a config that passes validation (buffer holds the batch, ...)."""
    for name in tasks.presets_of(task)[algo]:
        cfg = replace_nested(TrainConfig(task=task, algo=algo), tasks.preset(task, algo, name))
        validate(cfg)
        if name == "default":
            assert cfg.num_envs >= 128 and cfg.total_env_steps >= 10_000_000, (task, algo)
        assert cfg.agent.v_min < 0 < cfg.agent.v_max


def test_published_numbers_reach_the_config():
    """Spot checks against REFERENCE.md, in our units (global buffer capacity, transitions)."""
    g1 = parse(["--task", "playground:G1JoystickFlatTerrain", "--algo", "fasttd3"])
    assert (g1.num_envs, g1.buffer.buffer_size, g1.schedule.utd, g1.agent.gamma, g1.agent.n_step) == (
        1024, 10_240 * 1024, 2, 0.97, 1)  # fmt: skip
    assert g1.agent.critic_hidden == (1024, 512, 256) and g1.agent.actor_hidden == (512, 256, 128)
    assert (g1.buffer.batch_size, g1.agent.tau, g1.schedule.policy_ratio) == (32_768, 0.1, 0.5)
    h1 = parse(["--task", "isaaclab:Isaac-Velocity-Flat-H1-v0"])
    assert (h1.num_envs, h1.schedule.utd, h1.agent.n_step, h1.agent.num_atoms, h1.agent.gamma) == (
        4096,
        4,
        8,
        251,
        0.99,
    )
    assert h1.total_env_steps == 75_000 * 4096 and h1.eval_envs == h1.num_envs
    cheetah = parse(["--task", "playground:CheetahRun,impl=jax"])
    assert (cheetah.agent.n_step, cheetah.agent.v_max, cheetah.agent.std_min, cheetah.agent.target_noise) == (
        3, 500.0, 0.1, 0.1)  # fmt: skip
    ant = parse(["--task", "isaacgym:Ant", "--algo", "pql"])
    assert (ant.num_envs, ant.buffer.batch_size, ant.buffer.buffer_size, ant.agent.n_step, ant.schedule.utd) == (
        4096, 8192, 5_000_000, 3, 8)  # fmt: skip
    assert (ant.agent.reward_scale, ant.agent.num_atoms, ant.agent.activation, ant.agent.max_grad_norm) == (
        0.01, 51, "elu", 0.5)  # fmt: skip
    # flags still override presets
    assert parse(["--task", "gym:Humanoid-v5", "--num-envs", "7"]).num_envs == 7
