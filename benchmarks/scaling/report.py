"""Write the end-to-end scaling study's report (report.md, results.json, run tables) from its fits and run dirs."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path


def machine() -> dict:
    from launch.bench import cpu_model

    cpu = cpu_model()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "unknown"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_1_5_15min_at_end": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{pkg: version(pkg) for pkg in ("torch", "numpy", "scipy", "matplotlib")},
        "git_commit": commit,
    }


def fmt(x: float | None, spec: str = ".4g") -> str:
    return "n/a" if x is None else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", required=True, help="the study's work directory (run dirs)")
    ap.add_argument("--out", required=True, help="where the committed results go")
    args = ap.parse_args()
    work, out = Path(args.work), Path(args.out)
    hyper, fits = (json.loads((out / n).read_text()) for n in ("hyper_fits.json", "fits.json"))
    for name in ("hyper", "sigma"):
        shutil.copy(work / name / "run_table.csv", out / f"{name}_run_table.csv")
    load_file = work / "loadavg"
    load = load_file.read_text().strip() if load_file.is_file() else "unknown during the runs"
    stamps = {n: float((work / n).read_text()) for n in ("started", "trained") if (work / n).is_file()}
    elapsed = stamps["trained"] - stamps["started"] if len(stamps) == 2 else None
    runs = [p for name in ("hyper", "sigma") for p in sorted((work / name / "runs").glob("*/summary.json"))]
    summaries = [json.loads(p.read_text()) for p in runs]

    thresholds = fits["thresholds_requested"]
    ranges = fits["return_ranges"].get("pendulum", [-1600, 0])
    raw = [ranges[0] + j / 1000 * (ranges[1] - ranges[0]) for j in thresholds]
    b, lr = hyper["batch_law"], hyper["lr_law"]
    settings = sorted({(c["utd"], c["batch_size"], c["lr"]) for c in fits["crossings"]})
    held = fits["held_out"]
    results = {
        "machine": machine(),
        "training_wall_seconds": elapsed,
        "runs": len(summaries),
        "runs_stopped_by_time_box": sum(s.get("stopped_by_time_limit", False) for s in summaries),
        "thresholds_normalised": thresholds,
        "thresholds_raw_return": raw,
        "batch_law": {k: b[k] for k in ("exponent", "coefficients", "status", "threshold")},
        "lr_law": {k: lr[k] for k in ("exponent", "coefficients", "status", "threshold")},
        "sigma_sweep_settings": [{"utd": s, "batch_size": bs, "lr": r} for s, bs, r in settings],
        "data_law": [
            {k: e.get(k) for k in ("threshold", "status", "d_min", "alpha", "beta", "a", "b", "c", "m")}
            for e in fits["data_law"]["per_threshold"]
        ],  # fmt: skip
        "held_out": held,
        "delta": fits.get("delta"),
        "delta_source": fits.get("delta_source"),
        "sigma_of_budget": {k: fits["budget"][k] for k in ("k", "e")} if "budget" in fits else None,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    m = results["machine"]
    lines = [
        "# Scaling study: pendulum on CPU",
        "",
        "Reproduce: `benchmarks/scaling/run_study.sh` (resumable; run dirs under `$WORK`). Everything here was written",
        "by it: `hyper_fits.json` and `fits.json` (fitted laws), the PNGs (`launch.scaling plot`), the run tables,",
        "`results.json` (the numbers below) and this report.",
        "",
        "## Setup",
        "",
        "- Task `pendulum` (Gymnasium Pendulum-v1 in torch), FastTD3, 8 envs, critic and actor 64-64, C51 (101 atoms),",
        "  deterministic evaluation on 16 envs 40 times per run; σ = critic updates per transition (`--utd` / 8).",
        f"- Returns normalised to 0-1000 with pendulum {ranges[0]:g} → 0 and {ranges[1]:g} → 1000; thresholds J = "
        + ", ".join(f"{j:.0f}" for j in thresholds)
        + " (raw "
        + ", ".join(f"{r:.0f}" for r in raw)
        + ").",
        "- Run length: at most 32k transitions, cut to max(4000, 4000/σ) in stage 1 and max(4000, 5000/σ) in stage 2",
        "  (a compute box, so high-σ runs stay affordable; the held-out σ = 4 runs stop at 2500); time box 150 s",
        "  (stage 1) and 600 s (stage 2) per run.",
        "- Stage 1 (hyperparameters, 2 seeds): σ ∈ {1/8, 1/2}; batch {64, 128, 256} at lr 3e-4 and lr",
        "  {1e-4, 3e-4, 1e-3} at batch 64. Best batch/lr by bootstrap-averaged argmin of the crossing time at the top",
        "  threshold; shared-slope power law in σ.",
        "- Stage 2 (data law, 3 seeds): σ ∈ {1/8, 1/4, 1/2, 1, 2} with batch and lr from the stage-1 laws; D_J(σ)",
        "  fitted per threshold on these (squared error of log D); σ = 4 (3 seeds, same laws) held out and predicted.",
        "",
        "## Fitted hyperparameter laws (stage 1)",
        "",
        f"- B*(σ) = {b['coefficients']['pendulum']:.4g} · σ^{b['exponent']:.3f} ({b['status'].split(' (')[0]})",
        f"- η*(σ) = {lr['coefficients']['pendulum']:.4g} · σ^{lr['exponent']:.3f} ({lr['status'].split(' (')[0]})",
        "- Points (bootstrap-averaged argmins): "
        + "; ".join(f"B*({p['utd']:g}) = {p['best']:.0f}" for p in b["points"])
        + "; "
        + "; ".join(f"η*({p['utd']:g}) = {p['best']:.3g}" for p in lr["points"]),
        "- Stage-2 settings from the laws (batch rounded to 16, lr to 3 significant figures): "
        + ", ".join(f"σ={s:g}: B={bs}, η={r:.3g}" for s, bs, r in settings),
        "- Caveat: every bootstrap argmin sits at or next to the edge of its grid (lr 1e-3 is the largest swept and",
        "  wins at both σ), so η* is a lower bound and B*(σ) rests on two σ values; a wider grid would pin them down."
        + (
            f" B* grows with σ here (exponent {b['exponent']:+.2f}), unlike the papers' Gym and DMC slopes (-0.31,"
            " -0.49); with the optimum at the grid's edge (the largest batch has the lowest point estimate at both σ)"
            " the slope mostly reflects how often resamples pick an interior value."
            if b["exponent"] > 0
            else ""
        ),
        "",
        "## Data law D_J(σ) = D_min + (β/σ)^α, fitted on σ ≤ 2",
        "",
        "| J | raw return | D_min | α | β | fitted points (σ: D_J ± bootstrap std) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for e, r in zip(fits["data_law"]["per_threshold"], raw):
        pts = ", ".join(f"{p['utd']:g}: {fmt(p['data'], '.0f')} ± {fmt(p['std'], '.0f')}" for p in e["points"])
        if e["status"] == "fitted":
            lines.append(
                f"| {e['threshold']:.0f} | {r:.0f} | {e['d_min']:.4g} | {e['alpha']:.3f} | {e['beta']:.4g} | {pts} |"
            )
        else:
            lines.append(f"| {e['threshold']:.0f} | {r:.0f} | {e['status']} | | | {pts} |")
    lines += [
        "",
        "## Held-out σ = 4: prediction vs measurement",
        "",
        "| J | predicted D_J | measured D_J (± bootstrap std over seeds) | error |",
        "| --- | --- | --- | --- |",
    ]
    errors = []
    for h in held:
        err = h["relative_error"]
        if err is not None:
            errors.append(abs(err))
        shown = "not reached" if err is None else f"{100 * err:+.1f}%"
        measured = f"{fmt(h['measured'], '.0f')} ± {fmt(h['measured_std'], '.0f')}"
        lines.append(f"| {h['threshold']:.0f} | {h['predicted']:.0f} | {measured} | {shown} |")
    if errors:
        lines += ["", f"Mean absolute error over thresholds: {100 * sum(errors) / len(errors):.1f}% "
                  f"(largest {100 * max(errors):.1f}%)."]  # fmt: skip
    if results["sigma_of_budget"]:
        lines += [
            "",
            "## Budget",
            "",
            f"δ = {fits['delta']:.3g} FLOPs per transition ({fits['delta_source']}: the wall-clock price of a pendulum",
            "transition relative to a critic update on this machine, so σ* is what this CPU should run, not a GPU",
            f"simulator); σ*(F) = {fits['budget']['k']:.3g} · F^{fits['budget']['e']:.3f} "
            f"(fitted on thresholds {fits['budget']['fitted_thresholds']}, "
            f"held out {fits['budget']['held_out_thresholds']}). Plots: `sigma_star_vs_budget.png`, `pareto.png`.",
            "",
            "| J | σ* (grid) | D* | F* | k·F*^e | |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for r in fits["budget"]["table"]:
            off = r["sigma_predicted"] / r["sigma_star"] - 1
            lines.append(f"| {r.get('threshold', r['threshold_index']):.0f} | {r['sigma_star']:.3g} | "
                         f"{r['data_star']:.0f} | {r['budget_star']:.3g} | {r['sigma_predicted']:.3g} | "
                         f"{f'held out: {100 * off:+.1f}%' if r['held_out'] else ''} |")  # fmt: skip
    lines += [
        "",
        "## Plots",
        "",
        "`data_vs_sigma.png` (D_J vs σ, fits, held-out σ = 4 as stars), `pareto.png`, `sigma_star_vs_budget.png`,",
        "`hyperparameters.png` (from the stage-1 fits: bootstrap argmins and the fitted B*(σ), η*(σ)).",
        "",
        "## Machine and cost",
        "",
        f"- {m['cpu']}, {m['cores']} cores, {m['platform']}; Python {m['python']}, torch {m['torch']}, numpy "
        f"{m['numpy']}, scipy {m['scipy']}; commit {m['git_commit']}.",
        f"- {len(summaries)} training runs"
        + (f", {elapsed / 60:.0f} min wall-clock from the first run to the last" if elapsed else "")
        + f"; {results['runs_stopped_by_time_box']} run(s) stopped by the time box (stage-1 σ = 1/8, batch 256, after",
        "  about 27k of 32k transitions, long after crossing every threshold). The study was stopped once and resumed",
        "  (finished runs are kept); a first stage-1 grid with σ = 2 was cut to fit the time.",
        f"- The machine was shared with other jobs (load average {load} on {m['cores']} cores), so wall-clock numbers"
        " (and δ, which is derived from them) are noisy.",
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'report.md'} and {out / 'results.json'}")


if __name__ == "__main__":
    main()
