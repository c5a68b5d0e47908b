"""Scaling toolkit from the command line: ``python -m launch.scaling {sweep,fit,budget,predict,plot} [flags]``.

- ``sweep``: train over a grid of σ (critic updates per transition) x batch x lr x critic width x seeds, one process
  per run, resumable; training flags go after ``--`` (``... sweep --sigma 0.25 1 --out runs/s -- --task pendulum``).
- ``fit``: run tables -> crossing times -> fitted laws (one JSON).
- ``budget``: the ``--fits FILE --out OUT`` contract (published or our own fits) -> σ*(F) = k·F^e and a table.
- ``predict``: recommended (σ, batch, lr, critic width) for a compute budget or a data target.
- ``plot``: PNGs of D_J vs σ, the Pareto frontier, σ* vs F, and B*/η* vs σ.
"""

from __future__ import annotations

import json
import math
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from parallel_rl.config import ConfigError

# Returns mapped to the papers' 0-1000 scale for the built-in tasks (lo -> 0, hi -> 1000). Pendulum: a random
# policy scores about -1200 to -1400 and the best possible return is a little below 0. Cart-pole swing-up earns at
# most 1 per step for 200 steps.
RETURN_RANGES: dict[str, tuple[float, float]] = {"pendulum": (-1600.0, 0.0), "cartpole-swingup": (0.0, 200.0)}


@dataclass
class Sweep:
    """Train over a grid (σ x batch x lr x critic width) x seeds, each run in its own process; finished cells are
    skipped, so an interrupted sweep resumes where it stopped. Training flags follow ``--``."""

    out: str
    """Sweep directory: runs/<cell>/ (each a full run directory), run_table.csv (all finished cells), sweep.json."""
    sigma: tuple[float, ...]
    """UTD values σ = critic updates per environment transition (the trainer's --utd is σ x --num-envs)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds of every grid point."""
    batch_size: tuple[int, ...] = ()
    """Batch sizes to sweep (empty: the training config's, or the fitted law's with --laws)."""
    lr: tuple[float, ...] = ()
    """Learning rates (critic and actor) to sweep (empty: the training config's, or the fitted law's with --laws)."""
    critic_width: tuple[int, ...] = ()
    """Critic hidden widths (every hidden layer; empty: the training config's critic)."""
    laws: str | None = None
    """A ``fit`` output: take batch size and learning rate at each σ from its B*(σ) and η*(σ) (rounded to a
    multiple of 16 and 3 significant figures)."""
    workers: int = 1
    """Runs at once (separate processes)."""
    max_wall_seconds: float = 0.0
    """Time box per run (the trainer stops, evaluates and saves; 0: none)."""
    max_critic_updates: int = 0
    """Compute box per run: stop a run after about this many critic updates (its env steps become
    max(--min-env-steps, this / σ), at most the training config's --total-env-steps); 0: none."""
    min_env_steps: int = 0
    """Shortest run the compute box may produce, in transitions."""
    eval_every: int = 0
    """Transitions between evaluations (the crossing-time resolution); 0: the training flag's value, else 1/40 of
    the run."""
    torch_threads: int = 1
    """CPU threads per run (keep workers x threads within the cores)."""
    progress: bool = True
    """Show a progress bar over runs."""


@dataclass
class Fit:
    """Fit the scaling laws to run tables: crossing times (isotonic, bootstrap over seeds), B*(σ), η*(σ),
    D_J(σ) per threshold, D_J(σ, N) and B*(σ, N) when several critic sizes ran, and the budget-optimal σ*(F)."""

    runs: tuple[str, ...]
    """Run tables (CSV) or sweep directories (every runs/*/run_table.csv below them)."""
    out: str = "scaling_fits.json"
    """Output JSON of fitted laws (it also satisfies the ``budget --fits`` contract)."""
    thresholds: tuple[float, ...] = ()
    """Return thresholds J on the normalised scale, ascending (empty: 1000 - logspace(log10 low_gap,
    log10 high_gap, num_thresholds))."""
    num_thresholds: int = 10
    """Number of default thresholds."""
    low_gap: float = 700.0
    """Lowest default threshold is 1000 - low_gap."""
    high_gap: float = 200.0
    """Highest default threshold is 1000 - high_gap."""
    return_range: tuple[str, ...] = ()
    """Normalisation per task as TASK=LO,HI (LO -> 0, HI -> 1000); built-in tasks have defaults."""
    raw_returns: bool = False
    """Fit raw returns (no 0-1000 normalisation)."""
    hyper_threshold: int = -1
    """Index of the threshold whose crossing time picks the best batch size and learning rate (default: the last)."""
    resamples: int = 100
    """Bootstrap resamples over seeds."""
    delta: float | None = None
    """FLOPs one environment transition costs (δ). Default: measured from the runs' wall-clock, pricing a
    transition at the rate the runs paid for update FLOPs."""
    k_flops: float = 10.0
    """FLOPs per critic parameter per sample per update (the papers' 10)."""
    count_flops: bool = False
    """Count k_flops from the network shapes of the first run directory under --runs instead (critic and actor
    forward/backward passes, target critic, delayed actor updates)."""
    hold_out: int = 2
    """Top thresholds left out of the σ*(F) fit to test its extrapolation."""
    hyper_laws: str | None = None
    """A ``fit`` output whose B*(σ) and η*(σ) the runs followed (``sweep --laws``): kept as this fit's batch and lr
    laws instead of refitting them from runs that did not vary batch or lr."""
    exclude_sigma: tuple[float, ...] = ()
    """σ values kept out of every law; the data law's prediction there is reported against the measurement."""
    seed: int = 0
    """Seed of the bootstrap."""


@dataclass
class Budget:
    """Budget-optimal UTD from a fits file (published fits or a ``fit`` output): for each threshold
    σ* = argmin over σ of C_J + δ·D_J, and σ*(F) = k·F^e fitted without the top thresholds."""

    fits: str
    """JSON: params, delta, utd_range, utd_grid_points, data_law {m, abc}, batch_law {exponent, coefficients}."""
    out: str = "budget.json"
    """Output JSON: k, e, and a per-threshold table (σ*, D*, C*, F*, B(σ*))."""


@dataclass
class Predict:
    """Recommended σ, batch size, learning rate and critic width for a compute budget or a data target."""

    fits: str
    """A ``fit`` output."""
    budget: float | None = None
    """Total budget F = C + δ·D in FLOPs."""
    data: float | None = None
    """Data target: env steps in which to reach the threshold."""
    threshold_index: int = -1
    """Threshold for --data (index into the fit's thresholds)."""
    task: str | None = None
    """Task whose intercepts to use (default: the average over the fitted tasks)."""


@dataclass
class Plot:
    """PNGs of D_J vs σ with fits, the data-compute Pareto frontier per threshold, σ* vs F (held-out thresholds
    marked), and B*/η* vs σ."""

    fits: str
    """A ``fit`` output."""
    out: str = "scaling_plots"
    """Directory for the PNGs."""


Command = (
    Annotated[Sweep, tyro.conf.subcommand("sweep")]
    | Annotated[Fit, tyro.conf.subcommand("fit")]
    | Annotated[Budget, tyro.conf.subcommand("budget")]
    | Annotated[Predict, tyro.conf.subcommand("predict")]
    | Annotated[Plot, tyro.conf.subcommand("plot")]
)


# ---- sweep ---------------------------------------------------------------------------------------------------------
def run_sweep_command(args: Sweep, train_args: list[str], argv: list[str] | None = None) -> dict:
    from launch.train import parse
    from parallel_rl.config import replace_nested, validate
    from parallel_rl.scaling.hyperparams import round_batch, round_lr
    from parallel_rl.scaling.sweep import env_steps_for, grid_cells, run_sweep, summarise

    swept = ["--utd", "--seed", "--run-dir"]
    swept += ["--batch-size"] if args.batch_size or args.laws else []
    swept += ["--critic-lr", "--actor-lr"] if args.lr or args.laws else []
    swept += ["--critic-hidden"] if args.critic_width else []
    clash = [f for f in swept if any(a == f or a.startswith(f + "=") for a in train_args)]
    if clash:
        raise ConfigError(f"training flag(s) {', '.join(clash)} are set by the sweep; use the sweep's own flags")
    if args.laws and (args.batch_size or args.lr):
        raise ConfigError("--laws sets batch size and learning rate from the fitted laws; drop --batch-size/--lr")
    base = parse([*train_args, "--no-progress"])
    num_envs, hidden = base.num_envs, base.agent.critic_hidden
    batch: Sequence[int] | Callable[[float], int] = args.batch_size or (base.buffer.batch_size,)
    lr: Sequence[float] | Callable[[float], float] = args.lr or (base.agent.critic_lr,)
    if args.laws:
        laws = json.loads(Path(args.laws).read_text())
        b_law, lr_law = _task_law(laws, "batch_law", base.task), _task_law(laws, "lr_law", base.task)
        batch = lambda s: round_batch(b_law(s))  # noqa: E731
        lr = lambda s: round_lr(lr_law(s))  # noqa: E731
    widths = args.critic_width or (max(hidden),)

    def steps(sigma: float) -> int:
        return env_steps_for(sigma, base.total_env_steps, args.max_critic_updates, args.min_env_steps, num_envs)

    cells = grid_cells(args.sigma, batch, lr, widths, args.seeds, steps)

    def command(cell, run_dir: Path) -> list[str]:
        utd = cell.sigma * num_envs
        eval_every = args.eval_every or base.eval_every or max(num_envs, cell.total_env_steps // 40)
        argv = [sys.executable, "-m", "launch.train", *train_args, "--utd", repr(utd), "--batch-size",
                str(cell.batch_size), "--critic-lr", repr(cell.lr), "--actor-lr", repr(cell.lr), "--seed",
                str(cell.seed), "--total-env-steps", str(cell.total_env_steps), "--eval-every", str(eval_every),
                "--run-dir", str(run_dir), "--no-progress", "--torch-threads", str(args.torch_threads),
                "--max-wall-seconds", repr(args.max_wall_seconds)]  # fmt: skip
        if args.critic_width:
            argv += ["--critic-hidden", *[str(cell.critic_width)] * len(hidden)]
        return argv

    for cell in cells:  # fail early, before any run starts, on a cell the trainer would reject
        overrides = {
            "seed": cell.seed,
            "total_env_steps": cell.total_env_steps,
            "schedule": {"utd": cell.sigma * num_envs},
            "buffer": {"batch_size": cell.batch_size},
            "agent": {"critic_lr": cell.lr, "actor_lr": cell.lr},
        }
        if args.critic_width:
            overrides["agent"]["critic_hidden"] = (cell.critic_width,) * len(hidden)
        validate(replace_nested(base, overrides))
    hard = 3 * args.max_wall_seconds + 300 if args.max_wall_seconds > 0 else None
    results = run_sweep(cells, args.out, command, args.workers, hard, args.progress)
    command_line = ["python", "-m", "launch.scaling", *(argv or []), "--", *train_args]
    record = {"train_args": train_args, "command": shlex.join(command_line), **summarise(results)}
    Path(args.out, "sweep.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"sweep: {record['done']} run, {record['skipped']} already done, {record['failed']} failed; "
          f"run table {Path(args.out, 'run_table.csv')}")  # fmt: skip
    return record


def _task_law(laws: dict, key: str, task: str):
    """value(σ) from a fitted law, at ``task``'s intercept (or the tasks' mean when the task was not fitted)."""
    try:
        law = laws[key]
        exponent, coefs = float(law["exponent"]), {t: float(c) for t, c in law["coefficients"].items()}
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"--laws: missing or malformed {key} ({e})") from None
    values = [coefs[task]] if task in coefs else list(coefs.values())
    return lambda sigma: sum(c * sigma**exponent for c in values) / len(values)


# ---- fit, budget, predict, plot -----------------------------------------------------------------------------------
def parse_ranges(items: Sequence[str]) -> dict[str, tuple[float, float]]:
    """TASK=LO,HI items over the built-in defaults."""
    ranges = dict(RETURN_RANGES)
    for item in items:
        try:
            task, bounds = item.split("=", 1)
            lo, hi = (float(v) for v in bounds.split(","))
        except ValueError:
            raise ConfigError(f"--return-range: expected TASK=LO,HI (e.g. pendulum=-1600,0), got {item!r}") from None
        if not hi > lo:
            raise ConfigError(f"--return-range {item}: need LO < HI")
        ranges[task] = (lo, hi)
    return ranges


def _write_json(path: str | Path, data: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(data), indent=2, allow_nan=False) + "\n")
    return path


def _jsonable(x):
    """Strict JSON: numpy values as Python ones, non-finite numbers (not fitted, never reached) as null."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "tolist"):
        return _jsonable(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _read_json(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    return json.loads(p.read_text())


def run_fit(args: Fit) -> dict:
    from parallel_rl.scaling.crossing import paper_thresholds
    from parallel_rl.scaling.fit import fit_laws, load_rows

    thresholds = list(args.thresholds) or paper_thresholds(args.num_thresholds, args.low_gap, args.high_gap).tolist()
    ranges = {} if args.raw_returns else parse_ranges(args.return_range)
    k_flops = args.k_flops
    if args.count_flops:
        from parallel_rl.scaling.fit import run_table_paths
        from parallel_rl.scaling.runtable import flops_constant_from_run_dir

        run_dirs = [p.parent for p in run_table_paths(args.runs) if (p.parent / "config.json").is_file()]
        if not run_dirs:
            raise ConfigError("--count-flops needs a run directory (with its checkpoint) under --runs")
        k_flops = flops_constant_from_run_dir(run_dirs[0])
        print(f"k_flops = {k_flops:.3f} counted from the network shapes of {run_dirs[0]}")
    hyper = None
    if args.hyper_laws:
        hyper = {**_read_json(args.hyper_laws), "_source": args.hyper_laws}
    fits = fit_laws(load_rows(args.runs), thresholds, ranges, args.hyper_threshold, args.resamples, args.seed,
                    args.delta, k_flops, args.hold_out, args.exclude_sigma, hyper_laws=hyper)  # fmt: skip
    _write_json(args.out, fits)
    for name, law in (("B*(σ)", fits["batch_law"]), ("η*(σ)", fits["lr_law"])):
        coefs = ", ".join(f"{t}: {c:.4g}" for t, c in law["coefficients"].items())
        print(f"{name} = coefficient·σ^{law['exponent']:.3f} ({coefs}); {law['status']}")
        edge = [p for p in law.get("points", []) if p.get("at_edge", 0) > 0.5]
        if edge:
            where = ", ".join(f"σ={p['utd']:g}: {p['best']:.3g}" for p in edge)
            print(f"  warning: the best value is at the edge of the swept grid ({where}); widen the grid")
    for e in fits["data_law"]["per_threshold"]:
        if e["status"] == "fitted":
            print(f"J={e['threshold']:.4g}: D_J(σ) = {e['d_min']:.4g} + ({e['beta']:.4g}/σ)^{e['alpha']:.3f}")
        else:
            print(f"J={e['threshold']:.4g}: {e['status']}")
    for h in fits["held_out"]:
        err = "n/a (not reached)" if h["relative_error"] is None else f"{100 * h['relative_error']:+.1f}%"
        print(f"held-out σ={h['utd']:g}, J={h['threshold']:.4g}: predicted {h['predicted']:.4g}, "
              f"measured {h['measured'] or float('inf'):.4g} ({err})")  # fmt: skip
    if "budget" in fits:
        print(f"σ*(F) = {fits['budget']['k']:.4g}·F^{fits['budget']['e']:.4g} (δ = {fits['delta']:.3g}, "
              f"{fits['delta_source']})")  # fmt: skip
    print(f"wrote {args.out}")
    return fits


def run_budget(args: Budget) -> dict:
    from parallel_rl.scaling.budget import budget_table, load_fits

    result = budget_table(load_fits(args.fits))
    _write_json(args.out, result)
    print(f"σ*(F) = {result['k']:.4g}·F^{result['e']:.4g} (fitted on thresholds {result['fitted_thresholds']}, "
          f"held out {result['held_out_thresholds']})")  # fmt: skip
    print(f"{'i':>2} {'J':>7} {'σ*':>8} {'D*':>10} {'C*':>10} {'F*':>10} {'B(σ*)':>7} {'k·F*^e':>8}")
    for r in result["table"]:
        j = f"{r['threshold']:.4g}" if "threshold" in r else "-"
        off = r["sigma_predicted"] / r["sigma_star"] - 1
        held = f"  held out: law off by {off:+.1%}" if r["held_out"] else ""
        print(f"{r['threshold_index']:>2} {j:>7} {r['sigma_star']:>8.4g} {r['data_star']:>10.4g} "
              f"{r['compute_star']:>10.4g} {r['budget_star']:>10.4g} {r['batch_at_sigma_star']:>7.1f} "
              f"{r['sigma_predicted']:>8.4g}{held}")  # fmt: skip
    print(f"wrote {args.out}")
    return result


def run_predict(args: Predict) -> dict:
    from parallel_rl.scaling.recommend import format_recommendation, recommend

    rec = recommend(_read_json(args.fits), args.budget, args.data, args.threshold_index, args.task)
    print(format_recommendation(rec))
    return rec


def run_plot(args: Plot) -> list[Path]:
    from parallel_rl.scaling.plots import plot_all

    made = plot_all(_read_json(args.fits), args.out)
    for p in made:
        print(f"wrote {p}")
    return made


DISPATCH: dict[type, Callable] = {Fit: run_fit, Budget: run_budget, Predict: run_predict, Plot: run_plot}


# ---- entry point ---------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else list(argv)
    train_args: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, train_args = argv[:i], argv[i + 1 :]
    args = tyro.cli(Command, args=argv, description=__doc__)  # type: ignore[call-overload]
    try:
        if isinstance(args, Sweep):
            return run_sweep_command(args, train_args, argv)
        if train_args:
            raise ConfigError("only `sweep` takes training flags after --")
        return DISPATCH[type(args)](args)
    except (ValueError, FileNotFoundError, ImportError) as e:  # ConfigError, FitsError, RunTableError included
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
