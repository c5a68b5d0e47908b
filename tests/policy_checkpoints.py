"""Small real checkpoints for tests of evaluation and export: a fresh Trainer run for a few iterations, so the
normalizer holds non-trivial statistics and the networks have taken a few updates."""

from __future__ import annotations

from pathlib import Path

import torch

import tasks
from parallel_rl.io import save_checkpoint
from parallel_rl.io.checkpoint import policy_spec
from parallel_rl.nets import Actor, RunningNorm
from parallel_rl.runtime import Trainer
from tests.conftest import tiny_config

BUILTIN_TASKS = ("pendulum", "cartpole-swingup", "reacher3")


def trained_checkpoint(task: str, path: Path, iterations: int = 4) -> Path:
    trainer = Trainer(tiny_config(task=task), tasks.env_factory(task))
    for _ in range(iterations):
        trainer.iteration()
    assert trainer.algo.normalizer.count.item() > 0 and trainer.scheduler.critic_updates > 0
    return save_checkpoint(path, trainer.checkpoint_payload())


def untrained_checkpoint(task: str, path: Path, obs_dim: int, low: tuple, high: tuple, seed: int = 0) -> Path:
    """A policy checkpoint for a task the Trainer is not run on in tests (e.g. a MuJoCo task): random actor,
    normalizer fitted to random data."""
    torch.manual_seed(seed)
    actor = Actor(obs_dim, len(low), (16, 16), "relu")
    norm = RunningNorm(obs_dim)
    norm.update(torch.randn(64, obs_dim) * 2 + 0.5)
    return save_checkpoint(path, {
        "config": {"task": task},
        "policy_spec": policy_spec(obs_dim, len(low), (16, 16), "relu", tuple(low), tuple(high)),
        "actor": actor.state_dict(),
        "normalizer": norm.state_dict(),
    })  # fmt: skip
