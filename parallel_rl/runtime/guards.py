"""Crash safety: signals become a checkpoint and a clear exit; non-finite numbers stop the run with their source.

Checks run at logging and checkpoint time only (one host sync), so the hot loop stays sync-free; a checkpoint is
written only after the checks pass, so the last good checkpoint is never replaced by a poisoned one.
"""

from __future__ import annotations

import math
import signal
import threading
from pathlib import Path
from types import FrameType

import torch
from torch import nn


class TrainingInterrupted(RuntimeError):
    """SIGINT/SIGTERM arrived; the run saved a checkpoint and stopped. ``exit_code`` is the shell's 128 + signal."""

    def __init__(self, signum: int, env_steps: int, checkpoint: str, during: str | None = None) -> None:
        self.signum, self.env_steps, self.checkpoint = signum, env_steps, checkpoint
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        if during is not None:  # training had finished: the checkpoint is final.pt
            super().__init__(f"stopped by {name} during {during} after {env_steps} env steps of training; the "
                             f"trained policy is saved in {checkpoint} (evaluate it with python -m launch.evaluate "
                             f"--checkpoint {checkpoint})")  # fmt: skip
            return
        run_dir = Path(checkpoint).parent.parent if checkpoint else "<run dir>"
        super().__init__(f"stopped by {name} at env step {env_steps}; checkpoint {checkpoint} (continue with "
                         f"--resume {checkpoint} or --resume latest --run-dir {run_dir})")  # fmt: skip


class NonFiniteError(FloatingPointError):
    """A NaN or Inf appeared; the message names where and in which env-step interval."""


class StopSignals:
    """Within the block, SIGINT and SIGTERM set ``received`` instead of killing the process mid-update (only in
    the main thread, where Python can install handlers; elsewhere they keep their default behaviour)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def check_finite(metrics: dict[str, float], modules: dict[str, nn.Module], env_nonfinite: torch.Tensor,
                 steps: tuple[int, int]) -> None:  # fmt: skip
    """Raise ``NonFiniteError`` naming the first non-finite source: env outputs, a loss, or a network."""
    where = f"between env steps {steps[0]} and {steps[1]}"
    names = list(modules)
    flags = torch.stack([env_nonfinite.bool()] + [
        torch.stack([~torch.isfinite(p).all() for p in modules[n].parameters()]).any() for n in names
    ]).tolist()  # fmt: skip
    if flags[0]:
        raise NonFiniteError(f"the environment returned a NaN/Inf observation or reward {where}")
    for key in ("critic_loss", "actor_loss", "q_mean"):
        if key in metrics and not math.isfinite(metrics[key]):
            raise NonFiniteError(f"{key} became {metrics[key]} {where}")
    for name, bad in zip(names, flags[1:]):
        if bad:
            raise NonFiniteError(f"the {name} parameters contain NaN/Inf {where}")
