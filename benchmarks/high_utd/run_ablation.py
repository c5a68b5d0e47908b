"""High-UTD ablation on CPU: plain FastTD3 against each stabilizer (SPEQ, resets, DAC, DEA, VPL) and each critic
family (BroNet, SimbaV2, bounded-norm), at UTD 1, 4 and 16, on cartpole-swingup and reacher3.

Every run of a task gets the same env-step budget, so configurations compare at equal env steps (equal data); the
UTD changes only how many critic updates that data gets. SPEQ is compared at the *same* total critic updates: its
online UTD is a quarter of the nominal one and its stabilization phases supply the rest (``stabilize_every`` 50
learning steps). Rows are appended to the CSV as runs finish, so a run stopped by ``--max-minutes`` keeps what it
did; ``--resume`` skips rows already in the CSV.

    nice -n 10 python benchmarks/high_utd/run_ablation.py --workers 2 --max-minutes 25
    python benchmarks/high_utd/report.py
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

OUT = Path(__file__).resolve().parent
RUNS = Path(os.environ.get("HIGH_UTD_RUNS", "/tmp/high_utd_runs"))  # run directories (checkpoints) stay out of git
FIELDS = ["task", "config", "utd", "seed", "env_steps", "final_eval_return", "wall_seconds", "cpu_seconds",
          "critic_updates", "sigma", "critic_param_norm", "actor_param_norm", "status"]  # fmt: skip

# name -> (algo, agent overrides, schedule overrides as a function of utd, extra top-level overrides)
SMALL = {"critic_hidden": (64, 64), "actor_hidden": (64, 64)}


def configs(iterations: int) -> dict[str, tuple[str, dict, object, dict]]:
    def plain(u):
        return {"utd": u}

    def speq(u):  # same total critic updates: a quarter online, the rest in phases every 50 learning steps
        return {"utd": u / 4, "stabilize_every": 50, "stabilize_updates": int(50 * u * 3 / 4)}

    def reset(u):  # two full resets, after a third and two thirds of the run (never on its last steps)
        return {"utd": u, "reset_every": iterations // 3 + 1}

    fam = {"critic_width": 64, "critic_depth": 1}
    return {
        "fasttd3": ("fasttd3", {}, plain, {}),
        "bronet": ("fasttd3", {"critic_arch": "bronet", **fam}, plain, {}),
        "simbav2": ("fasttd3", {"critic_arch": "simbav2", **fam}, plain, {}),
        "normed": ("fasttd3", {"critic_arch": "normed", **fam}, plain, {}),
        "speq": ("fasttd3", {}, speq, {}),
        "reset": ("fasttd3", {}, reset, {}),
        "dea": ("dea", {"num_critics": 3}, plain, {}),
        "dac": ("dac", {}, plain, {}),
        "vpl": ("vpl", {}, plain, {"td_validation_envs": 2}),
        "fastsac": ("fastsac", {}, plain, {}),
        "fastsac-bronet": ("fastsac", {"critic_arch": "bronet", **fam}, plain, {}),
    }


def run_one(job: tuple) -> dict:
    task, name, utd, seed, num_envs, iterations, batch = job
    import torch

    from launch.train import parse
    from parallel_rl.config import replace_nested
    from parallel_rl.runtime import Trainer
    from tasks import env_factory

    torch.set_num_threads(1)
    algo, agent, schedule, extra = configs(iterations)[name]
    cfg = parse(["--task", task, "--algo", algo, "--seed", str(seed), "--device", "cpu", "--no-progress",
                 "--log-every", "100000", "--eval-envs", "16", "--num-envs", str(num_envs),
                 "--total-env-steps", str(num_envs * iterations), "--batch-size", str(batch),
                 "--learning-starts", "10", "--no-tensorboard", "--no-record-code-version", "--overwrite"])  # fmt: skip
    cfg = replace_nested(cfg, {"agent": {**SMALL, **agent}, "schedule": schedule(utd), **extra})
    row = {"task": task, "config": name, "utd": utd, "seed": seed, "env_steps": num_envs * iterations}
    start, cpu = time.perf_counter(), time.process_time()
    try:
        trainer = Trainer(cfg, env_factory(task))
        summary = trainer.run(RUNS / f"{task}-{name}-utd{utd}-seed{seed}")
        nets = trainer.algo.networks()
        norms = {k: float(torch.linalg.vector_norm(torch.cat([p.detach().flatten() for p in nets[k].parameters()])))
                 for k in ("critic", "actor")}  # fmt: skip
        row.update(final_eval_return=summary["final_eval_return"], critic_updates=trainer.scheduler.critic_updates,
                   sigma=trainer.scheduler.realised(num_envs, batch)["sigma"], critic_param_norm=norms["critic"],
                   actor_param_norm=norms["actor"], status="ok")  # fmt: skip
    except Exception as e:  # a diverged or failed run is a result too
        row.update(status=f"failed: {type(e).__name__}: {str(e)[:120]}")
    row.update(wall_seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=["cartpole-swingup", "reacher3"])
    p.add_argument("--utds", nargs="+", type=int, default=[1, 4, 16])
    p.add_argument("--configs", nargs="+", default=list(configs(1)))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--iterations", type=int, default=150, help="vectorized env steps per run")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--max-minutes", type=float, default=25.0)
    p.add_argument("--csv", type=Path, default=OUT / "results.csv")
    p.add_argument("--resume", action="store_true")
    args = p.parse_args()
    done = set()
    if args.resume and args.csv.exists():
        with open(args.csv) as f:
            done = {(r["task"], r["config"], int(r["utd"]), int(r["seed"])) for r in csv.DictReader(f)}
    # Order: seed, then UTD in the order given, then configuration, then task, so a time limit cuts whole UTDs or
    # tasks last rather than configurations.
    jobs = [(t, c, u, s, args.num_envs, args.iterations, args.batch_size) for s in args.seeds for u in args.utds
            for c in args.configs for t in args.tasks if (t, c, u, s) not in done]  # fmt: skip
    new = not args.csv.exists() or not args.resume
    with open(args.csv, "w" if new else "a", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        if new:
            writer.writeheader()
        model = subprocess.getoutput("lscpu | grep 'Model name'")
        with open(OUT / "machine.txt", "a") as m:
            m.write(f"start {time.strftime('%Y-%m-%d %H:%M:%S')} | {subprocess.getoutput('uptime')} | {model} | "
                    f"cores {os.cpu_count()}\n")  # fmt: skip
        deadline = time.monotonic() + args.max_minutes * 60
        ctx = mp.get_context("spawn")
        with ctx.Pool(args.workers, maxtasksperchild=1) as pool:
            results, finished = pool.imap_unordered(run_one, jobs), 0
            while finished < len(jobs):
                try:
                    row = results.next(timeout=max(deadline - time.monotonic(), 0.1))
                except mp.TimeoutError:
                    print(f"time limit reached; {len(jobs) - finished} runs not finished", flush=True)
                    pool.terminate()
                    break
                finished += 1
                writer.writerow(row)
                f.flush()
                print({k: row.get(k) for k in ("task", "config", "utd", "final_eval_return", "cpu_seconds",
                                               "status")}, flush=True)  # fmt: skip
        with open(OUT / "machine.txt", "a") as m:
            m.write(f"end   {time.strftime('%Y-%m-%d %H:%M:%S')} | {subprocess.getoutput('uptime')}\n")


if __name__ == "__main__":
    main()
