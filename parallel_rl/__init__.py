"""parallel_rl: massively parallel off-policy RL on GPU simulators.

``load_policy`` is imported on first use, so that the command-line tools answer ``--help`` and input errors
without loading torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parallel_rl.io.checkpoint import load_policy

__version__ = "0.1.0"
__all__ = ["__version__", "load_policy"]


def __getattr__(name: str) -> Any:
    if name == "load_policy":
        from parallel_rl.io.checkpoint import load_policy

        return load_policy
    raise AttributeError(f"module 'parallel_rl' has no attribute {name!r}")
