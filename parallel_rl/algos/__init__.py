"""One module per algorithm, each a set of pure functions over TensorDict batches and networks."""

from __future__ import annotations

from types import ModuleType

from parallel_rl.algos import fasttd3, pql

ALGORITHMS: dict[str, ModuleType] = {fasttd3.NAME: fasttd3, pql.NAME: pql}


def get_algorithm(name: str) -> ModuleType:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; valid: {', '.join(ALGORITHMS)}") from None


__all__ = ["ALGORITHMS", "get_algorithm", "fasttd3", "pql"]
