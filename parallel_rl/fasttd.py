"""TensorDicts built on the update hot path from tensors made right there, without TensorDict's validation.

Why: ``TensorDict(entries, batch_size, device)`` checks every entry's shape and device and walks several helper
layers per key; for a replay batch of six entries that took about 11 us on one CPU core, and a shallow copy with
two entries replaced (``copy()`` and two ``__setitem__``) about 18 us, where building the same TensorDict
unchecked took about 2 us. At a few hundred units per layer on a CPU an update runs several of these, and the
interpreter work around small kernels costs more inside an update (its caches cold after the matmuls) than in a
micro-benchmark. Only for entries the caller just built with the batch size and device it states.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from tensordict import TensorDict

_new_unsafe = getattr(TensorDict, "_new_unsafe", None)  # tensordict's own unchecked constructor (0.14)


def tensordict_of(
    entries: dict, batch_size: Sequence[int] | torch.Size = (), device: torch.device | None = None
) -> TensorDict:
    """``TensorDict(entries, batch_size, device)`` for entries known to match (tensors or TensorDicts whose leading
    dimensions are ``batch_size``, on ``device``)."""
    if _new_unsafe is None:
        return TensorDict(entries, batch_size=batch_size, device=device)
    return _new_unsafe(entries, batch_size=torch.Size(batch_size), device=device)


def replaced(batch: TensorDict, updates: Mapping[str, torch.Tensor], drop: Sequence[str] = ()) -> TensorDict:
    """A shallow copy of ``batch`` with ``updates`` set (same shapes as the entries they replace) and the keys in
    ``drop`` left out; ``batch`` itself is not changed."""
    if type(batch) is not TensorDict or _new_unsafe is None:
        out = batch.exclude(*drop) if drop else batch.copy()
        for key, value in updates.items():
            out[key] = value
        return out
    entries = {k: v for k, v in batch.items() if k not in drop} if drop else dict(batch.items())
    entries.update(updates)
    return _new_unsafe(entries, batch_size=batch.batch_size, device=batch.device)
