"""Scaling toolkit from the command line: ``python -m launch.scaling {sweep,import,fit,budget,predict,recommend,plot}``.

- ``sweep``: train over a grid of σ (critic updates per transition) x batch x lr x critic width x seeds, one process
  per run, resumable; training flags go after ``--`` (``... sweep --sigma 0.25 1 --out runs/s -- --task pendulum``).
- ``import {qscaled,csv,tensorboard,wandb-csv} SRC --out RUNS``: other people's runs as run tables.
- ``fit``: run tables -> crossing times -> fitted laws (one JSON); ``--method rybkin2025`` (default) or ``robust``.
- ``budget``: the ``--fits FILE --out OUT`` contract (published or our own fits) -> σ*(F) = k·F^e and a table.
- ``predict``: recommended (σ, batch, lr, critic width) for a compute budget or a data target along D_J(σ).
- ``recommend``: the compute-optimal (σ, critic size) of D_J(σ, N) for a budget (FLOPs or GPU-hours) or a data
  target, with the predicted D_J and its bootstrap interval.
- ``plot``: PNGs of D_J vs σ, the Pareto frontier, σ* vs F, B*/η* vs σ, and D_J / time vs num_envs.
"""

from __future__ import annotations

import dataclasses
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
from parallel_rl.threads import child_env, child_threads

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
    num_envs: tuple[int, ...] = ()
    """Parallel env counts to sweep at the same σ (the trainer's --utd becomes σ x num_envs; empty: the training
    config's). The parallel-env axis: fit then gives D_J(num_envs) and wall-clock to J against num_envs."""
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
    torch_threads: int = 0
    """CPU threads per run; 0: the cores this process may use (affinity, cgroup quota) divided by --workers, at
    least 1. Runs also get OMP_WAIT_POLICY=PASSIVE so idle OpenMP threads do not spin on the others' cores."""
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
    method: str = "rybkin2025"
    """'rybkin2025' (the papers' procedure: crossing times at the logged steps, hyperparameter argmins averaged
    arithmetically per (task, σ), data laws by plain squared error) or 'robust' (interpolated crossing times,
    per-group geometric means, log-space losses). --crossing, --argmin-average and --data-loss override one each."""
    crossing: str | None = None
    """'logged' (the first logged step at or above J) or 'interpolated' (linear between logged steps)."""
    argmin_average: str | None = None
    """'arithmetic' (per (task, σ), over resamples and the other hyperparameter) or 'geometric' (per group)."""
    data_loss: str | None = None
    """'squared' (squared error of D in task-median units) or 'log' (squared error of log D)."""
    return_range: tuple[str, ...] = ()
    """Normalisation per task as TASK=LO,HI (LO -> 0, HI -> 1000); else the run table's return_lo/return_hi
    columns (importers write them), else the built-in tasks' defaults."""
    normalize: bool = True
    """Map returns to the papers' 0-1000 scale; --no-normalize fits raw returns (and skips the scale check)."""
    raw_returns: bool = False
    """Same as --no-normalize."""
    params: float | None = None
    """Critic parameters N of the compute model when the run table has no critic_params (the papers' Gym: 1.5e5)."""
    fill_stopped: bool = False
    """Carry a seed's last return forward after its run stopped (runs stopped by --stop-at-return)."""
    exclude_cell: tuple[str, ...] = ()
    """(σ, critic width) cells kept out of D_J(σ, N), as SIGMA,WIDTH; its prediction is reported against the
    measurement."""
    exclude_num_envs: tuple[int, ...] = ()
    """num_envs values kept out of D_J(num_envs); their predictions are reported against the measurements."""
    law_resamples: int = 40
    """Bootstrap refits of D_J(σ, N) (its prediction intervals)."""
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
    """Task whose intercepts to use (default: every fitted task listed, and their geometric mean)."""


@dataclass
class Recommend:
    """The compute-optimal (σ, critic size N) of D_J(σ, N) at a threshold: the smallest D_J that a budget affords
    (F = C + δ·D, C = k·N·B·σ·D), or the least compute that reaches a data target; printed with batch size,
    learning rate, critic width, and the predicted D_J with its bootstrap interval."""

    fits: str
    """A ``fit`` output with D_J(σ, N) (runs at two or more critic widths)."""
    budget_flops: float | None = None
    """Total budget F in FLOPs."""
    budget_gpu_hours: float | None = None
    """Budget in accelerator hours, priced by --seconds-per-update (and --seconds-per-env-step)."""
    seconds_per_update: float | None = None
    """Measured seconds of one critic update at --measured-batch and --measured-params."""
    seconds_per_env_step: float = 0.0
    """Measured seconds of one environment transition (prices δ with --budget-gpu-hours)."""
    measured_batch: int | None = None
    """Batch size of the measured update (default: the runs' most common)."""
    measured_params: float | None = None
    """Critic parameters of the measured update (default: the fit's N)."""
    delta: float | None = None
    """FLOPs per transition δ (default: the fit's)."""
    data: float | None = None
    """Data target instead of a budget: env steps in which to reach the threshold."""
    threshold_index: int = -1
    """Threshold of D_J(σ, N) (index into the fitted ones; default the highest)."""
    task: str | None = None
    """Task for the batch size and learning rate (default: geometric mean over tasks)."""


@dataclass
class Plot:
    """PNGs of D_J vs σ with fits, the data-compute Pareto frontier per threshold, σ* vs F (held-out thresholds
    marked), and B*/η* vs σ."""

    fits: str
    """A ``fit`` output."""
    out: str = "scaling_plots"
    """Directory for the PNGs."""


@dataclass
class ImportQscaled:
    """qscaled's layout (prestonfu/qscaled, e.g. its cache/data or a zip of it): utd_<σ>/<Task>/<metric>/
    bs_<B>_lr_<η>.npy, each [env steps, seed 0, seed 1, ...]. One run table per dataset; the paper's datasets
    (gym_sweep, gym_ours, gym_baseline_utd2) get the paper's per-task return maxima."""

    src: Annotated[str, tyro.conf.Positional]
    """A dataset folder, a folder of datasets, or a zip file."""
    out: str = "runs"
    """Output: a .csv file (one dataset) or a folder (one <dataset>.csv each)."""
    metric: str = "episode.return"
    """Metric folder to read."""
    algo: str = ""
    """Value of the algo column."""
    return_range: tuple[str, ...] = ()
    """TASK=LO,HI recorded for fit (overrides the paper's maxima)."""


@dataclass
class ImportCsv:
    """A long CSV: one row per evaluation with task, config columns, seed, env_step, return[, wall_seconds]; other
    tools' column names are recognised (env, step, global_step, learning_rate, ...) or mapped with --column."""

    file: Annotated[str, tyro.conf.Positional]
    """The CSV file."""
    out: str = "run_table.csv"
    """Output run table."""
    column: tuple[str, ...] = ()
    """RUN_TABLE_COLUMN=FILE_COLUMN mappings (e.g. return=eval/return)."""
    set: tuple[str, ...] = ()
    """COLUMN=VALUE for every row (e.g. utd=1 task=ant)."""
    return_range: tuple[str, ...] = ()
    """TASK=LO,HI recorded for fit."""


@dataclass
class ImportTensorboard:
    """TensorBoard event files of any library (rsl_rl, FastTD3, Isaac Lab): every folder holding event files is a
    run; config values come from its path (--pattern) and --set."""

    dir: Annotated[str, tyro.conf.Positional]
    """Root folder searched for events.out.tfevents.*."""
    tag: str
    """Scalar holding the return (e.g. 'Train/mean_reward', 'eval/episode_return')."""
    out: str = "run_table.csv"
    """Output run table."""
    pattern: str | None = None
    """Regex with named groups matched against each run's path, e.g.
    '(?P<task>[^/]+)/utd(?P<utd>[0-9.]+)_s(?P<seed>[0-9]+)'."""
    set: tuple[str, ...] = ()
    """COLUMN=VALUE for every row (e.g. utd=0.5 num_envs=4096)."""
    step_scale: float = 1.0
    """Env steps per logged step (rsl_rl logs iterations: steps per env x num_envs)."""
    return_range: tuple[str, ...] = ()
    """TASK=LO,HI recorded for fit."""


@dataclass
class ImportWandbCsv:
    """A CSV exported from a W&B line plot: a Step column and '<run> - <metric>' columns (__MIN/__MAX skipped)."""

    file: Annotated[str, tyro.conf.Positional]
    """The exported CSV."""
    out: str = "run_table.csv"
    """Output run table."""
    tag: str | None = None
    """Metric to read when the export holds several."""
    pattern: str | None = None
    """Regex with named groups matched against each run name."""
    set: tuple[str, ...] = ()
    """COLUMN=VALUE for every row."""
    step_scale: float = 1.0
    """Env steps per logged step."""
    return_range: tuple[str, ...] = ()
    """TASK=LO,HI recorded for fit."""


ImportCommand = (
    Annotated[ImportQscaled, tyro.conf.subcommand("qscaled")]
    | Annotated[ImportCsv, tyro.conf.subcommand("csv")]
    | Annotated[ImportTensorboard, tyro.conf.subcommand("tensorboard")]
    | Annotated[ImportWandbCsv, tyro.conf.subcommand("wandb-csv")]
)

Command = (
    Annotated[Sweep, tyro.conf.subcommand("sweep")]
    | Annotated[Fit, tyro.conf.subcommand("fit")]
    | Annotated[Budget, tyro.conf.subcommand("budget")]
    | Annotated[Predict, tyro.conf.subcommand("predict")]
    | Annotated[Recommend, tyro.conf.subcommand("recommend")]
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
    swept += ["--num-envs"] if args.num_envs else []
    clash = [f for f in swept if any(a == f or a.startswith(f + "=") for a in train_args)]
    if clash:
        raise ConfigError(f"training flag(s) {', '.join(clash)} are set by the sweep; use the sweep's own flags")
    if args.laws and (args.batch_size or args.lr):
        raise ConfigError("--laws sets batch size and learning rate from the fitted laws; drop --batch-size/--lr")
    base = parse([*train_args, "--no-progress"])
    num_envs, hidden = base.num_envs, base.agent.critic_hidden
    if args.critic_width:  # --critic-hidden in the training flags only says how many layers: the sweep sets widths
        train_args = _drop_flag(train_args, "--critic-hidden")
    batch: Sequence[int] | Callable[[float], int] = args.batch_size or (base.buffer.batch_size,)
    lr: Sequence[float] | Callable[[float], float] = args.lr or (base.agent.critic_lr,)
    if args.laws:
        laws = json.loads(Path(args.laws).read_text())
        b_law, lr_law = _task_law(laws, "batch_law", base.task), _task_law(laws, "lr_law", base.task)
        batch = lambda s: round_batch(b_law(s))  # noqa: E731
        lr = lambda s: round_lr(lr_law(s))  # noqa: E731
    widths = args.critic_width or (max(hidden),)
    threads = args.torch_threads or child_threads(args.workers)

    cells = []
    for n in args.num_envs or (num_envs,):
        if n < 1:
            raise ConfigError(f"--num-envs must be >= 1, got {n}")

        def steps(sigma: float, n: int = n) -> int:
            return env_steps_for(sigma, base.total_env_steps, args.max_critic_updates, args.min_env_steps, n)

        grid = grid_cells(args.sigma, batch, lr, widths, args.seeds, steps)
        cells += [dataclasses.replace(c, num_envs=n) for c in grid] if args.num_envs else grid

    def envs_of(cell) -> int:
        return cell.num_envs or num_envs

    def eval_every_of(cell) -> int:
        return args.eval_every or base.eval_every or max(envs_of(cell), cell.total_env_steps // 40)

    def command(cell, run_dir: Path) -> list[str]:
        utd = cell.sigma * envs_of(cell)
        eval_every = eval_every_of(cell)
        argv = [sys.executable, "-m", "launch.train", *train_args, "--utd", repr(utd), "--batch-size",
                str(cell.batch_size), "--critic-lr", repr(cell.lr), "--actor-lr", repr(cell.lr), "--seed",
                str(cell.seed), "--total-env-steps", str(cell.total_env_steps), "--eval-every", str(eval_every),
                "--run-dir", str(run_dir), "--no-progress", "--torch-threads", str(threads),
                "--max-wall-seconds", repr(args.max_wall_seconds)]  # fmt: skip
        if args.critic_width:
            argv += ["--critic-hidden", *[str(cell.critic_width)] * len(hidden)]
        if args.num_envs:
            argv += ["--num-envs", str(cell.num_envs)]
        return argv

    for cell in cells:  # fail early, before any run starts, on a cell the trainer would reject
        overrides = {
            "seed": cell.seed,
            "total_env_steps": cell.total_env_steps,
            "eval_every": eval_every_of(cell),
            "num_envs": envs_of(cell),
            "schedule": {"utd": cell.sigma * envs_of(cell)},
            "buffer": {"batch_size": cell.batch_size},
            "agent": {"critic_lr": cell.lr, "actor_lr": cell.lr},
        }
        if args.critic_width:
            overrides["agent"]["critic_hidden"] = (cell.critic_width,) * len(hidden)
        validate(replace_nested(base, overrides))
    hard = 3 * args.max_wall_seconds + 300 if args.max_wall_seconds > 0 else None
    results = run_sweep(cells, args.out, command, args.workers, hard, args.progress, env=child_env(threads))
    command_line = ["python", "-m", "launch.scaling", *(argv or []), "--", *train_args]
    record = {"train_args": train_args, "command": shlex.join(command_line), **summarise(results)}
    Path(args.out, "sweep.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"sweep: {record['done']} run, {record['skipped']} already done, {record['failed']} failed; "
          f"run table {Path(args.out, 'run_table.csv')}")  # fmt: skip
    return record


def _drop_flag(argv: list[str], flag: str) -> list[str]:
    """``argv`` without ``flag`` and the values after it (up to the next ``--option``)."""
    out, skipping = [], False
    for a in argv:
        if a == flag or a.startswith(flag + "="):
            skipping = a == flag
            continue
        if skipping and not a.startswith("--"):
            continue
        skipping = False
        out.append(a)
    return out


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
def parse_ranges(items: Sequence[str], defaults: bool = True) -> dict[str, tuple[float, float]]:
    """TASK=LO,HI items (over the built-in defaults unless ``defaults`` is False)."""
    ranges = dict(RETURN_RANGES) if defaults else {}
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


def _cells(items: Sequence[str]) -> list[tuple[float, int]]:
    cells = []
    for item in items:
        try:
            sigma, width = item.split(",")
            cells.append((float(sigma), int(width)))
        except ValueError:
            raise ConfigError(f"--exclude-cell: expected SIGMA,WIDTH (e.g. 2,64), got {item!r}") from None
    return cells


def run_fit(args: Fit) -> dict:
    from parallel_rl.scaling.crossing import paper_thresholds
    from parallel_rl.scaling.fit import fit_laws, load_rows

    thresholds = list(args.thresholds) or paper_thresholds(args.num_thresholds, args.low_gap, args.high_gap).tolist()
    normalize = args.normalize and not args.raw_returns
    if args.data_loss not in (None, "squared", "log"):
        raise ConfigError(f"--data-loss must be 'squared' or 'log', got {args.data_loss!r}")
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
    fits = fit_laws(
        load_rows(args.runs), thresholds, parse_ranges(args.return_range, defaults=False), args.hyper_threshold,
        args.resamples, args.seed, args.delta, k_flops, args.hold_out, args.exclude_sigma,
        log_space=None if args.data_loss is None else args.data_loss == "log", hyper_laws=hyper, method=args.method,
        crossing=args.crossing, argmin_average=args.argmin_average, normalize=normalize,
        default_ranges=RETURN_RANGES, params=args.params, fill_stopped=args.fill_stopped,
        law_resamples=args.law_resamples, exclude_cells=_cells(args.exclude_cell),
        exclude_num_envs=args.exclude_num_envs,
    )  # fmt: skip
    _write_json(args.out, fits)
    print(report_fit(fits))
    print(f"wrote {args.out}")
    return fits


def report_fit(fits: dict) -> str:
    """The fit's results in words: laws, held-out checks, and every warning and skipped result with its remedy."""
    lines = [f"method {fits['method']}: " + ", ".join(f"{k} {v}" for k, v in fits["choices"].items())]
    for name, law in (("B*(σ)", fits["batch_law"]), ("η*(σ)", fits["lr_law"])):
        coefs = ", ".join(f"{t}: {c:.4g}" for t, c in law["coefficients"].items())
        lines.append(f"{name} = coefficient·σ^{law['exponent']:.3f} ({coefs}); {law['status']}")
        edge = [p for p in law.get("points", []) if p.get("at_edge", 0) > 0.5]
        if edge:
            where = ", ".join(f"{p['task']} σ={p['utd']:g}: {p['best']:.3g}" for p in edge)
            lines.append(f"  warning: the best value is at the edge of the swept grid ({where}); widen the grid")
    for e in fits["data_law"]["per_threshold"]:
        if e["status"] == "fitted":
            lines.append(f"J={e['threshold']:.4g}: D_J(σ) = {e['d_min']:.4g} + ({e['beta']:.4g}/σ)^{e['alpha']:.3f}")
        else:
            lines.append(f"J={e['threshold']:.4g}: {e['status']}")
    for h in fits["held_out"]:
        err = "n/a (not reached)" if h["relative_error"] is None else f"{100 * h['relative_error']:+.1f}%"
        lines.append(f"held-out σ={h['utd']:g}, J={h['threshold']:.4g}: predicted {h['predicted']:.4g}, "
                     f"measured {h['measured'] or float('inf'):.4g} ({err})")  # fmt: skip
    for e in fits.get("data_law_sigma_n") or []:
        lines.append(f"J={e['threshold']:.4g}: D_J(σ, N) = {e['d_min']:.4g} + ({e['a']:.4g}/σ)^{e['alpha']:.3f} + "
                     f"({e['b']:.4g}/N)^{e['beta']:.3f}")  # fmt: skip
    for h in fits.get("held_out_sigma_n") or []:
        err = "n/a (not reached)" if h["relative_error"] is None else f"{100 * h['relative_error']:+.1f}%"
        lo, hi = h["predicted_interval"]
        band = f" [{lo:.4g}, {hi:.4g}]" if lo is not None and hi is not None else ""
        lines.append(f"held-out cell σ={h['utd']:g}, width {h['critic_width']}, J={h['threshold']:.4g}: predicted "
                     f"{h['predicted']:.4g}{band}, measured {h['measured'] or float('inf'):.4g} ({err})")  # fmt: skip
    envs = fits.get("num_envs_law")
    if envs:
        for e in envs["per_threshold"]:
            law = e.get("data_law", {})
            if "c" in law:
                bound = " (degenerate: the exponent is at its bound; the points do not pin a power law)"
                note = bound if law.get("degenerate") else ""
                lines.append(
                    f"J={e['threshold']:.4g}: D_J(n) = {law['c']:.4g} + (n/{law['b']:.4g})^{law['e']:.3f}{note}"
                )
            else:
                lines.append(f"J={e['threshold']:.4g}: D_J(n) {law.get('status', 'not fitted')}")
            for h in e.get("data_law_held_out", []):
                err = "n/a" if h["relative_error"] is None else f"{100 * h['relative_error']:+.1f}%"
                lines.append(f"  held-out num_envs={h['num_envs']}: predicted {h['predicted']:.4g}, measured "
                             f"{h['measured'] or float('inf'):.4g} ({err})")  # fmt: skip
    if "budget" in fits:
        lines.append(f"σ*(F) = {fits['budget']['k']:.4g}·F^{fits['budget']['e']:.4g} (δ = {fits['delta']:.3g}, "
                     f"{fits['delta_source']}; N = {fits['params']:.4g}, {fits['params_source']})")  # fmt: skip
    for w in fits.get("warnings", []):
        lines.append(f"warning: {w}")
    for sk in fits.get("skipped", []):
        lines.append(f"skipped {sk['result']}: {sk['reason']}; to get it: {sk['enable']}")
    return "\n".join(lines)


def run_import(args) -> dict:
    from parallel_rl.scaling import importers
    from parallel_rl.scaling.runtable import write_run_table

    ranges = parse_ranges(args.return_range, defaults=False)
    if isinstance(args, ImportQscaled):
        datasets = importers.import_qscaled(args.src, args.metric, args.algo, ranges)
        out = Path(args.out)
        if out.suffix == ".csv" and len(datasets) > 1:
            raise ConfigError(f"--out {out}: {args.src} holds {len(datasets)} datasets ({', '.join(datasets)}); "
                              "give a folder")  # fmt: skip
        paths = {name: out if out.suffix == ".csv" else out / f"{name}.csv" for name in datasets}
    else:
        constants = importers.parse_assignments(args.set, "--set")
        if isinstance(args, ImportCsv):
            rows = importers.import_csv(args.file, importers.parse_assignments(args.column, "--column"), constants)
        elif isinstance(args, ImportTensorboard):
            rows = importers.import_tensorboard(args.dir, args.tag, args.pattern, constants, args.step_scale)
        else:
            rows = importers.import_wandb_csv(args.file, args.tag, args.pattern, constants, args.step_scale)
        importers.apply_return_ranges(rows, ranges)
        datasets, paths = {"runs": rows}, {"runs": Path(args.out)}
    record = {}
    for name, rows in datasets.items():
        write_run_table(paths[name], rows)
        runs = len({(r["task"], r["utd"], r.get("batch_size"), r.get("lr"), r["seed"]) for r in rows})
        tasks = sorted({r["task"] for r in rows})
        ranged = sorted({r["task"] for r in rows if r.get("return_hi") is not None})
        print(f"{paths[name]}: {len(rows)} rows, {runs} runs, tasks {', '.join(tasks)}")
        print(
            f"  return ranges recorded for: {', '.join(ranged) if ranged else 'none (give --return-range TASK=LO,HI)'}"
        )
        for line in importers.describe_missing(rows):
            print(f"  {line}")
        record[name] = {"path": str(paths[name]), "rows": len(rows), "runs": runs, "tasks": tasks}
    return record


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


def run_recommend(args: Recommend) -> dict:
    from parallel_rl.scaling.recommend import format_sigma_n, price_gpu_hours, recommend_sigma_n

    fits = _read_json(args.fits)
    budget, delta = args.budget_flops, args.delta
    if args.budget_gpu_hours is not None:
        if args.budget_flops is not None:
            raise ConfigError("give one of --budget-flops and --budget-gpu-hours")
        if args.seconds_per_update is None:
            raise ConfigError("--budget-gpu-hours needs --seconds-per-update (a measured critic update)")
        batch = args.measured_batch
        if batch is None:
            sizes = [c["batch_size"] for c in fits.get("crossings", []) if c.get("batch_size")]
            if not sizes:
                raise ConfigError("--budget-gpu-hours: the runs record no batch size; give --measured-batch")
            batch = max(set(sizes), key=sizes.count)
        params = args.measured_params or fits.get("params")
        if not params:
            raise ConfigError("--budget-gpu-hours: the fit has no critic size; give --measured-params")
        budget, priced_delta = price_gpu_hours(args.budget_gpu_hours, args.seconds_per_update, batch, params,
                                               float(fits.get("k_flops", 10.0)), args.seconds_per_env_step)  # fmt: skip
        delta = priced_delta if delta is None else delta
        print(f"{args.budget_gpu_hours:g} GPU-hours at {args.seconds_per_update:.3g} s per update (batch {batch}, "
              f"N {params:.3g}) = {budget:.4g} FLOPs; δ = {delta:.3g} FLOPs per transition")  # fmt: skip
    rec = recommend_sigma_n(fits, budget, args.data, delta, args.threshold_index, args.task)
    print(format_sigma_n(rec))
    return rec


def run_plot(args: Plot) -> list[Path]:
    from parallel_rl.scaling.plots import plot_all

    made = plot_all(_read_json(args.fits), args.out)
    for p in made:
        print(f"wrote {p}")
    return made


DISPATCH: dict[type, Callable] = {Fit: run_fit, Budget: run_budget, Predict: run_predict, Recommend: run_recommend,
                                  Plot: run_plot}  # fmt: skip


# ---- entry point ---------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else list(argv)
    train_args: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, train_args = argv[:i], argv[i + 1 :]
    if argv[:1] == ["import"]:
        parsed = tyro.cli(ImportCommand, args=argv[1:], prog="launch.scaling import",
                          description="Other people's runs as run tables.")  # type: ignore[call-overload]  # fmt: skip
        try:
            return run_import(parsed)
        except (ValueError, FileNotFoundError, ImportError) as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
    args = tyro.cli(Command, args=argv, description=__doc__)  # type: ignore[call-overload]
    try:
        if isinstance(args, Sweep):
            return run_sweep_command(args, train_args, argv)
        if train_args:
            raise ConfigError("only `sweep` takes training flags after --")
        return DISPATCH[type(args)](args)
    except ImportError as e:
        if e.name and e.name.split(".")[0] in ("scipy", "matplotlib"):  # the optional extra of the README
            e = ImportError(f"{type(args).__name__.lower()} needs {e.name.split('.')[0]}, part of the scaling extra: "
                            'pip install -e ".[scaling]"')  # fmt: skip
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except (ValueError, FileNotFoundError) as e:  # ConfigError, FitsError, RunTableError included
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as e:  # an --out on a read-only or full disk
        print(f"error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    from launch._cli import run_cli

    run_cli(main)
