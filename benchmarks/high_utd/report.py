"""Summarize benchmarks/high_utd/results.csv: a figure (final return vs UTD per task and configuration, and the
critic's parameter norm) and report.md naming, for each task and UTD, the best configuration at equal env steps.

    python benchmarks/high_utd/report.py
"""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from pathlib import Path

OUT = Path(__file__).resolve().parent


def load(path: Path) -> list[dict]:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["utd"] = int(float(r["utd"]))
        for k in ("final_eval_return", "wall_seconds", "cpu_seconds", "critic_param_norm", "actor_param_norm",
                  "sigma", "critic_updates", "env_steps"):  # fmt: skip
            r[k] = float(r[k]) if r.get(k) not in (None, "") else float("nan")
    return rows


def summarize(rows: list[dict]) -> dict[tuple[str, str, int], dict]:
    groups: dict[tuple[str, str, int], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["task"], r["config"], r["utd"])].append(r)
    out = {}
    for key, rs in groups.items():
        ok = [r for r in rs if r["status"] == "ok"]
        rets = [r["final_eval_return"] for r in ok]
        out[key] = {"n": len(ok), "failed": len(rs) - len(ok),
                    "mean": statistics.fmean(rets) if rets else float("nan"),
                    "std": statistics.pstdev(rets) if len(rets) > 1 else 0.0,
                    "wall": statistics.fmean(r["wall_seconds"] for r in rs),
                    "cpu": statistics.fmean(r["cpu_seconds"] for r in rs),
                    "critic_norm": statistics.fmean(r["critic_param_norm"] for r in ok) if ok else float("nan"),
                    "sigma": statistics.fmean(r["sigma"] for r in ok) if ok else float("nan"),
                    "env_steps": rs[0]["env_steps"]}  # fmt: skip
    return out


def plot(summary: dict, tasks: list[str], configs: list[str], utds: list[int], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(2, len(tasks), figsize=(6 * len(tasks), 8), squeeze=False)
    for j, task in enumerate(tasks):
        for i, config in enumerate(configs):  # tab20: more configurations than the default cycle's 10 colours
            color = plt.get_cmap("tab20")(i % 20)
            xs = [u for u in utds if (task, config, u) in summary and summary[(task, config, u)]["n"]]
            if not xs:
                continue
            style = "-" if config in ("fasttd3", "fastsac") else "--"
            axes[0][j].errorbar(xs, [summary[(task, config, u)]["mean"] for u in xs],
                                yerr=[summary[(task, config, u)]["std"] for u in xs], label=config, ls=style,
                                marker="o", capsize=3, color=color)  # fmt: skip
            axes[1][j].plot(xs, [summary[(task, config, u)]["critic_norm"] for u in xs], label=config, ls=style,
                            marker="o", color=color)  # fmt: skip
        axes[0][j].set(title=f"{task}: final return at equal env steps", xscale="log", xlabel="UTD",
                       ylabel="final eval return")  # fmt: skip
        axes[1][j].set(title=f"{task}: critic parameter norm at the end", xscale="log", xlabel="UTD",
                       ylabel="L2 norm of all critic parameters", yscale="log")  # fmt: skip
        for ax in axes[:, j]:
            ax.set_xticks(utds, [str(u) for u in utds])
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main() -> None:
    rows = load(OUT / "results.csv")
    summary = summarize(rows)
    tasks = sorted({r["task"] for r in rows})
    configs = list(dict.fromkeys(r["config"] for r in rows))
    utds = sorted({r["utd"] for r in rows})
    with open(OUT / "summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["task", "config", "utd", "seeds_ok", "seeds_failed", "return_mean", "return_std", "env_steps",
                    "critic_param_norm", "sigma", "wall_seconds", "cpu_seconds"])  # fmt: skip
        for (task, config, utd), s in sorted(summary.items()):
            w.writerow([task, config, utd, s["n"], s["failed"], f"{s['mean']:.2f}", f"{s['std']:.2f}",
                        int(s["env_steps"]), f"{s['critic_norm']:.1f}", f"{s['sigma']:.4f}", f"{s['wall']:.1f}",
                        f"{s['cpu']:.1f}"])  # fmt: skip
    plotted = plot(summary, tasks, configs, utds, OUT / "high_utd.png")
    lines = ["# High-UTD ablation (CPU)", ""]
    machine = (OUT / "machine.txt").read_text().strip() if (OUT / "machine.txt").exists() else "not recorded"
    lines += ["Machine and load (`uptime` at start and end of the sweep, `lscpu` model name):", "", "```",
              machine, "```", ""]  # fmt: skip
    lines += ["## Best configuration per task and UTD (highest mean final return at equal env steps)", "",
              "Mean ± std over seeds. 'apart' says whether the best configuration's mean minus its std lies above the "
              "plain FastTD3 mean plus its std (a rough separation check for 3 seeds, not a significance test).", "",
              "| task | UTD | best | return | plain fasttd3 | plain fastsac | apart from fasttd3 | runner-up | seeds |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip

    def cell(key: tuple[str, str, int]) -> str:
        s = summary.get(key)
        return f"{s['mean']:.1f} ± {s['std']:.1f}" if s and s["n"] else "—"

    ranks: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for task in tasks:
        for utd in utds:
            cand = sorted(((s["mean"], c) for (t, c, u), s in summary.items() if t == task and u == utd and s["n"]),
                          reverse=True)  # fmt: skip
            if not cand:
                continue
            for rank, (_, c) in enumerate(cand, 1):
                ranks[utd][c].append(rank)
            best = summary[(task, cand[0][1], utd)]
            plain = summary.get((task, "fasttd3", utd))
            apart = "—" if plain is None or cand[0][1] == "fasttd3" else (
                "yes" if best["mean"] - best["std"] > plain["mean"] + plain["std"] else "no")  # fmt: skip
            runner = f"{cand[1][1]} ({cand[1][0]:.1f})" if len(cand) > 1 else "—"
            lines.append(f"| {task} | {utd} | **{cand[0][1]}** | {cell((task, cand[0][1], utd))} | "
                         f"{cell((task, 'fasttd3', utd))} | {cell((task, 'fastsac', utd))} | {apart} | {runner} | "
                         f"{best['n']} |")  # fmt: skip
    lines += ["", "## Best configuration per UTD over both tasks (mean rank of the mean return, 1 = best)", "",
              "| UTD | best (mean rank) | second | third | plain fasttd3 | plain fastsac |",
              "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for utd in utds:
        mean_rank = sorted((statistics.fmean(r), c) for c, r in ranks[utd].items() if len(r) == len(tasks))
        if not mean_rank:
            continue
        top = [f"{c} ({m:.1f})" for m, c in mean_rank[:3]] + ["—"] * 3
        plain = {c: f"{m:.1f}" for m, c in mean_rank}
        lines.append(f"| {utd} | **{top[0]}** | {top[1]} | {top[2]} | {plain.get('fasttd3', '—')} | "
                     f"{plain.get('fastsac', '—')} |")  # fmt: skip
    lines += ["", "## All configurations", "",
              "| task | config | UTD | return (mean ± std over seeds) | seeds ok / failed | critic norm | σ | wall s "
              "| CPU s |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for (task, config, utd), s in sorted(summary.items()):
        lines.append(f"| {task} | {config} | {utd} | {s['mean']:.1f} ± {s['std']:.1f} | {s['n']} / {s['failed']} | "
                     f"{s['critic_norm']:.1f} | {s['sigma']:.3f} | {s['wall']:.0f} | {s['cpu']:.0f} |")  # fmt: skip
    if plotted:
        lines += ["", "![return and critic norm vs UTD](high_utd.png)"]
    (OUT / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
