"""Wall-clock of the first contact with the CLI: ``--help`` and an input error, which must answer without importing
torch (issue 12's goal: under 1.5 s on an idle machine). Also checks that torch stays unimported on these paths.

    PYTHONPATH=. python benchmarks/cli_startup/measure.py > benchmarks/cli_startup/results.md
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {
    "python -m launch.train --help": ["-m", "launch.train", "--help"],
    "python -m launch.train --utd inf (input error)": ["-m", "launch.train", "--utd", "inf"],
    "python -m launch.train --task list": ["-m", "launch.train", "--task", "list"],
    "python -m launch.evaluate --help": ["-m", "launch.evaluate", "--help"],
}
REPEATS = 7


def run(args: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child: user + system). Start-up is one thread, so on an idle machine the
    wall time is about the CPU time; on a loaded one the CPU time is the figure that does not depend on the load."""
    before = os.times()
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def imports_torch(args: list[str], env: dict) -> bool:
    out = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    return any(line.rstrip().endswith("| torch") for line in out.stderr.splitlines())


def main() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    model = next((line.split(":", 1)[1].strip() for line in subprocess.run(["lscpu"], capture_output=True,
                  text=True).stdout.splitlines() if line.startswith("Model name")), platform.processor())  # fmt: skip
    load_before = os.getloadavg()
    rows = []
    for name, args in COMMANDS.items():
        run(args, env)  # warm the file cache
        runs = [run(args, env) for _ in range(REPEATS)]
        wall, cpu = sorted(r[0] for r in runs), sorted(r[1] for r in runs)
        rows.append((name, wall[0], statistics.median(wall), statistics.median(cpu), imports_torch(args, env)))
    load_after = os.getloadavg()
    print("# CLI start-up time\n")
    print(f"- CPU: {model}, {os.cpu_count()} cores; Python {platform.python_version()}")
    print(f"- load average (1/5/15 min) before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; "
          f"after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")  # fmt: skip
    print(f"- {REPEATS} runs each after one warm-up run; seconds\n")
    print("| command | wall min | wall median | CPU (user+sys) median | imports torch |")
    print("|---|---|---|---|---|")
    for name, best, median, cpu, torch in rows:
        print(f"| `{name}` | {best:.2f} | {median:.2f} | {cpu:.2f} | {'yes' if torch else 'no'} |")


if __name__ == "__main__":
    main()
