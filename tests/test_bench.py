"""Smoke test of the throughput benchmark: quick mode runs end to end and reports a positive rate for everything."""

from __future__ import annotations

import json
from pathlib import Path

import tasks
from launch import bench


def test_quick_bench_writes_positive_rates(tmp_path: Path) -> None:
    bench.main(["--quick", "--device", "cpu", "--out-dir", str(tmp_path)])
    results = json.loads((tmp_path / "throughput_cpu_quick.json").read_text())
    assert (tmp_path / "throughput_cpu_quick.md").read_text().startswith("# Throughput")

    env_rows = results["env"]
    assert {r["task"] for r in env_rows} == set(tasks.TASKS)
    assert {r["num_envs"] for r in env_rows} == set(bench.QUICK_ENV_COUNTS)
    assert all(r["env_steps_per_s"] > 0 and r["timed_vec_steps"] > 0 for r in env_rows)

    (default,) = [r for r in results["updates"] if r["network"] == "default"]
    assert default["critic_updates_per_s"] > 0 and default["actor_updates_per_s"] > 0
    assert default["critic_timed_updates"] > 0 and default["actor_timed_updates"] > 0
    assert results["machine"]["torch_version"] and results["command"].startswith("python -m launch.bench")

    options = {r["option"]: r for r in results["options"]}
    assert {"eager fp32", "bf16"} <= options.keys() and "cuda graphs" not in options  # CUDA-only options skipped
    assert all(r["critic_updates_per_s"] > 0 and r["critic_tflops"] > 0 for r in options.values())
    modes = {r["mode"]: r for r in results["e2e"]}
    assert set(modes) == set(bench.MODES)
    assert all(r["transitions_per_s"] > 0 and r["critic_updates_per_s"] > 0 for r in modes.values())
    assert modes["sequential"]["overlap_gain"] == 1.0


def test_critic_flops_by_hand():
    # critic in 13+3 -> 4 -> 5 atoms, 2 members: 2 * (16*4 + 4*5) = 168 MACs; actor 13 -> 2 -> 3: 26 + 6 = 32
    setting = bench.NetSetting("t", (4,), (2,), 5, batch_size=10)
    assert bench.critic_update_flops(setting, 13, 3) == 2.0 * 10 * (4 * 168 + 32)
