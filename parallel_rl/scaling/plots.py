"""PNGs of a ``fit`` output: D_J vs σ with the fitted laws, the data-compute Pareto frontier, σ* vs F with the
held-out thresholds marked, and B*/η* vs σ. matplotlib is imported here only (the Agg backend, no display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from parallel_rl.scaling.compute import compute_to_threshold, pareto_mask, sigma_grid
from parallel_rl.scaling.datalaw import DataLaw
from parallel_rl.scaling.hyperparams import SharedPowerLaw


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'parallel-rl[scaling]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _log_axes(ax) -> None:
    """Log-log axes labelled at 1, 2 and 5 times each power of ten (matplotlib's default labels the minor ticks
    of short ranges, where they overlap)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set(xscale="log", yscale="log")
    lo, hi = ax.get_ylim()
    if lo > 0 and hi / lo < 2:  # a (nearly) constant quantity: give the axis a factor of 2 each way
        mid = (lo * hi) ** 0.5
        ax.set_ylim(mid / 2, mid * 2)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
        axis.set_minor_formatter(NullFormatter())


def _legend(ax, size: int) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=size)


def _grid(fits: dict[str, Any], extra: list[float]) -> np.ndarray:
    lo, hi = fits["utd_range"]
    return sigma_grid(min([lo, *extra]), max([hi, *extra]), 100)


def plot_data_vs_sigma(fits: dict[str, Any], path: Path) -> Path | None:
    if not any(len(e.get("utd", [])) >= 2 for e in fits["data_law"]["per_threshold"]):
        return None  # the runs had one σ (e.g. an env-count sweep): nothing to draw against σ
    plt = _pyplot()
    held = fits.get("held_out") or []
    grid = _grid(fits, [h["utd"] for h in held])
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    colors = plt.cm.viridis(np.linspace(0, 0.9, max(1, len(fits["data_law"]["per_threshold"]))))
    m = fits["data_law"]["m"]
    for color, e in zip(colors, fits["data_law"]["per_threshold"]):
        pts = [p for p in e["points"] if p["data"] is not None]
        if pts:
            ax.errorbar([p["utd"] for p in pts], [p["data"] for p in pts],
                        yerr=[p["std"] or 0.0 for p in pts], fmt="o", color=color, ms=4, capsize=2)  # fmt: skip
        if e.get("status") == "fitted":
            ax.plot(grid, DataLaw(e["a"], e["b"], e["c"], m)(grid), color=color, lw=1.2,
                    label=f"J={e['threshold']:.0f}: α={e['a']:.2f}, D_min={e['d_min']:.3g}")  # fmt: skip
            for h in held:
                if h["threshold"] == e["threshold"] and h["measured"] is not None:
                    ax.plot(h["utd"], h["measured"], marker="*", ms=12, color=color, mec="k", ls="none")
    _log_axes(ax)
    ax.set(xlabel="σ (critic updates per transition)", ylabel="D_J (env steps)",
           title="Data to reach J vs UTD (stars: held-out σ)")  # fmt: skip
    _legend(ax, 7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_pareto(fits: dict[str, Any], path: Path) -> Path | None:
    fitted = [e for e in fits["data_law"]["per_threshold"] if e.get("status") == "fitted"]
    if not fitted or not fits.get("params") or not fits["batch_law"]["coefficients"]:
        return None  # no critic size or batch size: no compute axis
    plt = _pyplot()
    grid = _grid(fits, [])
    batch = SharedPowerLaw(fits["batch_law"]["exponent"], fits["batch_law"]["coefficients"])
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    colors = plt.cm.viridis(np.linspace(0, 0.9, max(1, len(fitted))))
    k_flops, params = fits.get("k_flops", 10.0), fits["params"]
    for color, e in zip(colors, fitted):
        data = DataLaw(e["a"], e["b"], e["c"], fits["data_law"]["m"])(grid)
        compute = compute_to_threshold(grid, data, batch(grid), params, k_flops)
        keep = pareto_mask(data, compute)
        ax.plot(data, compute, color=color, lw=0.8, ls=":")
        ax.plot(data[keep], compute[keep], color=color, lw=1.8, label=f"J={e['threshold']:.0f}")
        for s in (grid[0], grid[-1]):
            i = int(np.argmin(np.abs(grid - s)))
            ax.annotate(f"σ={s:.3g}", (data[i], compute[i]), fontsize=6, color=color)
    _log_axes(ax)
    ax.set(xlabel="D_J (env steps)", ylabel="C_J (FLOPs)",
           title="Data-compute Pareto frontier (solid: non-dominated)")  # fmt: skip
    _legend(ax, 7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_sigma_star(fits: dict[str, Any], path: Path) -> Path | None:
    b = fits.get("budget")
    if not b:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    rows = b["table"]
    for held, style, label in ((False, "o", "fitted thresholds"), (True, "s", "held-out thresholds")):
        sel = [r for r in rows if r["held_out"] == held]
        if sel:
            ax.plot([r["budget_star"] for r in sel], [r["sigma_star"] for r in sel], style, ms=6,
                    mfc="none" if held else None, label=label)  # fmt: skip
    f = np.logspace(np.log10(min(r["budget_star"] for r in rows)) - 0.2,
                    np.log10(max(r["budget_star"] for r in rows)) + 0.2, 50)  # fmt: skip
    ax.plot(f, b["k"] * f ** b["e"], "k-", lw=1, label=f"σ* = {b['k']:.3g}·F^{b['e']:.3f}")
    _log_axes(ax)
    ax.set(xlabel="F* = C + δ·D (FLOPs)", ylabel="σ*", title="Budget-optimal UTD")
    _legend(ax, 8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_hyperparameters(fits: dict[str, Any], path: Path) -> Path | None:
    if not any(fits[k].get("points") or fits[k].get("status", "").startswith("from ") for k in ("batch_law", "lr_law")):
        return None  # neither batch size nor learning rate was swept (or taken from laws): constants only
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    grid = _grid(fits, [])
    for ax, key, label in ((axes[0], "batch_law", "B*"), (axes[1], "lr_law", "η*")):
        law = fits[key]
        pts = law.get("points", [])
        for p in pts:  # the swept values, so an optimum at the grid's edge is visible
            ax.plot([p["utd"]] * len(p.get("swept", [])), p.get("swept", []), "_", color="0.6", ms=10)
        for task in sorted({p["task"] for p in pts} | set(law["coefficients"])):
            sel = [p for p in pts if p["task"] == task]
            if sel:
                ax.plot([p["utd"] for p in sel], [p["best"] for p in sel], "o", label=f"{task} (bootstrap argmin)")
            ax.plot(grid, law["coefficients"][task] * grid ** law["exponent"], "-",
                    label=f"{task}: {law['coefficients'][task]:.3g}·σ^{law['exponent']:.3f}")  # fmt: skip
        _log_axes(ax)
        status = law.get("status", "")
        if status.startswith("from "):
            status = f"from {Path(status[5:]).name}"
        elif status != "fitted":
            status = "constant: not swept"
        ax.set(xlabel="σ", ylabel=label, title=f"{label}(σ) ({status})")
        _legend(ax, 7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_sigma_n(fits: dict[str, Any], path: Path) -> Path | None:
    """D_J vs σ per critic size with D_J(σ, N) (top threshold of the fit), held-out cells as stars."""
    laws = fits.get("data_law_sigma_n")
    if not laws:
        return None
    from parallel_rl.scaling.datalaw import DataLawSigmaN

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(laws), figsize=(3.6 * len(laws), 3.8), squeeze=False)
    held = fits.get("held_out_sigma_n") or []
    for ax, e in zip(axes[0], laws):
        law = DataLawSigmaN(e["d_min"], e["a"], e["alpha"], e["b"], e["beta"])
        cells = np.array(e["cells"], dtype=float)
        sizes = sorted(set(cells[:, 1]))
        colors = plt.cm.plasma(np.linspace(0, 0.8, len(sizes)))
        grid = np.logspace(np.log10(cells[:, 0].min()), np.log10(cells[:, 0].max()), 50)
        for color, n in zip(colors, sizes):
            sel = [(c[0], y) for c, y in zip(cells, e["normalised"]) if c[1] == n and y is not None]
            if sel:
                ax.plot(*zip(*[(sx, y * e["m"]) for sx, y in sel]), "o", color=color, ms=4)
            ax.plot(grid, law(grid, n), "-", color=color, lw=1, label=f"N={n:.3g}")
        for h in held:
            if h["threshold"] == e["threshold"] and h["measured"] is not None:
                ax.plot(h["utd"], h["measured"], "*", ms=12, mec="k", color="w")
        _log_axes(ax)
        ax.set(xlabel="σ", ylabel="D_J (env steps)", title=f"J={e['threshold']:.0f}: α={e['alpha']:.2f}, "
               f"β={e['beta']:.2f}")  # fmt: skip
        _legend(ax, 6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_num_envs(fits: dict[str, Any], path: Path) -> Path | None:
    """D_J and wall-clock time to J against the number of parallel envs, with their fits (held out: stars)."""
    law = fits.get("num_envs_law")
    if not law:
        return None
    from parallel_rl.scaling.datalaw import PowerLawWithConstant

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    entries = law["per_threshold"]
    colors = plt.cm.viridis(np.linspace(0, 0.9, max(1, len(entries))))
    for color, e in zip(colors, entries):
        envs = [p["num_envs"] for p in e["points"]]
        grid = np.logspace(np.log10(min(envs)), np.log10(max(envs)), 50)
        for ax, key, fit_key in ((axes[0], "data", "data_law"), (axes[1], "wall_seconds", "wall_law")):
            for held, marker in ((False, "o"), (True, "*")):
                sel = [p for p in e["points"] if p["held_out"] == held and p[key] is not None]
                if sel:
                    ax.plot([p["num_envs"] for p in sel], [p[key] for p in sel], marker, color=color,
                            ms=11 if held else 4, mec="k" if held else None)  # fmt: skip
            f = e.get(fit_key, {})
            if "c" in f:
                ax.plot(grid, PowerLawWithConstant(f["c"], f["b"], f["e"])(grid), "-", color=color, lw=1,
                        label=f"J={e['threshold']:.0f}: {f['c']:.3g} + (n/{f['b']:.3g})^{f['e']:.2f}")  # fmt: skip
    for ax, ylabel, title in ((axes[0], "D_J (env steps)", "Data to J"),
                              (axes[1], "training seconds to J", "Wall-clock to J")):  # fmt: skip
        _log_axes(ax)
        ax.set(xlabel="num_envs", ylabel=ylabel, title=f"{title} (σ = {law['utd']:g}; stars: held out)")
        _legend(ax, 6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_all(fits: dict[str, Any], out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    made = [
        plot_data_vs_sigma(fits, out_dir / "data_vs_sigma.png"),
        plot_pareto(fits, out_dir / "pareto.png"),
        plot_sigma_star(fits, out_dir / "sigma_star_vs_budget.png"),
        plot_hyperparameters(fits, out_dir / "hyperparameters.png"),
        plot_sigma_n(fits, out_dir / "sigma_n.png"),
        plot_num_envs(fits, out_dir / "num_envs.png"),
    ]
    return [p for p in made if p is not None]
