"""Replay sampling of this checkout against the sampler of an earlier commit, interleaved in one process.

    python benchmarks/perf/sampling_vs_previous.py [--commit 2caff74] [--rounds 7]

The earlier ``parallel_rl/buffer.py`` is read with ``git show <commit>:parallel_rl/buffer.py`` and imported under
another name; both buffers get the same transitions (1024 envs x 64 rows, about 1% of steps ending an episode) and
sample batches of 4096. Ratios are medians over rounds of rates measured back to back (process CPU seconds, one
torch thread). Writes sampling_vs_previous.{json,md} beside this script.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from launch.bench import cpu_model, filled_buffer  # noqa: E402
from launch.bench_compare import interleaved, median_ratio  # noqa: E402
from parallel_rl.buffer import ReplayBuffer  # noqa: E402


def previous_buffer_class(commit: str):
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:parallel_rl/buffer.py"], check=True,
                            capture_output=True, text=True).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "previous_buffer.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("previous_buffer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ReplayBuffer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commit", default="2caff74")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    previous = previous_buffer_class(args.commit)
    envs, rows, batch = 1024, 64, 4096
    filled = filled_buffer(torch.device("cpu"), envs, rows, 48, 0)
    load_start = [round(x, 2) for x in os.getloadavg()]
    out = {"commit": args.commit, "cpu": cpu_model(), "torch": torch.__version__, "load_avg_start": load_start,
           "rows": []}  # fmt: skip
    for n_step in (1, 3):
        now, before = (cls(envs, 13, 3, envs * rows, n_step=n_step, seed=0) for cls in (ReplayBuffer, previous))
        for b in (now, before):
            b.load_state_dict(filled.state_dict())
        fns = {"now": lambda b=now: b.sample(batch), "before": lambda b=before: b.sample(batch)}
        rates = interleaved(fns, args.rounds, args.seconds, clock="cpu")
        row = {"n_step": n_step, "batch": batch, "now_per_s": statistics.median(rates["now"]),
               "before_per_s": statistics.median(rates["before"]), "ratio": median_ratio(rates, "now", "before"),
               "load_avg": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
        out["rows"].append(row)
        print(row, flush=True)
    lines = [f"# Replay sampling: this checkout vs commit {args.commit}", "",
             f"CPU {out['cpu']}, torch {out['torch']}, 1 thread, process CPU seconds; load average at start "
             f"{load_start}. Command: `python benchmarks/perf/sampling_vs_previous.py --commit {args.commit}`", "",
             "| n_step | batch | now (samples/s) | before (samples/s) | now / before | load avg |",
             "|--:|--:|--:|--:|--:|---|"]  # fmt: skip
    for r in out["rows"]:
        lines.append(f"| {r['n_step']} | {r['batch']} | {r['now_per_s']:.1f} | {r['before_per_s']:.1f} | "
                     f"{r['ratio']:.2f}x | {r['load_avg']} |")  # fmt: skip
    here = Path(__file__).resolve().parent
    (here / "sampling_vs_previous.json").write_text(json.dumps(out, indent=2) + "\n")
    (here / "sampling_vs_previous.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
