#!/bin/sh
# Learning curves of FastTD3, PQL, FastSAC and CrossQ + WN (suite "algorithms" in launch/suites.py): two workers
# (FastTD3 + PQL, FastSAC + CrossQ) run their halves at nice 10, then a last pass (--resume: every run is done)
# writes curves.csv, the plots and results.md from all of them. Runs train in the workers' own processes
# (benchmarks/algorithms/inprocess.py): start-up would otherwise cost more than a run. About 50 minutes of CPU.
set -e
cd "$(dirname "$0")/../.."
OUT=benchmarks/algorithms
NOTE="$(uptime | sed 's/^ *//')"
PYTHONUNBUFFERED=1 nice -n 10 python -m launch.benchmark --suite algorithms --plugins benchmarks.algorithms.inprocess --out $OUT --algos fasttd3 pql --resume --note "$NOTE" > $OUT/worker1.log 2>&1 &
PYTHONUNBUFFERED=1 nice -n 10 python -m launch.benchmark --suite algorithms --plugins benchmarks.algorithms.inprocess --out $OUT --algos fastsac crossq --resume --note "$NOTE" > $OUT/worker2.log 2>&1 &
wait
python -m launch.benchmark --suite algorithms --plugins benchmarks.algorithms.inprocess --out $OUT --resume --note "start: $NOTE; end: $(uptime | sed 's/^ *//')"
