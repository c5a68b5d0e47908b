"""A tiny anti-aliased 2D rasterizer for rendering torch-native tasks to RGB frames.

Numpy only, so evaluation videos of the built-in tasks need no OpenGL, display or plotting library. Every shape is
drawn from a distance field over the pixels of its bounding box only, which keeps rendering cheap next to policy
inference and gives smooth edges without supersampling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

Color = tuple[int, int, int]


class Canvas:
    """An RGB image with a world coordinate frame: ``x`` to the right, ``y`` up, ``(0, 0)`` at ``center``.

    ``extent`` is the half-width of the world shown along the shorter image side, so shapes keep their aspect
    ratio whatever the image size.
    """

    def __init__(
        self,
        width: int,
        height: int,
        extent: float,
        center: tuple[float, float] = (0.0, 0.0),
        background: Color = (245, 245, 240),
    ) -> None:
        if width < 2 or height < 2:
            raise ValueError(f"render size must be at least 2x2 pixels, got {width}x{height}")
        self.width, self.height = int(width), int(height)
        self.scale = min(self.width, self.height) / (2.0 * extent)  # pixels per world unit
        self.center = center
        self.image = np.empty((self.height, self.width, 3), dtype=np.float32)
        self.image[:] = np.asarray(background, dtype=np.float32)

    def to_pixels(self, x: float, y: float) -> tuple[float, float]:
        """World point -> (column, row) in pixel units (pixel centers at integer + 0.5)."""
        px = self.width / 2 + (x - self.center[0]) * self.scale
        py = self.height / 2 - (y - self.center[1]) * self.scale
        return px, py

    def _blend(self, x0: float, y0: float, x1: float, y1: float, coverage_fn, color: Color) -> None:
        """Blend ``color`` into the pixel box [x0, x1] x [y0, y1] with the coverage ``coverage_fn(cols, rows)``."""
        c0, c1 = max(int(np.floor(x0)), 0), min(int(np.ceil(x1)) + 1, self.width)
        r0, r1 = max(int(np.floor(y0)), 0), min(int(np.ceil(y1)) + 1, self.height)
        if c0 >= c1 or r0 >= r1:
            return
        cols = np.arange(c0, c1, dtype=np.float32)[None, :] + 0.5
        rows = np.arange(r0, r1, dtype=np.float32)[:, None] + 0.5
        alpha = np.clip(coverage_fn(cols, rows), 0.0, 1.0)[..., None]
        region = self.image[r0:r1, c0:c1]
        region += alpha * (np.asarray(color, dtype=np.float32) - region)

    def segment(self, a: Sequence[float], b: Sequence[float], width: float, color: Color) -> None:
        """A thick line with round caps from world point ``a`` to ``b``; ``width`` in world units."""
        ax, ay = self.to_pixels(*a)
        bx, by = self.to_pixels(*b)
        r = 0.5 * width * self.scale
        dx, dy = bx - ax, by - ay
        length2 = max(dx * dx + dy * dy, 1e-12)

        def coverage(cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
            t = np.clip(((cols - ax) * dx + (rows - ay) * dy) / length2, 0.0, 1.0)
            dist = np.hypot(cols - (ax + t * dx), rows - (ay + t * dy))
            return r + 0.5 - dist

        self._blend(min(ax, bx) - r - 1, min(ay, by) - r - 1, max(ax, bx) + r + 1, max(ay, by) + r + 1, coverage,
                    color)  # fmt: skip

    def circle(self, center: Sequence[float], radius: float, color: Color) -> None:
        """A filled disc; ``radius`` in world units."""
        cx, cy = self.to_pixels(*center)
        r = radius * self.scale

        def coverage(cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
            return r + 0.5 - np.hypot(cols - cx, rows - cy)

        self._blend(cx - r - 1, cy - r - 1, cx + r + 1, cy + r + 1, coverage, color)

    def rectangle(self, center: Sequence[float], half_size: Sequence[float], color: Color) -> None:
        """An axis-aligned filled rectangle; sizes in world units."""
        cx, cy = self.to_pixels(*center)
        hx, hy = half_size[0] * self.scale, half_size[1] * self.scale

        def coverage(cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
            return np.minimum(hx + 0.5 - np.abs(cols - cx), hy + 0.5 - np.abs(rows - cy))

        self._blend(cx - hx - 1, cy - hy - 1, cx + hx + 1, cy + hy + 1, coverage, color)

    def to_uint8(self) -> np.ndarray:
        """The frame as uint8 [H, W, 3] RGB, the format video writers take."""
        return np.clip(self.image + 0.5, 0, 255).astype(np.uint8)


def env_state(state: torch.Tensor, env_index: int) -> np.ndarray:
    """Row ``env_index`` of a batched state as float64 numpy (one small device-to-host copy per rendered frame)."""
    num_envs = state.shape[0]
    if not -num_envs <= env_index < num_envs:
        raise IndexError(f"env_index {env_index} is out of range for {num_envs} envs")
    return state[env_index].detach().to("cpu", torch.float64).numpy()
