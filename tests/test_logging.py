"""Run records: TensorBoard event files that TensorBoard's own reader parses (scalars and hyperparameters), W&B in
offline mode writing under the run directory, the resolved config as YAML and the code version (commit + diff)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

import tasks
from parallel_rl.config import replace_nested
from parallel_rl.io import code_version, flatten_hparams, open_run_logger
from parallel_rl.runtime import Trainer
from tests.conftest import tiny_config

REPO = Path(__file__).resolve().parents[1]


def read_events(run_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return events


def test_trainer_tensorboard_events_have_the_expected_scalars(tmp_path):
    # reacher3 episodes end after 100 steps; utd 0.5 keeps the run short.
    cfg = tiny_config(task="reacher3", total_env_steps=4 * 110, log_every=20, eval_every=400, schedule={"utd": 0.5})
    Trainer(cfg, tasks.env_factory("reacher3")).run(tmp_path)
    events = read_events(tmp_path)
    expected = {"utd_realised", "policy_ratio_realised", "sigma", "replay_ratio", "critic_loss", "actor_loss",
                "q_mean", "episode_return", "episode_length", "env_steps_per_s", "updates_per_s",
                "eval_return"}  # fmt: skip
    tags = set(events.Tags()["scalars"])
    assert expected <= tags, f"missing scalar tags: {sorted(expected - tags)}"
    utd = events.Scalars("utd_realised")
    assert [e.step for e in utd] == sorted(e.step for e in utd) and utd[-1].step == 4 * 110
    assert abs(utd[-1].value - 0.5) < 0.05


def hparams_content(events: EventAccumulator, tag: str) -> plugin_data_pb2.HParamsPluginData:
    data = plugin_data_pb2.HParamsPluginData()
    data.ParseFromString(events.PluginTagToContent("hparams")[tag])
    return data


def test_run_logger_records_config_code_version_and_hparams(tmp_path):
    cfg = tiny_config(agent={"gamma": 0.97}, schedule={"utd": 2.0})
    logger = open_run_logger(tmp_path, cfg, extra={"resolved_device": "cpu"})
    for step in (8, 16, 24):
        logger.log(step, {"episode_return": -step / 8, "critic_loss": 1.0 / step})
    logger.log_final(24, {"final_eval_return": -2.5, "checkpoint": "final.pt"})
    logger.close()

    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert config == json.loads(json.dumps({**dataclasses.asdict(cfg), "resolved_device": "cpu"}))
    assert config["agent"]["gamma"] == 0.97 and config["agent"]["actor_hidden"] == [16, 16]

    events = read_events(tmp_path)
    assert {"episode_return", "critic_loss", "final_eval_return"} <= set(events.Tags()["scalars"])
    assert [e.value for e in events.Scalars("episode_return")] == [-1.0, -2.0, -3.0]
    experiment = hparams_content(events, "_hparams_/experiment").experiment
    names = {h.name for h in experiment.hparam_infos}
    assert {"agent/gamma", "schedule/utd", "buffer/batch_size", "task", "logging/wandb"} <= names
    assert "final_eval_return" in {m.name.tag for m in experiment.metric_infos}
    start = hparams_content(events, "_hparams_/session_start_info").session_start_info
    assert start.hparams["agent/gamma"].number_value == pytest.approx(0.97)
    assert start.hparams["task"].string_value == "pendulum"
    assert start.hparams["agent/actor_hidden"].string_value == "[16, 16]"

    version = json.loads((tmp_path / "code_version.json").read_text())
    if not version["git"]:
        pytest.skip(f"the code under test is not a git checkout ({version['reason']})")
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert version["commit"] == head.strip()
    diff = subprocess.run(["git", "-C", str(REPO), "diff", "HEAD"], capture_output=True, text=True).stdout
    assert (tmp_path / "code.diff").read_text() == diff
    assert version["dirty"] == bool(version["modified"] or version["untracked"])


def test_code_version_outside_git(tmp_path, monkeypatch):
    monkeypatch.setenv("PARALLEL_RL_GIT_COMMIT", "abc123")
    info, diff = code_version(tmp_path)
    assert diff is None and info["git"] is False and info["commit"] == "abc123"


def test_code_version_ignores_an_enclosing_repository(tmp_path):
    """An installed copy inside some other repository (a venv in a project dir) is not that repository's code."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                    "--allow-empty", "-m", "init"], check=True)  # fmt: skip
    package = tmp_path / ".venv" / "site-packages" / "parallel_rl"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    info, diff = code_version(package)
    assert info["git"] is False and diff is None


def test_flatten_hparams_accepts_what_tensorboard_takes():
    flat = flatten_hparams({"a": {"b": (1, 2), "c": None}, "d": True, "e": 0.5})
    assert flat == {"a/b": "[1, 2]", "a/c": "None", "d": True, "e": 0.5}


def test_wandb_offline_writes_under_the_run_dir(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="W&B test needs pip install '.[wandb]'")
    for var, sub in (("WANDB_CONFIG_DIR", "config"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data")):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home" / sub))  # keep the user's W&B settings untouched
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    run_dir = tmp_path / "run"
    cfg = replace_nested(tiny_config(), {"logging": {"wandb": True, "wandb_mode": "offline", "wandb_project": "t"}})
    logger = open_run_logger(run_dir, cfg)
    logger.log(4, {"episode_return": -3.0, "critic_loss_marker_metric": 0.25})
    logger.log_final(4, {"final_eval_return": -2.0})
    logger.close()
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, f"expected one offline run under {run_dir / 'wandb'}"
    records = list(runs[0].glob("run-*.wandb"))
    assert len(records) == 1
    # W&B's service process appends the records shortly after finish() returns; its record log stores metric
    # names as plain protobuf strings.
    # Wait for both names: "final_eval_return" may already stand in an earlier record (the run's config), so
    # waiting for it alone raced the history record with the marker.
    deadline = time.monotonic() + 60
    markers = (b"critic_loss_marker_metric", b"final_eval_return")
    while not all(m in (data := records[0].read_bytes()) for m in markers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert b"critic_loss_marker_metric" in data and b"final_eval_return" in data
    assert (run_dir / "metrics.csv").is_file() and (run_dir / "tensorboard").is_dir()  # W&B is in addition


def test_trainer_run_records_yaml_code_version_hparams_and_final_return(tmp_path):
    cfg = tiny_config(task="reacher3", total_env_steps=4 * 30, log_every=10)
    summary = Trainer(cfg, tasks.env_factory("reacher3")).run(tmp_path)
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["task"] == "reacher3"
    assert (tmp_path / "code_version.json").is_file()
    events = read_events(tmp_path)
    assert "_hparams_/experiment" in events.PluginTagToContent("hparams")
    final = events.Scalars("final_eval_return")
    assert len(final) == 1 and final[0].value == pytest.approx(summary["final_eval_return"], rel=1e-6)


def test_a_resumed_runs_event_file_is_read_after_the_interrupted_runs(tmp_path):
    """TensorBoard reads event files in name order; a resumed run's purge marker must come last even when the
    interrupted run's file was made in the same second with a counter that sorts after the new one as text."""
    import os
    import socket
    import time

    from parallel_rl.io.logger import MetricsLogger

    tb = tmp_path / "tensorboard"
    tb.mkdir()
    # This second, this host and process, and a counter that sorts after any the new writer can take (as text).
    old = tb / f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.999999999"
    old.write_bytes(b"")
    logger = MetricsLogger(tmp_path, purge_step=5)
    logger.close()
    names = sorted(p.name for p in tb.glob("events.out.tfevents.*"))
    assert len(names) == 2 and names[0] == old.name
