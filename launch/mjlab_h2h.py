"""mjlab suites for the benchmark runner, and a standalone head-to-head: our agents vs mjlab's own PPO on the same
mjlab task, seeds and wall-clock budget.

``register()`` adds the ``mjlab-ppo`` external runner and the suites below to ``launch.benchmark`` when that module
exists (it is a no-op otherwise, so this branch works alone). ``python -m launch.mjlab_h2h --suite mjlab-h2h-cpu
--out DIR`` runs a suite by itself and writes the benchmark's outputs: ``curves.csv``
(suite,task,algo,seed,env_steps,wall_seconds,return), ``curves.png`` (return vs wall-clock and vs env steps) and
``results.md`` (env steps/s and the return each algorithm reaches at equal wall-clock).

Returns on both sides are training-episode returns in mjlab's dt-scaled units: ours are the trainer's
``episode_return`` (mean over the episodes that ended in each logging interval, exploration noise on), PPO's are
rsl_rl's ``Train/mean_reward`` (mean of the last 100 episodes, stochastic policy). Neither side pays for
evaluation episodes inside its budget.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import platform
import time
from pathlib import Path
from typing import Any

G1_FLAT = "mjlab:Mjlab-Velocity-Flat-Unitree-G1"
G1_ROUGH = "mjlab:Mjlab-Velocity-Rough-Unitree-G1"
PPO = "mjlab-ppo"

SUITES: dict[str, list[dict[str, Any]]] = {
    # GPU runs: the G1 velocity tasks with each agent's full preset.
    "humanoid": [
        {
            "task": task,
            "algo": algo,
            "preset": "default",
            "seeds": 2,
            "time_budget_s": 3600.0,
            "env_step_budget": 2_000_000_000,
            "device": "cuda",
        }
        for task in (G1_FLAT, G1_ROUGH)
        for algo in ("fasttd3", "pql")
    ],  # fmt: skip
    # CPU smoke: the G1 flat task with the CPU preset, a minute of training.
    "smoke": [
        {
            "task": G1_FLAT,
            "algo": "fasttd3",
            "preset": "cpu",
            "seeds": 1,
            "time_budget_s": 60.0,
            "env_step_budget": 4000,
            "device": "cpu",
            "eval_episode_s": 1.0,
        },
    ],  # fmt: skip
    # The head-to-head of issue 7: same task, seeds and wall-clock budget for ours and mjlab's PPO (GPU).
    "mjlab-h2h": [
        {
            "task": G1_FLAT,
            "algo": algo,
            "preset": "default",
            "seeds": 2,
            "time_budget_s": 1800.0,
            "env_step_budget": 2_000_000_000,
            "device": "cuda",
        }
        for algo in ("fasttd3", PPO)
    ],  # fmt: skip
    # The same, CPU-sized, to show the path works end to end on a laptop.
    "mjlab-h2h-cpu": [
        {
            "task": G1_FLAT,
            "algo": algo,
            "preset": "cpu",
            "seeds": 1,
            "time_budget_s": 120.0,
            "env_step_budget": 10**9,
            "device": "cpu",
            "eval_episode_s": 1.0,
        }
        for algo in ("fasttd3", PPO)
    ],  # fmt: skip
}


#: Provisional "solved" return for the G1 velocity tasks in mjlab's x dt reward units (no published threshold; the
#: head-to-head compares returns at equal wall-clock, which needs none).
G1_THRESHOLD = 10.0


def register() -> bool:
    """Register the mjlab PPO runner and the suites with ``launch.benchmark``: G1 entries join the ``humanoid`` and
    ``smoke`` suites, and the head-to-head suites are added. False when the runner is not importable."""
    try:
        from launch import benchmark
    except ImportError:
        return False
    import dataclasses

    from launch.mjlab_ppo import run_mjlab_ppo

    benchmark.register_runner(PPO, run_mjlab_ppo, replace=True)

    def suite_tasks(entries: list[dict]) -> tuple:
        out = {}
        for e in entries:
            key = (e["task"], e["preset"])
            algos = out.get(key, {"algos": ()})["algos"] + (e["algo"],)
            out[key] = {**e, "algos": algos}
        return tuple(
            benchmark.SuiteTask(
                task=e["task"],
                threshold=G1_THRESHOLD,
                time_budget_s=e["time_budget_s"],
                env_step_budget=e["env_step_budget"],
                preset=e["preset"],
                algos=e["algos"],
                threshold_source="provisional (no published G1 threshold)",
            )  # fmt: skip
            for e in out.values()
        )

    for name, entries in SUITES.items():
        seeds = tuple(range(entries[0]["seeds"]))
        if name in benchmark.SUITES:
            suite = benchmark.SUITES[name]
            known = {t.task for t in suite.tasks}
            extra = tuple(t for t in suite_tasks(entries) if t.task not in known)
            benchmark.register_suite(dataclasses.replace(suite, tasks=suite.tasks + extra), replace=True)
        else:
            algos = tuple(dict.fromkeys(e["algo"] for e in entries))
            benchmark.register_suite(
                benchmark.Suite(
                    name=name,
                    description=f"mjlab G1 velocity: ours vs mjlab PPO ({name})",
                    tasks=suite_tasks(entries),
                    algos=algos,
                    seeds=seeds,
                    device=entries[0]["device"],
                ),  # fmt: skip
                replace=True,
            )
    return True


# ---- standalone head-to-head (until the benchmark runner is merged) ---------------------------------------------
def run_ours(
    task: str, algo: str, seed: int, time_budget_s: float, env_step_budget: int, run_dir: Path, device: str,
    preset: str = "default", eval_episode_s: float | None = None,
) -> list[dict]:  # fmt: skip
    """Train one of our agents with the task's preset under the budget; training-episode returns as rows.

    ``eval_episode_s`` shortens the episodes of the final evaluation env only (the trainer builds it after the
    training env). The head-to-head does not use that evaluation, and on a CPU a full 20 s G1 episode (1000 steps)
    would cost minutes outside the budget.
    """
    import tasks
    from launch.train import parse
    from parallel_rl.runtime.trainer import Trainer

    factory = tasks.env_factory(task)
    if eval_episode_s is not None:
        from parallel_rl.envs.mjlab import MjlabVecEnv

        built = []

        def factory(num_envs, device, seed):  # noqa: F811
            short = {"episode_length_s": eval_episode_s} if built else {}
            built.append(num_envs)
            return MjlabVecEnv(task.removeprefix("mjlab:"), num_envs, device, seed, **short)

    # --overwrite: a run that did not finish starts again in its directory
    cfg = parse(["--task", task, "--algo", algo, "--preset", preset, "--seed", str(seed), "--device", device,
                 "--max-wall-seconds", str(time_budget_s), "--no-progress", "--run-dir", str(run_dir),
                 "--overwrite"])  # fmt: skip
    if env_step_budget < cfg.total_env_steps:
        from parallel_rl.config import replace_nested

        cfg = replace_nested(cfg, {"total_env_steps": max(env_step_budget, cfg.num_envs)})
    Trainer(cfg, factory).run(run_dir)
    rows = []
    with open(Path(run_dir) / "metrics.csv") as f:
        for row in csv.DictReader(f):
            value = row.get("episode_return", "")
            if value not in ("", "nan"):
                rows.append({"env_steps": int(float(row["env_step"])), "wall_seconds": float(row["wall_seconds"]),
                             "return": float(value)})  # fmt: skip
    return rows


def run_entry(entry: dict[str, Any], seed: int, run_dir: Path) -> list[dict]:
    args = (entry["task"], seed, entry["time_budget_s"], entry["env_step_budget"], run_dir, entry["device"])
    if entry["algo"] == PPO:
        from launch.mjlab_ppo import run_mjlab_ppo

        return run_mjlab_ppo(*args)
    task, seed, budget, steps, run_dir, device = args
    return run_ours(task, entry["algo"], seed, budget, steps, run_dir, device, entry.get("preset", "default"),
                    entry.get("eval_episode_s"))  # fmt: skip


def return_at(rows: list[dict], wall_seconds: float) -> float:
    """The last logged return at or before ``wall_seconds`` (nan if none yet)."""
    seen = [r["return"] for r in rows if r["wall_seconds"] <= wall_seconds + 1e-9]
    return seen[-1] if seen else math.nan


def throughput(run_dir: Path) -> float:
    """Env steps/s of a finished run, from its summary (ours: training seconds; PPO: learning seconds)."""
    summary = json.loads((run_dir / "summary.json").read_text())
    if "env_steps_per_s" in summary:
        return float(summary["env_steps_per_s"])
    return summary["env_steps"] / max(summary["train_seconds"], 1e-9)


def write_outputs(suite: str, records: list[dict], out: Path, speeds: dict[str, list[float]], budget: float) -> None:
    fields = ["suite", "task", "algo", "seed", "env_steps", "wall_seconds", "return"]
    with open(out / "curves.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows({k: r[k] for k in fields} for r in records)
    runs: dict[tuple[str, str], dict[int, list[dict]]] = {}
    for r in records:
        runs.setdefault((r["task"], r["algo"]), {}).setdefault(r["seed"], []).append(r)
    ends = [max(r["wall_seconds"] for r in rows) for seeds in runs.values() for rows in seeds.values()]
    equal = min(ends) if ends else budget
    lines = [
        f"# {suite}: return at equal wall-clock",
        "",
        f"Budget {budget:.0f} s per run. Each run stops at the first iteration (PPO) or logging interval (ours) past",
        f"the budget, so returns are compared at T = {equal:.1f} s, the latest time every run reached: the last",
        "return each run had logged by then. Env steps/s are over each run's whole training time.",
        "",
        f"Machine: {platform.platform()}, {platform.processor() or platform.machine()}; {time.strftime('%Y-%m-%d')}.",
        "Returns are training-episode returns in mjlab's dt-scaled units (see launch/mjlab_h2h.py).",
        "",
        "| task | algo | seeds | env steps/s | env steps by T | return at T (mean over seeds) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for (task, algo), seeds in sorted(runs.items()):
        finals = [return_at(rows, equal) for rows in seeds.values()]
        finite = [x for x in finals if math.isfinite(x)]
        steps = [max((r["env_steps"] for r in rows if r["wall_seconds"] <= equal + 1e-9), default=0)
                 for rows in seeds.values()]  # fmt: skip
        speed = speeds.get(f"{task}|{algo}", [])
        lines.append(
            f"| {task} | {algo} | {len(seeds)} | {sum(speed) / max(len(speed), 1):.1f} | "
            f"{sum(steps) / len(steps):.0f} | "
            + (f"{sum(finite) / len(finite):.3f}" if finite else "no episode ended by T")
            + " |"
        )
    (out / "results.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (_task, algo), seeds in sorted(runs.items()):
        for seed, rows in seeds.items():
            label = f"{algo} seed {seed}"
            axes[0].plot([r["wall_seconds"] for r in rows], [r["return"] for r in rows], marker=".", label=label)
            axes[1].plot([r["env_steps"] for r in rows], [r["return"] for r in rows], marker=".", label=label)
    axes[0].set_xlabel("wall-clock seconds")
    axes[1].set_xlabel("env steps")
    for ax in axes:
        ax.set_ylabel("training episode return")
        ax.legend(fontsize=7)
    fig.suptitle(f"{suite}: {', '.join(sorted({t for t, _ in runs}))}")
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=120)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Run an mjlab suite (ours vs mjlab PPO) by itself.")
    p.add_argument("--suite", default="mjlab-h2h-cpu", choices=sorted(SUITES))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seeds", type=int, default=None, help="override the suite's seed count")
    p.add_argument("--time-budget-s", type=float, default=None, help="override the suite's wall-clock budget")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    records, speeds = [], {}
    budget = 0.0
    for entry in SUITES[a.suite]:
        entry = {**entry, **({"time_budget_s": a.time_budget_s} if a.time_budget_s else {})}
        budget = max(budget, entry["time_budget_s"])
        for seed in range(a.seeds or entry["seeds"]):
            run_dir = a.out / "runs" / f"{entry['algo']}-seed{seed}"
            print(f"[{a.suite}] {entry['task']} {entry['algo']} seed {seed} for {entry['time_budget_s']:.0f} s ...")
            rows = run_entry(entry, seed, run_dir)
            records += [{"suite": a.suite, "task": entry["task"], "algo": entry["algo"], "seed": seed, **r}
                        for r in rows]  # fmt: skip
            speeds.setdefault(f"{entry['task']}|{entry['algo']}", []).append(throughput(run_dir))
    write_outputs(a.suite, records, a.out, speeds, budget)
    print((a.out / "results.md").read_text())


if __name__ == "__main__":
    from launch._cli import run_cli

    run_cli(main)
