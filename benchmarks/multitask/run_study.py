"""Multi-task study: one agent on {pendulum, cartpole-swingup, reacher3} vs three single-task agents with the same
env steps and critic updates in total, and transfer of the multi-task agent to a held-out task vs scratch.

    nice -n 15 python benchmarks/multitask/run_study.py [--scale 0.5] [--workers 2] [--variants fixed brc]

Every run is ``python -m launch.train`` in its own process (``--workers`` at a time); run directories go under
``<out>/runs`` (not committed), results to ``<out>/results.md``, ``curves.csv``, ``summary.csv`` and PNGs.

Design (same data and compute on both sides):
- single-task: task k runs ``budget_k`` env steps on ``envs_per_task`` envs at ``--utd`` critic updates per
  vectorized step;
- multi-task: ``multi:pendulum,cartpole-swingup,reacher3`` with ``--task-weights`` proportional to the budgets, so
  that each task gets its single-task run's env steps, on 3 x ``envs_per_task`` envs at 3 x ``--utd`` (the same
  critic updates per transition, hence the same total updates), the same networks and batch size, a learnable task
  embedding, in one or both variants (``--variants``): 'fixed', the multi-task preset's per-task reward scales and
  the union of the value supports (``tasks.multitask``); 'brc', BRC's adaptive per-task reward normalization
  (``--reward-normalization brc``) on the support [-10, 10];
- score per task: (multi - random) / (single - random) x 100 on the final deterministic evaluation (seed means);
- transfer: ``cartpole-balance`` (held out) from each multi-task seed's final checkpoint of the ``--transfer-from``
  variant(s) (``--init-from``, fresh task embedding, nothing frozen) vs from scratch, same budget and the same value
  support and reward normalization as that variant; compared by the mean of the evaluation curve (area under it
  per env step) and by the final return.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TASKS = ("pendulum", "cartpole-swingup", "reacher3")
MULTI = "multi:" + ",".join(TASKS)
HELD_OUT = "cartpole-balance"
FIXED = ["--v-min", "-135", "--v-max", "101"]  # the multi-task preset's union of the supports at gamma 0.99
BRC = ["--reward-normalization", "brc", "--v-min", "-10", "--v-max", "10"]
BIG_BATCH = ["--batch-size", "768", "--utd", "4"]
FITTED = ["--task-reward-scales", "0.1", "1", "0.3333333", "--v-min", "-50", "--v-max", "101"]
#: Flags of each multi-task variant (and of the transfer runs that start from it).
VARIANTS = {
    "fixed": FIXED,
    "brc": BRC,
    # Per-task reward scales that undo the shared discount's stretch instead of widening the support: reacher3's
    # rewards x (1 - 0.99) / (1 - 0.97) = 1/3 keep its values in its own preset's [-45, 1] at gamma 0.99, so the
    # union of the presets' supports is [-50, 101] (pendulum 0.1 as in its preset, cartpole-swingup 1).
    "fitted": FITTED,
    # 3 x the batch at a third of the updates: the same env steps and the same samples per transition (replay ratio)
    # as the other variants, with a task's rows per batch (in proportion to its envs) 256 on average, as in the
    # single-task runs, instead of 85.
    "fixed-b768": [*FIXED, *BIG_BATCH],
    "brc-b768": [*BRC, *BIG_BATCH],
    # 'fitted' plus HER's squared-action penalty in the actor loss (--action-l2; lambda 0.03 chosen on seed 1 among
    # 0.01, 0.03, 0.1, see results.md), against the actor saturating at a constant action.
    "fitted-l2": [*FITTED, "--action-l2", "0.03"],
    # 'brc' (which swung cartpole-swingup up on every seed but lost pendulum on two) with the same penalty.
    "brc-l2": [*BRC, "--action-l2", "0.03"],
    # 'brc-l2' with a critic twice as wide (BRC's lever is the critic's size; the actor stays at the presets' width).
    "brc-l2-w512": [*BRC, "--action-l2", "0.03", "--critic-hidden", "512", "512"],
}


def multi_name(variant: str, seed: int) -> str:
    return f"multi-s{seed}" if variant == "fixed" else f"multi-{variant}-s{seed}"


def held_out_name(kind: str, source: str, seed: int) -> str:
    """Run name of a held-out-task run ('scratch' or 'transfer') with the flags of multi-task variant ``source``."""
    return f"{kind}-{HELD_OUT}-s{seed}" if source == "fixed" else f"{kind}-{source}-{HELD_OUT}-s{seed}"


def common_flags(args) -> list[str]:
    hidden = [str(h) for h in args.hidden]
    return ["--device", "cpu", "--no-progress", "--torch-threads", "1", "--critic-hidden", *hidden, "--actor-hidden",
            *hidden, "--num-atoms", str(args.atoms), "--batch-size", str(args.batch_size), "--log-every", "50",
            "--no-tensorboard", "--no-record-code-version"]  # fmt: skip


def plan(args) -> list[dict]:
    budgets = {t: int(b * args.scale) // args.envs * args.envs for t, b in zip(TASKS, args.budgets)}
    runs = []
    for seed in args.seeds:
        for task in TASKS:
            runs.append({"name": f"single-{task}-s{seed}", "kind": "single", "task": task, "seed": seed, "argv": [
                "--task", task, "--seed", str(seed), "--num-envs", str(args.envs), "--eval-envs", "32",
                "--utd", str(args.utd), "--total-env-steps", str(budgets[task]),
                "--eval-every", str(max(args.envs, budgets[task] // args.evals)), "--buffer-size", "200000",
            ]})  # fmt: skip
        total = sum(budgets.values())
        for variant in args.variants:
            runs.append({"name": multi_name(variant, seed), "kind": "multi", "variant": variant, "task": MULTI,
                         "seed": seed, "argv": [
                "--task", MULTI, "--seed", str(seed), "--num-envs", str(3 * args.envs), "--eval-envs", "96",
                "--task-weights", *[str(budgets[t]) for t in TASKS], "--utd", str(3 * args.utd),
                "--total-env-steps", str(total), "--eval-every", str(max(3 * args.envs, total // args.evals)),
                "--buffer-size", "600000", "--task-embedding-dim", str(args.embedding_dim), *VARIANTS[variant],
            ]})  # fmt: skip
    for source in args.transfer_from:
        for seed in args.seeds:
            common = ["--task", HELD_OUT, "--seed", str(seed), "--num-envs", str(args.envs), "--eval-envs", "32",
                      "--utd", str(args.utd), "--total-env-steps", str(args.transfer_steps), "--eval-every",
                      str(max(args.envs, args.transfer_steps // args.evals)), "--buffer-size", "200000",
                      *VARIANTS[source]]  # the source variant's support and reward normalization  # fmt: skip
            runs.append({"name": held_out_name("scratch", source, seed), "kind": "scratch", "task": HELD_OUT,
                         "seed": seed, "source": source, "argv": common})  # fmt: skip
            runs.append({"name": held_out_name("transfer", source, seed), "kind": "transfer", "task": HELD_OUT,
                         "seed": seed, "source": source, "after": multi_name(source, seed), "argv": [
                *common, "--task-embedding-dim", str(args.embedding_dim), "--init-from",
                f"{{runs}}/{multi_name(source, seed)}/checkpoints/final.pt"]})  # fmt: skip
    return runs


def run_one(run: dict, runs_dir: Path, flags: list[str], done_events: dict) -> dict:
    run_dir = runs_dir / run["name"]
    if (run_dir / "summary.json").is_file():
        return run
    if "after" in run:
        done_events[run["after"]].result()  # the checkpoint must exist
    argv = [a.replace("{runs}", str(runs_dir)) for a in run["argv"]]
    # The run's own flags last: a variant may override a common flag (--batch-size); the last occurrence wins.
    cmd = [sys.executable, "-m", "launch.train", *flags, *argv, "--run-dir", str(run_dir)]
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with (runs_dir / f"{run['name']}.log").open("w") as log:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ,
                              "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})  # fmt: skip
    print(f"{run['name']}: exit {proc.returncode} after {time.time() - start:.0f} s", flush=True)
    return run


def random_returns(episodes: int = 64) -> dict[str, float]:
    """Mean return of uniformly random actions per task (the 0 of the score)."""
    import torch

    import tasks

    out = {}
    for task in (*TASKS, HELD_OUT):
        env = tasks.make_env(task, episodes, "cpu", 12345)
        gen = torch.Generator().manual_seed(0)
        low, high = env.spec.action_bounds()
        env.reset(seed=12345)
        total, running = torch.zeros(episodes), torch.ones(episodes, dtype=torch.bool)
        for _ in range(env.spec.max_episode_steps):
            act = low + (high - low) * torch.rand(episodes, env.spec.act_dim, generator=gen)
            o = env.step(act)
            total += o["reward"] * running
            running &= ~(o["terminated"] | o["truncated"])
        out[task] = total.mean().item()
    return out


def eval_curve(run_dir: Path, column: str) -> list[tuple[int, float]]:
    with (run_dir / "metrics.csv").open() as f:
        return [(int(float(r["env_step"])), float(r[column])) for r in csv.DictReader(f) if r.get(column)]


def mean_std(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()  # fmt: skip
        return head.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except OSError:
        return "unknown"


def report(args, runs: list[dict], out: Path, machine: dict, wall: float) -> None:
    runs_dir = out / "runs"
    budgets = {t: int(b * args.scale) // args.envs * args.envs for t, b in zip(TASKS, args.budgets)}
    share = {t: budgets[t] / sum(budgets.values()) for t in TASKS}
    rand = random_returns()
    curves_rows, missing = [], []
    single: dict[str, list[float]] = {}
    multi: dict[tuple[str, str], list[float]] = {}
    for task in TASKS:
        single[task] = []
        for seed in args.seeds:
            s_dir = runs_dir / f"single-{task}-s{seed}"
            if (s_dir / "summary.json").is_file():
                single[task].append(json.loads((s_dir / "summary.json").read_text())["final_eval_return"])
                curves_rows += [{"kind": "single", "task": task, "seed": seed, "task_env_steps": s, "return": r}
                                for s, r in eval_curve(s_dir, "eval_return")]  # fmt: skip
            else:
                missing.append(s_dir.name)
        for variant in args.variants:
            multi[variant, task] = []
            kind = "multi" if variant == "fixed" else f"multi-{variant}"
            for seed in args.seeds:
                m_dir = runs_dir / multi_name(variant, seed)
                if (m_dir / "summary.json").is_file():
                    summary = json.loads((m_dir / "summary.json").read_text())
                    multi[variant, task].append(summary["final_eval_return_per_task"][task])
                    curves_rows += [{"kind": kind, "task": task, "seed": seed, "task_env_steps": round(s * share[task]),
                                     "return": r} for s, r in eval_curve(m_dir, f"eval_return/{task}")]  # fmt: skip
                elif m_dir.name not in missing:
                    missing.append(m_dir.name)
    transfer: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for source in args.transfer_from:
        transfer[source] = {}
        for kind in ("scratch", "transfer"):
            finals, aucs = [], []
            for seed in args.seeds:
                d = runs_dir / held_out_name(kind, source, seed)
                if not (d / "summary.json").is_file():
                    missing.append(d.name)
                    continue
                curve = eval_curve(d, "eval_return")
                label = kind if source == "fixed" else f"{kind}-{source}"
                curves_rows += [{"kind": label, "task": HELD_OUT, "seed": seed, "task_env_steps": s, "return": r}
                                for s, r in curve]  # fmt: skip
                finals.append(json.loads((d / "summary.json").read_text())["final_eval_return"])
                aucs.append(sum(r for _, r in curve) / len(curve))
            transfer[source][kind] = (finals, aucs)
    with (out / "curves.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["kind", "task", "seed", "task_env_steps", "return"])
        w.writeheader()
        w.writerows(curves_rows)
    hidden = tuple(args.hidden)
    lines = [
        "# Multi-task vs single-task on the built-in tasks (2-core CPU)",
        "",
        f"- date: {machine['date']}; machine: {machine['cpu']} ({machine['cpu_count']} cores), GPU: {machine['gpu']}",
        f"- torch {machine['torch']}, Python {machine['python']}; code: commit {machine['commit']}",
        f"- command: `{machine['command']}`",
        f"- load average (1, 5, 15 min) at start: {machine['load_start']}, at end: {machine['load_end']}; the cores "
        f"are shared with other agents' work; every run at the nice level of the command, {args.workers} at a time, "
        "1 torch thread each",
        f"- wall-clock of the whole study: {wall:.0f} s",
        f"- scale: {args.scale} x the single-task CPU presets' budgets (pendulum 40k, cartpole-swingup 80k, reacher3"
        f" 100k env steps) -> {budgets}; {args.envs} envs and utd {args.utd} per task; networks {hidden} (critic "
        f"and actor), C51 {args.atoms} atoms, batch {args.batch_size}; task embedding {args.embedding_dim}; seeds "
        f"{list(args.seeds)}",
        f"- multi-task runs: `{MULTI}`, task weights = budgets, {3 * args.envs} envs, utd {3 * args.utd}: the same "
        "env steps per task and the same critic updates in total as the three single-task runs together. Variants: "
        + "; ".join(f"'{v}': `{' '.join(VARIANTS[v])}`" for v in args.variants),
        "",
        "Score = (multi - random) / (single - random) x 100 on the final deterministic evaluation (means over "
        "seeds; random = uniform random actions, 64 episodes). Acceptance asks >= 80 on every task.",
        "",
        "| task | random | single-task final (mean ± std) | variant | multi-task final (mean ± std) | score % "
        "| >= 80 |",
        "| --- | ---: | ---: | --- | ---: | ---: | :---: |",
    ]
    verdicts: dict[str, list[bool]] = {v: [] for v in args.variants}
    for task in TASKS:
        for variant in args.variants:
            sv, mv = single[task], multi[variant, task]
            if not sv or not mv:
                lines.append(
                    f"| `{task}` | {rand[task]:.1f} | {len(sv)} runs | {variant} | {len(mv)} runs | n/a | no |"
                )
                verdicts[variant].append(False)
                continue
            (sm, ss), (mm, ms) = mean_std(sv), mean_std(mv)
            if sm > rand[task]:
                score = 100 * (mm - rand[task]) / (sm - rand[task])
                verdict = f"{score:.0f} | {'yes' if score >= 80 else 'no'}"
                verdicts[variant].append(score >= 80)
            else:  # the single-task agent is not above random: the ratio means nothing
                verdict = "n/a (single-task not above random) | no"
                verdicts[variant].append(False)
            lines.append(f"| `{task}` | {rand[task]:.1f} | {sm:.1f} ± {ss:.1f} ({len(sv)}) | {variant} | {mm:.1f} ± "
                         f"{ms:.1f} ({len(mv)}) | {verdict} |")  # fmt: skip
    lines.append("")
    for variant, ok in verdicts.items():
        lines.append(f"Variant '{variant}': acceptance (>= 80 on every task) {'MET' if all(ok) else 'NOT met'} "
                     f"({sum(ok)} of {len(ok)} tasks).")  # fmt: skip
    for source, by_kind in transfer.items():
        lines += ["", f"Transfer to the held-out `{HELD_OUT}` ({args.transfer_steps} env steps, {args.envs} envs, "
                  f"random {rand[HELD_OUT]:.1f}): from each seed's final checkpoint of the '{source}' multi-task "
                  "variant (`--init-from`, a fresh task embedding, nothing frozen) vs from scratch, both with "
                  f"`{' '.join(VARIANTS[source])}`.", "",
                  "| start | final return (mean ± std) | mean of the eval curve (mean ± std) |",
                  "| --- | ---: | ---: |"]  # fmt: skip
        for kind, (finals, aucs) in by_kind.items():
            if finals:
                (fm, fs), (am, as_) = mean_std(finals), mean_std(aucs)
                lines.append(f"| {kind} | {fm:.1f} ± {fs:.1f} ({len(finals)}) | {am:.1f} ± {as_:.1f} |")
        if by_kind["scratch"][1] and by_kind["transfer"][1]:
            faster = mean_std(by_kind["transfer"][1])[0] > mean_std(by_kind["scratch"][1])[0]
            lines += ["", f"Transfer from '{source}' {'learns faster' if faster else 'does NOT learn faster'} per "
                      "env step than scratch (mean of the evaluation curve)."]  # fmt: skip
    if missing:
        lines += ["", f"Runs that did not finish: {', '.join(missing)}."]
    lines += ["", "Curves (mean over seeds; x = env steps of that task):", ""]
    plotted = plot(curves_rows, out)
    lines += [f"![{p.stem}]({p.name})" for p in plotted]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def plot(rows: list[dict], out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    paths = []
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    kinds = sorted({r["kind"] for r in rows}, key=lambda k: (k not in ("single", "scratch"), k))
    for ax, task in zip(axes, (*TASKS, HELD_OUT)):
        for kind in kinds:
            pts = [r for r in rows if r["task"] == task and r["kind"] == kind]
            if not pts:
                continue
            by_step: dict[int, list[float]] = {}
            for r in pts:
                by_step.setdefault(r["task_env_steps"], []).append(r["return"])
            steps = sorted(by_step)
            ax.plot(steps, [sum(by_step[s]) / len(by_step[s]) for s in steps], marker="o", ms=3, label=kind)
        ax.set_title(task)
        ax.set_xlabel("env steps of this task")
        ax.set_ylabel("eval return")
        ax.legend()
    fig.tight_layout()
    path = out / "curves.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    paths.append(path)
    return paths


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "multitask")
    p.add_argument("--scale", type=float, default=0.5, help="fraction of the single-task presets' budgets")
    p.add_argument("--budgets", type=int, nargs=3, default=[40_000, 80_000, 100_000])
    p.add_argument("--envs", type=int, default=32, help="envs per task (the presets': 32)")
    p.add_argument("--utd", type=float, default=4.0, help="critic updates per vectorized step, per task (presets: 4)")
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256], help="the presets': 256 256")
    p.add_argument("--atoms", type=int, default=101, help="the presets': 101")
    p.add_argument("--batch-size", type=int, default=256, help="the presets': 256")
    p.add_argument("--embedding-dim", type=int, default=16)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--evals", type=int, default=8, help="evaluations per run")
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["fixed", "brc"],
                   help="multi-task variants to run (see VARIANTS)")  # fmt: skip
    p.add_argument("--transfer-from", nargs="+", choices=sorted(VARIANTS), default=["fixed"],
                   help="variants the transfer runs start from (each with its own from-scratch runs)")  # fmt: skip
    p.add_argument("--transfer-steps", type=int, default=8000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--report-only", action="store_true")
    return p


def main() -> None:
    p = parser()
    args = p.parse_args()
    if not set(args.transfer_from) <= set(args.variants):
        p.error(f"--transfer-from {args.transfer_from} must be among --variants {args.variants}")
    sys.path.insert(0, str(ROOT))
    from launch.benchmark import machine_info

    info = machine_info()
    machine = {**info, "load_start": info["load_average_at_start"], "commit": git_commit(),
               "command": f"nice -n {os.nice(0)} python " + " ".join(sys.argv)}  # fmt: skip
    out, start = args.out, time.time()
    runs_dir = out / "runs"
    runs = plan(args)
    if not args.report_only:
        flags = common_flags(args)
        # The transfer source first, then the single-task runs and the transfer runs, the other variants last.
        first = [r for r in runs if r["kind"] == "multi" and r["variant"] in args.transfer_from]
        order = first + [r for r in runs if r["kind"] == "single"] + [
            r for r in runs if r["kind"] in ("scratch", "transfer")] + [
            r for r in runs if r["kind"] == "multi" and r not in first]  # fmt: skip
        with ThreadPoolExecutor(args.workers) as pool:
            futures: dict = {}
            for run in order:
                futures[run["name"]] = pool.submit(run_one, run, runs_dir, flags, futures)
            for f in futures.values():
                f.result()
    machine["load_end"] = [round(x, 2) for x in os.getloadavg()]
    report(args, runs, out, machine, time.time() - start)


if __name__ == "__main__":
    main()
