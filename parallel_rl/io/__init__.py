"""Checkpoints, loggers and policy loading."""

from parallel_rl.io.checkpoint import SCHEMA_VERSION, load_checkpoint, load_policy, save_checkpoint
from parallel_rl.io.logger import MetricsLogger, write_json

__all__ = ["SCHEMA_VERSION", "MetricsLogger", "load_checkpoint", "load_policy", "save_checkpoint", "write_json"]
