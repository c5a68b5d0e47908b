"""Evaluate a checkpoint: ``python -m launch.evaluate --checkpoint runs/.../checkpoints/final.pt [--video out.mp4]``.

Runs the deterministic policy (normalizer and action scaling included, as ``parallel_rl.load_policy`` builds it) on
``--num-envs`` copies of the checkpoint's task. At a terminal it prints one summary line (the per-episode details go
to ``--out``); into a pipe or file it prints the statistics as JSON.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import tyro

from launch._cli import fail, run_cli


@dataclass(frozen=True)
class EvaluateArgs:
    """Evaluate a trained policy deterministically; optionally record an MP4 of one env."""

    checkpoint: str
    """Checkpoint file (e.g. runs/<run>/checkpoints/final.pt)."""
    num_envs: int = 16
    """Environments stepped together."""
    episodes: int | None = None
    """Episodes in the statistics (default: one per env); envs run ceil(episodes / num_envs) episodes each."""
    seed: int = 0
    """Seed of the evaluation envs' reset (the policy itself is deterministic)."""
    device: str = "cpu"
    """Device of the env and the policy ('cpu', 'cuda', 'cuda:N')."""
    task: str | None = None
    """Task to evaluate on; default: the task in the checkpoint's config. For a multi-task policy: one of its tasks
    (or a multi:... subset), run with that task's id."""
    video: str | None = None
    """Write an MP4 of env --video-env to this path (needs the env's render() and PyAV: pip install '.[video]')."""
    video_env: int = 0
    """Index of the env that is filmed."""
    video_episodes: int = 1
    """Episodes of that env in the video."""
    video_max_frames: int | None = None
    """Stop filming after this many frames (long episodes); the statistics still cover whole episodes."""
    width: int = 320
    """Video frame width in pixels."""
    height: int = 240
    """Video frame height in pixels."""
    fps: float | None = None
    """Video frame rate; default: the env's control rate (real time), or 30."""
    out: str | None = None
    """Also write the statistics JSON to this file."""


def main(args: list[str] | None = None) -> dict:
    import tasks
    from parallel_rl.config import ConfigError

    opts = tyro.cli(EvaluateArgs, args=sys.argv[1:] if args is None else args, description=EvaluateArgs.__doc__)
    for name in ("num_envs", "video_episodes", "width", "height"):
        if getattr(opts, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be >= 1, got {getattr(opts, name)}", file=sys.stderr)
            raise SystemExit(2)
    for name in ("episodes", "video_max_frames"):
        if getattr(opts, name) is not None and getattr(opts, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be >= 1, got {getattr(opts, name)}", file=sys.stderr)
            raise SystemExit(2)
    from parallel_rl.io import write_json  # torch is imported from here on, after --help and the checks
    from parallel_rl.io.evaluation import evaluate_checkpoint

    try:
        stats = evaluate_checkpoint(
            opts.checkpoint, tasks.make_env, num_envs=opts.num_envs, episodes=opts.episodes, seed=opts.seed,
            device=opts.device, video_path=opts.video, video_env=opts.video_env, video_episodes=opts.video_episodes,
            width=opts.width, height=opts.height, fps=opts.fps, task=opts.task, video_max_frames=opts.video_max_frames,
        )  # fmt: skip
    except (ConfigError, FileNotFoundError, ValueError, TypeError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    line = summary_line(stats)
    if opts.out:
        try:
            write_json(opts.out, stats)
        except OSError as e:
            print(line, file=sys.stderr)
            fail(f"--out {opts.out}: cannot write ({e.strerror or e}); the statistics are only in the line above", 1)
    if sys.stdout.isatty():  # a person: one line; the per-episode details are in --out
        print(line + (f"; details in {opts.out}" if opts.out else "; --out FILE saves the per-episode details"))
    else:  # a pipe or a file: the whole statistics as JSON, for scripts
        print(json.dumps(stats, indent=2))
    return stats


def summary_line(stats: dict) -> str:
    n = stats.get("episodes", len(stats.get("returns", [])))
    return (
        f"return {stats['return_mean']:.2f} +- {stats['return_std']:.2f} (min {stats['return_min']:.2f}, max "
        f"{stats['return_max']:.2f}) over {n} episodes, mean length {stats.get('length_mean', float('nan')):.1f}"
    )


def cli() -> None:
    """Console-script entry point (a summary line at a terminal, JSON into a pipe; the exit status says whether it
    worked)."""
    run_cli(main)


if __name__ == "__main__":
    cli()
