"""Built-in tasks: Pendulum-v1 parity with Gymnasium, the VecEnv protocol (truncation, final_obs, seeding), and
action validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tasks
from parallel_rl.envs import VecEnv
from tasks.pendulum import Pendulum

gym = pytest.importorskip("gymnasium")


def test_pendulum_matches_gymnasium_step_for_step():
    """From identical states with identical actions (including out-of-bounds ones): same observations, rewards and
    truncation, for whole episodes. The state is re-synchronised before each step because the upright pendulum is
    chaotic: Gymnasium multiplies the float32 action in float32, and that last-bit difference grows over ~150 steps.
    """
    ref = gym.make("Pendulum-v1")
    ours = Pendulum(num_envs=1, dtype=torch.float64)
    rng = np.random.default_rng(0)
    for episode in range(3):
        obs, _ = ref.reset(seed=episode)
        ours.reset()
        ours.state = torch.as_tensor(ref.unwrapped.state, dtype=torch.float64).view(1, 2)
        assert np.allclose(ours._observe(ours.state).numpy()[0], obs, atol=1e-6)
        for t in range(200):
            ours.state = torch.as_tensor(ref.unwrapped.state, dtype=torch.float64).view(1, 2)
            u = rng.uniform(-3, 3, size=(1,)).astype(np.float32)  # beyond the +-2 bounds on purpose: both clip
            obs, reward, terminated, truncated, _ = ref.step(u)
            out = ours.step(torch.as_tensor(u, dtype=torch.float64).view(1, 1))
            final = out["final_obs"][0].numpy()
            assert np.allclose(final, obs, atol=1e-5), (episode, t)
            assert out["reward"][0].item() == pytest.approx(float(reward), abs=1e-4)
            assert bool(out["terminated"][0]) == terminated
            assert bool(out["truncated"][0]) == truncated == (t == 199)


def test_pendulum_single_steps_from_arbitrary_states():
    ref = gym.make("Pendulum-v1").unwrapped
    ref.reset(seed=0)
    ours = Pendulum(num_envs=256, dtype=torch.float64)
    g = np.random.default_rng(1)
    states = np.stack([g.uniform(-4 * np.pi, 4 * np.pi, 256), g.uniform(-8, 8, 256)], -1)
    actions = g.uniform(-2, 2, (256, 1))
    ours.state = torch.as_tensor(states)
    out = ours.step(torch.as_tensor(actions))
    for i in range(256):
        ref.state = states[i].copy()
        obs, reward, *_ = ref.step(actions[i])
        assert np.allclose(out["final_obs"][i].numpy(), obs, atol=1e-6)
        assert out["reward"][i].item() == pytest.approx(float(reward), rel=1e-6, abs=1e-6)


def test_pendulum_initial_state_distribution():
    env = Pendulum(num_envs=20_000, seed=3)
    th, thdot = env.state[:, 0], env.state[:, 1]
    assert th.min() >= -np.pi and th.max() <= np.pi and thdot.abs().max() <= 1
    assert th.mean().abs() < 0.05 and (th.std() - np.pi / np.sqrt(3)).abs() < 0.03  # U(-pi, pi)


@pytest.mark.parametrize("name", list(tasks.TASKS))
def test_protocol_shapes_truncation_and_final_obs(name):
    env = tasks.make_env(name, num_envs=16, seed=0)
    assert isinstance(env, VecEnv)
    spec = env.spec
    first = env.reset(seed=0)
    assert first["obs"].shape == (16, spec.obs_dim) and first["obs"].dtype == torch.float32
    low, high = spec.action_bounds()
    for _ in range(spec.max_episode_steps):
        action = low + (high - low) * torch.rand(16, spec.act_dim)
        out = env.step(action)
        assert out["reward"].shape == (16,) and out["reward"].dtype == torch.float32
        assert out["terminated"].dtype == torch.bool and out["truncated"].dtype == torch.bool
        assert not (out["terminated"] & out["truncated"]).any()
    # every env hit the time limit on the last step (none of the built-ins terminates under these actions)
    assert out["truncated"].all()
    # auto-reset: obs is a fresh start state, final_obs the true last state of the episode, and they differ
    assert not torch.allclose(out["obs"], out["final_obs"])
    assert int(env.elapsed.max()) == 0


def test_final_obs_is_the_true_next_state():
    env = Pendulum(num_envs=4, seed=0)
    env.reset()
    for _ in range(199):
        env.step(torch.zeros(4, 1))
    before = env.state.clone()
    out = env.step(torch.ones(4, 1))
    expected = Pendulum(num_envs=4)
    next_state, _, _ = expected._dynamics(before, torch.ones(4, 1))
    assert torch.allclose(out["final_obs"], expected._observe(next_state))
    assert out["truncated"].all()


def test_higher_dimensional_task_sizes():
    spec = tasks.make_env("reacher3", 2).spec
    assert spec.obs_dim >= 10 and spec.act_dim >= 3


@pytest.mark.parametrize("name", list(tasks.TASKS))
def test_seeding(name):
    def rollout(seed):
        env = tasks.make_env(name, num_envs=8, seed=seed)
        obs = [env.reset(seed=seed)["obs"]]
        for _ in range(30):
            obs.append(env.step(torch.zeros(8, env.spec.act_dim))["obs"])
        return torch.stack(obs)

    assert torch.equal(rollout(1), rollout(1))
    assert not torch.equal(rollout(1), rollout(2))


def test_many_envs_are_vectorized():
    env = tasks.make_env("reacher3", num_envs=4096)
    out = env.step(torch.zeros(4096, 3))
    assert out["obs"].shape == (4096, 13)


def test_cartpole_stays_on_the_track():
    env = tasks.make_env("cartpole-swingup", num_envs=4)
    for _ in range(100):
        env.step(torch.ones(4, 1))
    assert env.state[:, 0].max() <= 3.0


def test_wrong_action_shape_is_rejected():
    env = tasks.make_env("pendulum", num_envs=4)
    with pytest.raises(ValueError, match=r"shape \(4, 2\).*\(4, 1\)"):
        env.step(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="shape"):
        env.step(torch.zeros(4))


def test_nan_action_is_rejected():
    env = tasks.make_env("reacher3", num_envs=4)
    action = torch.zeros(4, 3)
    action[2, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        env.step(action)
