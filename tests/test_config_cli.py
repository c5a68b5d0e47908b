"""Command line: flags, presets, and bad input failing before training with one clear message."""

from __future__ import annotations

import json

import pytest

from launch import train as train_cli
from parallel_rl.config import ConfigError, TrainConfig, validate


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        train_cli.main(args)
    return exc.value.code, capsys.readouterr().err


def test_help_lists_common_flags(capsys):
    with pytest.raises(SystemExit):
        train_cli.parse(["--help"])
    out = capsys.readouterr().out
    for flag in ["--task", "--algo", "--seed", "--num-envs", "--total-env-steps", "--utd", "--policy-ratio",
                 "--batch-size", "--device", "--run-dir", "--gamma", "--num-atoms"]:  # fmt: skip
        assert flag in out, flag
    assert "V-learner (critic) updates per vectorized env step" in out  # field docstrings become help


def test_preset_values_are_defaults_and_flags_override():
    cfg = train_cli.parse(["--task", "pendulum", "--algo", "pql"])
    assert cfg.agent.n_step == 3 and cfg.agent.reward_scale == 0.1 and cfg.schedule.utd == 4
    cfg = train_cli.parse(["--algo", "pql", "--utd", "2", "--n-step", "5", "--batch-size", "64"])
    assert cfg.schedule.utd == 2 and cfg.agent.n_step == 5 and cfg.buffer.batch_size == 64


@pytest.mark.parametrize(
    "args, message",
    [
        (["--utd", "0"], "--utd: must be > 0"),
        (["--utd", "-1"], "--utd: must be > 0"),
        (["--policy-ratio", "0"], "--policy-ratio: must be > 0"),
        (["--batch-size", "5000", "--buffer-size", "4096", "--num-envs", "32"], "--batch-size: 5000 is larger than"),
        (["--task", "pendulm"], "did you mean 'pendulum'"),
        (["--task", "cartpole"], "did you mean 'cartpole-swingup'"),
        (["--preset", "defualt"], "did you mean 'default'"),
        (["--algo", "fasttd4"], "did you mean 'fasttd3'"),
    ],
)
def test_bad_input_fails_before_training(args, message, capsys, tmp_path):
    code, err = run_cli([*args, "--run-dir", str(tmp_path / "run")], capsys)
    assert code == 2
    assert message in err
    assert err.count("error") == 1
    assert not (tmp_path / "run").exists()  # nothing was started


def test_validate_names_the_field():
    with pytest.raises(ConfigError, match="--learning-starts"):
        validate(TrainConfig(schedule=TrainConfig().schedule.__class__(learning_starts=0)))


def test_cli_trains_and_writes_run_dir(tmp_path):
    run_dir = tmp_path / "run"
    args = ["--total-env-steps", "640", "--num-envs", "16", "--no-progress", "--eval-envs", "8"]
    summary = train_cli.main([*args, "--critic-hidden", "16", "16", "--actor-hidden", "16", "--run-dir", str(run_dir)])
    on_disk = json.loads((run_dir / "summary.json").read_text())
    for key in ["final_eval_return", "env_steps", "critic_updates", "policy_updates", "wall_seconds", "checkpoint"]:
        assert key in on_disk
    assert on_disk["env_steps"] == 640 and on_disk == json.loads(json.dumps(summary, default=str))
    assert (run_dir / "config.json").exists() and (run_dir / "metrics.csv").exists()
    assert list((run_dir / "tensorboard").iterdir())
    assert (run_dir / "checkpoints" / "final.pt").exists()
