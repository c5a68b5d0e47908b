"""One MuJoCo renderer per (width, height), shared by the MuJoCo-based adapters' ``render`` (Playground, Gymnasium)."""

from __future__ import annotations

import atexit
import os
from typing import Any


def cached_renderer(cache: dict[tuple[int, int], Any], model: Any, width: int, height: int) -> Any:
    """The renderer of ``cache`` for this size, created on first use with a message naming MUJOCO_GL on failure."""
    renderer = cache.get((width, height))
    if renderer is None:
        import mujoco

        try:
            renderer = mujoco.Renderer(model, height=height, width=width)
        except Exception as e:  # noqa: BLE001 - GL errors come in many types
            raise RuntimeError(
                f"cannot create a MuJoCo renderer ({e}); set MUJOCO_GL=egl (GPU or Mesa EGL) or MUJOCO_GL=osmesa "
                f"before starting Python (now MUJOCO_GL={os.environ.get('MUJOCO_GL')!r})"
            ) from e
        cache[(width, height)] = renderer
        atexit.register(renderer.close)  # closing before interpreter teardown avoids EGL errors at exit
    return renderer
