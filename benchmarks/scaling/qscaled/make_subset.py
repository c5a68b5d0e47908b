"""Make the committed subset of the paper's Gym runs (tests/data/qscaled_gym_subset.zip) from qscaled's data.

Source: prestonfu/qscaled at commit 127dfb1, folder cache/data (``git clone https://github.com/prestonfu/qscaled &&
git -C qscaled checkout 127dfb1``). The subset keeps qscaled's layout (utd_<σ>/<Task>/episode.return/bs_<B>_lr_<η>.npy)
so that ``launch.scaling import qscaled`` reads it like the original:

- gym_sweep (the grid search behind B*(σ) and η*(σ)): every 5th logged step of every seed, returns rounded to whole
  units, float32. The bootstrap needs the seeds; decimation by 5 moves α_B by 0.001 and the per-task B*(1) by at most
  3.3% (by 10 it moves α_B by 0.07, see benchmarks/scaling/qscaled/README.md).
- gym_ours (the runs that followed the fitted laws, behind D_J(σ) and σ*(F)): one column, the isotonic (monotone)
  fit of the seed-averaged return, kept at the logged steps where it changes. The data law's crossing times are
  the first logged steps at which that fit reaches J, and those steps are all kept, so they are exactly those of
  the full data (the fit of a monotone curve is itself); only their bootstrap spread is lost.

Usage: python benchmarks/scaling/qscaled/make_subset.py QSCALED/cache/data tests/data/qscaled_gym_subset.zip
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
from scipy.optimize import isotonic_regression


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def main(src: str, out: str, every: int = 5) -> None:
    root = Path(src)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_LZMA) as archive:
        for path in sorted((root / "gym_sweep").glob("utd_*/*/episode.return/*.npy")):
            curves = np.load(path)[every - 1 :: every].astype(np.float32)
            curves[:, 1:] = np.round(curves[:, 1:])
            archive.writestr(f"gym_sweep/{path.relative_to(root / 'gym_sweep').as_posix()}", _npy(curves))
        for path in sorted((root / "gym_ours").glob("utd_*/*/episode.return/*.npy")):
            curves = np.load(path)
            monotone = isotonic_regression(curves[:, 1:].mean(axis=1), increasing=True).x
            changes = np.flatnonzero(np.diff(monotone, prepend=-np.inf) != 0)
            kept = np.stack([curves[changes, 0], monotone[changes]], axis=1)
            archive.writestr(f"gym_ours/{path.relative_to(root / 'gym_ours').as_posix()}", _npy(kept))
    print(f"wrote {out} ({Path(out).stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main(*sys.argv[1:3])
