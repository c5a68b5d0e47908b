"""MP4 writing for evaluation videos.

H.264 in yuv420p inside MP4 is what browsers, W&B and every desktop player open; PyAV ships an FFmpeg with libx264
in its wheels, so no system FFmpeg is needed. yuv420p needs even frame sizes, so odd sizes are padded by one pixel.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np


def _import_av():
    try:
        import av
    except ImportError as e:
        raise ImportError("writing MP4 videos needs PyAV: pip install 'parallel-rl[video]' (or pip install av)") from e
    return av


class Mp4Writer:
    """Streams uint8 RGB frames [H, W, 3] (all the same size) into an H.264 MP4, one frame at a time, so a long
    episode never has to sit in memory.

    The file is written under a temporary name and renamed by ``close``, so an interrupted encode never leaves a
    half-written video that looks finished. Use as a context manager: on an exception the partial file is removed.
    """

    def __init__(self, path: str | Path, fps: float = 30.0, crf: int = 20) -> None:
        self.av = _import_av()
        if not fps > 0:
            raise ValueError(f"video fps must be > 0, got {fps}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(self.path.name + ".part")
        self.fps, self.crf = fps, crf
        self.container = self.av.open(str(self.tmp), mode="w", format="mp4")
        self.stream = None
        self.size: tuple[int, int] | None = None
        self.frames = 0
        self.closed = False

    def add(self, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"video frames must be uint8 [H, W, 3] RGB, got {frame.dtype} {frame.shape}")
        if self.stream is None:
            self.size = (frame.shape[0], frame.shape[1])
            self.stream = self.container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1000))
            self.stream.height, self.stream.width = (s + s % 2 for s in self.size)
            self.stream.pix_fmt = "yuv420p"
            self.stream.options = {"crf": str(self.crf)}
        elif frame.shape[:2] != self.size:
            raise ValueError(f"frame {self.frames} has size {frame.shape[:2]}, the first frame had {self.size}")
        if frame.shape[0] % 2 or frame.shape[1] % 2:
            frame = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), mode="edge")
        video_frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self.stream.encode(video_frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> dict[str, int | str]:
        """Flush the encoder and move the file into place; returns ``{path, frames, width, height}``."""
        if self.stream is None:
            self.abort()
            raise ValueError(f"no frames were written to {self.path}")
        for packet in self.stream.encode(None):  # the encoder holds back frames until flushed
            self.container.mux(packet)
        self.container.close()
        self.closed = True
        self.tmp.replace(self.path)
        return {"path": str(self.path), "frames": self.frames, "width": self.stream.width,
                "height": self.stream.height}  # fmt: skip

    def abort(self) -> None:
        """Drop the partial file (a finished video stays)."""
        if not self.closed:
            self.container.close()
            self.closed = True
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def write_mp4(path: str | Path, frames: Iterable[np.ndarray], fps: float = 30.0, crf: int = 20) -> dict[str, int | str]:
    """Encode a sequence of uint8 RGB frames [H, W, 3] to an H.264 MP4 (see ``Mp4Writer``)."""
    with Mp4Writer(path, fps, crf) as writer:
        for frame in frames:
            writer.add(frame)
        return writer.close()


def read_video_info(path: str | Path) -> dict[str, object]:
    """Decode every frame of a video file; returns codec, frame count and size (what a test or a user checks)."""
    av = _import_av()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = 0
        shape = None
        for frame in container.decode(stream):
            frames += 1
            shape = frame.to_ndarray(format="rgb24").shape
    if shape is None:
        raise ValueError(f"{path} holds no decodable video frames")
    return {"codec": stream.codec_context.name, "frames": frames, "height": shape[0], "width": shape[1],
            "pix_fmt": stream.codec_context.pix_fmt}  # fmt: skip
