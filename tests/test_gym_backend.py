"""The Gymnasium vector adapter: SAME_STEP autoreset with final observations from the info, against single
Gymnasium envs stepped by hand; Humanoid-v5 training end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

gym = pytest.importorskip("gymnasium")
pytest.importorskip("mujoco", reason='Gymnasium MuJoCo is not installed (pip install -e ".[gym]")')

import tasks  # noqa: E402
from parallel_rl.config import ConfigError  # noqa: E402
from parallel_rl.envs import VecEnv  # noqa: E402
from parallel_rl.envs.gym_vector import GymVecEnv  # noqa: E402


def test_final_obs_terminations_and_truncations_match_single_envs():
    """Hopper falls (terminates) under random actions; a 15-step limit truncates the others. Each sub-env must
    match a single Gymnasium env seeded the same way, reset by hand when its episode ends."""
    n, limit, seed = 4, 15, 3
    env = tasks.make_env(f"gym:Hopper-v5,max_episode_steps={limit}", num_envs=n, device="cpu", seed=seed)
    assert isinstance(env, GymVecEnv) and isinstance(env, VecEnv)
    refs = [gym.make("Hopper-v5", max_episode_steps=limit) for _ in range(n)]
    obs = env.reset()["obs"]
    ref_obs = np.stack([r.reset(seed=seed + i)[0] for i, r in enumerate(refs)])
    np.testing.assert_allclose(obs.numpy(), ref_obs, rtol=1e-5, atol=1e-6)
    actions = np.random.default_rng(0).uniform(-1, 1, (60, n, 3)).astype(np.float32)
    counts = {"terminated": 0, "truncated": 0}
    for t in range(60):
        out = env.step(torch.as_tensor(actions[t]))
        for i, ref in enumerate(refs):
            o, r, term, trunc, _ = ref.step(actions[t, i])
            assert out["reward"][i].item() == pytest.approx(r, rel=1e-5, abs=1e-5)
            assert bool(out["terminated"][i]) == term and bool(out["truncated"][i]) == (trunc and not term)
            np.testing.assert_allclose(out["final_obs"][i].numpy(), o, rtol=1e-5, atol=1e-5)
            if term or trunc:
                counts["terminated" if term else "truncated"] += 1
                o, _ = ref.reset()
                assert not np.allclose(out["obs"][i].numpy(), out["final_obs"][i].numpy())
            np.testing.assert_allclose(out["obs"][i].numpy(), o, rtol=1e-5, atol=1e-5)
    assert counts["terminated"] > 0 and counts["truncated"] > 0, counts


def test_spec_and_dtypes():
    env = tasks.make_env("gym:Humanoid-v5", num_envs=2, device="cpu", seed=0)
    spec = env.spec
    assert (spec.obs_dim, spec.act_dim, spec.max_episode_steps) == (348, 17, 1000)
    assert spec.action_low == pytest.approx((-0.4,) * 17) and spec.action_high == pytest.approx((0.4,) * 17)
    assert env.reset()["obs"].shape == (2, 348)
    out = env.step(torch.zeros(2, 17))
    assert out["obs"].dtype == torch.float32 and out["reward"].dtype == torch.float32
    assert out["terminated"].dtype == torch.bool and out["obs"].shape == (2, 348)


def test_bad_names_and_missing_time_limit():
    with pytest.raises(ValueError, match="v5"):
        GymVecEnv("Humanoid-v99", 1)
    gym.register("NoLimitPendulum-v0", entry_point="gymnasium.envs.classic_control:PendulumEnv")
    with pytest.raises(ValueError, match="max_episode_steps"):
        GymVecEnv("NoLimitPendulum-v0", 1)
    assert GymVecEnv("NoLimitPendulum-v0", 1, max_episode_steps=7).spec.max_episode_steps == 7
    with pytest.raises(ConfigError, match="not key=value"):
        tasks.make_env("gym:Pendulum-v1,7", 1)


def test_render_current_state():
    env = GymVecEnv("HalfCheetah-v5", 2, seed=0)
    env.reset()
    try:
        frame = env.render(env_index=1, width=64, height=48)
    except RuntimeError as e:
        pytest.skip(f"no OpenGL context on this machine: {e}")
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 0
    env.close()


def test_humanoid_trains_end_to_end(tmp_path):
    """FastTD3 on Humanoid-v5 for a small budget (its ``cpu`` preset, shrunk): finite losses, a final evaluation."""
    from launch.train import parse
    from parallel_rl.runtime import Trainer

    cfg = parse(["--task", "gym:Humanoid-v5", "--algo", "fasttd3", "--preset", "cpu", "--num-envs", "4",
                 "--eval-envs", "2", "--total-env-steps", "160", "--batch-size", "64", "--critic-hidden", "64", "64",
                 "--actor-hidden", "64", "64", "--device", "cpu", "--no-progress", "--log-every", "20"])  # fmt: skip
    summary = Trainer(cfg, tasks.env_factory(cfg.task)).run(tmp_path)
    assert summary["env_steps"] == 160 and summary["critic_updates"] > 0
    assert math.isfinite(summary["final_eval_return"]) and summary["final_eval_return"] > 0  # alive bonus
    import csv

    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert all(math.isfinite(float(r["critic_loss"])) for r in rows if r.get("critic_loss"))
