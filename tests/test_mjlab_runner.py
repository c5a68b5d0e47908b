"""mjlab's own train/play scripts with our off-policy variants (``<task id>-FastTD3``, ``-FastSAC``), and the time-out
bootstrap of OffPolicyRunner on the real G1 flat task checked against mjlab's own flags. CPU, tiny budgets."""

from __future__ import annotations

import dataclasses
import glob
import sys
from pathlib import Path

import pytest
import tomllib
import torch

pytest.importorskip("mjlab", reason="mjlab is not installed (pip install 'parallel-rl[mjlab]')")

import parallel_rl.integrations.mjlab_tasks  # noqa: E402,F401  (what mjlab's "mjlab.tasks" entry point loads)
from parallel_rl.config import ALGOS  # noqa: E402
from parallel_rl.integrations.mjlab import VELOCITY_TASKS  # noqa: E402
from parallel_rl.integrations.mjlab_tasks import OffPolicyRunnerCfg  # noqa: E402
from parallel_rl.integrations.rsl_rl import OffPolicyRunner  # noqa: E402
from parallel_rl.io.checkpoint import load_checkpoint  # noqa: E402

TASK = "Mjlab-Velocity-Flat-Unitree-G1"
ROOT = Path(__file__).resolve().parents[1]


def test_entry_point_is_declared_and_registers_the_variants():
    from mjlab.tasks.registry import list_tasks, load_rl_cfg, load_runner_cls

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["mjlab.tasks"]
    assert declared == {"parallel_rl": "parallel_rl.integrations.mjlab_tasks"}
    for task in VELOCITY_TASKS:
        assert load_runner_cls(f"{task}-FastTD3") is OffPolicyRunner
        assert (f"{task}-FastSAC" in list_tasks()) == ("fastsac" in ALGOS)  # registered once FastSAC exists
    cfg = load_rl_cfg(f"{TASK}-FastTD3")
    assert isinstance(cfg, OffPolicyRunnerCfg) and cfg.algorithm.n_step == 8 and cfg.schedule.utd == 4


VARIANTS = ["FastTD3"] + (["FastSAC"] if "fastsac" in ALGOS else [])


@pytest.mark.parametrize("variant", VARIANTS)
def test_mjlab_train_then_play(variant, tmp_path, monkeypatch):
    """``train <task>-<variant> --env.scene.num-envs 16 --agent.max-iterations 3`` (mjlab's script, on CPU) writes
    a checkpoint; ``play`` loads it through OffPolicyRunner.load and acts with get_inference_policy."""
    from mjlab.scripts import play, train

    task = f"{TASK}-{variant}"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # mjlab's CPU mode
    monkeypatch.setattr(sys, "argv", ["train", task, "--env.scene.num-envs", "16", "--agent.max-iterations", "3",
                                      "--agent.schedule.learning-starts", "2", "--agent.buffer.batch-size", "64",
                                      "--log-root", str(tmp_path)])  # fmt: skip
    train.main()
    checkpoints = glob.glob(str(tmp_path / "*" / "*" / "model_3.pt"))
    assert len(checkpoints) == 1
    saved = load_checkpoint(checkpoints[0])
    assert saved["iter"] == 3 and saved["config"]["algo"] == variant.lower()
    assert saved["config"]["buffer"]["batch_size"] == 64 and saved["config"]["num_envs"] == 16  # the CLI's values
    assert saved["scheduler"]["critic_updates"] > 0

    steps = []

    class Viewer:  # stands in for mjlab's viewer: a few policy steps, headless
        def __init__(self, env, policy, **kwargs):
            self.env, self.policy = env, policy

        def run(self):
            obs = self.env.get_observations()
            for _ in range(3):
                actions = self.policy(obs)
                assert actions.shape == (2, self.env.num_actions) and torch.isfinite(actions).all()
                obs, *_ = self.env.step(actions)
                steps.append(actions)

    monkeypatch.setattr(play, "NativeMujocoViewer", Viewer)
    play.run_play(task, play.PlayConfig(checkpoint_file=checkpoints[0], num_envs=2, device="cpu", viewer="native"))
    assert len(steps) == 3


def test_time_outs_bootstrap_from_the_true_final_observation():
    """On the G1 flat task (mjlab's own env and rsl_rl wrapper, 5-step episodes), every transition that mjlab flags
    as a time-out is stored as truncated (not terminated), and the row its target bootstraps from holds the
    observation mjlab computed for the state the episode ended in, not the reset one."""
    from mjlab.envs import ManagerBasedRlEnv
    from mjlab.rl import RslRlVecEnvWrapper
    from mjlab.tasks.registry import load_env_cfg

    env_cfg = load_env_cfg(TASK)
    env_cfg.scene.num_envs, env_cfg.episode_length_s = 2, 0.1  # 5 control steps of 0.02 s
    env = RslRlVecEnvWrapper(ManagerBasedRlEnv(cfg=env_cfg, device="cpu"))
    seen = []
    step = env.env.step

    def spy(action):  # mjlab's own outputs: observations, terminated and time-out flags
        obs, reward, terminated, time_outs, extras = step(action)
        seen.append((obs["actor"].clone(), obs["critic"].clone(), terminated.clone(), time_outs.clone()))
        return obs, reward, terminated, time_outs, extras

    env.env.step = spy
    agent = OffPolicyRunnerCfg.for_algo("fasttd3", transitions_per_env=64)
    agent.schedule = dataclasses.replace(agent.schedule, learning_starts=1000)  # storage only, no updates
    agent.buffer = dataclasses.replace(agent.buffer, storage_dtype="float32", batch_size=64)
    runner = OffPolicyRunner(env, dataclasses.asdict(agent), log_dir=None, device="cpu")
    assert runner.vec_env.final_obs_source == "manual_reset"
    runner.learn(12)
    buffer = runner.trainer.buffer
    time_outs = 0
    for e in range(2):
        row = 0
        for actor, critic, terminated, timed_out in seen:
            assert not buffer.is_final[e, row]
            assert bool(buffer.done[e, row]) == bool(terminated[e] | timed_out[e])
            assert bool(buffer.terminated[e, row]) == bool(terminated[e])  # a time-out is not terminal
            if buffer.done[e, row]:
                final = row + 1
                assert buffer.is_final[e, final]
                torch.testing.assert_close(buffer.obs[e, final], actor[e])
                torch.testing.assert_close(buffer.critic_obs[e, final], critic[e])
                assert not torch.allclose(buffer.obs[e, final + 1], actor[e])  # the next episode starts elsewhere
                time_outs += int(timed_out[e] & ~terminated[e])
                row += 1
            row += 1
    assert time_outs >= 4
    env.close()
