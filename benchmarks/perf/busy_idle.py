"""The no-argument training job with the machine as it is ("idle") and with one core kept fully busy by another
process ("busy"), interleaved: idle, busy, idle, busy, ...

    python benchmarks/perf/busy_idle.py [--rounds 2] [-- extra launch.train flags]

The busy process is a pure-Python spin loop started just before a busy run and ended (by its pid) just after.
Each run's wall time and the load average before it are recorded, with the CPU, in busy_idle.json beside this
script. Extra flags after ``--`` go to every run (e.g. ``--total-env-steps 5000`` for a shorter job).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from launch.bench import cpu_model  # noqa: E402


def run_job(extra: list[str]) -> float:
    run_dir = tempfile.mkdtemp(prefix="busy_idle_")
    cmd = [sys.executable, "-m", "launch.train", "--no-progress", "--run-dir", run_dir, *extra]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    shutil.rmtree(run_dir, ignore_errors=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    runs = []
    for r in range(args.rounds):
        for state in ("idle", "busy"):
            load = [round(x, 2) for x in os.getloadavg()]
            spinner = None
            if state == "busy":
                spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                seconds = run_job(extra)
            finally:
                if spinner is not None:
                    spinner.terminate()
                    spinner.wait()
            runs.append({"round": r, "state": state, "wall_seconds": seconds, "load_avg_before": load})
            print(runs[-1], flush=True)
    idle = statistics.median(x["wall_seconds"] for x in runs if x["state"] == "idle")
    busy = statistics.median(x["wall_seconds"] for x in runs if x["state"] == "busy")
    out = {"cpu": cpu_model(), "cores_usable": len(os.sched_getaffinity(0)),
           "command": "python -m launch.train --no-progress --run-dir <tmp> " + " ".join(extra),
           "runs": runs, "idle_median_s": idle, "busy_median_s": busy, "busy_over_idle": busy / idle}  # fmt: skip
    print({k: v for k, v in out.items() if k != "runs"})
    (Path(__file__).resolve().parent / "busy_idle.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
