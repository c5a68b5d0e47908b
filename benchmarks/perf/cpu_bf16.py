"""bf16 autocast against float32 on this CPU: the runtime's V-learner update with bf16 autocast and without it,
interleaved in one process (process CPU seconds, one torch thread), at the default networks (256-256, batch 256)
and FastTD3's (batch 4096). bf16_time_over_fp32_time > 1 means bf16 is slower.

    python benchmarks/perf/cpu_bf16.py [--rounds 3]

Writes cpu_bf16.json beside this script.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import tasks  # noqa: E402
from launch.bench import NET_TASK, BenchConfig, NetSetting, _train_config, cpu_model  # noqa: E402
from launch.bench_compare import interleaved, median_ratio  # noqa: E402
from parallel_rl.runtime import Trainer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    settings = ((NetSetting("default", (256, 256), (256, 256), 101, 256), args.seconds, args.rounds),
                (NetSetting("fasttd3", (1024, 512, 256), (512, 256, 128), 101, 4096), 0.0, 2))  # fmt: skip
    for setting, seconds, rounds in settings:
        learners = {}
        for name, speed in (("fp32", {}), ("bf16", {"bf16": True})):
            cfg = _train_config(setting, torch.device("cpu"), 64, BenchConfig(), speed=speed, learning_starts=10**9)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trainer = Trainer(cfg, tasks.env_factory(NET_TASK))
            for _ in range(16):
                trainer.iteration()
            learners[name] = trainer.vlearner.update
        load_start = [round(x, 2) for x in os.getloadavg()]
        rates = interleaved(learners, rounds, seconds, clock="cpu")
        rows.append({"networks": f"critic {setting.critic_hidden} x2, 101 atoms, actor {setting.actor_hidden}",
                     "batch": setting.batch_size, "fp32_updates_per_s": statistics.median(rates["fp32"]),
                     "bf16_updates_per_s": statistics.median(rates["bf16"]),
                     "bf16_time_over_fp32_time": median_ratio(rates, "fp32", "bf16"), "load_avg_start": load_start,
                     "load_avg_end": [round(x, 2) for x in os.getloadavg()]})  # fmt: skip
        print(rows[-1], flush=True)
    out = {"cpu": cpu_model(), "native_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
           "torch": torch.__version__, "rows": rows}  # fmt: skip
    (Path(__file__).resolve().parent / "cpu_bf16.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
