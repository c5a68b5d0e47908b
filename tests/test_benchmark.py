"""The benchmark runner: suites and runners as registries, outputs (CSV, PNG, Markdown), resuming, failures, and our
trainer's runner through a real subprocess."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

from launch import benchmark
from launch.benchmark import Suite, SuiteTask, overrides_to_flags, register_runner, register_suite, run_suite


@pytest.fixture
def registries(monkeypatch):
    """Fresh copies of the registries for one test."""
    monkeypatch.setattr(benchmark, "SUITES", dict(benchmark.SUITES))
    monkeypatch.setattr(benchmark, "RUNNERS", dict(benchmark.RUNNERS))


def fake_runner(calls: list):
    """An external runner with exactly the documented signature: return climbs 10 per 1000 env steps."""

    def run(task: str, seed: int, time_budget_s: float, env_step_budget: int, run_dir: Path, device: str):
        calls.append((task, seed, time_budget_s, env_step_budget, Path(run_dir), device))
        if task == "explodes":
            raise RuntimeError("simulator crashed")
        steps = range(1000, env_step_budget + 1, 1000)
        return [{"env_steps": s, "wall_seconds": s / (100.0 + seed), "return": s / 100.0 + seed} for s in steps]

    return run


def test_suite_outputs_resume_and_failures(registries, tmp_path, monkeypatch):
    calls: list = []
    register_runner("fake", fake_runner(calls))
    suite = register_suite(Suite(
        name="unit", description="unit test suite",
        tasks=(SuiteTask("task-a", threshold=25.0, time_budget_s=5, env_step_budget=5000,
                         published={"fake": "1 min (paper)"}, threshold_source="made up"),
               SuiteTask("explodes", threshold=1.0, time_budget_s=5, env_step_budget=2000)),
        algos=("fake",), seeds=(0, 1), device="cpu"))  # fmt: skip
    with pytest.raises(ValueError, match="already registered"):
        register_suite(suite)
    out = tmp_path / "bench"
    result = run_suite(suite, out, log=lambda _: None)
    assert calls[0] == ("task-a", 0, 5, 5000, out / "runs" / "task-a" / "fake" / "seed0", "cpu")
    assert len(calls) == 4 and len(result["failed"]) == 2

    rows = list(csv.DictReader((out / "curves.csv").open()))
    assert tuple(rows[0]) == ("suite", "task", "algo", "seed", "env_steps", "wall_seconds", "return")
    assert len(rows) == 10 and {r["seed"] for r in rows} == {"0", "1"} and rows[0]["suite"] == "unit"
    if importlib.util.find_spec("matplotlib"):  # plots are skipped, not failed, without matplotlib
        assert (out / "curves_task-a.png").stat().st_size > 1000
    summary = result["summaries"][0]
    # seed 0 reaches 25 at 3000 steps (30 s), seed 1 at 3000 steps (3000/101 s): medians over both
    assert summary["reached"] == 2 and summary["steps_to_threshold"] == 3000
    assert summary["seconds_to_threshold"] == pytest.approx((30 + 3000 / 101) / 2)
    assert summary["final_return_mean"] == pytest.approx(50.5)
    md = (out / "results.md").read_text()
    assert "| `task-a` | fake | 25.00 | 2/2 |" in md and "1 min (paper)" in md and "torch" in md
    assert "explodes fake seed 0" in md and "curves_task-a.png" in md
    assert "simulator crashed" in (out / "runs" / "explodes" / "fake" / "seed0" / "error.txt").read_text()

    with pytest.raises(SystemExit, match="--resume"):
        run_suite(suite, out, log=lambda _: None)
    run_suite(suite, out, resume=True, log=lambda _: None)
    assert [c[0] for c in calls[4:]] == ["explodes", "explodes"]  # finished runs skipped, failed ones retried


def test_selection_and_unknown_runner(registries, tmp_path):
    calls: list = []
    register_runner("fake", fake_runner(calls))
    suite = Suite(name="sel", description="", tasks=(SuiteTask("a-1", 1.0, 1, 1000), SuiteTask("b-2", 1.0, 1, 1000)),
                  algos=("fake",), seeds=(0, 1, 2))  # fmt: skip
    run_suite(suite, tmp_path, seeds=[2], tasks=["b"], device="cpu", log=lambda _: None)
    assert [(c[0], c[1]) for c in calls] == [("b-2", 2)]
    with pytest.raises(SystemExit, match="no runner registered for nope"):
        run_suite(Suite("x", "", (SuiteTask("a", 1.0, 1, 10),), algos=("nope",)), tmp_path / "x", log=print)


def test_overrides_become_train_flags():
    from launch.train import parse

    overrides = {"num_envs": 8, "eval_every": 4000, "progress": False, "agent": {"critic_hidden": (32, 16)},
                 "schedule": {"utd": 0.5}, "buffer": {"batch_size": 64}}  # fmt: skip
    flags = overrides_to_flags(overrides)
    assert flags[:4] == ["--num-envs", "8", "--eval-every", "4000"] and "--no-progress" in flags
    cfg = parse(["--task", "pendulum", *flags])
    assert (cfg.num_envs, cfg.eval_every, cfg.progress) == (8, 4000, False)
    assert cfg.agent.critic_hidden == (32, 16) and cfg.schedule.utd == 0.5 and cfg.buffer.batch_size == 64


def test_builtin_suites_are_well_formed():
    import launch.suites  # noqa: F401
    import tasks

    for suite in (benchmark.SUITES["smoke"], benchmark.SUITES["humanoid"]):
        for item in suite.tasks:
            tasks.resolve(item.task)
            for algo in item.algos or suite.algos:
                assert algo in benchmark.RUNNERS
                tasks.preset(item.task, algo, item.preset)
            flags = overrides_to_flags(item.overrides)
            assert all(not f.startswith("--") or f[2:].replace("-", "_").removeprefix("no_") for f in flags)


def test_trainer_runner_in_a_subprocess(tmp_path):
    """Our FastTD3 runner end to end: python -m launch.train with the overrides, rows read from its metrics.csv."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    overrides = {"num_envs": 4, "eval_envs": 4, "eval_every": 200, "torch_threads": 1, "log_every": 10,
                 "agent": {"critic_hidden": (16, 16), "actor_hidden": (16, 16), "num_atoms": 11},
                 "buffer": {"batch_size": 32, "buffer_size": 4000}}  # fmt: skip
    rows = benchmark.RUNNERS["fasttd3"]("pendulum", 0, 120.0, 600, run_dir, "cpu", overrides=overrides)
    assert [r["env_steps"] for r in rows] == [200, 400, 600]
    assert all(r["wall_seconds"] > 0 and -2000 < r["return"] <= 0 for r in rows)
    assert "launch.train --task pendulum --algo fasttd3" in (run_dir / "command.txt").read_text()
    assert (run_dir / "train" / "summary.json").exists()
