#!/usr/bin/env bash
# End-to-end scaling study on pendulum (CPU): hyperparameter sweep -> B*(σ), η*(σ) -> σ sweep with batch and lr from
# those laws -> D_J(σ) fitted on σ <= 2 -> prediction for the held-out σ = 4 against its measurement.
# Resumable: rerunning skips finished runs. Run dirs go to $WORK (default /tmp/scaling_study); the committed results
# (fits, plots, run tables, report) go next to this script.
set -euo pipefail
cd "${ROOT:-$(dirname "$0")/../..}"
HERE=benchmarks/scaling
WORK=${WORK:-/tmp/scaling_study}
PY=${PY:-python}
WORKERS=${WORKERS:-2}
TRAIN=(--task pendulum --num-envs 8 --critic-hidden 64 64 --actor-hidden 64 64 --eval-envs 16 --total-env-steps 32000)
# Thresholds on the 0-1000 scale (pendulum: -1600 -> 0, 0 -> 1000): 1000 - logspace(log10 500, log10 150, 6),
# i.e. raw returns -800 ... -240; every run that learns crosses them.
FIT=(--num-thresholds 6 --low-gap 500 --high-gap 150 --resamples 100)
date -u +"start %FT%TZ"
mkdir -p "$WORK"
[ -f "$WORK/started" ] || date +%s > "$WORK/started"

# 1. Hyperparameter sweep (2 seeds): batch {64, 128, 256} at lr 3e-4, and lr {1e-4, 3e-4, 1e-3} at batch 64, at σ = 1/8 and 1/2.
HYPER=(--sigma 0.125 0.5 --seeds 0 1 --out "$WORK/hyper" --workers "$WORKERS" --max-critic-updates 4000
       --min-env-steps 4000 --max-wall-seconds 150 --no-progress)
$PY -m launch.scaling sweep "${HYPER[@]}" --batch-size 64 128 256 --lr 0.0003 -- "${TRAIN[@]}"
$PY -m launch.scaling sweep "${HYPER[@]}" --batch-size 64 --lr 0.0001 0.0003 0.001 -- "${TRAIN[@]}"
$PY -m launch.scaling fit --runs "$WORK/hyper" --out "$HERE/hyper_fits.json" "${FIT[@]}"

# 2. σ sweep with batch and lr from the fitted laws (3 seeds), and the held-out σ = 4.
SIGMA=(--seeds 0 1 2 --out "$WORK/sigma" --workers "$WORKERS" --laws "$HERE/hyper_fits.json" --max-critic-updates 5000
       --min-env-steps 4000 --max-wall-seconds 600 --no-progress)
$PY -m launch.scaling sweep --sigma 0.125 0.25 0.5 1 2 "${SIGMA[@]}" -- "${TRAIN[@]}"
# σ = 4 crosses the top threshold well within 2500 transitions (σ = 1/2 needs about 2400), so its runs stop there.
$PY -m launch.scaling sweep --sigma 4 "${SIGMA[@]}" --min-env-steps 2500 -- "${TRAIN[@]}"

# 3. Fit D_J(σ) on σ <= 2, predict σ = 4, plot, report.
date +%s > "$WORK/trained"
cut -d" " -f1-3 /proc/loadavg > "$WORK/loadavg"  # how busy the machine was when the runs ended
$PY -m launch.scaling fit --runs "$WORK/sigma" --out "$HERE/fits.json" --exclude-sigma 4 --hyper-laws "$HERE/hyper_fits.json" "${FIT[@]}"
$PY -m launch.scaling plot --fits "$HERE/fits.json" --out "$HERE"
$PY -m launch.scaling predict --fits "$HERE/fits.json" --data 6000 | tee "$HERE/predict_data_6000.txt"
$PY "$HERE/report.py" --work "$WORK" --out "$HERE"
date -u +"end %FT%TZ"
