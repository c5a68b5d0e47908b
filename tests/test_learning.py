"""Learning tests: each algorithm reaches a return threshold on each core task within a fixed, seeded budget.

Budgets and thresholds (final deterministic evaluation, mean over 64 envs):
- pendulum (Pendulum-v1 returns; random policy about -1200, solved about -150): >= -300 within 32k env steps;
- cartpole-swingup (max 200; a hanging pole earns about 0, a cart parked at a wall about 18): >= 80 within 80k.
"""

from __future__ import annotations

import pytest

from launch.train import parse
from parallel_rl.runtime import Trainer
from tasks import env_factory

CASES = [
    ("fasttd3", "pendulum", 32_000, -300.0),
    ("pql", "pendulum", 32_000, -300.0),
    ("fasttd3", "cartpole-swingup", 80_000, 80.0),
    ("pql", "cartpole-swingup", 80_000, 80.0),
]


@pytest.mark.learning
@pytest.mark.parametrize("algo, task, budget, threshold", CASES)
def test_reaches_threshold(algo, task, budget, threshold, tmp_path):
    cfg = parse(["--task", task, "--algo", algo, "--seed", "0", "--total-env-steps", str(budget), "--device", "cpu",
                 "--no-progress", "--log-every", "1000"])  # fmt: skip
    summary = Trainer(cfg, env_factory(task)).run(tmp_path)
    assert summary["env_steps"] <= budget
    assert summary["final_eval_return"] >= threshold, summary
