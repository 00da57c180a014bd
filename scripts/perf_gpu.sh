#!/usr/bin/env bash
# Run `bench perf` on one CUDA GPU, sized to finish in about 5 minutes.
#
# Usage: scripts/perf_gpu.sh [OUT_DIR] [more `bench perf` options]
# Needs BENCH_MIRROR (the dataset mirror) and a torch build with CUDA. Writes
# OUT_DIR/perf.md and OUT_DIR/perf.json (default OUT_DIR: results/perf-gpu).
#
# Sizes: every training row of OpenML 1203 (113,375 rows, 443 steps per
# epoch), 5 epochs per run, 3 runs per path, plus one row each with bf16
# autocast and torch.compile; 15 final seeds of 3 epochs each.
# NOTE: the 5-minute figure is an estimate; this script has not run on a GPU.
set -euo pipefail

out="${1:-results/perf-gpu}"
shift || true

if [[ -z "${BENCH_MIRROR:-}" ]]; then
    echo "BENCH_MIRROR is not set; point it at the dataset mirror folder." >&2
    exit 2
fi
if ! python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "No CUDA device is visible to torch; run this script on a GPU machine." >&2
    exit 2
fi

exec bench perf \
    --device cuda \
    --out "$out" \
    --train-rows 0 \
    --epochs 5 \
    --repeats 3 \
    --seeds 15 \
    --seed-epochs 3 \
    --encoder-repeats 100 \
    --bf16 \
    --compile \
    "$@"
