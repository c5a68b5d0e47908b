"""Isaac Gym refuses to load after torch; entry points call this before anything imports torch.

Kept free of imports that pull in torch, and cheap when the task is not an Isaac Gym one.
"""

from __future__ import annotations

import importlib.util
import sys


def import_isaacgym_if_requested(argv: list[str]) -> bool:
    """Import ``isaacgym`` now if the command line names an ``isaacgym:`` task and Isaac Gym is installed."""
    wanted = any(arg.startswith("isaacgym:") or arg.startswith("--task=isaacgym:") for arg in argv)
    if not wanted or "isaacgym" in sys.modules or "torch" in sys.modules:
        return "isaacgym" in sys.modules
    if importlib.util.find_spec("isaacgym") is None:
        return False  # the task registry reports what to install
    import isaacgym  # noqa: F401

    return True
