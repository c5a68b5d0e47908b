"""SPEQ's stabilization phases through the scheduler: critic updates = online updates + stabilization updates exactly
as configured, policy updates follow the online updates only, and the realised UTD and sigma count every update."""

from __future__ import annotations

import pytest

from parallel_rl.runtime.scheduler import RatioScheduler


def _drive(sched: RatioScheduler, env_steps: int) -> list[tuple[int, int]]:
    """The sequential mode's order: an env step, its online updates (each followed by the policy updates it makes
    due), then the stabilization phase that ends at this step. Returns (online, stabilization) per env step."""
    trace = []
    for _ in range(env_steps):
        online = sched.on_env_step()
        for _ in range(online):
            for _ in range(sched.on_critic_update()):
                sched.on_policy_update()
        stab = sched.stabilization_due()
        for _ in range(stab):
            sched.on_stabilization_update()
        trace.append((online, stab))
    return trace


def test_stabilization_phases_are_counted_exactly():
    sched = RatioScheduler(utd=0.5, policy_ratio=0.5, learning_starts=3, stabilize_every=10, stabilize_updates=7)
    trace = _drive(sched, 42)
    learning_steps = 42 - 3 + 1  # 40
    assert sched.learning_env_steps == learning_steps
    online = learning_steps // 2  # utd 0.5
    phases = learning_steps // 10  # 4 phases, at learning steps 10, 20, 30, 40
    assert sched.online_critic_updates == online == 20
    assert sched.stabilization_updates == phases * 7 == 28
    assert sched.critic_updates == online + phases * 7 == 48
    assert sched.policy_updates == online // 2 == 10  # policy_ratio applies to online updates only
    assert [i for i, (_, s) in enumerate(trace) if s] == [11, 21, 31, 41]  # learning steps 10, 20, 30, 40
    assert all(s in (0, 7) for _, s in trace)
    r = sched.realised(num_envs=4, batch_size=32)
    assert r["utd_realised"] == 48 / 40
    assert r["sigma"] == 48 / (42 * 4)
    assert r["replay_ratio"] == 48 * 32 / (42 * 4)
    assert r["policy_ratio_realised"] == 10 / 20
    assert r["stabilization_updates"] == 28


def test_stabilization_survives_a_resume_mid_run():
    full = RatioScheduler(utd=1, policy_ratio=1, learning_starts=2, stabilize_every=5, stabilize_updates=3)
    _drive(full, 23)
    first = RatioScheduler(utd=1, policy_ratio=1, learning_starts=2, stabilize_every=5, stabilize_updates=3)
    _drive(first, 11)
    resumed = RatioScheduler(utd=1, policy_ratio=1, learning_starts=2, stabilize_every=5, stabilize_updates=3)
    resumed.load_state_dict(first.state_dict())
    _drive(resumed, 12)
    assert resumed.state_dict() == full.state_dict()
    assert full.stabilization_updates == (22 // 5) * 3


def test_without_phases_the_schedule_is_unchanged():
    plain = RatioScheduler(utd=0.25, policy_ratio=0.5, learning_starts=2)
    trace = _drive(plain, 41)
    assert plain.critic_updates == 10 and plain.stabilization_updates == 0 and plain.policy_updates == 5
    assert all(s == 0 for _, s in trace)
    assert "stabilization_updates" not in plain.realised(1, 1)
    with pytest.raises(ValueError, match="stabilize_every >= 0"):
        RatioScheduler(utd=1, policy_ratio=1, stabilize_every=-1)


def test_trainer_runs_the_configured_stabilization_updates_and_reports_sigma(tmp_path):
    import csv

    from parallel_rl.runtime import Trainer
    from tasks import env_factory
    from tests.conftest import tiny_config

    cfg = tiny_config(total_env_steps=4 * 50, log_every=50, schedule={"utd": 0.5, "learning_starts": 2,
                      "stabilize_every": 12, "stabilize_updates": 9})  # fmt: skip
    trainer = Trainer(cfg, env_factory("pendulum"))
    calls = []
    update = trainer.vlearner.update
    trainer.vlearner.update = lambda *a: (calls.append(trainer.scheduler.env_steps), update(*a))[1]
    trainer.run(tmp_path)
    sched = trainer.scheduler
    learning = 50 - 2 + 1
    assert sched.stabilization_updates == (learning // 12) * 9 == 36
    assert sched.critic_updates == learning // 2 + 36 == len(calls)  # every update ran through the V-learner
    assert sched.policy_updates == (learning // 2) // 2  # no policy update in a stabilization phase
    phase_steps = [12 * k + 2 - 1 for k in (1, 2, 3, 4)]  # the env step at which each phase ran
    assert all(calls.count(step) == 9 + (1 if (step - 1) % 2 == 0 else 0) for step in phase_steps)
    with open(tmp_path / "metrics.csv") as f:
        row = list(csv.DictReader(f))[-1]
    assert float(row["sigma"]) == pytest.approx(sched.critic_updates / (50 * 4))
    assert float(row["utd_realised"]) == pytest.approx(sched.critic_updates / learning)
    assert float(row["stabilization_updates"]) == 36
