"""VecEnv protocol and shared env machinery; simulator adapters live beside it, one module per backend."""

from parallel_rl.envs.base import EnvSpec, TorchVecEnv, VecEnv, angle_normalize, check_action

__all__ = ["EnvSpec", "TorchVecEnv", "VecEnv", "angle_normalize", "check_action"]
