"""The training progress display: a bar that moves every env step in a terminal, one line per logged row
elsewhere (a log file or a pipe gets no carriage-return redraws, and no line twice).

The bar shows the last finished episodes' mean return, or an em dash before any episode has ended.
"""

from __future__ import annotations

import math
import sys
import time
from typing import IO, Any

NO_RETURN = "\u2014"  # em dash: no episode has ended yet


def format_return(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else NO_RETURN


class Progress:
    """``advance(n)`` after every vectorized step (cheap: tqdm redraws at most every ``interval`` s); ``row(...)``
    when a metrics row is logged; ``close()`` at the end."""

    def __init__(self, total: int, done: int = 0, stream: IO[str] | None = None, interval: float = 0.5) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.total, self.done, self.last_return = total, done, math.nan
        self.terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar: Any = None
        self._last_line = -math.inf
        if self.terminal:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=done, unit="step", unit_scale=True, dynamic_ncols=True,
                             desc="env steps", file=self.stream, mininterval=interval)  # fmt: skip
            self._bar.set_postfix(ret=NO_RETURN, refresh=False)

    def advance(self, steps: int) -> None:
        self.done += steps
        if self._bar is not None:
            self._bar.update(steps)

    def row(self, steps_per_s: float, updates_per_s: float, episode_return: float, final: bool = False) -> None:
        if math.isfinite(episode_return):
            self.last_return = episode_return
        ret = format_return(self.last_return)
        if self._bar is not None:
            self._bar.set_postfix(steps_s=f"{steps_per_s:.0f}", upd_s=f"{updates_per_s:.0f}", ret=ret, refresh=False)
            return
        now = time.monotonic()
        if final or now - self._last_line >= 1.0:  # one line per row, at most one a second
            pct = 100.0 * self.done / max(self.total, 1)
            print(f"env steps {self.done}/{self.total} ({pct:.0f}%)  steps/s {steps_per_s:.0f}  updates/s "
                  f"{updates_per_s:.0f}  return {ret}", file=self.stream, flush=True)  # fmt: skip
            self._last_line = now

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
