"""Train from the command line: ``python -m launch.train --task pendulum --algo fasttd3 [--flag value ...]``.

Exit status: 0 done; 2 configuration error (including resuming an incompatible checkpoint); 3 NaN/Inf stopped the
run; 128 + signal (130 SIGINT, 143 SIGTERM) when a signal stopped it after writing a checkpoint.

Parsing happens in two passes so that presets are real defaults: ``--task``, ``--algo`` and ``--preset`` are read
first, the matching preset is applied to ``TrainConfig``, and tyro then parses every flag against that config (so
``--help`` shows the preset's values and any flag still overrides them). The tuned presets also have names:
``python -m launch.train pendulum-pql --num-envs 8`` (``<task>-<algo>[-<preset>]``, tyro subcommands; ``python -m
launch.train list-presets`` prints them).
"""

from __future__ import annotations

import sys

from launch._isaacgym_first import import_isaacgym_if_requested

import_isaacgym_if_requested(sys.argv[1:])  # Isaac Gym must be imported before torch

import argparse  # noqa: E402

import tyro  # noqa: E402

from parallel_rl.config import ALGOS, ConfigError, TrainConfig, replace_nested, suggest  # noqa: E402
from parallel_rl.runtime import train  # noqa: E402
from parallel_rl.runtime.guards import NonFiniteError, TrainingInterrupted  # noqa: E402
from parallel_rl.scaling.runtable import write_run_dir_table  # noqa: E402


def preset_defaults(args: list[str]) -> TrainConfig:
    import tasks

    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--task", default=TrainConfig.task)
    pre.add_argument("--algo", default=TrainConfig.algo)
    pre.add_argument("--preset", default=TrainConfig.preset)
    known, _ = pre.parse_known_args(args)
    if known.algo not in ALGOS:
        raise ConfigError(f"--algo: unknown algorithm {known.algo!r}{suggest(known.algo, ALGOS)} "
                          f"(valid: {', '.join(ALGOS)})")  # fmt: skip
    overrides = tasks.preset(known.task, known.algo, known.preset)
    base = TrainConfig(task=known.task, algo=known.algo, preset=known.preset)
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


def main(args: list[str] | None = None) -> dict:
    import tasks

    try:
        cfg = parse(args)
        factory = tasks.env_factory(cfg.task, cfg.task_weights)
        from parallel_rl.config import validate

        validate(cfg)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        summary = train(cfg, factory)
    except TrainingInterrupted as e:
        print(f"interrupted: {e}", file=sys.stderr)
        raise SystemExit(e.exit_code) from None
    except NonFiniteError as e:
        print(f"error: non-finite values: {e}; the last good checkpoint is untouched", file=sys.stderr)
        raise SystemExit(3) from None
    except (ConfigError, FileNotFoundError, ValueError) as e:  # e.g. --resume of an incompatible checkpoint
        if not cfg.resume:
            raise
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    write_run_dir_table(summary["run_dir"])  # the scaling toolkit's long-format rows of this run
    print(
        f"done: {summary['env_steps']} env steps, {summary['critic_updates']} critic / {summary['policy_updates']} "
        f"policy updates in {summary['wall_seconds']:.1f} s; final_eval_return {summary['final_eval_return']:.2f} "
        f"over {summary['eval_envs']} envs; run dir {summary['run_dir']}"
    )
    return summary


def cli() -> None:
    """Console-script entry point (``parallel-rl-train``)."""
    main()


if __name__ == "__main__":
    cli()
