#!/usr/bin/env bash
# The two CPU sweeps behind benchmarks/scaling/sigma_n (critic width x UTD) and benchmarks/scaling/num_envs (parallel
# envs at a fixed UTD) on pendulum. One run at a time, niced (the machine is shared). Every run stops once a periodic
# evaluation reaches -240 (J = 850 on the 0-1000 scale, the top threshold fitted), so the fits use --fill-stopped.
# Resumable: finished runs are skipped. Run dirs go to $WORK; the fits and reports are made by report.py afterwards.
set -euo pipefail
cd "${ROOT:-$(dirname "$0")/../..}"
WORK=${WORK:-/tmp/scaling_cpu_sweeps}
PY=${PY:-python}
mkdir -p "$WORK"
{ date -u +"start %FT%TZ"; uptime; lscpu | grep 'Model name'; } >> "$WORK/machine.txt"
COMMON=(--task pendulum --actor-hidden 64 64 --eval-envs 8 --learning-starts 2 --stop-at-return -240)

# 1. (σ, N): σ in {1/2, 1, 2} x critic width {16, 64} (two hidden layers), 2 seeds, 8 envs, batch 128, lr 1e-3.
#    The cell σ = 2, width 64 (the most compute per transition) is held out by the fit.
nice -n 10 $PY -m launch.scaling sweep --sigma 0.5 1 2 --critic-width 16 64 --seeds 0 1 --batch-size 128 \
  --lr 0.001 --out "$WORK/sigma_n" --workers 1 --max-critic-updates 4000 --min-env-steps 2000 --eval-every 240 \
  --max-wall-seconds 120 --no-progress -- "${COMMON[@]}" --num-envs 8 --critic-hidden 64 64 --total-env-steps 4000
{ date -u +"sigma_n done %FT%TZ"; uptime; } >> "$WORK/machine.txt"

# 2. Parallel envs: num_envs in {4, 16, 64, 256} fitted, 32 held out; σ = 1/2, width 64, one seed (CPU time).
#    (A first plan of {16, 64, 256, 1024} with 128 held out was cut at the 30-minute limit of the shared machine:
#    n = 256 did not reach J = 500 within 6144 transitions, and n = 1024 was stopped unfinished.)
for n in 16 64 256 4 32; do
  steps=$(( n * 16 > 6000 ? n * 16 : 6000 ))
  nice -n 10 $PY -m launch.scaling sweep --sigma 0.5 --seeds 0 --batch-size 128 --lr 0.001 \
    --out "$WORK/num_envs/n$n" --workers 1 --eval-every 256 --max-wall-seconds 120 --no-progress -- \
    "${COMMON[@]}" --num-envs "$n" --critic-hidden 64 64 --total-env-steps "$steps"
done
{ date -u +"end %FT%TZ"; uptime; } >> "$WORK/machine.txt"
