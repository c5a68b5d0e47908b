"""mjlab backend against the real Unitree G1 flat velocity task on CPU (a few envs).

One env is shared by the module (building one costs about a second once Warp's kernels are cached on disk; the
first build in a fresh cache compiles them, 30-60 s). Tests that move it into special states (time-out, fall) run
in file order and reset it afterwards.
"""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("mjlab", reason="mjlab is not installed (pip install 'parallel-rl[mjlab]')")

from parallel_rl.envs import VecEnv  # noqa: E402
from parallel_rl.envs.mjlab import MjlabVecEnv  # noqa: E402

TASK = "Mjlab-Velocity-Flat-Unitree-G1"
NUM_ENVS = 2


@pytest.fixture(scope="module")
def env() -> MjlabVecEnv:
    env = MjlabVecEnv(TASK, NUM_ENVS, "cpu", seed=0)
    env.reset(seed=0)
    yield env
    env.close()


def term_slice(env: MjlabVecEnv, group: str, term: str) -> slice:
    """Columns of one observation term inside a concatenated group."""
    om = env.unwrapped.observation_manager
    start = 0
    for name, dim in zip(om.active_terms[group], om.group_obs_term_dim[group], strict=True):
        width = math.prod(dim)
        if name == term:
            return slice(start, start + width)
        start += width
    raise KeyError(term)


def test_spec_shapes_devices_and_dtypes(env: MjlabVecEnv):
    spec = env.spec
    assert isinstance(env, VecEnv)
    assert (spec.obs_dim, spec.act_dim, spec.critic_obs_dim) == (99, 29, 111)  # 29 joints; critic adds contacts
    assert spec.num_envs == NUM_ENVS and spec.device == torch.device("cpu")
    assert spec.max_episode_steps == 1000  # 20 s at 50 Hz
    assert spec.action_low == (-1.0,) * 29 and spec.action_high == (1.0,) * 29
    first = env.reset(seed=0)
    assert first["obs"].shape == (NUM_ENVS, 99) and first["critic_obs"].shape == (NUM_ENVS, 111)
    out = env.step(torch.zeros(NUM_ENVS, 29))
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == {
        "obs": (NUM_ENVS, 99), "critic_obs": (NUM_ENVS, 111), "final_obs": (NUM_ENVS, 99),
        "final_critic_obs": (NUM_ENVS, 111), "reward": (NUM_ENVS,), "terminated": (NUM_ENVS,),
        "truncated": (NUM_ENVS,),
    }  # fmt: skip
    for key, value in out.items():
        assert value.device == spec.device, key
    assert out["obs"].dtype == out["reward"].dtype == torch.float32
    assert out["terminated"].dtype == out["truncated"].dtype == torch.bool
    # Standing still from the default pose earns a small positive, dt-scaled reward (at most ~0.12 per step).
    assert ((out["reward"] > 0) & (out["reward"] < 0.12)).all()


def test_rough_task_adds_the_terrain_scan_to_both_views():
    """The rough G1 task (the presets' other target): a 17 x 11 height scan joins the actor and critic groups."""
    rough = MjlabVecEnv("Mjlab-Velocity-Rough-Unitree-G1", 1, "cpu", seed=0)
    try:
        assert (rough.spec.obs_dim, rough.spec.critic_obs_dim, rough.spec.act_dim) == (99 + 187, 111 + 187, 29)
        rough.reset(seed=0)
        out = rough.step(torch.zeros(1, 29))
        assert out["obs"].shape == (1, 286) and out["critic_obs"].shape == (1, 298)
        assert torch.isfinite(out["obs"]).all() and torch.isfinite(out["reward"]).all()
    finally:
        rough.close()


def test_no_copy_of_observations_and_no_aliasing_of_reused_buffers(env: MjlabVecEnv):
    env.reset(seed=0)
    out = env.step(torch.zeros(NUM_ENVS, 29))
    assert not (out["terminated"] | out["truncated"]).any()
    mj = env.unwrapped
    # Observations are handed over as the simulator's own tensors (no copy) ...
    assert out["obs"].data_ptr() == mj.obs_buf["actor"].data_ptr()
    assert out["critic_obs"].data_ptr() == mj.obs_buf["critic"].data_ptr()
    # ... and the reused reward/termination buffers are not: the next step must not change what was returned.
    assert out["reward"].data_ptr() != mj.reward_buf.data_ptr()
    assert out["terminated"].data_ptr() != mj.reset_terminated.data_ptr()
    kept = out.clone()
    env.step(torch.full((NUM_ENVS, 29), 0.5))
    assert (out == kept).all()


def test_forced_time_out_is_truncated_with_the_true_final_observation(env: MjlabVecEnv):
    env.reset(seed=0)
    mj = env.unwrapped
    mj.episode_length_buf[0] = env.spec.max_episode_steps - 1  # env 0's next step is its last
    action = torch.full((NUM_ENVS, 29), 0.3)
    out = env.step(action)
    assert out["truncated"].tolist() == [True, False]
    assert out["terminated"].tolist() == [False, False]
    last_action = term_slice(env, "actor", "actions")
    # final_obs is the terminal observation: it still shows the action just taken; the post-reset obs does not.
    assert torch.allclose(out["final_obs"][0, last_action], action[0])
    assert torch.count_nonzero(out["obs"][0, last_action]) == 0
    assert not torch.allclose(out["final_obs"][0], out["obs"][0])
    assert not torch.allclose(out["final_critic_obs"][0], out["critic_obs"][0])
    # The env that did not end keeps one observation: final_obs equals obs there.
    assert torch.equal(out["final_obs"][1], out["obs"][1])
    assert torch.equal(out["final_critic_obs"][1], out["critic_obs"][1])
    # Only env 0 was reset, and stepping goes on (mjlab refuses to step while a manual reset is pending).
    assert mj.episode_length_buf.tolist() == [0, 1]
    assert torch.allclose(out["obs"][0], mj.obs_buf["actor"][0])
    env.step(torch.zeros(NUM_ENVS, 29))


def test_a_fall_terminates_and_is_not_truncated(env: MjlabVecEnv):
    env.reset(seed=0)
    robot = env.unwrapped.scene["robot"]
    pose = robot.data.root_link_pose_w.clone()  # [N, 7]: position, quaternion (w, x, y, z)
    half = math.radians(90.0) / 2
    pose[1, 3:7] = torch.tensor([math.cos(half), math.sin(half), 0.0, 0.0])  # env 1 tipped 90 degrees about x
    robot.write_root_link_pose_to_sim(pose[1:2], env_ids=torch.tensor([1]))
    out = env.step(torch.zeros(NUM_ENVS, 29))
    assert out["terminated"].tolist() == [False, True]
    assert out["truncated"].tolist() == [False, False]
    gravity = term_slice(env, "actor", "projected_gravity")
    # Gravity along the body's -z when upright (z about -1); lying on its side, z is near 0. Noise is +-0.05.
    assert out["final_obs"][1, gravity][2] > -0.5
    assert out["obs"][1, gravity][2] < -0.8  # reset upright
    assert out["obs"][0, gravity][2] < -0.8


def _rollout(env: MjlabVecEnv, seed: int, steps: int = 4) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    seen = [env.reset(seed=seed)["obs"].clone()]
    for _ in range(steps):
        out = env.step(torch.rand(NUM_ENVS, 29, generator=g) * 2 - 1)
        seen += [out["obs"].clone(), out["reward"].clone()]
    return seen


def test_same_seed_same_rollout_different_seed_different_rollout():
    """Two envs built with the same seed (startup randomization included) give identical rollouts, also after a
    reseeding reset and when their calls interleave (each env runs mjlab on its own copy of torch's global RNG,
    and the caller's RNG is left alone); another seed gives another rollout. Fresh envs, because mjlab 1.6 keeps
    one piece of reward state across episodes (``feet_swing_height``'s peak heights have no reset), so
    ``reset(seed)`` reproduces a rollout only from the same history."""
    first, twin = (MjlabVecEnv(TASK, NUM_ENVS, "cpu", seed=0) for _ in range(2))
    try:
        mine, theirs = _rollout(first, 5), _rollout(twin, 5)
        assert all(torch.equal(a, b) for a, b in zip(mine, theirs, strict=True))
        caller = torch.get_rng_state()
        g = torch.Generator().manual_seed(7)
        assert torch.equal(first.reset(seed=5)["obs"], twin.reset(seed=5)["obs"])
        for _ in range(3):
            action = torch.rand(NUM_ENVS, 29, generator=g) * 2 - 1
            a, b = first.step(action), twin.step(action)
            assert torch.equal(a["obs"], b["obs"]) and torch.equal(a["reward"], b["reward"])
        assert torch.equal(torch.get_rng_state(), caller)
        other = _rollout(first, seed=6)
    finally:
        first.close()
        twin.close()
    assert not torch.equal(mine[0], other[0])
    assert not torch.equal(mine[-1], other[-1])


def test_fasttd3_trains_end_to_end_on_g1_with_asymmetric_critic(tmp_path):
    """A short FastTD3 run through the registry's preset: the critic sees the privileged group, losses stay finite,
    time-outs occur (short episodes) and the run writes its summary and checkpoint."""
    import csv

    from conftest import tiny_config

    import tasks
    from parallel_rl.runtime.trainer import Trainer

    assert tasks.preset(f"mjlab:{TASK}", "fasttd3", "cpu")["num_envs"] == 4  # the CPU preset resolves
    cfg = tiny_config(
        task=f"mjlab:{TASK}", num_envs=NUM_ENVS, total_env_steps=NUM_ENVS * 30, eval_envs=1, log_every=10,
        schedule={"utd": 1, "learning_starts": 5},
        agent={"v_min": -10.0, "v_max": 15.0, "reward_scale": 1.0},
        buffer={"buffer_size": 2000, "batch_size": 32},
    )  # fmt: skip

    def short_episodes(num_envs: int, device: torch.device, seed: int) -> MjlabVecEnv:
        return MjlabVecEnv(TASK, num_envs, device, seed, episode_length_s=0.3)  # 15 steps: time-outs happen

    trainer = Trainer(cfg, short_episodes)
    assert trainer.buffer.critic_obs is not None and trainer.algo.critic_normalizer is not None
    summary = trainer.run(tmp_path / "run")
    assert summary["critic_updates"] > 0 and summary["policy_updates"] > 0
    assert math.isfinite(summary["final_eval_return"])
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    losses = [float(r[k]) for r in rows for k in r if "loss" in k and r[k] not in ("", "nan")]
    assert losses and all(math.isfinite(x) for x in losses)
    assert any(r.get("episode_return") not in (None, "") for r in rows)  # episodes ended (time-outs)
    assert (tmp_path / "run" / "checkpoints" / "final.pt").exists()


def test_mjlab_ppo_runner_returns_rows_from_its_tensorboard_log(tmp_path):
    """mjlab's own PPO through the head-to-head runner: one rsl_rl iteration (the budget is spent at once), rows in
    the benchmark's format read back from rsl_rl's TensorBoard log. Short episodes so that some end."""
    import json

    from launch.mjlab_ppo import run_mjlab_ppo

    rows = run_mjlab_ppo(f"mjlab:{TASK}", seed=0, time_budget_s=0.0, env_step_budget=10**9, run_dir=tmp_path,
                         device="cpu", num_envs=NUM_ENVS, episode_length_s=0.2)  # fmt: skip
    summary = json.loads((tmp_path / "summary.json").read_text())
    steps_per_iteration = 24 * NUM_ENVS  # the G1 PPO config collects 24 steps per env per iteration
    assert summary["iterations"] == 1 and summary["env_steps"] == steps_per_iteration
    assert len(rows) == 1 and set(rows[0]) == {"env_steps", "wall_seconds", "return"}
    assert rows[0]["env_steps"] == steps_per_iteration
    assert 0 <= rows[0]["wall_seconds"] <= summary["wall_seconds"] + 1.0 and math.isfinite(rows[0]["return"])
