"""Checkpoints, loggers and run records, evaluation, policy export and videos.

Export, evaluation and video live in their own modules (``parallel_rl.io.export``, ``.evaluation``, ``.video``) and
import their optional dependencies (onnx, onnxruntime, PyAV) only when used. The names below are imported on first
use, so that ``parallel_rl.io.files`` (run-directory checks) loads without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parallel_rl.io.checkpoint import SCHEMA_VERSION, load_checkpoint, load_policy, save_checkpoint
    from parallel_rl.io.logger import MetricsLogger, flatten_hparams, write_json
    from parallel_rl.io.run_record import code_version, init_wandb, open_run_logger, record_run_metadata

_WHERE = {
    "SCHEMA_VERSION": "checkpoint",
    "load_checkpoint": "checkpoint",
    "load_policy": "checkpoint",
    "save_checkpoint": "checkpoint",
    "MetricsLogger": "logger",
    "flatten_hparams": "logger",
    "write_json": "logger",
    "code_version": "run_record",
    "init_wandb": "run_record",
    "open_run_logger": "run_record",
    "record_run_metadata": "run_record",
}
__all__ = [
    "SCHEMA_VERSION",
    "MetricsLogger",
    "code_version",
    "flatten_hparams",
    "init_wandb",
    "load_checkpoint",
    "load_policy",
    "open_run_logger",
    "record_run_metadata",
    "save_checkpoint",
    "write_json",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"parallel_rl.io.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'parallel_rl.io' has no attribute {name!r}")
