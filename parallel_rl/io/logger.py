"""Run metrics to a CSV (always) and TensorBoard (when installed); rows are written only at logging intervals."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any


class MetricsLogger:
    """Appends one row per ``log`` call to ``metrics.csv`` and the same scalars to TensorBoard.

    The CSV header is fixed by the first row; later rows with new keys get them in a wider rewrite (rare: it only
    happens when a metric first appears, e.g. the first finished episode).
    """

    def __init__(self, run_dir: str | Path, tensorboard: bool = True) -> None:
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
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
            except ImportError:  # tensorboard is a dependency, but a stripped install still trains
                self.writer = None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        row = {"env_step": step, **metrics}
        self.rows.append(row)
        new = [k for k in row if k not in self.fields]
        if new:
            self.fields += new
            self._rewrite()
        else:
            with self.csv_path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.fields).writerow(row)
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(key, value, step)

    def _rewrite(self) -> None:
        with self.csv_path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields)
            w.writeheader()
            w.writerows(self.rows)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
