"""The MuJoCo Playground adapter against the real Playground on CPU (MJX, impl="jax", CheetahRun).

Compiling the batched step takes tens of seconds on a CPU, so one env (4 envs, 12-step episodes) is shared by the
module, and the training run uses the same task options and env count so that it reuses the compiled program.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

pytest.importorskip("mujoco_playground", reason='MuJoCo Playground is not installed (pip install -e ".[playground]")')
jax = pytest.importorskip("jax")

import tasks  # noqa: E402
from parallel_rl.envs import VecEnv  # noqa: E402
from parallel_rl.envs.playground import PlaygroundVecEnv, menagerie_path  # noqa: E402

N, EPISODE = 4, 12
TASK = f"playground:CheetahRun,impl=jax,episode_length={EPISODE}"


@pytest.fixture(scope="module")
def env() -> PlaygroundVecEnv:
    made = tasks.make_env(TASK, num_envs=N, device="cpu", seed=0)
    assert isinstance(made, PlaygroundVecEnv)
    return made


def random_actions(steps: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(steps, N, 6, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_spec_shapes_dtypes_and_device(env):
    assert isinstance(env, VecEnv)
    spec = env.spec
    assert (spec.obs_dim, spec.act_dim, spec.num_envs, spec.max_episode_steps) == (17, 6, N, EPISODE)
    assert spec.action_low == (-1.0,) * 6 and spec.action_high == (1.0,) * 6 and spec.critic_obs_dim is None
    first = env.reset(seed=0)
    assert first["obs"].shape == (N, 17) and first["obs"].dtype == torch.float32
    assert first["obs"].device == torch.device("cpu") == spec.device
    out = env.step(random_actions(1)[0])
    for key, shape, dtype in [("obs", (N, 17), torch.float32), ("final_obs", (N, 17), torch.float32),
                              ("reward", (N,), torch.float32), ("terminated", (N,), torch.bool),
                              ("truncated", (N,), torch.bool)]:  # fmt: skip
        assert out[key].shape == shape and out[key].dtype == dtype and out[key].device == spec.device, key
    assert torch.isfinite(out["obs"]).all() and ((out["reward"] >= 0) & (out["reward"] <= 1)).all()


def test_no_copy_between_jax_and_torch(env):
    """Every tensor handed out is a DLPack view of the JAX output (same memory), and stays valid after later steps
    (JAX never reuses memory that torch can see)."""
    env.reset(seed=0)
    out = env.step(random_actions(1)[0])
    for key, array in env._jax_out.items():
        assert out[key].data_ptr() == array.unsafe_buffer_pointer(), key
    kept, snapshot = out["obs"], out["obs"].clone()
    for action in random_actions(3, seed=1):
        env.step(action)
    assert torch.equal(kept, snapshot)
    # Actions enter JAX the same way: a contiguous float32 tensor is wrapped, not copied.
    action = torch.zeros(N, 6)
    assert jax.dlpack.from_dlpack(action).unsafe_buffer_pointer() == action.data_ptr()


def test_truncation_keeps_the_true_final_observation(env):
    """At the time limit every env is truncated (not terminated); ``final_obs`` is what stepping the raw Playground
    env from the same state with the same action gives, and differs from the reset observation in ``obs``."""
    env.reset(seed=3)
    actions = random_actions(EPISODE, seed=2)
    for t in range(EPISODE - 1):
        out = env.step(actions[t])
        assert not out["truncated"].any() and not out["terminated"].any()
        assert torch.equal(out["final_obs"], out["obs"])  # no episode ended: final_obs is obs
    before = env.state
    out = env.step(actions[-1])
    assert out["truncated"].all() and not out["terminated"].any()
    assert (out["final_obs"] - out["obs"]).abs().amax(dim=1).min() > 1e-3  # the next episode starts elsewhere
    raw_step = jax.jit(env.raw_env.step)
    for i in range(N):
        state_i = jax.tree.map(lambda x, i=i: x[i], before)
        expected = raw_step(state_i, jax.numpy.asarray(actions[-1][i].numpy())).obs
        np.testing.assert_allclose(out["final_obs"][i].numpy(), np.asarray(expected), rtol=1e-5, atol=1e-5)
    assert int(env.episode_steps.max()) == 0
    # The new episodes run their full length again.
    for t in range(EPISODE - 1):
        assert not env.step(actions[t])["truncated"].any()


def test_same_seed_same_trajectory_different_seed_different(env):
    def rollout(seed: int) -> torch.Tensor:
        obs = [env.reset(seed=seed)["obs"].clone()]
        for action in random_actions(5, seed=4):
            obs.append(env.step(action)["obs"].clone())
        return torch.stack(obs)

    first = rollout(7)
    assert torch.equal(first, rollout(7))
    assert not torch.allclose(first, rollout(8))
    assert not torch.allclose(first[0, 0], first[0, 1])  # envs of one batch start in different states


def test_render_current_state(env):
    env.reset(seed=0)
    try:
        frame = env.render(env_index=1, width=64, height=48)
    except RuntimeError as e:
        pytest.skip(f"no OpenGL context on this machine: {e}")
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 0


def test_fasttd3_trains_end_to_end(env, tmp_path):
    """A short FastTD3 run through the task registry: finite losses, evaluations, a summary. Same task options and
    env counts as the module env, so the compiled step is reused."""
    from parallel_rl.runtime import Trainer
    from tests.conftest import tiny_config

    agent = {"gamma": 0.97, "v_min": -1.0, "v_max": 40.0, "reward_scale": 1.0}
    cfg = tiny_config(task=TASK, num_envs=N, eval_envs=N, total_env_steps=N * 3 * EPISODE, eval_every=N * EPISODE,
                      log_every=6, agent=agent)  # fmt: skip
    summary = Trainer(cfg, tasks.env_factory(TASK)).run(tmp_path)
    assert summary["env_steps"] == N * 3 * EPISODE and summary["critic_updates"] > 0
    assert math.isfinite(summary["final_eval_return"]) and 0 <= summary["final_eval_return"] <= EPISODE
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    losses = [float(r[k]) for r in rows for k in ("critic_loss", "actor_loss") if r.get(k)]
    assert losses and all(math.isfinite(x) for x in losses)
    assert sum(1 for r in rows if r.get("eval_return")) >= 3


def test_locomotion_task_maps_dict_observations():
    """Humanoid locomotion (dict observations: 'state' for the actor, 'privileged_state' for the critic). Needs MuJoCo
    Menagerie, which Playground downloads from GitHub on first use."""
    if not menagerie_path().exists():
        pytest.skip(f"MuJoCo Menagerie assets are absent ({menagerie_path()}); see the README to fetch them")
    made = tasks.make_env("playground:G1JoystickFlatTerrain", num_envs=2, device="cpu", seed=0)
    assert made.spec.critic_obs_dim is not None and made.spec.critic_obs_dim > made.spec.obs_dim
    first = made.reset(seed=0)
    assert first["critic_obs"].shape == (2, made.spec.critic_obs_dim)
