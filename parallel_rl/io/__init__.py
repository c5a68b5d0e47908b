"""Checkpoints, loggers and run records, evaluation, policy export and videos.

Export, evaluation and video live in their own modules (``parallel_rl.io.export``, ``.evaluation``, ``.video``) and
import their optional dependencies (onnx, onnxruntime, PyAV) only when used.
"""

from parallel_rl.io.checkpoint import SCHEMA_VERSION, load_checkpoint, load_policy, save_checkpoint
from parallel_rl.io.logger import MetricsLogger, flatten_hparams, write_json
from parallel_rl.io.run_record import code_version, init_wandb, open_run_logger, record_run_metadata

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
