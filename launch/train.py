"""Train from the command line: ``python -m launch.train --task pendulum --algo fasttd3 [--flag value ...]``.

Exit status: 0 done; 1 a file could not be written (full disk, read-only directory: the line says what was kept);
2 input error (a flag, the task, the run directory, resuming an incompatible checkpoint), reported before any work;
3 NaN/Inf stopped the run; 128 + signal (130 SIGINT, 143 SIGTERM) when a signal stopped it after writing a
checkpoint. Every error is one line on stderr, never a traceback.

Parsing happens in two passes so that presets are real defaults: ``--task``, ``--algo`` and ``--preset`` are read
first, the matching preset is applied to ``TrainConfig``, and tyro then parses every flag against that config (so
``--help`` shows the preset's values and any flag still overrides them). The tuned presets also have names:
``python -m launch.train pendulum-pql --num-envs 8`` (``<task>-<algo>[-<preset>]``, tyro subcommands; ``python -m
launch.train list-presets`` prints them).
"""

from __future__ import annotations

import os
import sys

# Idle OpenMP threads sleep instead of spinning on cores other processes need (read when torch loads OpenMP).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from launch._isaacgym_first import import_isaacgym_if_requested  # noqa: E402

import_isaacgym_if_requested(sys.argv[1:])  # Isaac Gym must be imported before torch

import argparse  # noqa: E402
import dataclasses  # noqa: E402
from pathlib import Path  # noqa: E402

import tyro  # noqa: E402

from launch._cli import fail, run_cli  # noqa: E402
from parallel_rl.config import ALGOS, ConfigError, TrainConfig, replace_nested, suggest  # noqa: E402

# Everything that imports torch (the runtime, the task envs) is imported inside main(), after the flags were
# parsed and checked: --help and input errors answer in well under a second.


def list_tasks() -> str:
    """``--task list``: the built-in tasks and the simulator backends, with their install state."""
    import tasks
    from parallel_rl.envs._optional import missing_modules

    lines = ["built-in tasks:"]
    lines += [f"  {name:<18} {entry.description}" for name, entry in tasks.TASKS.items()]
    lines.append("simulator tasks (<backend>:<task>):")
    for prefix, backend in tasks.BACKENDS.items():
        try:
            state = "not installed" if missing_modules(prefix) else "installed"
        except KeyError:
            state = "see README"
        tuned = f"; tuned: {', '.join(backend.tuned)}" if backend.tuned else ""
        lines.append(f"  {prefix + ':':<18} {backend.description} [{state}]{tuned}")
    return "\n".join(lines)


GPU_BATCH = 4096
"""A preset whose batch is at least this is GPU-sized: on a CPU one update takes seconds."""
CPU_FLOPS = 3.2e10
"""FLOP/s of a 2-core CPU on the learners' matmuls, calibrated on a measurement: the mjlab G1 FastTD3 default preset
(batch 32768, critic 1024-512-256 x2, 251 atoms, utd 4) took about 55 s per vector env step on a 2-core CPU (issue
12). Estimates from it are rough (a factor of 2)."""


def _on_cpu(device: str) -> bool:
    """Will this run be on a CPU? Decided without importing torch: 'auto' means CPU when no NVIDIA device exists."""
    if device == "cpu":
        return True
    return device == "auto" and not any(Path("/dev").glob("nvidia[0-9]*"))


def gpu_sized(overrides: dict) -> bool:
    return int(overrides.get("buffer", {}).get("batch_size", 0)) >= GPU_BATCH


def cpu_seconds_per_step(cfg: TrainConfig) -> float:
    """Rough seconds per vectorized env step of the learners on a CPU, from the network sizes (input layers
    ignored): critic updates x batch x (forward+backward of the ensemble, target forward, actor update)."""

    def weights(hidden: tuple[int, ...], out: int) -> int:
        sizes = [*hidden, out]
        return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))

    a, s = cfg.agent, cfg.schedule
    critic = a.num_critics * weights(a.critic_hidden, a.num_atoms)
    actor = weights(a.actor_hidden, 1)
    per_sample = 8 * critic + s.policy_ratio * (6 * actor + 2 * critic)
    return s.utd * cfg.buffer.batch_size * per_sample / CPU_FLOPS


def check_resume(cfg: TrainConfig) -> None:
    """``--resume``: the file (or, for 'latest', a periodic checkpoint in --run-dir) must exist before any work."""
    from parallel_rl.io.checkpoint import checkpoint_dir, list_checkpoints

    if cfg.resume == "latest":
        if not list_checkpoints(cfg.run_dir):
            raise ConfigError(f"--resume latest: no checkpoints (step_*.pt) under {checkpoint_dir(cfg.run_dir)}")
    elif cfg.resume and not Path(cfg.resume).is_file():
        raise ConfigError(f"--resume {cfg.resume}: no such checkpoint file")


def cpu_preset_rule(cfg: TrainConfig, args: list[str]) -> TrainConfig:
    """On a CPU, a simulator task whose default preset is GPU-sized runs its ``cpu`` preset instead (flags still
    apply), with one line saying so, unless a preset was named on the command line."""
    import tasks

    named = any(a == "--preset" or a.startswith("--preset=") for a in args)
    if named or ":" not in cfg.task or not _on_cpu(cfg.device):
        return cfg
    default = tasks.preset(cfg.task, cfg.algo, cfg.preset)
    if "cpu" not in tasks.presets_of(cfg.task).get(cfg.algo, {}) or not gpu_sized(default):
        return cfg
    print(f"note: --task {cfg.task} on a CPU: using its 'cpu' preset (the default preset is GPU-sized: "
          f"{default.get('num_envs', '?')} envs, batch {default['buffer']['batch_size']}); --preset default runs "
          "that one anyway", file=sys.stderr)  # fmt: skip
    return parse([*args, "--preset", "cpu"])


def preset_defaults(args: list[str]) -> TrainConfig:
    import tasks

    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--task", default=TrainConfig.task)
    pre.add_argument("--algo", default=TrainConfig.algo)
    pre.add_argument("--preset", default=None)
    known, _ = pre.parse_known_args(args)
    if known.task == "list":
        print(list_tasks())
        raise SystemExit(0)
    if known.algo not in ALGOS:
        raise ConfigError(f"--algo: unknown algorithm {known.algo!r}{suggest(known.algo, ALGOS)} "
                          f"(valid: {', '.join(ALGOS)})")  # fmt: skip
    name = known.preset or TrainConfig.preset
    overrides = tasks.preset(known.task, known.algo, name)
    base = TrainConfig(task=known.task, algo=known.algo, preset=name)
    return replace_nested(base, overrides)


def parse(args: list[str] | None = None) -> TrainConfig:
    args = sys.argv[1:] if args is None else args
    if args and not args[0].startswith("-"):
        return parse_named(args)
    default = preset_defaults(args)
    return tyro.cli(TrainConfig, default=default, args=args, config=(tyro.conf.OmitArgPrefixes,),
                    description=TrainConfig.__doc__)  # fmt: skip


def parse_named(args: list[str]) -> TrainConfig:
    """``python -m launch.train <task>-<algo>[-<preset>] [--flag value ...]``: a tuned preset chosen as a tyro
    subcommand (holosoma's pattern); ``<name> --help`` shows that preset's values as the defaults."""
    import tasks

    named = tasks.named_presets()
    if args[0] == "list-presets":
        print("\n".join(f"{name}: {text}" for name, (text, *_) in named.items()))
        raise SystemExit(0)
    if args[0] not in named:
        raise ConfigError(f"unknown preset name {args[0]!r}{suggest(args[0], list(named))} (`python -m "
                          "launch.train list-presets` lists them; or use --task/--algo/--preset)")  # fmt: skip
    args = _switch_named_preset(args, named)
    configs = {name: (text, preset.build(task=task, algo=algo, preset=preset_name))
               for name, (text, preset, task, algo, preset_name) in named.items()}  # fmt: skip
    return tyro.extras.overridable_config_cli(configs, args=args, config=(tyro.conf.OmitArgPrefixes,))


def _switch_named_preset(args: list[str], named: dict) -> list[str]:
    """``<name> --preset cpu`` means the same task and algorithm's ``cpu`` preset: the subcommand is switched (a
    ``--preset`` flag alone would rename the preset without applying its values)."""
    for i, arg in enumerate(args[1:], start=1):
        if arg == "--preset" and i + 1 < len(args) or arg.startswith("--preset="):
            wanted = arg.partition("=")[2] or args[i + 1]
            _, _, task, algo, _ = named[args[0]]
            match = [k for k, (_, _, t, a, p) in named.items() if (t, a, p) == (task, algo, wanted)]
            if not match:
                raise ConfigError(f"--preset: no preset {wanted!r} for {task} with {algo}")
            return [match[0], *args[1:]]
    return args


def prepare(args: list[str] | None = None):
    """Parse and check everything that can be checked before any work (flags, task, installed simulator, run
    directory, device): returns ``(cfg, env_factory)`` or raises ``ConfigError``/``RunDirError``."""
    import tasks
    from parallel_rl.config import default_run_dir, validate
    from parallel_rl.io.files import check_run_dir

    args = sys.argv[1:] if args is None else args
    cfg = parse(args)
    factory = tasks.env_factory(cfg.task, cfg.task_weights)
    cfg = cpu_preset_rule(cfg, args)
    validate(cfg)
    check_resume(cfg)
    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
    check_run_dir(run_dir, resume=bool(cfg.resume), overwrite=cfg.overwrite)
    cfg = dataclasses.replace(cfg, run_dir=str(run_dir))
    from parallel_rl.runtime.trainer import resolve_device  # the first torch import

    if resolve_device(cfg.device).type == "cpu" and cfg.buffer.batch_size >= GPU_BATCH:
        per_step = cpu_seconds_per_step(cfg)
        steps = -(-cfg.total_env_steps // cfg.num_envs)
        print(f"note: a GPU-sized run (batch {cfg.buffer.batch_size}) on a CPU: expect roughly {per_step:.0f} s per "
              f"env step once learning starts, {steps} steps in all (about {per_step * steps / 3600:.1f} h); a "
              "smaller --batch-size or --preset cpu (where the task has one) is what a CPU can run",
              file=sys.stderr)  # fmt: skip
    return cfg, factory


def main(args: list[str] | None = None) -> dict:
    from parallel_rl.io.files import RunDirError

    try:
        cfg, factory = prepare(args)
    except (ConfigError, RunDirError) as e:
        fail(str(e))
    from parallel_rl.io.files import describe_kept
    from parallel_rl.runtime import train
    from parallel_rl.runtime.guards import NonFiniteError, TrainingInterrupted
    from parallel_rl.scaling.runtable import write_run_dir_table

    run_dir = Path(cfg.run_dir)
    try:
        summary = train(cfg, factory)
        write_run_dir_table(summary["run_dir"])  # the scaling toolkit's long-format rows of this run
    except TrainingInterrupted as e:
        print(f"interrupted: {e}", file=sys.stderr)
        raise SystemExit(e.exit_code) from None
    except NonFiniteError as e:
        fail(f"non-finite values: {e}; nothing was saved after it ({describe_kept(run_dir)})", 3)
    except (ConfigError, RunDirError) as e:  # e.g. --resume of an incompatible checkpoint, a second live run
        fail(str(e))
    except OSError as e:  # full disk, read-only or vanished directory, permissions; or our missing checkpoint
        if e.errno is None and cfg.resume:
            fail(str(e))
        where = e.filename or run_dir
        fail(f"cannot write {where}: {e.strerror or e}; the run stopped ({describe_kept(run_dir)})", 1)
    except ValueError as e:  # a --resume checkpoint that is not readable, not ours, or of another schema
        if not cfg.resume:
            raise
        fail(str(e))
    print(
        f"done: {summary['env_steps']} env steps, {summary['critic_updates']} critic / {summary['policy_updates']} "
        f"policy updates in {summary['wall_seconds']:.1f} s; final_eval_return {summary['final_eval_return']:.2f} "
        f"over {summary['eval_envs']} envs; run dir {summary['run_dir']}"
    )
    return summary


def cli() -> None:
    """Console-script entry point (``parallel-rl-train``)."""
    run_cli(main)


if __name__ == "__main__":
    cli()
