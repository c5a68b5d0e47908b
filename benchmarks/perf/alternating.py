"""Our updates against FastTD3's at the small shapes, alternating single calls instead of one-second chunks.

    python benchmarks/perf/alternating.py --reference PATH [--rounds 9] [--seconds 2]

``launch.bench --reference`` times each side for about a second in turn; on a shared host whose speed drifts over
seconds its per-round ratios spread by 0.1 to 0.3. Here every call of ours is followed by one call of FastTD3's, and
a round's ratio is FastTD3's summed CPU time over ours, so both sides see the same host conditions (and each call
starts with the other side's data in the caches, as a learner update does after an env step). Both methods are
interleaved in one process with the same objects (``launch.bench_compare``); this one trades the warm-cache runs of
the chunked method for steadier rounds. Writes alternating.json beside this script (machine, load, every round).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from launch.bench import cpu_model  # noqa: E402
from launch.bench_compare import FastTD3Reference, Ours, _widths, load_average, reference_commit  # noqa: E402
from parallel_rl.memory import retain_freed_memory  # noqa: E402


def alternate(ours, ref, seconds: float) -> float:
    """FastTD3's CPU time over ours, one call each in turn, until both together used ``seconds``."""
    now = time.process_time
    t_ours = t_ref = 0.0
    while t_ours + t_ref < seconds:
        t0 = now()
        ours()
        t1 = now()
        ref()
        t_ours, t_ref = t_ours + t1 - t0, t_ref + now() - t1
    return t_ref / t_ours


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True, help="a checkout of younggyoseo/FastTD3")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per round, both sides together")
    args = ap.parse_args()
    torch.set_num_threads(1)
    keep = retain_freed_memory()  # as launch.bench does, for both sides
    width, batch = 256, 256
    ours = Ours(_widths(width), _widths(width), batch, 64)
    ref = FastTD3Reference(args.reference, ours.obs_dim, ours.act_dim, width, width, batch, 64, rows=256)
    rows = []
    for figure, fo, fr in [("critic update", ours.critic_update, ref.critic_update),
                           ("2 critic + 1 actor", ours.two_critic_one_actor, ref.two_critic_one_actor)]:  # fmt: skip
        for _ in range(5):
            fo(), fr()
        load = load_average()
        rounds = [round(alternate(fo, fr, args.seconds), 4) for _ in range(args.rounds)]
        rows.append({"shapes": "small", "batch": batch, "figure": figure, "ratio": statistics.median(rounds),
                     "rounds": rounds, "load_avg": load})  # fmt: skip
        print(f"{figure}: ratio {statistics.median(rounds):.3f} rounds {rounds} load {load}", flush=True)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    code = commit.stdout.strip() + (" with uncommitted changes" if dirty else "")
    out = {"command": " ".join(["python", *sys.argv]), "code_commit": code, "cpu": cpu_model(),
           "torch": torch.__version__, "torch_threads": 1, "keep_cpu_memory": keep,
           "reference_commit": reference_commit(args.reference), "clock": "process CPU",
           "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rows": rows, "load_avg_end": load_average()}  # fmt: skip
    path = Path(__file__).with_name("alternating.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
