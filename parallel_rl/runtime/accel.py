"""Speed machinery shared by the components, written once: CUDA-graph replay, bf16 autocast, torch.compile, TF32.

None of it changes what is computed; each option has a parity test against the eager float32 path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from tensordict import TensorDict

from parallel_rl.config import SpeedConfig


def configure_backends(speed: SpeedConfig) -> None:
    """Process-wide switches (TF32)."""
    if speed.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def autocast(device: torch.device, speed: SpeedConfig) -> contextlib.AbstractContextManager:
    """bf16 autocast for forward passes when enabled. The cast cache is off under CUDA graphs (cached casts would
    be baked into the graph and go stale when the weights change)."""
    if not speed.bf16:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=not speed.cuda_graphs)


def maybe_compile(fn: Callable, speed: SpeedConfig) -> Callable:
    return torch.compile(fn, dynamic=False) if speed.compile else fn


class GraphedCall:
    """Calls ``fn(inputs) -> TensorDict`` eagerly for ``warmup`` calls, then captures it as a CUDA graph once and
    from then on copies each call's inputs into the captured (static) input tensors and replays.

    Every call performs its work exactly once (the capture itself runs nothing; the capturing call replays right
    after), so enabling graphs does not add or drop updates. ``fn`` must be free of host syncs and of Python
    branches on tensor values, its tensors must keep their addresses between calls (optimizer state allocated in
    warm-up, consumer-owned parameter copies), and its random numbers must come from the default generator.
    """

    def __init__(self, fn: Callable[[TensorDict], TensorDict], enabled: bool, warmup: int = 3) -> None:
        self.fn, self.enabled, self.warmup = fn, enabled, warmup
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_in: TensorDict | None = None
        self.static_out: TensorDict | None = None

    def __call__(self, inputs: TensorDict) -> TensorDict:
        self.calls += 1
        if not self.enabled:
            return self.fn(inputs)
        if self.graph is not None:
            self.static_in.update_(inputs)
            self.graph.replay()
            return self.static_out
        if self.calls <= self.warmup:
            # Warm up on a side stream, as CUDA-graph capture expects (lazy library state binds to that stream).
            current = torch.cuda.current_stream()
            side = torch.cuda.Stream()
            side.wait_stream(current)
            with torch.cuda.stream(side):
                out = self.fn(inputs)
            current.wait_stream(side)
            return out
        self.static_in = inputs.clone()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_out = self.fn(self.static_in)
        self.graph.replay()
        return self.static_out
