"""Simulator backends in the task registry: ``<prefix>:<task>[,option=value,...]`` names, and what each backend
provides (how to make its envs, its presets, whether it is installed).

A task name such as ``playground:CheetahRun,impl=warp,episode_length=500`` reads: backend ``playground``, task
``CheetahRun``, options ``{"impl": "warp", "episode_length": 500}``. Options go to the backend's env constructor;
commas inside brackets belong to the value (``push_config.magnitude_range=[0,0]``). Values are Python literals
(numbers, ``true``/``false``, lists) or else plain strings.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from parallel_rl.config import ConfigError

if TYPE_CHECKING:  # annotations only: naming a task must not import torch
    from parallel_rl.envs import VecEnv

Presets = dict[str, dict[str, dict[str, Any]]]
"""algo -> preset name -> TrainConfig overrides."""


@dataclass(frozen=True)
class Backend:
    """One simulator backend: the row of ``tasks.BACKENDS`` for its prefix."""

    make: Callable[..., VecEnv]
    """``make(task, num_envs, device, seed, **options) -> VecEnv``; imports the simulator lazily."""
    presets: Callable[[str], Presets]
    """Presets for a task of this backend (tuned ones for the tasks in ``tuned``, the backend's defaults else)."""
    check: Callable[[str], None]
    """``check(task)`` raises ``BackendUnavailable`` naming what to install when the simulator is missing (cheap: it
    imports no simulator)."""
    description: str
    tuned: tuple[str, ...] = field(default_factory=tuple)
    """Tasks with published (or our own, documented) hyperparameters; others get the backend's defaults."""


@dataclass(frozen=True)
class TaskName:
    """A parsed ``--task`` value."""

    backend: str | None
    """Prefix before ':' (None for the built-in torch tasks)."""
    task: str
    options: dict[str, Any]

    @property
    def base(self) -> str:
        """The name without options (what presets are keyed by)."""
        return self.task if self.backend is None else f"{self.backend}:{self.task}"


def parse_task_name(name: str) -> TaskName:
    head, sep, rest = name.partition(":")
    if not sep:
        return TaskName(None, name, {})
    parts = _split_top_level(rest)
    task, options = parts[0].strip(), {}
    if not task:
        raise ConfigError(f"--task {name!r}: empty task name after '{head}:'")
    for part in parts[1:]:
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--task {name!r}: option {part!r} is not key=value")
        options[key.strip()] = _literal(value.strip())
    return TaskName(head, task, options)


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _literal(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def merge(*overrides: dict[str, Any]) -> dict[str, Any]:
    """Nested merge of TrainConfig override dicts (later ones win, section by section)."""
    out: dict[str, Any] = {}
    for o in overrides:
        for key, value in o.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = value
    return out


def cpu_preset(total_env_steps: int = 100_000, **agent: Any) -> dict[str, Any]:
    """A preset a 2-core CPU can run: few envs, small networks, small batches (same algorithm, smaller scale)."""
    return {
        "num_envs": 16,
        "eval_envs": 16,
        "total_env_steps": total_env_steps,
        "schedule": {"utd": 2, "policy_ratio": 0.5},
        "buffer": {"buffer_size": 200_000, "batch_size": 256},
        "agent": {"critic_hidden": (256, 256), "actor_hidden": (256, 256), **agent},
    }
