"""Checkpoints: one versioned dict, written atomically, from which a policy loads without the training config."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from parallel_rl.nets import DeployedPolicy, NetSpec, RunningNorm
from parallel_rl.nets.task import MultiTaskPolicy, make_actor

SCHEMA_VERSION = 2
"""2: full training state (optimizers, RNGs, channels, actor, optional buffer) beside the policy."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus the schema version) to ``path`` via a temporary file, fsync and rename, so a crash
    mid-write never leaves a truncated checkpoint under the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"schema_version": SCHEMA_VERSION, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torch raises several types for truncated or foreign files
        older = [p for p in list_checkpoints(path.parent.parent) if p != path] if path.name.startswith("step_") else []
        hint = f"; the previous checkpoint is {older[-1]}" if older else ""
        raise ValueError(
            f"{path} is not a readable parallel_rl checkpoint, probably truncated or corrupted "
            f"({type(e).__name__}: {e}){hint}"
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("schema_version") != SCHEMA_VERSION:
        found = ckpt.get("schema_version") if isinstance(ckpt, dict) else None
        raise ValueError(f"{path}: checkpoint schema version {found!r}, this parallel_rl reads {SCHEMA_VERSION}")
    return ckpt


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def step_checkpoint_path(run_dir: str | Path, env_steps: int) -> Path:
    """Periodic checkpoints are named by env step (zero-padded, so names sort by step)."""
    return checkpoint_dir(run_dir) / f"step_{env_steps:012d}.pt"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Periodic checkpoints of a run, oldest first."""
    return sorted(checkpoint_dir(run_dir).glob("step_*.pt"))


def resolve_resume(resume: str, run_dir: str | Path | None) -> Path:
    """``--resume`` value -> checkpoint file: a path, or 'latest' (the newest periodic checkpoint of run_dir)."""
    if resume != "latest":
        return Path(resume)
    found = list_checkpoints(run_dir) if run_dir else []
    if not found:
        raise FileNotFoundError(f"--resume latest: no checkpoints under {checkpoint_dir(run_dir or '.')}")
    return found[-1]


def rotate_checkpoints(run_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` periodic checkpoints; returns the deleted paths."""
    old = list_checkpoints(run_dir)[:-keep]
    for path in old:
        path.unlink(missing_ok=True)
    return old


class Checkpointer:
    """Where a run's checkpoints go and which are kept: periodic ``step_<env steps>.pt`` (the newest ``keep``),
    ``best.pt`` (a copy of the periodic checkpoint with the highest return so far) and ``final.pt``."""

    def __init__(self, run_dir: str | Path, keep: int, best_return: float = -math.inf) -> None:
        self.run_dir, self.keep, self.best_return = Path(run_dir), keep, best_return

    def save_periodic(self, env_steps: int, state: dict[str, Any], ret: float = math.nan) -> Path:
        """Save, rotate, and copy to best.pt when ``ret`` (finite) beats every earlier periodic checkpoint's."""
        path = save_checkpoint(step_checkpoint_path(self.run_dir, env_steps), state)
        rotate_checkpoints(self.run_dir, self.keep)
        if math.isfinite(ret) and ret > self.best_return:
            self.best_return = ret
            shutil.copyfile(path, path.parent / "best.pt")
        return path

    def save_final(self, state: dict[str, Any]) -> Path:
        return save_checkpoint(checkpoint_dir(self.run_dir) / "final.pt", state)


def policy_spec(
    obs_dim: int,
    act_dim: int,
    hidden: tuple[int, ...],
    activation: str,
    low: tuple,
    high: tuple,
    arch: NetSpec | None = None,
    **task: Any,
) -> dict[str, Any]:
    """Everything needed to rebuild the deployed policy, stored beside its weights. ``arch``: the actor's network
    family (``--actor-arch``), absent for the plain MLP of ``hidden``. Multi-task policies add ``task_names``,
    ``task_dims``, ``task_embedding_dim`` and per-task ``task_action_low``/``task_action_high``."""
    spec = {"obs_dim": obs_dim, "act_dim": act_dim, "hidden": list(hidden), "activation": activation,
            "action_low": list(low), "action_high": list(high), **task}  # fmt: skip
    if arch is not None:
        spec["arch"] = arch.as_dict()
    return spec


def load_policy(checkpoint_path: str | Path, device: str | torch.device = "cpu") -> DeployedPolicy:
    """Raw observations [batch, obs_dim] (float32) -> actions within the env's bounds; normalizer included.

    Needs only the checkpoint: the architecture and bounds are stored in it. A multi-task policy takes the
    multi-task env's layout (task id in the last column) and returns [-1, 1] actions as that env takes them;
    ``MultiTaskPolicy`` wraps it for deployment (observation and task id in, the task's actions out).
    """
    ckpt = load_checkpoint(checkpoint_path, map_location=device)
    spec = ckpt["policy_spec"]
    arch = NetSpec(**spec["arch"]) if spec.get("arch") else None
    task_dims = [tuple(d) for d in spec.get("task_dims") or []]
    actor = make_actor(spec["obs_dim"], spec["act_dim"], tuple(spec["hidden"]), spec["activation"], task_dims,
                       spec.get("task_embedding_dim", 0), spec=arch)  # fmt: skip
    actor.load_state_dict(ckpt["actor"])
    norm = RunningNorm(spec["obs_dim"], passthrough=1 if task_dims else 0)
    norm.load_state_dict(ckpt["normalizer"])
    low = torch.tensor(spec["action_low"], dtype=torch.float32)
    high = torch.tensor(spec["action_high"], dtype=torch.float32)
    return DeployedPolicy(norm, actor, low, high).to(device).eval().requires_grad_(False)


def load_multitask_policy(checkpoint_path: str | Path, device: str | torch.device = "cpu") -> MultiTaskPolicy:
    """A multi-task checkpoint's policy with the task as a second input: (obs [batch, obs_dim] zero-padded, task_id
    [batch] int64) -> actions within that task's bounds (see ``nets.task.MultiTaskPolicy``)."""
    spec = load_checkpoint(checkpoint_path, map_location=device)["policy_spec"]
    if not spec.get("task_names"):
        raise ValueError(f"{checkpoint_path}: a single-task policy; use load_policy")
    deployed = load_policy(checkpoint_path, device)
    low = torch.tensor(spec["task_action_low"], dtype=torch.float32)
    high = torch.tensor(spec["task_action_high"], dtype=torch.float32)
    return MultiTaskPolicy(deployed, low, high).to(device).eval().requires_grad_(False)
