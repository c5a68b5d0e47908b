"""Algorithms, one class per file, each implementing ``base.Algorithm``; the registry maps ``--algo`` to a class.

Adding an algorithm: its file under ``parallel_rl/algos``, one line in ``ALGORITHMS`` below, and its name in the
``Literal`` of ``TrainConfig.algo`` (``config.py``; a test checks that the two agree).
"""

from __future__ import annotations

from parallel_rl.algos.base import Algorithm, Context, Role, Shared
from parallel_rl.algos.crossq import CrossQ
from parallel_rl.algos.dac import DAC
from parallel_rl.algos.dea import DEA
from parallel_rl.algos.fastsac import FastSAC
from parallel_rl.algos.fasttd3 import FastTD3
from parallel_rl.algos.pql import PQL
from parallel_rl.algos.vpl import VPL

ALGORITHMS: dict[str, type[Algorithm]] = {
    FastTD3.name: FastTD3,
    PQL.name: PQL,
    DAC.name: DAC,
    DEA.name: DEA,
    VPL.name: VPL,
    FastSAC.name: FastSAC,
    CrossQ.name: CrossQ,
}


def get_algorithm(name: str) -> type[Algorithm]:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; valid: {', '.join(ALGORITHMS)}") from None


__all__ = ["ALGORITHMS", "DAC", "DEA", "VPL", "Algorithm", "Context", "CrossQ", "FastSAC", "FastTD3", "PQL", "Role",
           "Shared", "get_algorithm"]  # fmt: skip
