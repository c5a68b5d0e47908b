#!/usr/bin/env bash
# The paper's Gym numbers (Rybkin et al. 2025) from the paper's own runs, in three commands (README: "The paper's Gym
# numbers"). QSCALED is a clone of https://github.com/prestonfu/qscaled checked out at 127dfb1 (its cache/data holds
# the .npy return curves). Outputs: $OUT/*.json (fits), and the printed results in benchmarks/scaling/qscaled/*.txt.
set -euo pipefail
cd "${ROOT:-$(dirname "$0")/../../..}"
QSCALED=${QSCALED:?set QSCALED to a clone of prestonfu/qscaled at commit 127dfb1}
OUT=${OUT:-/tmp/qscaled_fits}
HERE=benchmarks/scaling/qscaled
PY=${PY:-python}
mkdir -p "$OUT"
{ date -u +"start %FT%TZ"; uptime; lscpu | grep 'Model name'; } > "$HERE/machine.txt"
$PY -m launch.scaling import qscaled "$QSCALED/cache/data" --out "$OUT/runs" | tee "$HERE/import.txt"
$PY -m launch.scaling fit --runs "$OUT/runs/gym_sweep.csv" --out "$OUT/gym_sweep_fits.json" | tee "$HERE/fit_gym_sweep.txt"
$PY -m launch.scaling fit --runs "$OUT/runs/gym_ours.csv" --hyper-laws "$OUT/gym_sweep_fits.json" --params 1.5e5 \
  --delta 4e9 --out "$OUT/gym_ours_fits.json" | tee "$HERE/fit_gym_ours.txt"
{ date -u +"end %FT%TZ"; uptime; } >> "$HERE/machine.txt"
