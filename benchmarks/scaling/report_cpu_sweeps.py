"""Fit, plot and report the two CPU sweeps of run_cpu_sweeps.sh: (σ, critic width) -> benchmarks/scaling/sigma_n and
num_envs -> benchmarks/scaling/num_envs (fits.json, PNGs, run_table.csv, fit.txt, report.md in each).

Usage: python benchmarks/scaling/report_cpu_sweeps.py --work /tmp/scaling_cpu_sweeps
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import subprocess
from pathlib import Path

from launch.scaling import main
from parallel_rl.scaling.runtable import concat_run_tables, write_run_table

HERE = Path(__file__).parent
FIT = ["--num-thresholds", "6", "--low-gap", "500", "--high-gap", "150", "--fill-stopped", "--resamples", "100"]


def _run(argv: list[str]) -> tuple[object, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        result = main(argv)
    return result, buf.getvalue()


def _machine(work: Path) -> str:
    info = (work / "machine.txt").read_text().strip().splitlines()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return "\n".join([f"- {line}" for line in info] + [f"- {platform.platform()}, Python {platform.python_version()}, "
                                                        f"commit {commit} (reporting)"])  # fmt: skip


def _fmt(x) -> str:
    return "never" if x is None else f"{x:.0f}"


def sigma_n(work: Path) -> None:
    out = HERE / "sigma_n"
    out.mkdir(exist_ok=True)
    write_run_table(
        out / "run_table.csv", concat_run_tables(sorted((work / "sigma_n" / "runs").glob("*/run_table.csv")))
    )
    fits, text = _run(["fit", "--runs", str(out / "run_table.csv"), "--out", str(out / "fits.json"), *FIT,
                       "--exclude-cell", "2,64"])  # fmt: skip
    _run(["plot", "--fits", str(out / "fits.json"), "--out", str(out)])
    lines = [
        "# (σ, critic size) on CPU: D_J(σ, N) on pendulum and a held-out cell",
        "",
        "Reproduce: `benchmarks/scaling/run_cpu_sweeps.sh` (stage 1), then this script. Runs: pendulum, FastTD3,",
        "8 envs,",
        "critic two hidden layers of width 16 or 64 (N = 4138 or 22090 parameters with the C51 head), actor 64-64,",
        "batch 128, lr 1e-3, σ in {1/2, 1, 2}, 2 seeds, evaluation (8 envs) every 240 transitions, each run stopped",
        "once an evaluation reaches -240 (J = 850) or after 4000 critic updates (fit with `--fill-stopped`). Returns",
        "mapped -1600 -> 0, 0 -> 1000; thresholds J = 1000 - logspace(log10 500, log10 150, 6). The cell σ = 2,",
        "width 64 is held out (`--exclude-cell 2,64`) and predicted by D_J(σ, N) fitted on the other five cells.",
        "",
        "## Crossing times (seed-averaged isotonic curve, first logged step at or above J)",
        "",
        "| σ | width | N | " + " | ".join(f"J={j:.0f}" for j in fits["thresholds_requested"]) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in fits["thresholds_requested"]) + " |",
    ]
    for c in sorted(fits["crossings"], key=lambda c: (c["utd"], c["critic_width"])):
        lines.append(f"| {c['utd']:g} | {c['critic_width']} | {c['critic_params']} | "
                     + " | ".join(_fmt(x) for x in c["point"]) + " |")  # fmt: skip
    lines += ["", "## Fit and held-out cell (output of `fit`)", "", "```", text.strip(), "```", ""]
    held = fits.get("held_out_sigma_n") or []
    if held:
        lines += ["| J | predicted D_J (90% bootstrap interval) | measured | error |", "| --- | --- | --- | --- |"]
        for h in held:
            lo, hi = h["predicted_interval"]
            band = f" [{lo:.0f}, {hi:.0f}]" if lo is not None else ""
            err = "n/a (the held-out cell's seed average never reached J)" if h["relative_error"] is None else (
                f"{100 * h['relative_error']:+.1f}%")  # fmt: skip
            lines.append(f"| {h['threshold']:.0f} | {h['predicted']:.0f}{band} | {_fmt(h['measured'])} | {err} |")
    fitted_j = [e["threshold"] for e in fits.get("data_law_sigma_n") or []]
    first = (fits.get("data_law_sigma_n") or [{}])[0]
    reached = [h for h in held if h["relative_error"] is not None]
    lines += ["", "## Result", ""]
    lines.append(
        f"D_J(σ, N) was fitted at J = {', '.join(f'{j:.0f}' for j in fitted_j)} (a threshold needs 4 reached cells) "
        f"with shared α = {first.get('alpha', float('nan')):.3f}, β = {first.get('beta', float('nan')):.3f}. "
        "With two critic sizes the N term is a step between them: β is not identified (it sits at or near its "
        "bound), so the N dependence is the difference between the two widths, not a power law. "
        + (" ".join(f"Held-out cell σ = 2, width 64 at J = {h['threshold']:.0f}: predicted {h['predicted']:.0f} env "
                     f"steps, measured {h['measured']:.0f} ({100 * h['relative_error']:+.1f}%)." for h in reached))
        + f" At the other {len(held) - len(reached)} fitted thresholds the held-out cell's seed average never "
        "reached J within its 2000 transitions (one of its two seeds stalled below -240), so there is nothing to "
        "compare. Seeds are few (2) and pendulum runs stall at times (σ = 1 and 2 at width 64 each have one seed "
        "that never reached -240), so these laws are a demonstration of the pipeline, not a measurement to rely on."
    )  # fmt: skip
    rec_budget, rec_text = None, ""
    try:
        rec_budget, rec_text = _run(["recommend", "--fits", str(out / "fits.json"), "--budget-flops", "3e10"])
    except SystemExit:
        rec_text = "recommend failed (see fits.json)"
    lines += ["", "## Recommendation for a budget (`recommend --budget-flops 3e10`, δ from wall-clock)", "", "```",
              rec_text.strip(), "```", "", "## Machine", "", _machine(work), ""]  # fmt: skip
    (out / "fit.txt").write_text(text)
    (out / "report.md").write_text("\n".join(lines))
    print(f"wrote {out / 'report.md'}")


def num_envs(work: Path) -> None:
    out = HERE / "num_envs"
    out.mkdir(exist_ok=True)
    tables = sorted((work / "num_envs").glob("n*/runs/*/run_table.csv"))
    write_run_table(out / "run_table.csv", concat_run_tables(tables))
    fits, text = _run(["fit", "--runs", str(out / "run_table.csv"), "--out", str(out / "fits.json"), *FIT,
                       "--exclude-num-envs", "32"])  # fmt: skip
    _run(["plot", "--fits", str(out / "fits.json"), "--out", str(out)])
    law = fits.get("num_envs_law") or {"per_threshold": []}
    lines = [
        "# The parallel-env axis on CPU: D_J and wall-clock to J against num_envs (pendulum)",
        "",
        "Reproduce: `benchmarks/scaling/run_cpu_sweeps.sh` (stage 2), then this script. Runs: pendulum, FastTD3,",
        "σ = 1/2 (the trainer's --utd = num_envs / 2), critic and actor 64-64, batch 128, lr 1e-3, one seed per env",
        "count (CPU time), learning starts after 2 vectorized steps, evaluation (8 envs) every 256 transitions,",
        "each run stopped once an evaluation reaches -240 (J = 850), at 120 s of training, or at max(6000,",
        "16·num_envs) transitions. num_envs in {4, 16, 64, 256} fitted, 32 held out (chosen before it ran). A first",
        "plan of {16, 64, 256, 1024} with 128 held out was cut at the 30-minute CPU limit of the shared machine:",
        "n = 256 did not reach even J = 500 within its 6144 transitions and n = 1024 was stopped unfinished.",
        "Laws: D_J(n) = c + (n/b)^e and T_J(n) = c + (n/b)^e (training seconds to J), e of either sign.",
        "",
        "## Points and fits",
        "",
        "| J | num_envs | D_J (env steps) | seconds to J | held out |",
        "| --- | --- | --- | --- | --- |",
    ]
    for e in law["per_threshold"]:
        for p in e["points"]:
            secs = "never" if p["wall_seconds"] is None else f"{p['wall_seconds']:.1f}"
            lines.append(f"| {e['threshold']:.0f} | {p['num_envs']} | {_fmt(p['data'])} | {secs} | "
                         f"{'yes' if p['held_out'] else ''} |")  # fmt: skip
    lines += ["", "## Held-out num_envs = 32: prediction vs measurement", "",
              "| J | D_J predicted | D_J measured | error | seconds predicted | seconds measured | error |",
              "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for e in law["per_threshold"]:
        d = (e.get("data_law_held_out") or [None])[0]
        w = (e.get("wall_law_held_out") or [None])[0]

        def cell(h) -> str:
            if h is None:
                return "not fitted | | "
            measured = "never" if h["measured"] is None else f"{h['measured']:.4g}"
            err = "n/a" if h["relative_error"] is None else f"{100 * h['relative_error']:+.1f}%"
            return f"{h['predicted']:.4g} | {measured} | {err}"

        lines.append(f"| {e['threshold']:.0f} | {cell(d)} | {cell(w)} |")
    lines += ["", "## Result", ""]
    for e in law["per_threshold"]:
        d = (e.get("data_law_held_out") or [None])[0]
        w = (e.get("wall_law_held_out") or [None])[0]
        if d is None:
            continue
        f = e["data_law"]
        finite = [p["num_envs"] for p in e["points"] if p["data"] is not None and not p["held_out"]]
        lines.append(
            f"At J = {e['threshold']:.0f} the law D_J(n) = {f['c']:.4g} + (n/{f['b']:.4g})^{f['e']:.2f} was fitted "
            f"through n = {', '.join(map(str, finite))} ({len(finite)} points for 3 parameters"
            + ("; the exponent sits at its bound, so the fit is a flat stretch and a jump, not a power law" if
               f.get("degenerate") else "") + f"). For the held-out n = 32 it predicted D_J = {d['predicted']:.0f} env "
            f"steps; measured {d['measured']:.0f} ({100 * d['relative_error']:+.1f}%). Wall-clock to J: predicted "
            f"{w['predicted']:.1f} s, measured {w['measured']:.1f} s ({100 * w['relative_error']:+.1f}%)."
        )  # fmt: skip
    missing = [e["threshold"] for e in law["per_threshold"] if not e.get("data_law_held_out")]
    if missing:
        lines.append(
            f"At J = {', '.join(f'{j:.0f}' for j in missing)} fewer than three fitted env counts reached J (n = 64 "
            "and 256 did not within their transitions), so no law was fitted there. What the points do show: at a "
            "fixed σ = 1/2, 64 envs needed 2.6x the data of 16 envs to reach J = 500 (4608 vs 1792 transitions) and "
            "256 envs did not reach it in 6144; with one seed per env count this is a single draw each."
        )  # fmt: skip
    lines += ["", "## Output of `fit`", "", "```", text.strip(), "```", "", "## Machine", "", _machine(work), ""]
    lines += [
        "The machine was shared with other jobs (load average 10-22 on 2 cores): wall-clock numbers are noisy,",
        "and the n = 4 and n = 32 runs overlapped with a fit of the qscaled data (one more process).",
        "",
    ]
    (out / "fit.txt").write_text(text)
    (out / "report.md").write_text("\n".join(lines))
    print(f"wrote {out / 'report.md'}")
    print(json.dumps({e["threshold"]: e.get("data_law_held_out") for e in law["per_threshold"]}, indent=1)[:2000])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", default="/tmp/scaling_cpu_sweeps")
    args = parser.parse_args()
    sigma_n(Path(args.work))
    num_envs(Path(args.work))
