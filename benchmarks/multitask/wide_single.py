"""Is the multi-task gain of a wider critic only the wider critic? Single-task runs with the critic width of a
multi-task variant, scored against that variant.

``run_study.py`` scores multi-task runs against single-task runs at the presets' sizes (256-256 critic). A variant
with a wider critic ('brc-l2-w512') could pass that bar just because a wider critic helps every task. This script
runs the study's single-task runs unchanged except for ``--critic-hidden`` (same flags, budgets and seeds, through
``run_study.plan``/``run_one``) into ``--out``/runs, and writes ``--out``/results.md: the variant's multi-task finals
(read from the study's run directories) scored against both single-task baselines, per seed set and over all seeds.

    python benchmarks/multitask/wide_single.py --seeds 0 1 2 3 4 5 --critic-hidden 512 512 --variant brc-l2-w512 \\
        --study-runs benchmarks/multitask/runs benchmarks/multitask/confirm/runs
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_study as rs  # noqa: E402


def final(run_dirs: list[Path], name: str, task: str | None = None) -> float | None:
    """Final evaluation of run ``name`` found in any of ``run_dirs`` (per task for a multi-task run)."""
    for d in run_dirs:
        f = d / name / "summary.json"
        if f.is_file():
            summary = json.loads(f.read_text())
            return summary["final_eval_return_per_task"][task] if task else summary["final_eval_return"]
    return None


def main() -> None:
    p = rs.parser()
    p.description = __doc__
    p.set_defaults(out=rs.ROOT / "benchmarks" / "multitask" / "wide_single", variants=[], transfer_from=[])
    p.add_argument("--critic-hidden", type=int, nargs="+", default=[512, 512])
    p.add_argument("--variant", choices=sorted(rs.VARIANTS), default="brc-l2-w512")
    p.add_argument("--study-runs", type=Path, nargs="+", required=True, help="run directories of the study")
    args = p.parse_args()
    args.variants, args.transfer_from = [], []
    wide = ["--critic-hidden", *map(str, args.critic_hidden)]
    runs = [{**r, "argv": [*r["argv"], *wide]} for r in rs.plan(args) if r["kind"] == "single"]
    runs_dir, start = args.out / "runs", time.time()
    load_start = [round(x, 2) for x in os.getloadavg()]
    if not args.report_only:
        with ThreadPoolExecutor(args.workers) as pool:
            for f in [pool.submit(rs.run_one, r, runs_dir, rs.common_flags(args), {}) for r in runs]:
                f.result()
    rand = rs.random_returns()
    sets = {"all seeds": list(args.seeds)}
    if len(args.seeds) > 3:
        sets = {f"seeds {args.seeds[0]}-{args.seeds[2]}": args.seeds[:3],
                f"seeds {args.seeds[3]}-{args.seeds[-1]}": args.seeds[3:], **sets}  # fmt: skip
    lines = [
        f"# '{args.variant}' against single-task runs with its critic ({'-'.join(map(str, args.critic_hidden))})",
        "",
        f"- command: `python {' '.join(sys.argv)}`; code: commit {rs.git_commit()}",
        f"- load average at start: {load_start}, at end: {[round(x, 2) for x in os.getloadavg()]}; wall-clock "
        f"{time.time() - start:.0f} s; {args.workers} runs at a time, 1 torch thread each",
        f"- single-task runs: `run_study.py`'s own (same flags, budgets x {args.scale}, seeds) plus `{' '.join(wide)}`;"
        f" multi-task finals of '{args.variant}' and the study's 256-256 single-task finals read from "
        f"{', '.join(f'`{d}`' for d in args.study_runs)}",
        "",
        "Score = (multi - random) / (single - random) x 100, means over the seeds of the set.",
        "",
        "| task | seeds | multi-task (mean) | single-task 256-256 | score | single-task wide | score vs wide |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    per_seed = ["", "Per seed (multi-task / single-task 256-256 / single-task wide):", "",
                "| task | " + " | ".join(f"seed {s}" for s in args.seeds) + " |",
                "| --- |" + " --- |" * len(args.seeds)]  # fmt: skip
    for task in rs.TASKS:
        multi = [final(args.study_runs, rs.multi_name(args.variant, s), task) for s in args.seeds]
        narrow = [final(args.study_runs, f"single-{task}-s{s}") for s in args.seeds]
        wide_f = [final([runs_dir], f"single-{task}-s{s}") for s in args.seeds]
        cell = [" / ".join("-" if v is None else f"{v:.1f}" for v in trio) for trio in zip(multi, narrow, wide_f)]
        per_seed.append(f"| `{task}` | " + " | ".join(cell) + " |")
        for label, seeds in sets.items():
            idx = [args.seeds.index(s) for s in seeds]
            vals = [[v[i] for i in idx] for v in (multi, narrow, wide_f)]
            if any(x is None for v in vals for x in v):
                lines.append(f"| `{task}` | {label} | runs missing | | | | |")
                continue
            m, n, w = (rs.mean_std(v)[0] for v in vals)
            s_n, s_w = (100 * (m - rand[task]) / (single - rand[task]) for single in (n, w))
            lines.append(f"| `{task}` | {label} | {m:.1f} | {n:.1f} | {s_n:.0f} % | {w:.1f} | {s_w:.0f} % |")
    (args.out / "results.md").write_text("\n".join(lines + per_seed) + "\n")
    print("\n".join(lines + per_seed))


if __name__ == "__main__":
    main()
