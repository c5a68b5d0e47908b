"""Benchmark suites: tasks x algorithms x seeds, each run time-boxed, return recorded against env steps and wall-clock.

    python -m launch.benchmark --suite smoke [--out DIR] [--seeds 0 1] [--algos fasttd3] [--tasks pendulum] [--resume]
    python -m launch.benchmark --list

Writes to ``--out`` (default ``benchmarks/<suite>``):

- ``curves.csv``: ``suite,task,algo,seed,env_steps,wall_seconds,return``, one row per evaluation of every run;
- ``curves_<task>.png``: return against env steps and against wall-clock, mean over seeds with the min-max band;
- ``results.md``: per task and algorithm, time and env steps to the task's threshold, final return, env steps/s,
  published figures where they exist, and the machine (CPU, GPU, torch version, load) and date;
- ``runs/<task>/<algo>/seed<k>/``: each run's own directory (our trainer's metrics and checkpoint, the exact command,
  its log). A finished run holds a ``done`` file and is skipped by ``--resume``; a failed one holds ``error.txt``.

Suites are data (``Suite`` of ``SuiteTask``) in the ``SUITES`` registry (the built-in ones in ``launch/suites.py``);
another module adds its own with ``register_suite`` (imported through ``--plugins module``). Algorithms are run by
runners registered by name: ``fasttd3``, ``pql``, ``fastsac`` and ``crossq`` run our trainer in a subprocess
(``python -m launch.train``: one simulator per process, Isaac Gym imported first, a crash costs one run), and
``register_runner(name, fn)`` adds any other, where ``fn(task, seed, time_budget_s, env_step_budget, run_dir,
device)`` trains and returns rows ``{"env_steps", "wall_seconds", "return"}``.

"Return" is our trainer's deterministic ``eval_return`` (mean over ``eval_envs`` envs, logged every ``eval_every``
transitions); ``wall_seconds`` is training time, evaluation excluded. Time to threshold is the first evaluation at
or above the threshold, per seed; the table gives the median over the seeds that reached it.
"""

from __future__ import annotations

import sys

from launch._isaacgym_first import import_isaacgym_if_requested

import_isaacgym_if_requested(sys.argv[1:])  # Isaac Gym must be imported before torch

import csv  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import tyro  # noqa: E402

from parallel_rl.threads import child_env  # noqa: E402

CURVE_COLUMNS = ("suite", "task", "algo", "seed", "env_steps", "wall_seconds", "return")


# ---- suites -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SuiteTask:
    """One task of a suite: what counts as solved, and how much each run may spend."""

    task: str
    """Task name as ``--task`` takes it (``playground:HumanoidWalk``, ``gym:Humanoid-v5``, ``pendulum``, ...)."""
    threshold: float
    """Return that counts as solved (time and env steps to reach it are reported)."""
    time_budget_s: float
    """Training wall-clock limit of one run (evaluation and start-up excluded)."""
    env_step_budget: int
    """Transition limit of one run."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """TrainConfig overrides for our algorithms, on top of the task's preset (e.g. ``{"num_envs": 16}``)."""
    preset: str = "default"
    """Preset of our algorithms to start from."""
    algos: tuple[str, ...] | None = None
    """Algorithms for this task (None: the suite's)."""
    published: dict[str, str] = field(default_factory=dict)
    """algo -> a published figure to compare with (shown in the table), with its source."""
    threshold_source: str = ""
    """Where the threshold comes from."""


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    tasks: tuple[SuiteTask, ...]
    algos: tuple[str, ...] = ("fasttd3", "pql")
    seeds: tuple[int, ...] = (0, 1, 2)
    device: str = "auto"


SUITES: dict[str, Suite] = {}


def register_suite(suite: Suite, replace: bool = False) -> Suite:
    """Add a suite to the registry (``replace=True`` to redefine one)."""
    if suite.name in SUITES and not replace:
        raise ValueError(f"suite {suite.name!r} is already registered (pass replace=True to redefine it)")
    SUITES[suite.name] = suite
    return suite


# ---- runners ------------------------------------------------------------------------------------------------------
Runner = Callable[..., list[dict[str, float]]]
"""``fn(task, seed, time_budget_s, env_step_budget, run_dir, device) -> rows`` (rows: env_steps, wall_seconds,
return). Our trainer's runners also accept ``overrides`` and ``preset`` keywords."""

RUNNERS: dict[str, Runner] = {}


def register_runner(name: str, fn: Runner, replace: bool = False) -> Runner:
    if name in RUNNERS and not replace:
        raise ValueError(f"runner {name!r} is already registered (pass replace=True to redefine it)")
    RUNNERS[name] = fn
    return fn


def overrides_to_flags(overrides: dict[str, Any]) -> list[str]:
    """Nested TrainConfig overrides as ``launch.train`` flags (sections are flattened there)."""
    flags: list[str] = []
    for key, value in overrides.items():
        if isinstance(value, dict):
            flags += overrides_to_flags(value)
            continue
        name = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(name if value else f"--no-{key.replace('_', '-')}")
        elif isinstance(value, (tuple, list)):
            flags += [name, *map(str, value)]
        else:
            flags += [name, str(value)]
    return flags


def train_args(
    algo: str,
    task: str,
    seed: int,
    time_budget_s: float,
    env_step_budget: int,
    run_dir: Path,
    device: str,
    overrides: dict[str, Any] | None = None,
    preset: str = "default",
) -> list[str]:
    """``launch.train`` arguments of one suite run (training under ``run_dir / "train"``): the preset, the budgets,
    periodic evaluation (10 by default) and the suite's overrides. A run that did not finish starts again."""
    overrides = dict(overrides or {})
    overrides.setdefault("eval_every", max(1, env_step_budget // 10))
    return ["--task", task, "--algo", algo, "--preset", preset, "--seed", str(seed), "--device", device,
            "--total-env-steps", str(env_step_budget), "--max-wall-seconds", str(time_budget_s),
            "--run-dir", str(run_dir / "train"), "--overwrite", "--no-progress",
            *overrides_to_flags(overrides)]  # fmt: skip


def trainer_runner(algo: str) -> Runner:
    """Our trainer for ``algo``, in a subprocess: ``python -m launch.train`` with the preset, the suite's overrides,
    the budgets and periodic evaluation, then the ``eval_return`` rows of its ``metrics.csv``."""

    def run(task: str, seed: int, time_budget_s: float, env_step_budget: int, run_dir: Path, device: str, *,
            overrides: dict[str, Any] | None = None, preset: str = "default") -> list[dict[str, float]]:  # fmt: skip
        args = train_args(algo, task, seed, time_budget_s, env_step_budget, run_dir, device, overrides, preset)
        train_dir = run_dir / "train"
        command = [sys.executable, "-m", "launch.train", *args]
        (run_dir / "command.txt").write_text(shlex.join(command) + "\n")
        # A run that hangs (a simulator that never returns) is stopped: training time is boxed by the trainer, the
        # rest (start-up, compilation, evaluations) gets generous slack.
        limit = 3 * time_budget_s + 1800
        with (run_dir / "log.txt").open("w") as log:
            proc = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=limit, check=False,
                                  cwd=Path(__file__).resolve().parent.parent, env=child_env(None))  # fmt: skip
        if proc.returncode != 0:
            tail = (run_dir / "log.txt").read_text().strip().splitlines()[-15:]
            raise RuntimeError(f"launch.train exited with {proc.returncode}:\n" + "\n".join(tail))
        return read_eval_rows(train_dir / "metrics.csv")

    run.__name__ = f"run_{algo}"
    return run


def read_eval_rows(metrics_csv: Path) -> list[dict[str, float]]:
    rows = []
    with metrics_csv.open() as f:
        for row in csv.DictReader(f):
            if row.get("eval_return"):
                rows.append({"env_steps": int(float(row["env_step"])), "wall_seconds": float(row["wall_seconds"]),
                             "return": float(row["eval_return"])})  # fmt: skip
    return rows


for _algo in ("fasttd3", "pql", "fastsac", "crossq"):
    register_runner(_algo, trainer_runner(_algo))


# ---- running a suite ----------------------------------------------------------------------------------------------
def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def run_dir_of(out: Path, task: str, algo: str, seed: int) -> Path:
    return out / "runs" / slug(task) / algo / f"seed{seed}"


def _call_runner(fn: Runner, item: SuiteTask, seed: int, run_dir: Path, device: str) -> list[dict[str, float]]:
    params = inspect.signature(fn).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    extra = {k: v for k, v in (("overrides", item.overrides), ("preset", item.preset)) if takes_all or k in params}
    return fn(item.task, seed, item.time_budget_s, item.env_step_budget, run_dir, device, **extra)


def run_suite(suite: Suite, out: Path, *, seeds: Sequence[int] | None = None, algos: Sequence[str] | None = None,
              tasks: Sequence[str] | None = None, resume: bool = False, device: str | None = None,
              note: str = "", log: Callable[[str], None] = print) -> dict[str, Any]:  # fmt: skip
    """Run (or resume) every selected (task, algo, seed) of ``suite``, then write the CSV, plots and table."""
    seeds = tuple(suite.seeds if seeds is None else seeds)
    device = device or suite.device
    items = [t for t in suite.tasks if not tasks or t.task in tasks or any(name in t.task for name in tasks)]
    if tasks and not items:
        raise SystemExit(f"error: --tasks {' '.join(tasks)} matches no task of suite {suite.name!r} "
                         f"({', '.join(t.task for t in suite.tasks)})")  # fmt: skip
    plan = [(item, algo, seed) for item in items for algo in (item.algos or suite.algos)
            if algos is None or algo in algos for seed in seeds]  # fmt: skip
    unknown = sorted({algo for _, algo, _ in plan if algo not in RUNNERS})
    if unknown:
        raise SystemExit(f"error: no runner registered for {', '.join(unknown)} (known: {', '.join(RUNNERS)})")
    if not resume and any((run_dir_of(out, i.task, a, s) / "done").exists() for i, a, s in plan):
        raise SystemExit(f"error: {out} already holds finished runs of this suite; pass --resume to skip them and "
                         "run the rest, or choose another --out")  # fmt: skip
    machine = machine_info(note)
    started = time.perf_counter()
    for index, (item, algo, seed) in enumerate(plan, 1):
        run_dir = run_dir_of(out, item.task, algo, seed)
        label = f"[{index}/{len(plan)}] {item.task} {algo} seed {seed}"
        if (run_dir / "done").exists():
            log(f"{label}: done earlier, skipped")
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").unlink(missing_ok=True)
        log(f"{label}: running (budget {item.time_budget_s:.0f} s, {item.env_step_budget} env steps)")
        t0 = time.perf_counter()
        try:
            rows = _call_runner(RUNNERS[algo], item, seed, run_dir, device)
        except Exception as e:  # noqa: BLE001 - one failed run must not stop the suite
            (run_dir / "error.txt").write_text("".join(traceback.format_exception(e)))
            log(f"{label}: FAILED ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); see {run_dir}")
            continue
        _write_rows(run_dir / "curve.csv", rows)
        (run_dir / "done").write_text(json.dumps({"rows": len(rows), "seconds": time.perf_counter() - t0}) + "\n")
        last = rows[-1] if rows else {}
        log(f"{label}: {len(rows)} evaluations, final return {last.get('return', float('nan')):.2f} at "
            f"{last.get('env_steps', 0)} env steps in {time.perf_counter() - t0:.0f} s")  # fmt: skip
    machine["suite_seconds"] = time.perf_counter() - started
    return write_report(suite, out, items, seeds, algos, machine)


def _write_rows(path: Path, rows: list[dict[str, float]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["env_steps", "wall_seconds", "return"])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in ("env_steps", "wall_seconds", "return")})


def _read_rows(path: Path) -> list[dict[str, float]]:
    with path.open() as f:
        return [{"env_steps": int(float(r["env_steps"])), "wall_seconds": float(r["wall_seconds"]),
                 "return": float(r["return"])} for r in csv.DictReader(f)]  # fmt: skip


# ---- reporting ----------------------------------------------------------------------------------------------------
def machine_info(note: str = "") -> dict[str, Any]:
    import torch

    from launch.bench import cpu_model

    cpu = cpu_model()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "gpu": gpu, "torch": torch.__version__,
            "python": platform.python_version(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "load_average_at_start": [round(x, 2) for x in load], "note": note}  # fmt: skip


@dataclass
class Summary:
    """Aggregate of one (task, algo) over seeds."""

    task: str
    algo: str
    seeds: int
    reached: int
    seconds_to_threshold: float
    steps_to_threshold: float
    final_return_mean: float
    final_return_std: float
    env_steps_per_s: float


def summarize(item: SuiteTask, algo: str, curves: dict[int, list[dict[str, float]]]) -> Summary:
    import numpy as np

    times, steps, finals, rates = [], [], [], []
    for rows in curves.values():
        if not rows:
            continue
        hit = next((r for r in rows if r["return"] >= item.threshold), None)
        if hit is not None:
            times.append(hit["wall_seconds"])
            steps.append(hit["env_steps"])
        finals.append(rows[-1]["return"])
        rates.append(rows[-1]["env_steps"] / max(rows[-1]["wall_seconds"], 1e-9))
    nan = float("nan")
    return Summary(item.task, algo, len(finals), len(times), float(np.median(times)) if times else nan,
                   float(np.median(steps)) if steps else nan, float(np.mean(finals)) if finals else nan,
                   float(np.std(finals)) if finals else nan, float(np.mean(rates)) if rates else nan)  # fmt: skip


def write_report(suite: Suite, out: Path, items: list[SuiteTask], seeds: Sequence[int], algos: Sequence[str] | None,
                 machine: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Gather every finished run of the selection into curves.csv, PNG plots and results.md (+ results.json)."""
    out.mkdir(parents=True, exist_ok=True)
    curves: dict[tuple[str, str], dict[int, list[dict[str, float]]]] = {}
    failed: list[str] = []
    for item in items:
        for algo in item.algos or suite.algos:
            if algos is not None and algo not in algos:
                continue
            for seed in seeds:
                run_dir = run_dir_of(out, item.task, algo, seed)
                if (run_dir / "done").exists():
                    curves.setdefault((item.task, algo), {})[seed] = _read_rows(run_dir / "curve.csv")
                elif (run_dir / "error.txt").exists():
                    failed.append(f"{item.task} {algo} seed {seed} ({run_dir / 'error.txt'})")
    with (out / "curves.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CURVE_COLUMNS)
        for (task, algo), by_seed in curves.items():
            for seed, rows in sorted(by_seed.items()):
                for r in rows:
                    writer.writerow([suite.name, task, algo, seed, r["env_steps"], f"{r['wall_seconds']:.3f}",
                                     f"{r['return']:.6g}"])  # fmt: skip
    summaries = [summarize(item, algo, curves[(item.task, algo)]) for item in items
                 for algo in (item.algos or suite.algos) if (item.task, algo) in curves]  # fmt: skip
    plots = plot_curves(out, items, curves)
    (out / "results.md").write_text(markdown(suite, items, summaries, plots, failed, machine))
    result = {"suite": suite.name, "machine": machine, "failed": failed,
              "summaries": [dataclasses.asdict(s) for s in summaries]}  # fmt: skip
    (out / "results.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


def plot_curves(out: Path, items: list[SuiteTask], curves: dict) -> dict[str, str]:
    """One PNG per task: return vs env steps and vs wall-clock; mean over seeds with the min-max band."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    import numpy as np

    files = {}
    for item in items:
        algos = [(algo, by_seed) for (task, algo), by_seed in curves.items() if task == item.task]
        if not algos:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for x_key, ax, label in (("env_steps", axes[0], "env steps"), ("wall_seconds", axes[1], "wall-clock (s)")):
            for algo, by_seed in algos:
                runs = [r for r in by_seed.values() if r]
                if not runs:
                    continue
                if len(runs) == 1:
                    ax.plot([r[x_key] for r in runs[0]], [r["return"] for r in runs[0]], marker="o", ms=3,
                            label=f"{algo} (1 seed)")  # fmt: skip
                    continue
                end = min(r[-1][x_key] for r in runs)
                grid = np.linspace(min(r[0][x_key] for r in runs), end, 60)
                ys = np.stack([np.interp(grid, [p[x_key] for p in r], [p["return"] for p in r]) for r in runs])
                (line,) = ax.plot(grid, ys.mean(0), label=f"{algo} ({len(runs)} seeds)")
                ax.fill_between(grid, ys.min(0), ys.max(0), color=line.get_color(), alpha=0.2)
            ax.axhline(item.threshold, color="gray", ls="--", lw=1, label="threshold")
            ax.set_xlabel(label)
            ax.set_ylabel("evaluation return")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.suptitle(item.task)
        fig.tight_layout()
        name = f"curves_{slug(item.task)}.png"
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        files[item.task] = name
    return files


def _fmt(x: float, digits: int = 1) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


def markdown(suite: Suite, items: list[SuiteTask], summaries: list[Summary], plots: dict[str, str],
             failed: list[str], machine: dict[str, Any]) -> str:  # fmt: skip
    by_task = {item.task: item for item in items}
    lines = [
        f"# Benchmark suite `{suite.name}`",
        "",
        suite.description,
        "",
        f"- date: {machine['date']}",
        f"- machine: {machine['cpu']} ({machine['cpu_count']} cores), GPU: {machine['gpu']}",
        f"- torch {machine['torch']}, Python {machine['python']}",
        f"- load average when the suite started (1, 5, 15 min): {machine['load_average_at_start']}"
        + (f"; {machine['note']}" if machine.get("note") else ""),
        f"- wall-clock of this invocation: {machine.get('suite_seconds', float('nan')):.0f} s",
        "",
        "Return: deterministic evaluation return (mean over the evaluation envs). Time: training wall-clock,"
        " evaluation and start-up (JIT compilation, simulator launch) excluded. To threshold: first evaluation at or"
        " above the threshold, median over the seeds that reached it (reached/seeds). Final: last evaluation,"
        " mean ± std over seeds. Env steps/s: transitions per second of training wall-clock.",
        "",
        "| task | algo | threshold | reached | time to threshold (s) | env steps to threshold | final return"
        " | env steps/s | published |",
        "| --- | --- | ---: | :---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for s in summaries:
        item = by_task[s.task]
        lines.append(
            f"| `{s.task}` | {s.algo} | {_fmt(item.threshold, 2)} | {s.reached}/{s.seeds} | "
            f"{_fmt(s.seconds_to_threshold)} | {_fmt(s.steps_to_threshold, 0)} | "
            f"{_fmt(s.final_return_mean, 2)} ± {_fmt(s.final_return_std, 2)} | {_fmt(s.env_steps_per_s, 0)} | "
            f"{item.published.get(s.algo, '')} |"
        )
    sources = [f"- `{item.task}`: {item.threshold_source}" for item in items if item.threshold_source]
    if sources:
        lines += ["", "Thresholds:", *sources]
    if plots:
        lines += ["", "Learning curves:", ""] + [f"![{task}]({name})" for task, name in plots.items()]
    if failed:
        lines += ["", "Failed runs (rerun with --resume):", *[f"- {f}" for f in failed]]
    return "\n".join(lines) + "\n"


# ---- command line -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchmarkArgs:
    """Run a benchmark suite (tasks x algorithms x seeds), or --list the suites."""

    suite: str = "smoke"
    """Suite name (see --list)."""
    out: str | None = None
    """Output directory (default benchmarks/<suite>)."""
    seeds: tuple[int, ...] | None = None
    """Seeds to run (default: the suite's)."""
    algos: tuple[str, ...] | None = None
    """Algorithms to run (default: the suite's)."""
    tasks: tuple[str, ...] | None = None
    """Only the suite's tasks whose names contain one of these."""
    device: str | None = None
    """Device for our trainer (default: the suite's; 'auto' = CUDA if available)."""
    resume: bool = False
    """Skip runs that finished earlier (their run directory holds a 'done' file) and run the rest."""
    note: str = ""
    """Free text for the report (e.g. what else loaded the machine)."""
    list: bool = False
    """List the suites and exit."""
    plugins: tuple[str, ...] = ()
    """Modules to import first; they may call register_suite / register_runner (e.g. another algorithm's runner)."""


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    import importlib

    import launch.suites  # noqa: F401 - registers the built-in suites
    from launch.mjlab_h2h import register as register_mjlab

    register_mjlab()  # the mjlab PPO runner, G1 entries of humanoid/smoke, the head-to-head suites

    args = tyro.cli(BenchmarkArgs, args=argv)
    for module in args.plugins:
        importlib.import_module(module)
    if args.list:
        for suite in SUITES.values():
            print(f"{suite.name}: {suite.description} ({len(suite.tasks)} tasks, algos {', '.join(suite.algos)}, "
                  f"seeds {', '.join(map(str, suite.seeds))})")  # fmt: skip
        return None
    if args.suite not in SUITES:
        import difflib

        hint = difflib.get_close_matches(args.suite, list(SUITES), n=1)
        raise SystemExit(
            f"error: --suite: unknown suite {args.suite!r}"
            + (f"; did you mean {hint[0]!r}?" if hint else "")
            + f" (known: {', '.join(SUITES)})"
        )
    suite = SUITES[args.suite]
    out = Path(args.out or Path("benchmarks") / suite.name)
    result = run_suite(suite, out, seeds=args.seeds, algos=args.algos, tasks=args.tasks, resume=args.resume,
                       device=args.device, note=args.note)  # fmt: skip
    print(f"wrote {out / 'curves.csv'}, {out / 'results.md'} and the plots; {len(result['failed'])} failed runs")
    return result


if __name__ == "__main__":
    # Run the canonical module's main, so that suites and runners registered by other modules (which import
    # ``launch.benchmark``) land in the same registries as ours.
    from launch._cli import run_cli
    from launch.benchmark import main as canonical_main

    run_cli(canonical_main)
