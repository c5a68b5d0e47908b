"""Checkpoints: one versioned dict, written atomically, from which a policy loads without the training config."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from parallel_rl.nets import Actor, DeployedPolicy, RunningNorm

SCHEMA_VERSION = 1


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
        raise ValueError(f"{path} is not a readable parallel_rl checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict) or ckpt.get("schema_version") != SCHEMA_VERSION:
        found = ckpt.get("schema_version") if isinstance(ckpt, dict) else None
        raise ValueError(f"{path}: checkpoint schema version {found!r}, this parallel_rl reads {SCHEMA_VERSION}")
    return ckpt


def policy_spec(
    obs_dim: int, act_dim: int, hidden: tuple[int, ...], activation: str, low: tuple, high: tuple
) -> dict[str, Any]:
    """Everything needed to rebuild the deployed policy, stored beside its weights."""
    return {"obs_dim": obs_dim, "act_dim": act_dim, "hidden": list(hidden), "activation": activation,
            "action_low": list(low), "action_high": list(high)}  # fmt: skip


def load_policy(checkpoint_path: str | Path, device: str | torch.device = "cpu") -> DeployedPolicy:
    """Raw observations [batch, obs_dim] (float32) -> actions within the env's bounds; normalizer included.

    Needs only the checkpoint: the architecture and bounds are stored in it.
    """
    ckpt = load_checkpoint(checkpoint_path, map_location=device)
    spec = ckpt["policy_spec"]
    actor = Actor(spec["obs_dim"], spec["act_dim"], tuple(spec["hidden"]), spec["activation"])
    actor.load_state_dict(ckpt["actor"])
    norm = RunningNorm(spec["obs_dim"])
    norm.load_state_dict(ckpt["normalizer"])
    low = torch.tensor(spec["action_low"], dtype=torch.float32)
    high = torch.tensor(spec["action_high"], dtype=torch.float32)
    return DeployedPolicy(norm, actor, low, high).to(device).eval().requires_grad_(False)
