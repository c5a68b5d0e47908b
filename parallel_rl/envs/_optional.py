"""Optional simulator packages: one place that says what to install when one is missing.

Backends are imported lazily, inside the adapter that needs them, so that ``import parallel_rl`` never pulls in JAX,
Isaac Sim or MuJoCo. When a package is absent the user gets one message naming what to install, not a traceback
from deep inside a simulator.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

#: What to install for each backend (shown verbatim in errors and in the README).
INSTALL_HINTS: dict[str, str] = {
    "playground": 'MuJoCo Playground is not installed: pip install -e ".[playground]" (playground + jax; add '
    '"jax[cuda12]" for GPU)',
    "gym": 'Gymnasium MuJoCo is not installed: pip install -e ".[gym]" (gymnasium[mujoco])',
    "isaaclab": "Isaac Lab is not installed: install Isaac Sim 4.5+ and Isaac Lab 2.x "
    "(https://isaac-sim.github.io/IsaacLab/main/source/setup/installation/index.html), which provide the "
    "'isaaclab' and 'isaaclab_tasks' packages",
    "torchrl": 'torchrl is not installed: pip install -e ".[torchrl]" (torchrl 0.14 with the tensordict it pins)',
    "isaacgym": "Isaac Gym is not installed: download Isaac Gym Preview 4 (https://developer.nvidia.com/isaac-gym), "
    "pip install -e isaacgym/python, then pip install -e IsaacGymEnvs (https://github.com/isaac-sim/IsaacGymEnvs)",
}

#: The importable modules each backend needs.
REQUIRED_MODULES: dict[str, tuple[str, ...]] = {
    "playground": ("jax", "mujoco_playground"),
    "gym": ("gymnasium", "mujoco"),
    "isaaclab": ("isaaclab", "isaaclab_tasks"),
    "isaacgym": ("isaacgym", "isaacgymenvs"),
    "torchrl": ("torchrl",),
}


class BackendUnavailable(ImportError):
    """A simulator backend's package is missing; the message says what to install."""


def missing_modules(backend: str) -> list[str]:
    """Modules of ``backend`` that cannot be found, without importing anything (cheap, no side effects)."""
    missing = []
    for name in REQUIRED_MODULES[backend]:
        if name in sys.modules:  # already imported (or provided by an embedding application)
            continue
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a parent package that fails to import, or a stub without a spec
            found = False
        if not found:
            missing.append(name)
    return missing


def check_backend(backend: str) -> None:
    """Raise ``BackendUnavailable`` naming what to install if ``backend`` cannot be imported."""
    missing = missing_modules(backend)
    if missing:
        raise BackendUnavailable(f"{INSTALL_HINTS[backend]} (missing module: {', '.join(missing)})")


def require(backend: str, module: str) -> ModuleType:
    """Import ``module`` of ``backend``, turning a missing package into ``BackendUnavailable``."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise BackendUnavailable(f"{INSTALL_HINTS[backend]} (missing module: {e.name})") from e
