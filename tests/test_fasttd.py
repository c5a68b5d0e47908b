"""The hot path's unchecked TensorDict construction (``parallel_rl/fasttd.py``) gives what the checked one does."""

from __future__ import annotations

import torch
from tensordict import LazyStackedTensorDict, TensorDict

from parallel_rl.fasttd import replaced, tensordict_of


def _batch() -> TensorDict:
    return TensorDict({"obs": torch.randn(4, 3), "next_obs": torch.randn(4, 3), "reward": torch.randn(4),
                       "validation": TensorDict({"obs": torch.randn(4, 3)}, batch_size=[4])},
                      batch_size=[4], device=torch.device("cpu"))  # fmt: skip


def _same(a: TensorDict, b: TensorDict) -> None:
    assert type(a) is type(b) and a.batch_size == b.batch_size and a.device == b.device
    assert list(a.keys(include_nested=True)) == list(b.keys(include_nested=True))
    for key in a.keys(include_nested=True, leaves_only=True):
        assert a[key] is b[key]  # the same tensors, not copies


def test_tensordict_of_equals_the_checked_constructor():
    entries = {"loss": torch.tensor(1.0), "q": torch.tensor(2.0)}
    _same(tensordict_of(entries), TensorDict(entries))
    batch = {"obs": torch.randn(5, 2), "reward": torch.randn(5)}
    _same(tensordict_of(batch, (5,), torch.device("cpu")), TensorDict(batch, batch_size=[5], device="cpu"))


def test_replaced_is_a_shallow_copy_with_entries_set_or_dropped():
    batch = _batch()
    before = {k: batch[k] for k in batch.keys(include_nested=True, leaves_only=True)}
    new_obs = torch.zeros(4, 3)
    expected = batch.copy()
    expected["obs"] = new_obs
    _same(replaced(batch, {"obs": new_obs}), expected)
    expected = batch.exclude("next_obs")
    expected["obs"] = new_obs
    _same(replaced(batch, {"obs": new_obs}, drop=("next_obs", "absent")), expected)
    assert all(batch[k] is v for k, v in before.items())  # the caller's batch is untouched


def test_replaced_keeps_other_tensordict_types_on_their_own_path():
    lazy = LazyStackedTensorDict.lazy_stack([TensorDict({"obs": torch.randn(3)}, []) for _ in range(2)])
    out = replaced(lazy, {"obs": torch.zeros(2, 3)})
    assert isinstance(out, LazyStackedTensorDict) and torch.equal(out["obs"], torch.zeros(2, 3))
