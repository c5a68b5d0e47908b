"""BRC's adaptive per-task reward normalization (``--reward-normalization brc``, algos/reward_normalization.py):
the per-task return bounds against hand computations, the V-learner's batch scaling, and a run on toy tasks whose
bounds are known in closed form."""

from __future__ import annotations

import pytest
import torch

from parallel_rl.algos.reward_normalization import ReturnScaleTracker, discounted_returns_to_go
from parallel_rl.config import ConfigError, validate
from parallel_rl.runtime import Trainer
from tests.conftest import tiny_config
from tests.test_multitask import toy_factory

F, T = False, True


def step(tracker, rewards, terminated, truncated, task):
    tracker.observe(torch.tensor(rewards), torch.tensor(terminated), torch.tensor(truncated), torch.tensor(task))


def test_bounds_and_factors_by_hand():
    """gamma 0.5; envs 0, 1 run task 0, env 2 task 1.
    Step 1-2: env 0 earns [1, 2] and terminates: G = (1 + 0.5 * 2, 2) = (2, 2). Env 1 earns [-4, 0] and is truncated:
    B = mean / (1 - gamma) = -4, G_1 = 0 + 0.5 * -4 = -2, G_0 = -4 + 0.5 * -2 = -5. Task 0: low -5, high 2, M = 5,
    factor v_max / M = 10 / 5 = 2. Env 2 (task 1) earns [3, 1] and goes on: task 1 has no finished episode, factor 0.
    Step 3: env 0 earns 10 and terminates at once (G = 10, a new high: M = 10, factor 1); env 2 earns 0 and is
    truncated: rewards [3, 1, 0], B = (4 / 3) / 0.5 = 8 / 3, G_2 = 4 / 3, G_1 = 1 + 2 / 3 = 5 / 3,
    G_0 = 3 + 5 / 6 = 23 / 6: task 1's factor 10 / (23 / 6)."""
    tracker = ReturnScaleTracker(num_envs=3, num_tasks=2, max_episode_steps=4, gamma=0.5, device="cpu")
    task = [0, 0, 1]
    bounds = tracker.bounds
    assert bounds.reward_factor(torch.tensor([0, 1]), 10.0).tolist() == [0.0, 0.0]  # nothing seen: BRC's 1 / inf
    step(tracker, [1.0, -4.0, 3.0], [F, F, F], [F, F, F], task)
    step(tracker, [2.0, 0.0, 1.0], [T, F, F], [F, T, F], task)
    assert bounds.low.tolist() == [-5.0, float("inf")] and bounds.high.tolist() == [2.0, float("-inf")]
    assert bounds.reward_factor(torch.tensor([0, 1, 0]), 10.0).tolist() == pytest.approx([2.0, 0.0, 2.0])
    step(tracker, [10.0, -1.0, 0.0], [T, F, F], [F, F, T], task)
    assert bounds.low.tolist() == pytest.approx([-5.0, 4 / 3]) and bounds.high.tolist() == pytest.approx([10.0, 23 / 6])
    assert bounds.reward_factor(torch.tensor([0, 1]), 10.0).tolist() == pytest.approx([1.0, 10 / (23 / 6)])
    assert tracker.lengths.tolist() == [0, 1, 0]  # env 0 reset twice, env 1 and env 2 once


def test_returns_to_go_match_a_loop():
    gen = torch.Generator().manual_seed(0)
    rewards, lengths = torch.randn(5, 7, generator=gen), torch.tensor([7, 1, 4, 0, 6])
    bootstrap, gamma = torch.randn(5, generator=gen), 0.9
    low, high = discounted_returns_to_go(rewards, lengths, bootstrap, gamma)
    for row in range(5):
        values, nxt = [], bootstrap[row].item()
        for i in reversed(range(int(lengths[row]))):
            nxt = rewards[row, i].item() + gamma * nxt
            values.append(nxt)
        expect = (min(values), max(values)) if values else (float("inf"), float("-inf"))
        assert (low[row].item(), high[row].item()) == pytest.approx(expect, rel=1e-9)


def test_run_on_toy_tasks_scales_the_vlearner_batch(tmp_path):
    """toy-a pays 1 x 0.1 (reward scale) x 0.5 (task scale) every step, toy-b -2 x 0.1 x 3; episodes end by time
    limit only, so every return-to-go is r / (1 - gamma): M = 0.05 / 0.01 = 5 and 0.6 / 0.01 = 60. The V-learner
    multiplies sampled rewards by v_max / M (the P-learner's batch is left alone)."""
    cfg = tiny_config(task="multi:toy-a,toy-b", num_envs=4, eval_envs=2, total_env_steps=4 * 12, eval_every=4 * 12,
                      agent={"task_reward_scales": (0.5, 3.0), "task_embedding_dim": 2, "reward_normalization": "brc",
                             "v_min": -10.0, "v_max": 10.0, "gamma": 0.99})  # fmt: skip
    trainer = Trainer(cfg, toy_factory())
    trainer.run(tmp_path / "run")
    algo = trainer.algo
    assert algo.return_scale.bounds.scale().tolist() == pytest.approx([5.0, 60.0], rel=1e-5)
    assert algo.bounds_for_vlearner.scale().tolist() == pytest.approx([5.0, 60.0], rel=1e-5)  # published
    batch = trainer.buffer.sample(64)
    task = batch["obs"][:, -1].long()
    scaled = algo._normalized(batch, algo.norm_for_vlearner, algo.cnorm_for_vlearner)["reward"]
    expect = batch["reward"] * torch.where(task == 0, 10 / 5.0, 10 / 60.0)
    assert torch.allclose(scaled, expect) and (batch["reward"] != 0).any()
    assert torch.equal(algo._normalized(batch, algo.norm_for_plearner, None)["reward"], batch["reward"])
    saved = algo.state_dict()["return_scale"]
    assert torch.equal(saved["bounds"]["high"], algo.return_scale.bounds.high)


def test_config_errors():
    with pytest.raises(ConfigError, match="v-min"):
        validate(tiny_config(agent={"reward_normalization": "brc", "v_min": -5.0, "v_max": 10.0}))
    with pytest.raises(ConfigError, match="TD3 family"):
        validate(tiny_config(algo="fastsac", agent={"reward_normalization": "brc", "v_min": -10.0, "v_max": 10.0}))
    validate(tiny_config(agent={"reward_normalization": "brc", "v_min": -10.0, "v_max": 10.0}))
