"""Checkpoints: one versioned dict, written atomically, from which a policy loads without the training config."""

from __future__ import annotations

import math
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from parallel_rl.io.files import atomic_copy, temp_path_for
from parallel_rl.nets import Actor, DeployedPolicy, NetSpec, RunningNorm, SquashedGaussianActor
from parallel_rl.nets.task import MultiTaskPolicy, make_actor

SCHEMA_VERSION = 2
"""2: full training state (optimizers, RNGs, channels, actor, optional buffer) beside the policy."""


def _plain_containers(value: Any) -> Any:
    """TensorDicts -> nested dicts of tensors, recursively, so a checkpoint holds only what the restricted loader
    (``weights_only=True``) reads: tensors, numbers, strings, containers (``load_state_dict`` of a TensorDict
    takes the dict back)."""
    if isinstance(value, dict):
        return {k: _plain_containers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_containers(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain_containers(v) for v in value)
    to_dict = getattr(value, "to_dict", None)
    if to_dict is not None and type(value).__module__.startswith("tensordict"):
        return _plain_containers(to_dict())
    return value


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus the schema version) to ``path`` via a temporary file, fsync and rename, so a crash
    mid-write never leaves a truncated checkpoint under the final name (a kill leaves a ``.tmp`` file that the next
    start removes). The file is private (0600): it holds the whole training state."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_path_for(path)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"schema_version": SCHEMA_VERSION, **_plain_containers(payload)}, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except RuntimeError as e:  # torch's writer wraps a full disk's OSError in a RuntimeError
        tmp.unlink(missing_ok=True)
        cause = e.__context__ or e.__cause__
        if isinstance(cause, OSError):
            raise OSError(cause.errno, cause.strerror, str(path)) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


POLICY_FIELDS = ("policy_spec", "actor", "normalizer")
"""What ``load_policy`` needs from a checkpoint."""
TRAINING_FIELDS = POLICY_FIELDS + ("config", "scheduler", "progress")
"""What ``--resume`` needs at least (a field missing deeper is reported by the trainer as it loads)."""
SPEC_FIELDS = ("obs_dim", "act_dim", "hidden", "activation", "action_low", "action_high")


def _safe_globals() -> list[Any]:
    """The only non-container types a checkpoint may hold: numpy arrays (numpy's RNG state) and, in files written
    before TensorDicts were stored as dicts, TensorDicts. Anything else (a crafted pickle calling ``os.system``)
    is refused by torch's restricted unpickler without running."""
    import numpy as np

    allowed: list[Any] = [np.ndarray, np.dtype, type(np.dtype(np.uint32)), type(np.dtype(np.float64)),
                          type(np.dtype(np.int64))]  # fmt: skip
    try:
        allowed.append(np._core.multiarray._reconstruct)
    except AttributeError:  # numpy < 2
        allowed.append(np.core.multiarray._reconstruct)
    try:
        from tensordict import TensorDict
        from tensordict._reductions import _make_td

        allowed += [TensorDict, _make_td]
    except ImportError:
        pass
    return allowed


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", require: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Read a checkpoint with torch's restricted loader (no code runs from the file) and check that it is ours,
    of this schema, and holds ``require``; every failure is one ``ValueError`` naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if found:  # a class or function torch's restricted unpickler would have had to call
            raise ValueError(f"{path}: not a parallel_rl checkpoint: it refers to {found.group(1)}, which a "
                             "checkpoint never holds (refused without running it)") from None  # fmt: skip
        raise _unreadable(path, e) from None
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise _unreadable(path, e) from None
    if not isinstance(ckpt, dict) or "schema_version" not in ckpt:
        raise ValueError(f"{path}: not a parallel_rl checkpoint (no schema_version; it holds a "
                         f"{type(ckpt).__name__})")  # fmt: skip
    if ckpt.get("schema_version") != SCHEMA_VERSION:
        found = ckpt.get("schema_version")
        raise ValueError(f"{path}: checkpoint schema version {found!r}, this parallel_rl reads {SCHEMA_VERSION}")
    missing = [k for k in require if k not in ckpt]
    if "policy_spec" in require and isinstance(ckpt.get("policy_spec"), dict):
        missing += [f"policy_spec.{k}" for k in SPEC_FIELDS if k not in ckpt["policy_spec"]]
    if missing:
        raise ValueError(f"{path}: schema-{SCHEMA_VERSION} checkpoint without {', '.join(missing)} (damaged, or not "
                         "written by parallel_rl's trainer)")  # fmt: skip
    return ckpt


def _unreadable(path: Path, e: Exception) -> ValueError:
    older = [p for p in list_checkpoints(path.parent.parent) if p != path] if path.name.startswith("step_") else []
    hint = f"; the previous checkpoint is {older[-1]}" if older else ""
    if isinstance(e, pickle.UnpicklingError):  # torch's text here is advice about weights_only, not the cause
        why = "its data is not a torch checkpoint"
    else:
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        why = text.split(". ")[0].rstrip(".")[:160]
    return ValueError(f"{path} is not a readable parallel_rl checkpoint, probably truncated or corrupted "
                      f"({why}){hint}")  # fmt: skip


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
            atomic_copy(path, path.parent / "best.pt", mode=0o600)  # private like every checkpoint
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
    obs_norm: str = "clipped",
    **task: Any,
) -> dict[str, Any]:
    """Everything needed to rebuild the deployed policy, stored beside its weights. ``arch``: the actor's network
    family (``--actor-arch``), absent for the plain MLP of ``hidden``; ``obs_norm``: the normalizer's formula.
    Multi-task policies add ``task_names``, ``task_dims``, ``task_embedding_dim`` and per-task
    ``task_action_low``/``task_action_high``."""
    spec = {"obs_dim": obs_dim, "act_dim": act_dim, "hidden": list(hidden), "activation": activation,
            "action_low": list(low), "action_high": list(high), "obs_norm": obs_norm, **task}  # fmt: skip
    if arch is not None:
        spec["arch"] = arch.as_dict()
    return spec


def _deployed_actor(spec: dict[str, Any], config: dict[str, Any]) -> torch.nn.Module:
    """The policy network a checkpoint's actor weights belong to: the deterministic tanh actor, or for the SAC family
    (fastsac, crossq) the squashed Gaussian whose deployed action is tanh(mean), with the run's normalization
    layers (deployed in eval mode: batch renormalization uses its running statistics)."""
    args = (spec["obs_dim"], spec["act_dim"], tuple(spec["hidden"]), spec["activation"])
    algo, agent = config.get("algo"), config.get("agent") or {}
    if algo in ("fastsac", "crossq"):
        norm = "batchrenorm" if algo == "crossq" else ("layer" if agent.get("layer_norm") else "none")
        return SquashedGaussianActor(*args, norm=norm)
    arch = NetSpec(**spec["arch"]) if spec.get("arch") else None
    task_dims = [tuple(d) for d in spec.get("task_dims") or []]
    if task_dims:  # a multi-task policy: the task encoder in front of the actor
        return make_actor(*args, task_dims, spec.get("task_embedding_dim", 0), spec=arch)
    return Actor(*args, spec=arch)


def load_policy(checkpoint_path: str | Path, device: str | torch.device = "cpu") -> DeployedPolicy:
    """Raw observations [batch, obs_dim] (float32) -> actions within the env's bounds; normalizer included.

    Needs only the checkpoint: the architecture and bounds are stored in it. A multi-task policy takes the
    multi-task env's layout (task id in the last column) and returns [-1, 1] actions as that env takes them;
    ``MultiTaskPolicy`` wraps it for deployment (observation and task id in, the task's actions out).
    """
    ckpt = load_checkpoint(checkpoint_path, map_location=device, require=POLICY_FIELDS)
    spec = ckpt["policy_spec"]
    task_dims = [tuple(d) for d in spec.get("task_dims") or []]
    actor = _deployed_actor(spec, ckpt.get("config") or {})
    actor.load_state_dict(ckpt["actor"])
    norm = RunningNorm(spec["obs_dim"], passthrough=1 if task_dims else 0, formula=spec.get("obs_norm", "clipped"))
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
