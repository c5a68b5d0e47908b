"""Learning tests of the SAC family: FastSAC and CrossQ + WN reach a return threshold within a fixed, seeded env-step
budget on pendulum and cartpole-swingup, CrossQ at 8 critic updates per env step too; and the deployed policy that
``load_policy`` rebuilds from a checkpoint acts as the trained one.

The runs use each algorithm's default preset (its update rules) with 64-64 networks and batch 128 to keep the CPU
cost small; thresholds as in ``test_learning.py`` (pendulum >= -300, random about -1200; cartpole-swingup >= 80,
a hanging pole about 0).
"""

from __future__ import annotations

import pytest
import torch

from launch.train import parse
from parallel_rl import load_policy
from parallel_rl.runtime import Trainer
from tasks import env_factory

SMALL = ["--critic-hidden", "64", "64", "--actor-hidden", "64", "64", "--batch-size", "128"]

CASES = [
    ("fastsac", "pendulum", 16_000, -300.0, ["--num-envs", "16"]),
    ("crossq", "pendulum", 16_000, -300.0, []),
    ("crossq", "pendulum", 12_000, -300.0, ["--utd", "8"]),
    ("fastsac", "cartpole-swingup", 40_000, 80.0, []),
    ("crossq", "cartpole-swingup", 32_000, 80.0, []),
]


@pytest.mark.learning
@pytest.mark.parametrize("algo, task, budget, threshold, extra", CASES)
def test_reaches_threshold(algo, task, budget, threshold, extra, tmp_path):
    cfg = parse(["--task", task, "--algo", algo, "--seed", "0", "--total-env-steps", str(budget), "--device", "cpu",
                 "--no-progress", "--log-every", "1000", *SMALL, *extra])  # fmt: skip
    summary = Trainer(cfg, env_factory(task)).run(tmp_path)
    assert summary["env_steps"] <= budget
    assert summary["final_eval_return"] >= threshold, summary


@pytest.mark.parametrize("algo", ["fastsac", "crossq"])
def test_load_policy_acts_as_the_trained_policy(algo, tmp_path):
    cfg = parse(["--algo", algo, "--total-env-steps", "320", "--num-envs", "4", "--eval-envs", "4", "--device",
                 "cpu", "--no-progress", "--learning-starts", "2", "--critic-hidden", "16", "16", "--actor-hidden",
                 "16", "16", "--batch-size", "16"])  # fmt: skip
    trainer = Trainer(cfg, env_factory("pendulum"))
    trainer.run(tmp_path)
    obs = torch.randn(32, 3) * 2
    with torch.no_grad():
        expected = trainer.deployed_policy()(obs)
        got = load_policy(tmp_path / "checkpoints" / "final.pt")(obs)
    assert torch.allclose(got, expected, atol=1e-6)
    assert got.abs().max() <= 2.0  # pendulum's torque bound
