"""VecEnv protocol and shared env machinery; simulator adapters live beside it, one module per backend."""

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
