"""Run metrics to a CSV (always), TensorBoard (by default) and Weights & Biases (optional).

Rows are written only at logging intervals. The hyperparameters go into the TensorBoard event file through the
HParams plugin's summaries, so TensorBoard's HPARAMS tab can compare runs by config.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from parallel_rl.io.files import append_text, atomic_write_text, csv_row_text, csv_text
from parallel_rl.io.progress import Progress

HPARAM_METRICS = ("final_eval_return", "eval_return", "episode_return")
"""Scalar tags the HParams tab shows next to each run's hyperparameters."""


class MetricsLogger:
    """Appends one row per ``log`` call to ``metrics.csv`` and sends the same scalars to TensorBoard and W&B.

    The CSV header is fixed by the first row; later rows with new keys get them in a wider rewrite (rare: it only
    happens when a metric first appears, e.g. the first finished episode).

    ``hparams`` (flat name -> int/float/str/bool, see ``flatten_hparams``) are written once to TensorBoard.
    ``wandb_run`` is a run from ``wandb.init`` (see ``parallel_rl.io.run_record.init_wandb``); the logger logs to
    it and finishes it on ``close``. ``purge_step`` (a resumed run: its checkpoint's step + 1) hides TensorBoard
    events logged at or after it by the interrupted run, which the resumed run logs again.

    Rewrites are atomic and failed appends are cut back, so a full disk never leaves half a file.
    """

    def __init__(
        self,
        run_dir: str | Path,
        tensorboard: bool = True,
        hparams: Mapping[str, Any] | None = None,
        wandb_run: Any | None = None,
        hparam_metrics: tuple[str, ...] = HPARAM_METRICS,
        purge_step: int | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.run_dir / "metrics.csv"
        self.rows: list[dict[str, Any]] = []
        self.fields: list[str] = []
        if self.csv_path.exists():  # a resumed run appends to its own history
            with self.csv_path.open(newline="") as f:
                reader = csv.DictReader(f)
                self.fields = list(reader.fieldnames or [])
                self.rows = list(reader)
        self.writer = None
        self.wandb_run = wandb_run
        self._hparams_written = False
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                if purge_step is not None:
                    _after_existing_event_files(self.run_dir / "tensorboard")
                self.writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"), purge_step=purge_step)
            except ImportError:  # tensorboard is a dependency, but a stripped install still trains
                self.writer = None
        if self.writer is not None and hparams:
            self._write_hparams(dict(hparams), hparam_metrics)

    def _write_hparams(self, hparams: dict[str, Any], metrics: tuple[str, ...]) -> None:
        """Experiment and session-start summaries in the run's own event file (``SummaryWriter.add_hparams``
        would start a second run in a subdirectory instead)."""
        from torch.utils.tensorboard.summary import hparams as hparams_summaries

        experiment, session_start, self._session_end = hparams_summaries(hparams, dict.fromkeys(metrics, 0.0))
        file_writer = self.writer._get_file_writer()
        file_writer.add_summary(experiment)
        file_writer.add_summary(session_start)
        self._hparams_written = True

    def log(self, step: int, metrics: dict[str, float]) -> None:
        row = {"env_step": step, **metrics}
        self.rows.append(row)
        new = [k for k in row if k not in self.fields]
        try:
            if new:
                self._rewrite(self.fields + new)
                self.fields += new
            else:
                append_text(self.csv_path, csv_row_text(self.fields, row))
        except BaseException:
            self.rows.pop()  # the file still ends at the previous row; keep memory in step with it
            raise
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(key, value, step)
        if self.wandb_run is not None:
            self.wandb_run.log({"env_step": step, **metrics}, step=step)

    def log_final(self, step: int, values: Mapping[str, Any]) -> None:
        """End-of-run numbers (e.g. ``final_eval_return``): scalars in TensorBoard at ``step`` (so the HParams tab
        shows them) and the W&B run summary. Non-numeric values are skipped for TensorBoard."""
        numbers = {k: float(v) for k, v in values.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}  # fmt: skip
        if self.writer is not None:
            for key, value in numbers.items():
                self.writer.add_scalar(key, value, step)
        if self.wandb_run is not None:
            self.wandb_run.summary.update(dict(values))

    def _rewrite(self, fields: list[str]) -> None:
        """The whole CSV with a wider header, through a temporary file (the old file stays whole on failure)."""
        atomic_write_text(self.csv_path, csv_text(fields, self.rows))

    def close(self) -> None:
        if self.writer is not None:
            if self._hparams_written:
                self.writer._get_file_writer().add_summary(self._session_end)
                self._hparams_written = False
            self.writer.flush()
            self.writer.close()
            self.writer = None
        if self.wandb_run is not None:
            self.wandb_run.finish()
            self.wandb_run = None


def flatten_hparams(config: Mapping[str, Any], prefix: str = "") -> dict[str, int | float | str | bool]:
    """Nested config -> ``{"agent/gamma": 0.99, ...}`` with values TensorBoard's HParams plugin accepts (sequences
    and None become strings)."""
    flat: dict[str, int | float | str | bool] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_hparams(value, prefix=f"{name}/"))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(list(value))
        else:
            flat[name] = str(value)
    return flat


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Atomically (temporary file, fsync, rename): a crash leaves the previous file or the new one."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


class RunLogger:
    """A training run's rows (rank 0): throughput since the previous row (env steps/s, updates/s) added to each row
    of metrics, written through a ``MetricsLogger``, and an optional progress display over env steps
    (``io.progress``: a bar that moves every step in a terminal, one line per row elsewhere)."""

    def __init__(self, metrics: MetricsLogger, total_steps: int, start_step: int, start_updates: int,
                 progress: bool) -> None:  # fmt: skip
        self.metrics = metrics
        self.bar = Progress(total_steps, done=start_step) if progress else None
        self.last_time = time.perf_counter()
        self.last_step, self.last_updates = start_step, start_updates
        self.last_return = float("nan")  # episodes end in bursts; show the latest mean rather than flicker to nan

    def throughput(self, env_step: int, updates: int) -> dict[str, float]:
        """Env steps/s and updates/s since the previous row."""
        dt = max(time.perf_counter() - self.last_time, 1e-9)
        return {"env_steps_per_s": (env_step - self.last_step) / dt,
                "updates_per_s": (updates - self.last_updates) / dt}  # fmt: skip

    def advance(self, steps: int) -> None:
        """After every vectorized env step: the bar moves (redrawn at most twice a second)."""
        if self.bar is not None:
            self.bar.advance(steps)

    def log(self, env_step: int, updates: int, row: dict[str, float], final: bool = False) -> None:
        self.metrics.log(env_step, row)
        self.last_return = row.get("episode_return", self.last_return)
        if self.bar is not None:
            self.bar.row(row.get("env_steps_per_s", 0.0), row.get("updates_per_s", 0.0), self.last_return, final)
        self.last_time, self.last_step, self.last_updates = time.perf_counter(), env_step, updates

    def log_final(self, env_step: int, summary: Mapping[str, Any]) -> None:
        self.metrics.log_final(env_step, summary)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def close(self) -> None:
        self.close_bar()
        self.metrics.close()


def _after_existing_event_files(log_dir: Path) -> None:
    """Wait, if needed, until the clock's second is past every event file's in ``log_dir``. TensorBoard reads a
    directory's event files in name order, and the resumed run's purge marker works only if its file comes last;
    a name is ``events.out.tfevents.<second>.<host>.<pid>.<counter>``, and within one second the counter sorts as
    text (``.10`` before ``.9``), so a resume within the second of the last file could be read first."""
    stamps = []
    for f in log_dir.glob("events.out.tfevents.*"):
        try:
            stamps.append(int(f.name.split(".")[3]))
        except (IndexError, ValueError):
            continue
    if stamps:
        wait = max(stamps) + 1 - time.time()
        if wait > 0:
            time.sleep(wait)
