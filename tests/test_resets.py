"""Resets through the trainer: they happen at the configured env steps and nowhere else, are logged, and a run
resumed from a checkpoint taken before a reset continues bit for bit like the uninterrupted run."""

from __future__ import annotations

import csv

import pytest
import torch

from parallel_rl.io import load_checkpoint
from parallel_rl.runtime import Trainer
from tasks import env_factory
from tests.conftest import tiny_config
from tests.test_lifecycle import _training_state


def _config(**kw):
    return tiny_config(total_env_steps=4 * 40, log_every=10, checkpoint_buffer=True,
                       agent={"critic_arch": "simbav2", "critic_width": 8, "critic_depth": 1},
                       schedule={"reset_every": 15, "reset_shrink": 0.2}, **kw)  # fmt: skip


def test_resets_at_the_configured_steps_and_resume_across_a_reset_is_bit_identical(tmp_path):
    straight = Trainer(_config(), env_factory("pendulum"))
    at = []
    reset = straight.algo.reset_networks
    straight.algo.reset_networks = lambda *a: (at.append(straight.scheduler.env_steps), reset(*a))[1]
    straight.run(tmp_path / "a")
    assert at == [15, 30]
    with open(tmp_path / "a" / "metrics.csv") as f:
        rows = {int(r["env_step"]): r for r in csv.DictReader(f)}  # env_step counts transitions
    assert [float(rows[s]["resets"]) for s in (4 * 10, 4 * 20, 4 * 40)] == [0.0, 1.0, 2.0]

    first = _config(checkpoint_every=4 * 10, keep_checkpoints=10)
    Trainer(first, env_factory("pendulum")).run(tmp_path / "b")
    ckpt = tmp_path / "b" / "checkpoints" / f"step_{4 * 10:012d}.pt"  # before both resets
    resumed = Trainer(_config(resume=str(ckpt)), env_factory("pendulum"))
    resumed.run(tmp_path / "b")
    a = _training_state(load_checkpoint(tmp_path / "a" / "checkpoints" / "final.pt"))
    b = _training_state(load_checkpoint(tmp_path / "b" / "checkpoints" / "final.pt"))
    assert a.keys() == b.keys() and len(a) > 20
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("algo", ["dac", "dea", "vpl"])
def test_resume_of_the_high_utd_algorithms_is_bit_identical(tmp_path, algo):
    """In-process twin of test_lifecycle's SIGKILL resume test for the algorithms of issue 15 (its subprocesses cost
    ~30 CPU-s per algorithm): every owned state (second actor, adjustments, coefficients, pessimism, optimizers) is
    saved and restored."""
    kw = {"algo": algo, "total_env_steps": 4 * 30, "checkpoint_buffer": True, "log_every": 10,
          "td_validation_envs": 1 if algo == "vpl" else 0}  # fmt: skip
    Trainer(tiny_config(**kw), env_factory("pendulum")).run(tmp_path / "a")
    Trainer(tiny_config(checkpoint_every=4 * 10, keep_checkpoints=5, **kw), env_factory("pendulum")).run(tmp_path / "b")
    ckpt = tmp_path / "b" / "checkpoints" / f"step_{4 * 10:012d}.pt"
    Trainer(tiny_config(resume=str(ckpt), **kw), env_factory("pendulum")).run(tmp_path / "b")
    a = _training_state(load_checkpoint(tmp_path / "a" / "checkpoints" / "final.pt"))
    b = _training_state(load_checkpoint(tmp_path / "b" / "checkpoints" / "final.pt"))
    assert a.keys() == b.keys() and len(a) > 20
    for key in a:
        assert torch.equal(a[key], b[key]), key
