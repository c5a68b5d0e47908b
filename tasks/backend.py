"""Simulator backends in the task registry: ``<prefix>:<task>[,option=value,...]`` names, and what each backend
provides (how to make its envs, its presets, whether it is installed).

A task name such as ``playground:CheetahRun,impl=warp,episode_length=500`` reads: backend ``playground``, task
``CheetahRun``, options ``{"impl": "warp", "episode_length": 500}``. Options go to the backend's env constructor;
commas inside brackets belong to the value (``push_config.magnitude_range=[0,0]``). Values are Python literals
(numbers, ``true``/``false``, lists) or else plain strings.
"""

from __future__ import annotations

import ast
import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from parallel_rl.config import ConfigError, TrainConfig, replace_nested, suggest, validate

if TYPE_CHECKING:  # annotations only: naming a task must not import torch
    from parallel_rl.envs import VecEnv

Presets = dict[str, dict[str, "Preset"]]
"""algo -> preset name -> Preset (a typed partial TrainConfig)."""


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


class Preset(dict):
    """A typed partial ``TrainConfig``: nested overrides (``{"num_envs": 16, "agent": {"gamma": 0.97}}``) whose every
    field name and value type is checked against ``TrainConfig`` when the preset is built, so that a misspelled field
    in a module's presets fails when the module is imported, naming the field. Immutable; ``merge`` makes new ones.
    A dict, so ``replace_nested(TrainConfig(), preset)`` applies it and ``preset["num_envs"]`` reads it."""

    def __init__(self, overrides: dict[str, Any] | None = None, /, **fields: Any) -> None:
        data = {**(overrides or {}), **fields}
        check_fields(TrainConfig, data)
        super().__init__({k: dict(v) if isinstance(v, dict) else v for k, v in data.items()})

    def _frozen(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("presets are immutable: build a new one with tasks.backend.merge(preset, {...})")

    def __reduce__(self):
        return Preset, (dict(self),)

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _frozen  # type: ignore[assignment]

    def build(self, **fields: Any) -> TrainConfig:
        """The whole ``TrainConfig`` this preset gives (``fields`` such as task/algo set first), validated."""
        cfg = replace_nested(TrainConfig(**fields), self)
        validate(cfg)
        return cfg


def check_fields(cls: type, data: dict[str, Any], prefix: str = "") -> None:
    """Every key of ``data`` is a field of the dataclass ``cls`` holding a value of the field's type."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key, value in data.items():
        where = f"{prefix}{key}"
        if key not in hints or key not in names:
            raise ConfigError(f"preset field {where!r}: not a field of {cls.__name__}{suggest(key, names)}")
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            if not isinstance(value, dict):
                raise ConfigError(f"preset field {where!r}: a section, give a dict of its fields, got {value!r}")
            check_fields(kind, value, f"{where}.")
        elif not _has_type(value, kind):
            raise ConfigError(f"preset field {where!r}: {value!r} is not a {_type_name(kind)}")


def _has_type(value: Any, kind: Any) -> bool:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return True
    if kind is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_has_type(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_has_type(v, args[0]) for v in value)
        return len(value) == len(args) and all(_has_type(v, a) for v, a in zip(value, args))
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _type_name(kind: Any) -> str:
    return getattr(kind, "__name__", None) or str(kind).replace("typing.", "")


def merge(*overrides: dict[str, Any]) -> Preset:
    """Nested merge of presets or override dicts (later ones win, section by section), as a new checked Preset."""
    out: dict[str, Any] = {}
    for o in overrides:
        for key, value in o.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = {**out[key], **value}
            else:
                out[key] = dict(value) if isinstance(value, dict) else value
    return Preset(out)


#: What a CPU preset keeps from the task's own preset: the value range and discount the task needs, its return
#: horizon and exploration range. Everything else is the CPU scale below or TrainConfig's defaults.
TASK_KEYS = ("gamma", "v_min", "v_max", "reward_scale", "n_step", "std_min", "std_max", "target_noise")

#: PQL's update rules (its paper): what distinguishes PQL from FastTD3 besides scale.
#: Where the shared AgentConfig defaults follow FastTD3's reference, PQL keeps its own rules (docs/algorithms.md):
#: PyTorch's default actor init, a P-learner sampling its own uniform batches, the clipped normalizer, clipped stored
#: actions and the clipped double-Q pick before projection.
PQL_OWN = Preset(agent={"actor_init_scale": 0.0, "actor_batch": "own", "obs_norm": "clipped",
                        "clip_stored_actions": True, "cdq_pick": "unprojected"},
                 buffer={"sampling": "uniform"})  # fmt: skip
PQL_RULES = merge(PQL_OWN, {"agent": {"n_step": 3, "tau": 0.05, "target_noise": 0.0, "max_grad_norm": 0.5,
                                      "std_min": 0.05, "std_max": 0.8}})  # fmt: skip


@dataclass(frozen=True)
class CpuScale:
    """How small a CPU preset runs (the same algorithm, smaller): one per kind of task, all through ``cpu_preset``."""

    num_envs: int = 16
    total_env_steps: int = 200_000
    utd: float = 2
    batch_size: int = 256
    eval_envs: int | None = 16
    buffer_size: int | None = 200_000
    hidden: tuple[int, ...] | None = (256, 256)
    num_atoms: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Further overrides (e.g. ``log_every``) applied last."""


def cpu_preset(task_preset: dict[str, Any], algo: str, scale: CpuScale = CpuScale()) -> Preset:
    """The one CPU-preset rule: the task's value range, discount, horizon and exploration range from its own preset,
    PQL's update rules for PQL, at ``scale``."""
    agent = {k: v for k, v in task_preset.get("agent", {}).items() if k in TASK_KEYS}
    if scale.hidden is not None:
        agent |= {"critic_hidden": scale.hidden, "actor_hidden": scale.hidden}
    if scale.num_atoms is not None:
        agent["num_atoms"] = scale.num_atoms
    run: dict[str, Any] = {"num_envs": scale.num_envs, "total_env_steps": scale.total_env_steps, "agent": agent,
                           "schedule": {"utd": scale.utd, "policy_ratio": 0.5},
                           "buffer": {"batch_size": scale.batch_size}}  # fmt: skip
    if scale.eval_envs is not None:
        run["eval_envs"] = scale.eval_envs
    if scale.buffer_size is not None:
        run["buffer"]["buffer_size"] = scale.buffer_size
    return merge(run, PQL_RULES if algo == "pql" else {}, scale.extra)


def cpu_presets(task_preset: dict[str, Any], scale: CpuScale = CpuScale()) -> dict[str, Preset]:
    """``cpu_preset`` for both algorithms."""
    return {algo: cpu_preset(task_preset, algo, scale) for algo in ("fasttd3", "pql")}
