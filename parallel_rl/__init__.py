"""parallel_rl: massively parallel off-policy RL on GPU simulators."""

from parallel_rl.io.checkpoint import load_policy

__version__ = "0.1.0"
__all__ = ["__version__", "load_policy"]
