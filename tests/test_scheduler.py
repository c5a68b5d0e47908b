"""Exact ratios: utd (critic updates per env step) and policy_ratio (policy updates per critic update)."""

from __future__ import annotations

import pytest

import tasks
from parallel_rl.runtime import RatioScheduler, Trainer
from tests.conftest import tiny_config


@pytest.mark.parametrize("utd", [0.25, 1, 4])
@pytest.mark.parametrize("policy_ratio", [0.5, 1])
def test_scheduler_counts_are_exact(utd, policy_ratio):
    s = RatioScheduler(utd, policy_ratio, learning_starts=2)
    s.on_env_step()  # step 1: still collecting
    for _ in range(1000):
        for _ in range(s.on_env_step()):
            for _ in range(s.on_critic_update()):
                s.on_policy_update()
    assert s.learning_env_steps == 1000
    assert s.critic_updates == 1000 * utd
    assert s.policy_updates == 1000 * utd * policy_ratio


def test_fractional_utd_spreads_updates_evenly():
    s = RatioScheduler(0.25, 1, learning_starts=1)
    due = []
    for _ in range(12):
        due.append(s.on_env_step())
        for _ in range(due[-1]):
            s.on_critic_update()
    assert due == [0, 0, 0, 1] * 3


def test_non_integer_ratio_never_drifts():
    s = RatioScheduler(1 / 3, 1, learning_starts=1)
    for _ in range(3000):
        for _ in range(s.on_env_step()):
            s.on_critic_update()
            s.on_policy_update()
    assert s.critic_updates == 1000


@pytest.mark.parametrize("utd", [0.25, 1, 4])
@pytest.mark.parametrize("policy_ratio", [0.5, 1])
def test_trainer_realises_configured_ratios(utd, policy_ratio, monkeypatch):
    """The trainer's loop calls the learners exactly as often as configured over 1000 learning env steps."""
    cfg = tiny_config(num_envs=2, total_env_steps=2 * 1001, schedule={"utd": utd, "policy_ratio": policy_ratio})
    trainer = Trainer(cfg, tasks.env_factory("pendulum"))
    calls = {"v": 0, "p": 0}
    monkeypatch.setattr(trainer.vlearner, "update", lambda: calls.__setitem__("v", calls["v"] + 1))
    monkeypatch.setattr(trainer.plearner, "update", lambda: calls.__setitem__("p", calls["p"] + 1))
    for _ in range(trainer.total_iterations):
        trainer.iteration()
    assert trainer.scheduler.learning_env_steps == 1000
    assert calls["v"] == 1000 * utd == trainer.scheduler.critic_updates
    assert calls["p"] == 1000 * utd * policy_ratio == trainer.scheduler.policy_updates
    realised = trainer.scheduler.realised(cfg.num_envs, cfg.buffer.batch_size)
    assert realised["utd_realised"] == utd
    assert realised["policy_ratio_realised"] == policy_ratio
    assert realised["sigma"] == pytest.approx(1000 * utd / (1001 * 2))
    assert realised["replay_ratio"] == pytest.approx(1000 * utd * 16 / (1001 * 2))
