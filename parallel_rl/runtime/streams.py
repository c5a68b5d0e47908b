"""Lanes (one CUDA stream per component) and double-buffered channels between them.

The only cross-lane dependencies of a run are (a) buffer rows, made visible through published *views* of the
buffer's write positions, and (b) parameters, published by copying them into a consumer's channel. Both go
through ``Channel``; its CUDA events are the only synchronisation between streams. On a CPU, or on a GPU in
sequential mode, lanes carry no stream and events are ``None``: the same code runs in program order.
"""

from __future__ import annotations

import contextlib
import copy
import threading

import torch
from tensordict import TensorDict
from torch import nn


class Lane:
    """Where one component's kernels run: its own CUDA stream when ``concurrent`` on a GPU, else the current one."""

    def __init__(self, device: torch.device, name: str, concurrent: bool = False) -> None:
        self.name = name
        self.device = device
        self.stream = torch.cuda.Stream(device=device) if concurrent and device.type == "cuda" else None

    def active(self) -> contextlib.AbstractContextManager:
        """Kernels launched inside run on this lane."""
        return torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext()

    def record(self) -> torch.cuda.Event | None:
        """An event marking everything launched on this lane so far (``None`` without a stream)."""
        if self.stream is None:
            return None
        event = torch.cuda.Event()
        event.record(self.stream)
        return event

    def wait(self, event: torch.cuda.Event | None) -> None:
        """Make this lane's later work wait for ``event`` (on the device; the host does not block)."""
        if event is not None and self.stream is not None:
            self.stream.wait_event(event)

    def synchronize(self) -> None:
        if self.stream is not None:
            self.stream.synchronize()


class Channel:
    """Publishes a producer's tensors to one consumer through two slots, so no reader sees a half-written copy.

    - ``publish()`` (producer lane) copies the source into the *back* slot and then makes it the front. It never
      writes the slot the consumer is reading: if the consumer still holds it, the producer waits for the release
      (briefly, on the host: a pull only enqueues one copy) and, on a GPU, for the release event on its stream.
    - ``pull()`` (consumer lane) copies the front slot into the consumer-owned ``local`` tensors when a newer
      version exists. ``local`` keeps fixed addresses, which is what CUDA graphs of the consumer need.
    - ``deferred=True`` (pipelined mode): ``publish`` writes the back slot but the swap waits for ``commit()``,
      which the runtime calls at the iteration barrier, so what a consumer pulls depends only on the iteration,
      never on thread or stream timing.
    - ``mark()`` / ``flush()`` (sequential mode only): a publication whose copy is made when it is first needed,
      by the consumer's next ``pull`` or by ``flush`` (which the runtime calls before the producer changes the
      source again), and not at all when a newer publication supersedes it unread.
    """

    def __init__(
        self, source: TensorDict, writer: Lane, reader: Lane, local: TensorDict | None = None, deferred: bool = False
    ) -> None:
        self.source = source
        self.writer, self.reader, self.deferred = writer, reader, deferred
        self.local = source.clone() if local is None else local
        self.slots = [source.clone(), source.clone()]
        self.front = 0
        self.version = 0  # publications made visible so far
        self._pending: int | None = None
        self._held: int | None = None
        self._ready: list[torch.cuda.Event | None] = [None, None]
        self._released: list[torch.cuda.Event | None] = [None, None]
        self._pulled = 0
        self._marked = False  # a publication noted by ``mark`` whose copy is still to be made
        self._cond = threading.Condition()

    @classmethod
    def for_module(cls, module: nn.Module, writer: Lane, reader: Lane, deferred: bool = False) -> Channel:
        """A channel whose ``local`` end is a frozen copy of ``module`` (available as ``channel.module``)."""
        local_module = copy.deepcopy(module).requires_grad_(False)
        channel = cls(
            TensorDict.from_module(module).data, writer, reader, TensorDict.from_module(local_module).data, deferred
        )
        channel.module = local_module
        return channel

    @torch.no_grad()
    def publish(self) -> None:
        with self._cond:
            back = 1 - self.front
            while self._held == back:  # only in free mode: the consumer is copying out of this slot right now
                self._cond.wait()
            released = self._released[back]
        self.writer.wait(released)
        with self.writer.active():
            self.slots[back].update_(self.source)
            ready = self.writer.record()
        with self._cond:
            self._ready[back] = ready
            if self.deferred:
                self._pending = back
            else:
                self.front = back
                self.version += 1

    def mark(self) -> None:
        """Publish the source as it is now, copying it only if it is read (or about to change) before the next
        ``mark``. Sequential order only: the caller flushes before the producer writes the source again, unless
        its next write is always followed by another ``mark`` before any read."""
        self._marked = True

    def flush(self) -> None:
        """Make the copy of a ``mark``-ed publication now (the producer is about to change the source)."""
        if self._marked:
            self._marked = False
            self.publish()

    def commit(self) -> None:
        """Make the latest deferred publication visible (call only when no pull or publish is in flight)."""
        with self._cond:
            if self._pending is not None:
                self.front, self._pending = self._pending, None
                self.version += 1

    @torch.no_grad()
    def pull(self) -> bool:
        """Refresh ``local`` from the newest publication; returns whether anything changed."""
        if self._marked:
            self.flush()
        if self._pulled == self.version:  # a plain int read: the common case costs no lock
            return False
        with self._cond:
            slot, version = self.front, self.version
            self._held = slot
            ready = self._ready[slot]
        released = None
        try:
            self.reader.wait(ready)
            with self.reader.active():
                self.local.update_(self.slots[slot])
                released = self.reader.record()
        finally:
            with self._cond:
                self._released[slot] = released
                self._held = None
                self._cond.notify_all()
        self._pulled = version
        return True

    def state_dict(self) -> dict:
        """Both slots, the consumer's copy and the version counters (a resumed run continues bit for bit)."""
        return {"slots": [slot.clone() for slot in self.slots], "local": self.local.clone(), "front": self.front,
                "version": self.version, "pulled": self._pulled, "marked": self._marked}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        for slot, saved in zip(self.slots, state["slots"]):
            slot.update_(saved)
        self.local.update_(state["local"])
        self.front, self.version, self._pulled = state["front"], state["version"], state["pulled"]
        self._marked = state.get("marked", False)
        self._pending = None


@torch.no_grad()
def alias_module(replica: nn.Module, source: nn.Module) -> None:
    """Point every parameter and buffer of ``replica`` at the storage of ``source``'s (same structure): the
    reader then sees every in-place update of the writer with no copy, and, its parameters keeping their own
    ``requires_grad=False``, sends no gradient back. Only for sequential order, where nothing runs concurrently."""
    mine_all = [*replica.parameters(), *replica.buffers()]
    theirs_all = [*source.parameters(), *source.buffers()]
    if len(mine_all) != len(theirs_all):
        raise ValueError("alias_module: replica and source differ in structure")
    pairs = zip(mine_all, theirs_all)
    for mine, theirs in pairs:
        if mine.shape != theirs.shape or mine.dtype != theirs.dtype:
            raise ValueError(f"alias_module: {tuple(mine.shape)} {mine.dtype} vs {tuple(theirs.shape)} {theirs.dtype}")
        mine.data = theirs.data
