"""Learning tests: each algorithm reaches a return threshold on each core task within a fixed, seeded budget.

Budgets and thresholds (final deterministic evaluation, mean over 64 envs):
- pendulum (Pendulum-v1 returns; random policy about -1200, solved about -150): >= -300 within 32k env steps;
- cartpole-swingup (max 200; a hanging pole earns about 0, a cart parked at a wall about 18): >= 80 within 80k.

To keep the suite's time, a run stops early once a periodic evaluation (every ``EVERY`` env steps) reaches
``STOP``, a margin above the threshold (``--stop-at-return``); the budget stays the limit, and the assertion is on
the final evaluation after the stop. Seed 0, the full budgets, evaluated every 4k / 8k env steps (2-core CPU,
issue 11's reference-matched defaults): FastTD3 pendulum -996 at 8k, -147 at 12k, -143 at 32k; PQL pendulum
-1462 at 4k, -151 at 8k, -145 at 32k; PQL cartpole 79 at 16k, 95 at 24k, 159 at 40k, 173 at 80k; FastTD3
cartpole 48 at 32k, 80 at 40k, 127 at 48k, 187 at 80k.
"""

from __future__ import annotations

import pytest

from launch.train import parse
from parallel_rl.runtime import Trainer
from tasks import env_factory

EVERY = {"pendulum": 4000, "cartpole-swingup": 8000}
STOP = {"pendulum": -250.0, "cartpole-swingup": 100.0}

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
                 "--no-progress", "--log-every", "1000", "--eval-every", str(EVERY[task]), "--stop-at-return",
                 str(STOP[task])])  # fmt: skip
    summary = Trainer(cfg, env_factory(task)).run(tmp_path)
    assert summary["env_steps"] <= budget
    assert summary["final_eval_return"] >= threshold, summary
