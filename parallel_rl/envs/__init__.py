"""VecEnv protocol and shared env machinery; simulator adapters live beside it, one module per backend.

The names below are imported on first use, so that ``parallel_rl.envs._optional`` (what to install for a backend)
loads without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parallel_rl.envs.base import EnvSpec, TorchVecEnv, VecEnv, angle_normalize, check_action
    from parallel_rl.envs.multitask import MultiTaskVecEnv, make_multitask_env, split_envs

__all__ = [
    "EnvSpec",
    "MultiTaskVecEnv",
    "TorchVecEnv",
    "VecEnv",
    "angle_normalize",
    "check_action",
    "make_multitask_env",
    "split_envs",
]
_MULTITASK = ("MultiTaskVecEnv", "make_multitask_env", "split_envs")


def __getattr__(name: str) -> Any:
    if name in __all__ and name not in _MULTITASK:
        return getattr(importlib.import_module("parallel_rl.envs.base"), name)
    if name in _MULTITASK:
        return getattr(importlib.import_module("parallel_rl.envs.multitask"), name)
    raise AttributeError(f"module 'parallel_rl.envs' has no attribute {name!r}")
