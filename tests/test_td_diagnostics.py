"""TD-overfitting diagnostics: held-out envs feed a validation buffer that is never trained on; the TD loss on it
is logged beside the same loss on training data, with parameter norms."""

from __future__ import annotations

import csv

import tasks
from parallel_rl.runtime import Trainer
from tests.conftest import tiny_config


def test_validation_envs_are_held_out_and_logged(tmp_path):
    cfg = tiny_config(num_envs=4, td_validation_envs=1, total_env_steps=4 * 60, log_every=10)
    trainer = Trainer(cfg, tasks.env_factory("pendulum"))
    trainer.run(tmp_path)
    assert trainer.buffer.num_envs == 3 and trainer.val_buffer.num_envs == 1
    assert trainer.buffer.num_transitions == 3 * 60 and trainer.val_buffer.num_transitions == 60
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    last = rows[-1]
    for key in ("td_loss_train_batch", "td_loss_validation", "critic_param_norm", "actor_param_norm"):
        assert float(last[key]) > 0, key


def test_diagnostics_do_not_perturb_training(tmp_path):
    """Computing the diagnostics at every row or almost never gives bit-identical training (own sampling
    generator, global RNG forked around the target-smoothing noise)."""
    import torch

    params = []
    for log_every in (2, 1000):
        cfg = tiny_config(num_envs=4, td_validation_envs=1, total_env_steps=4 * 40, log_every=log_every)
        trainer = Trainer(cfg, tasks.env_factory("pendulum"))
        trainer.run(tmp_path / str(log_every))
        params.append(torch.cat([p.flatten() for p in trainer.algo.critic.parameters()]))
    assert torch.equal(params[0], params[1])


def test_stop_at_return_ends_the_run_after_the_evaluation_that_reached_it(tmp_path):
    cfg = tiny_config(total_env_steps=4 * 1000, eval_every=4 * 10, stop_at_return=-1e9)  # any return reaches it
    summary = Trainer(cfg, tasks.env_factory("pendulum")).run(tmp_path)
    assert summary["stopped_at_return"] and summary["env_steps"] == 4 * 11
    assert summary["critic_params"] > 0 and summary["actor_params"] > 0
