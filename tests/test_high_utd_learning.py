"""Learning tests of issue 15 on pendulum, sized for the suite's time (each run ~25 CPU-seconds): a fixed, seeded
budget of 8 envs x 625 vectorized steps (5000 transitions), 4 critic updates per step, batch 128, 64-64 networks.

Pendulum-v1: a random or motionless policy scores about -1200 to -1400, a solved one about -150. Thresholds, with
the final returns measured for seeds 0 / 1 / 2 at this budget (FastTD3's reference-matched defaults, issue 11):

- DEA with a SimbaV2 critic (one block of width 64): >= -400 (measured -143 / -220 / -204);
- DAC and VPL with the plain critic: >= -1000, i.e. clearly learning (DAC -174 / -1080 / -196; VPL
  -152 / -586 / -244).

The budget was 3000 transitions before FastTD3's defaults followed its reference; at 3000 the same seeds gave DEA
-1003 / -220 / -764, VPL -1127 / -1153 / -1503 and DAC -957 / -900 / -1054: not yet learned, so a threshold there
tested the seed rather than the algorithm.

Not here, because they did not learn pendulum at this budget (seed 0): FastTD3 with a BroNet critic (-1525), with
the bounded-norm critic (RMS norm -1478; batch norm with VPL -1515) and DAC with a BroNet critic (-1530); see the
branch report. Their blocks are tested in test_net_families.py; BroNet and the bounded-norm critic did learn
cartpole-swingup in benchmarks/high_utd.
"""

from __future__ import annotations

import pytest

from launch.train import parse
from parallel_rl.runtime import Trainer
from tasks import env_factory

BUDGET = 5000
CASES = [
    ("dea", ["--critic-arch", "simbav2", "--critic-width", "64", "--critic-depth", "1"], -400.0),
    ("dac", [], -1000.0),
    ("vpl", ["--td-validation-envs", "2"], -1000.0),
]


@pytest.mark.learning
@pytest.mark.parametrize("algo, extra, threshold", CASES, ids=[c[0] for c in CASES])
def test_learns_pendulum(algo, extra, threshold, tmp_path):
    cfg = parse(["--task", "pendulum", "--algo", algo, "--seed", "0", "--device", "cpu", "--no-progress",
                 "--num-envs", "8", "--total-env-steps", str(BUDGET), "--utd", "4", "--batch-size", "128",
                 "--critic-hidden", "64", "64", "--actor-hidden", "64", "64", "--eval-envs", "16",
                 "--log-every", "100000", "--no-tensorboard", "--no-record-code-version", *extra])  # fmt: skip
    summary = Trainer(cfg, env_factory("pendulum")).run(tmp_path)
    assert summary["env_steps"] <= BUDGET
    assert summary["final_eval_return"] >= threshold, summary
