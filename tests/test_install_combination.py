"""The install combination CI uses: when Playground and mjlab are both installed (the ``playground-mjlab`` extra),
both load in one process. Playground's default CheetahRun runs on mujoco-mjx's Warp backend, which loads only with
the warp-lang that extra pins; mjlab runs on the same warp-lang."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("mjlab", reason="mjlab is not installed (pip install 'parallel-rl[mjlab]')")
pytest.importorskip("mujoco_playground", reason="MuJoCo Playground is not installed")


def test_playground_and_mjlab_envs_load_in_one_process():
    from mujoco_playground import registry

    from parallel_rl.envs.mjlab import MjlabVecEnv

    cheetah = registry.load("CheetahRun")  # its default impl: mujoco-mjx's Warp backend
    assert cheetah.action_size == 6
    env = MjlabVecEnv("Mjlab-Velocity-Flat-Unitree-G1", 1, "cpu", seed=0)
    try:
        env.reset(seed=0)
        out = env.step(torch.zeros(1, env.spec.act_dim))
        assert torch.isfinite(out["reward"]).all()
    finally:
        env.close()
