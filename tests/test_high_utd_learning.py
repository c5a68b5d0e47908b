"""Learning tests of issue 15 on pendulum, sized for the suite's time (each run ~25 CPU-seconds): a fixed, seeded
budget of 8 envs x 625 vectorized steps (5000 transitions), 4 critic updates per step, batch 128, 64-64 networks.

Pendulum-v1: a random or motionless policy scores about -1200 to -1400, a solved one about -150; the failing runs
below end between -1200 and -1600 (a spinning pendulum). Thresholds, with the final returns measured for seeds
0 / 1 / 2 at this budget (FastTD3's reference-matched defaults, issue 11):

- DEA with a SimbaV2 critic (one block of width 64): >= -400 (measured -143 / -220 / -204);
- DAC and VPL with the plain critic: >= -1000, i.e. clearly learning (DAC -174 / -1080 / -196; VPL
  -152 / -586 / -244);
- FastSAC with a BroNet critic (one block of width 64; 16 envs, 12 000 transitions, ~18 CPU-seconds): >= -1100
  (measured -136 / -234 / -1025). A weak bar, set by seed 2; it still separates a BroNet critic that learns from
  the failing runs (-1200 to -1600). BRO's BroNet was published with SAC.
- FastTD3 with the bounded-norm critic (batch norm, FlashSAC's; one block of width 128; 8000 transitions, stopped
  once a periodic evaluation passes -700, ~60 CPU-seconds): >= -1000 (measured at the full 8000 transitions
  -536 / -622 / -1547; seed 0 with the early stop -628). Learns on two seeds of three: the weakest of the four
  families on pendulum at this size (see below).

The budget was 3000 transitions before FastTD3's defaults followed its reference; at 3000 the same seeds gave DEA
-1003 / -220 / -764, VPL -1127 / -1153 / -1503 and DAC -957 / -900 / -1054: not yet learned, so a threshold there
tested the seed rather than the algorithm.

Not here, because they learned on fewer seeds or cost more than the suite's budget allows (seeds 0 / 1 / 2, 5000
transitions unless stated; docs/algorithms.md has the analysis): FastTD3 with a BroNet critic (-1210 / -1440 /
-368), with a SimbaV2 critic (-137 / -179 / -1474), with the bounded-norm critic at width 64 (RMS norm -1605,
batch norm -1515 on seed 0, the same at 10 000 transitions: its actor saturates at -1 within the first 1000
transitions, pre-tanh about -4, while the critic is nearly flat in the action); FastSAC with the bounded-norm
critic at width 64 (batch norm, 16 envs, 12 000 transitions: -661 / -1605 / -1542; RMS norm -194 / -1156 /
-1595); DEA with BroNet (-152 / -1416 / -671) or RMS-normed critics (-1580, seed 0). Their blocks are tested in
test_net_families.py.
"""

from __future__ import annotations

import pytest

from launch.train import parse
from parallel_rl.runtime import Trainer
from tasks import env_factory

BUDGET = 5000
BRONET = ["--critic-arch", "bronet", "--critic-width", "64", "--critic-depth", "1"]
NORMED = ["--critic-arch", "normed", "--normed-norm", "batch", "--critic-width", "128", "--critic-depth", "1"]
CASES = [  # (id, algo, env-step budget, extra flags, threshold)
    ("dea", "dea", BUDGET, ["--critic-arch", "simbav2", "--critic-width", "64", "--critic-depth", "1"], -400.0),
    ("dac", "dac", BUDGET, [], -1000.0),
    ("vpl", "vpl", BUDGET, ["--td-validation-envs", "2"], -1000.0),
    ("fastsac-bronet", "fastsac", 12_000, ["--num-envs", "16", *BRONET], -1100.0),
    ("fasttd3-normed", "fasttd3", 8000, [*NORMED, "--eval-every", "1000", "--stop-at-return", "-700"], -1000.0),
]


@pytest.mark.learning
@pytest.mark.parametrize("algo, budget, extra, threshold", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_learns_pendulum(algo, budget, extra, threshold, tmp_path):
    cfg = parse(["--task", "pendulum", "--algo", algo, "--seed", "0", "--device", "cpu", "--no-progress",
                 "--num-envs", "8", "--total-env-steps", str(budget), "--utd", "4", "--batch-size", "128",
                 "--critic-hidden", "64", "64", "--actor-hidden", "64", "64", "--eval-envs", "16",
                 "--log-every", "100000", "--no-tensorboard", "--no-record-code-version", *extra])  # fmt: skip
    summary = Trainer(cfg, env_factory("pendulum")).run(tmp_path)
    assert summary["env_steps"] <= budget
    assert summary["final_eval_return"] >= threshold, summary
