"""What every command-line entry point shares: no traceback for a closed pipe (``--help | head``) or Ctrl-C
outside training, and one line for errors.

Kept free of heavy imports: it runs before ``--help`` is answered.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: <message>`` (one line) to stderr and exit with ``code`` (2: bad input)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code) from None


def _silence_stdout() -> None:
    """The reader of our stdout went away: send the rest of the output (and the flush at exit) nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run_cli(main: Callable[[], Any]) -> None:
    """Run a console entry point: a closed pipe ends it quietly (status 0 after --help, else 141 like a shell's
    SIGPIPE), Ctrl-C before training starts exits 130 with one line."""
    try:
        main()
        sys.stdout.flush()
    except SystemExit as e:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
        raise SystemExit(e.code) from None
    except BrokenPipeError:
        _silence_stdout()
        raise SystemExit(141) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
