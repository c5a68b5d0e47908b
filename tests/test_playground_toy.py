"""The Playground adapter's own logic (terminations, action repeat, dict observations for an asymmetric critic) on
a tiny pure-JAX task registered with Playground: it compiles in seconds, and every number can be worked out by hand.

ToyPoint: a point on a line, x += 0.1 * action[0] per physics step, terminated beyond |x| > 1, reward x; the actor
sees ``state`` = [x, 0], the critic ``privileged_state`` = [x, physics steps taken, 1].
"""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("mujoco_playground", reason='MuJoCo Playground is not installed (pip install -e ".[playground]")')
jax = pytest.importorskip("jax")

import tasks  # noqa: E402
from parallel_rl.envs.playground import PlaygroundVecEnv  # noqa: E402

jnp = jax.numpy
N = 4


def _register() -> None:
    from ml_collections import config_dict
    from mujoco_playground._src import dm_control_suite, mjx_env

    def toy_config():
        return config_dict.create(ctrl_dt=0.02, sim_dt=0.02, episode_length=20, action_repeat=2, impl="jax")

    class ToyPoint(mjx_env.MjxEnv):
        def __init__(self, config=None, config_overrides=None):
            super().__init__(config or toy_config(), config_overrides)

        def _obs(self, x, t):
            return {"state": jnp.stack([x, 0.0 * x]), "privileged_state": jnp.stack([x, t, jnp.ones_like(x)])}

        def reset(self, rng):
            rng, key = jax.random.split(rng)
            x = jax.random.uniform(key, (), minval=-0.1, maxval=0.1)
            t = jnp.zeros(())
            return mjx_env.State({"x": x}, self._obs(x, t), jnp.zeros(()), jnp.zeros(()), {}, {"rng": rng, "t": t})

        def step(self, state, action):
            x = state.data["x"] + 0.1 * action[0]
            t = state.info["t"] + 1
            done = (jnp.abs(x) > 1.0).astype(jnp.float32)
            return state.replace(data={"x": x}, obs=self._obs(x, t), reward=x, done=done, info={**state.info, "t": t})

        xml_path = ""
        action_size = 2
        mj_model = None
        mjx_model = None

    dm_control_suite.register_environment("ToyPoint", ToyPoint, toy_config)


_register()


@pytest.fixture(scope="module")
def env() -> PlaygroundVecEnv:
    return tasks.make_env("playground:ToyPoint", num_envs=N, device="cpu", seed=0)


def test_dict_observations_map_to_actor_and_critic(env):
    spec = env.spec
    assert (spec.obs_dim, spec.critic_obs_dim, spec.max_episode_steps) == (2, 3, 10)  # 20 physics steps, repeat 2
    first = env.reset(seed=0)
    assert first["obs"].shape == (N, 2) and first["critic_obs"].shape == (N, 3)
    assert torch.equal(first["obs"][:, 0], first["critic_obs"][:, 0]) and (first["critic_obs"][:, 1] == 0).all()


def test_terminations_truncations_and_action_repeat(env):
    """Even envs run right (+0.2 per env step in two physics steps) and terminate past x = 1 mid-repeat or at its
    end; odd envs stand still and time out after 10 env steps. Rewards sum the repeat's physics steps until the
    episode ends; the final observation is the state the episode ended in."""
    x = env.reset(seed=1)["critic_obs"][:, 0].double().clone()
    action = torch.zeros(N, 2)
    action[0::2, 0] = 1.0
    ended_at = [None] * N
    for t in range(1, 11):
        out = env.step(action)
        for i in range(N):
            if ended_at[i] is not None:
                continue
            reward, ended, substeps = 0.0, False, 0
            for _ in range(2):
                x[i] += 0.1 * action[i, 0].item()
                reward += x[i].item()
                substeps += 1
                if abs(x[i]) > 1.0:
                    ended = True
                    break
            assert out["reward"][i].item() == pytest.approx(reward, abs=1e-5), (t, i)
            assert bool(out["terminated"][i]) == ended
            assert bool(out["truncated"][i]) == (t == 10 and not ended)
            if ended or t == 10:
                ended_at[i] = t
                assert out["final_obs"][i, 0].item() == pytest.approx(x[i].item(), abs=1e-5)
                assert out["final_critic_obs"][i, 1].item() == 2 * (t - 1) + substeps
                assert abs(out["obs"][i, 0].item()) <= 0.1 and out["critic_obs"][i, 1].item() == 0  # new episode
            else:
                assert torch.equal(out["final_obs"][i], out["obs"][i])
    assert all(5 <= ended_at[i] <= 6 for i in (0, 2)) and all(ended_at[i] == 10 for i in (1, 3)), ended_at


def test_pql_with_asymmetric_critic_trains_end_to_end(env, tmp_path):
    from parallel_rl.runtime import Trainer
    from tests.conftest import tiny_config

    cfg = tiny_config(task="playground:ToyPoint", algo="pql", num_envs=N, eval_envs=N, total_env_steps=N * 40,
                      agent={"v_min": -20.0, "v_max": 20.0, "n_step": 3})  # fmt: skip
    summary = Trainer(cfg, tasks.env_factory(cfg.task)).run(tmp_path)
    assert summary["critic_updates"] > 0 and math.isfinite(summary["final_eval_return"])
