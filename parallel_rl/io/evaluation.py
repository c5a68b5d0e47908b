"""Deterministic evaluation, one protocol for training runs and saved policies, with an optional video of one env.

The protocol (``evaluate_episodes``; used by ``Evaluator``, hence by the trainer's periodic and final evaluations
and by ``launch.evaluate``): reset the evaluation envs with a fixed seed, run the deterministic policy (normalizer
and action scaling included, no exploration) until ``episodes`` episodes have ended, and report statistics of their
undiscounted returns. Episodes are kept in (episode index, env index) order: every env contributes its first k
episodes before any env contributes a (k+1)-th, so short episodes are not over-represented when episodes end at
different times. With the default ``episodes == num_envs`` this is the first episode of every env. Every
evaluation of a run uses the same seed, so evaluations differ only by the policy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from parallel_rl.envs import VecEnv
from parallel_rl.envs.multitask import MultiTaskVecEnv, relayout

CHECK_EVERY = 32
"""Vectorized steps between the host checks that stop the loop once every env has finished its episodes."""


def render_frame(env: VecEnv, env_index: int, width: int, height: int) -> np.ndarray:
    render = getattr(env, "render", None)
    if render is None:
        raise TypeError(
            f"{type(env).__name__} has no render(env_index, width, height) method, so it cannot record videos; "
            "evaluate without --video, or give the env render(env_index, width, height) -> uint8 [H, W, 3]"
        )
    frame = np.asarray(render(env_index=env_index, width=width, height=height))
    if frame.dtype != np.uint8 or frame.shape != (height, width, 3):
        raise ValueError(f"{type(env).__name__}.render returned {frame.dtype} {frame.shape}; "
                         f"expected uint8 ({height}, {width}, 3)")  # fmt: skip
    return frame


@torch.no_grad()  # not inference_mode: env state made here must stay usable (in place) afterwards
def evaluate_episodes(
    policy: torch.nn.Module,
    env: VecEnv,
    episodes: int,
    seed: int | None = 0,
    video: Any | None = None,
    video_env: int = 0,
    video_episodes: int = 1,
    width: int = 320,
    height: int = 240,
    video_max_frames: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any] | None:
    """Run ``policy`` (raw observation -> action in the env's bounds) until ``episodes`` episodes have ended.
    None when ``should_stop()`` (a host-side flag, e.g. a signal arrived; checked every env step) turned true.

    ``video``, when given, is anything with ``add(frame)`` (e.g. ``Mp4Writer``): it receives the frames of the
    first ``video_episodes`` episodes of env ``video_env``, at most ``video_max_frames`` of them. Returns return
    and length statistics and the per-episode values.
    """
    spec = env.spec
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if video is not None and not 0 <= video_env < spec.num_envs:
        raise ValueError(f"video env index {video_env} is out of range for {spec.num_envs} envs")
    n, device = spec.num_envs, spec.device
    per_env = math.ceil(episodes / n)
    returns = torch.full((per_env, n), float("nan"), device=device)
    lengths = torch.zeros((per_env, n), device=device)
    running_return = torch.zeros(n, device=device)
    running_length = torch.zeros(n, device=device)
    finished = torch.zeros(n, dtype=torch.long, device=device)
    env_ids = torch.arange(n, device=device)
    start = time.perf_counter()
    obs = env.reset(seed=seed)["obs"]
    recording = video is not None
    video_done = frames = 0
    if recording:
        video.add(render_frame(env, video_env, width, height))
        frames = 1
    steps = 0
    # Every episode ends within max_episode_steps, so this bound is never what stops a correct env.
    bound = max(per_env, video_episodes if video is not None else 0) * spec.max_episode_steps
    for steps in range(1, bound + 1):
        if should_stop is not None and should_stop():
            return None
        out = env.step(policy(obs))
        running_return += out["reward"]
        running_length += 1
        ended = out["terminated"] | out["truncated"]
        slot = finished.clamp(max=per_env - 1)
        keep = ended & (finished < per_env)
        returns[slot, env_ids] = torch.where(keep, running_return, returns[slot, env_ids])
        lengths[slot, env_ids] = torch.where(keep, running_length, lengths[slot, env_ids])
        finished += ended.long()
        running_return = torch.where(ended, torch.zeros_like(running_return), running_return)
        running_length = torch.where(ended, torch.zeros_like(running_length), running_length)
        obs = out["obs"]
        if recording:
            if bool(ended[video_env]):
                video_done += 1
                recording = video_done < video_episodes
            if recording and video_max_frames is not None and frames >= video_max_frames:
                recording = False
            if recording:  # after an episode end this is the first frame of the next episode
                video.add(render_frame(env, video_env, width, height))
                frames += 1
        if steps % CHECK_EVERY == 0 and not recording and bool((finished >= per_env).all()):
            break
    if not bool((finished >= per_env).all()):
        raise RuntimeError(f"some envs did not finish {per_env} episode(s) within {steps} steps; the env does not "
                           f"respect its max_episode_steps={spec.max_episode_steps}")  # fmt: skip
    per_task = {}
    if isinstance(env, MultiTaskVecEnv):  # every env's first per_env episodes, averaged over each task's envs
        per_task = {name: part.mean().item() for name, part in env.per_task(returns.double().mean(0).cpu()).items()}
    ret = returns.flatten()[:episodes].double().cpu()  # row-major: episode index first, then env index
    length = lengths.flatten()[:episodes].double().cpu()
    return {
        "episodes": episodes,
        "num_envs": n,
        "return_mean": ret.mean().item(),
        "return_std": ret.std(unbiased=False).item(),
        "return_min": ret.min().item(),
        "return_max": ret.max().item(),
        "return_median": ret.median().item(),
        "length_mean": length.mean().item(),
        "length_std": length.std(unbiased=False).item(),
        "length_min": length.min().item(),
        "length_max": length.max().item(),
        "vector_env_steps": steps,
        "wall_seconds": time.perf_counter() - start,
        "returns": ret.tolist(),
        "lengths": [int(v) for v in length.tolist()],
        **({"return_per_task": per_task} if per_task else {}),
    }


class Evaluator:
    """The evaluation env of a run (built on first use, reused: some simulators allow one instance per process) and
    the protocol above with a fixed seed and episode count."""

    def __init__(self, make_env: Callable[[], VecEnv], episodes: int, seed: int | None) -> None:
        self.make_env, self.episodes, self.seed = make_env, episodes, seed
        self.env: VecEnv | None = None

    def __call__(self, policy: torch.nn.Module, **kwargs: Any) -> dict[str, Any] | None:
        """Statistics of ``policy`` (raw obs -> env action); ``kwargs`` (video, should_stop) go to
        ``evaluate_episodes``."""
        if self.env is None:
            self.env = self.make_env()
        return evaluate_episodes(policy, self.env, self.episodes, seed=self.seed, **kwargs)


def evaluate_checkpoint(
    checkpoint: str | Path,
    make_env,
    num_envs: int = 16,
    episodes: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    video_path: str | Path | None = None,
    video_env: int = 0,
    video_episodes: int = 1,
    width: int = 320,
    height: int = 240,
    fps: float | None = None,
    task: str | None = None,
    video_max_frames: int | None = None,
) -> dict[str, Any]:
    """Load the deterministic policy of ``checkpoint``, build its task with ``make_env(task, num_envs, device,
    seed)`` and evaluate it; writes an MP4 to ``video_path`` when given. ``task`` overrides the checkpoint's; for a
    multi-task policy it selects one (or several, ``multi:...``) of its tasks, given the matching task ids."""
    from parallel_rl.io.checkpoint import POLICY_FIELDS, load_checkpoint, load_policy

    ckpt = load_checkpoint(checkpoint, require=POLICY_FIELDS)
    config = ckpt.get("config") or {}
    task = task or config.get("task")
    if not task:
        raise ValueError(f"{checkpoint}: the checkpoint's config names no task; pass the task explicitly")
    spec = ckpt["policy_spec"]

    def make() -> VecEnv:
        env = make_env(task, num_envs, torch.device(device), seed)
        if spec.get("task_names"):  # a multi-task policy: run the selected task(s) with their ids
            names = env.names if isinstance(env, MultiTaskVecEnv) else [task]
            unknown = [n for n in names if n not in spec["task_names"]]
            if unknown:
                raise ValueError(f"--task: the multi-task policy of {checkpoint} was not trained on "
                                 f"{', '.join(unknown)}; its tasks: {', '.join(spec['task_names'])}")  # fmt: skip
            env = relayout(env, spec, task)
        return env

    evaluator = Evaluator(make, episodes or num_envs, seed)
    env = evaluator.env = evaluator.make_env()
    policy = load_policy(checkpoint, device=env.spec.device)
    dims = (policy.normalizer.mean.numel(), policy.action_low.numel())
    if dims != (env.spec.obs_dim, env.spec.act_dim):
        raise ValueError(f"{checkpoint}: the policy maps {dims[0]} observations to {dims[1]} actions, task {task!r} "
                         f"has {env.spec.obs_dim} and {env.spec.act_dim}")  # fmt: skip
    writer = None
    if video_path is not None:
        from parallel_rl.io.video import Mp4Writer

        # Envs may declare their control rate (frames per second of simulated time) for real-time playback.
        writer = Mp4Writer(video_path, fps=fps or float(getattr(env, "render_fps", 30.0)))
    try:
        stats = evaluator(policy, video=writer, video_env=video_env, video_episodes=video_episodes, width=width,
                          height=height, video_max_frames=video_max_frames)  # fmt: skip
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    result: dict[str, Any] = {"task": task, "checkpoint": str(checkpoint), "seed": seed, "device": str(device)}
    if writer is not None:
        result["video"] = writer.close()
    return {**result, **stats}
