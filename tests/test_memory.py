"""parallel_rl.memory: with freed memory kept in the process, re-allocating a large tensor stops page-faulting."""

from __future__ import annotations

import subprocess
import sys

import pytest

from parallel_rl.memory import retain_freed_memory

_PROBE = """
import resource, sys, torch
from parallel_rl.memory import retain_freed_memory
if sys.argv[1] == "keep":
    assert retain_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):  # warm-up: the first allocations fault either way, while the heap grows
    torch.ones(8 << 20)
start = faults()
for _ in range(20):
    torch.ones(8 << 20)  # 32 MiB (as [2, 4096, 1024] float32 activations), allocated, written and freed
print(faults() - start)
"""


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True, timeout=120)
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt: Linux only")
def test_kept_memory_stops_the_page_faults_of_large_reallocations():
    if not retain_freed_memory():
        pytest.skip("not glibc")
    default, kept = _faults("default"), _faults("keep")
    # glibc's default maps each 32 MiB block afresh: 8,192 pages faulted in per allocation (fewer with huge pages).
    assert default > 20 * 32 * 4, default
    assert kept < default / 20, (kept, default)
