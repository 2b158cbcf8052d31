#!/usr/bin/env bash
# The period finder's false-discovery rate (docs/benchmarks.md): random outage
# histories without any schedule through find_period, counting how often it
# claims a period. Two runs: the general one (5-500 Poisson outages over 6 h to
# 35 d with up to 4 blind windows) and the hard case for the test (100-500
# outages over 3-10 d, at least one blind window).
#   bench/pattern_false_discovery.sh [HISTORIES]      (default 100000; about a minute each on one core)
set -euo pipefail
cd "$(dirname "$0")/.."
histories=${1:-100000}
build=build-bench-pattern

scripts/install-deps
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLIP_BUILD_TESTS=OFF -DBLIP_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target pattern_false_discovery >/dev/null

echo "== general: 5-500 outages, 6h-35d, 0-4 blind windows"
"$build/bench/pattern_false_discovery" --histories "$histories"
echo
echo "== hard case: 100-500 outages, 3d-10d, 1-4 blind windows"
"$build/bench/pattern_false_discovery" --histories "$((histories / 4))" --min-outages 100 --min-range 3d --max-range 10d \
  --min-blind-windows 1
