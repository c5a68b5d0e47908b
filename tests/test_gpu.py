"""CUDA-only checks: the hot path (env step, buffer extend/sample, critic and policy updates) never synchronises
with the host, and CUDA results equal CPU results up to float tolerance."""

from __future__ import annotations

import pytest
import torch

import tasks
from parallel_rl.runtime import Trainer
from tests.conftest import tiny_config

pytestmark = pytest.mark.gpu


def test_training_iterations_do_not_synchronise():
    trainer = Trainer(tiny_config(device="cuda", total_env_steps=4 * 50), tasks.env_factory("reacher3"))
    for _ in range(10):  # warm-up: lazy CUDA initialisation may synchronise once
        trainer.iteration()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(20):
            trainer.iteration()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert trainer.scheduler.critic_updates > 0


def test_buffer_sampling_matches_cpu():
    from parallel_rl.buffer import ReplayBuffer
    from tests.test_buffer import EPISODES, step_td

    cpu = ReplayBuffer(1, 1, 1, capacity=64, n_step=3, gamma=0.5)
    gpu = ReplayBuffer(1, 1, 1, capacity=64, n_step=3, gamma=0.5, device="cuda")
    for i, (o, r, term, trunc, fin) in enumerate(EPISODES):
        step = step_td([o], [float(i)], [r], [term], [trunc], [fin])
        cpu.extend(step)
        gpu.extend(step.to("cuda"))
    env, row = torch.zeros(10, dtype=torch.long), torch.tensor([0, 1, 2, 4, 5, 7, 8, 9, 0, 1])
    a, b = cpu.transitions(env, row), gpu.transitions(env.cuda(), row.cuda()).cpu()
    for key in a.keys():
        assert torch.allclose(a[key].float(), b[key].float()), key
