"""Seeded runs are bit-identical; the saved policy loads without the config and matches the trained one;
the observation normalizer's statistics are exact and saved."""

from __future__ import annotations

import numpy as np
import torch

import tasks
from parallel_rl import load_policy
from parallel_rl.nets import RunningNorm
from parallel_rl.runtime import Trainer
from tests.conftest import tiny_config


def trained(seed: int, tmp_path) -> Trainer:
    cfg = tiny_config(seed=seed, total_env_steps=4 * 201, schedule={"utd": 1, "policy_ratio": 0.5})
    trainer = Trainer(cfg, tasks.env_factory("pendulum"))
    trainer.run(tmp_path / f"run{seed}-{np.random.randint(1 << 30)}")
    assert trainer.scheduler.critic_updates == 200
    return trainer


def state(trainer: Trainer) -> dict[str, torch.Tensor]:
    out = {f"critic.{k}": v for k, v in trainer.algo.critic.state_dict().items()}
    out.update({f"actor.{k}": v for k, v in trainer.algo.policy.state_dict().items()})
    out.update({f"target.{k}": v for k, v in trainer.algo.critic_target.state_dict().items()})
    out.update({f"norm.{k}": v for k, v in trainer.algo.normalizer.state_dict().items()})
    return out


def test_same_seed_gives_bit_identical_parameters(tmp_path):
    a, b, c = state(trained(0, tmp_path)), state(trained(0, tmp_path)), state(trained(1, tmp_path))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_load_policy_matches_trained_policy_and_respects_bounds(tmp_path):
    trainer = trained(0, tmp_path)
    summary_ckpt = next((tmp_path).glob("run0-*/checkpoints/final.pt"))
    policy = load_policy(summary_ckpt)
    obs = torch.randn(256, 3) * 5
    with torch.no_grad():
        expected = trainer.deployed_policy()(obs)
        got = policy(obs)
    assert got.shape == (256, 1) and got.dtype == torch.float32
    assert torch.allclose(got, expected, atol=1e-6)
    assert got.min() >= -2.0 and got.max() <= 2.0  # pendulum torque bounds, not [-1, 1]
    assert policy.normalizer.count.item() == trainer.algo.normalizer.count.item() > 0


def test_running_norm_matches_numpy_over_batches():
    g = np.random.default_rng(0)
    batches = [g.normal(3.0, 2.0, size=(n, 4)) for n in (1, 7, 100, 33)]
    norm = RunningNorm(4)
    for b in batches:
        norm.update(torch.as_tensor(b, dtype=torch.float32))
    data = np.concatenate(batches)
    assert np.allclose(norm.mean.numpy(), data.mean(0), atol=1e-5)
    assert np.allclose(norm.var.numpy(), data.var(0), rtol=1e-4)
    assert norm.count.item() == len(data)
    assert set(norm.state_dict()) == {"mean", "var", "count"}
