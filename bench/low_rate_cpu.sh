#!/usr/bin/env bash
# blip's CPU per HTTP probe at 10-10,000/s and with 0-100 probes at 1 s, beside
# other builds and the floor under any prober. See docs/benchmarks.md.
#
#   bench/low_rate_cpu.sh                                   # this tree's blip, 2 reps x 20 s
#   bench/low_rate_cpu.sh --also before=/path/to/old/blip --rates 100,1000 --idle ""
#
# Extra arguments go to bench/low_rate_cpu.py (--help lists them). Needs nginx
# and libcurl's headers (libcurl4-openssl-dev, as the build does); builds blip
# Release in build-bench/ and bench/http_floor.c beside it. All traffic stays on
# 127.0.0.1; every process started is killed on exit.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bench_begin low-rate

need=()
command -v nginx >/dev/null || need+=(nginx)
bench_install "${need[@]}"
bench_build
cc -O2 -Wall -Wextra -o "$build/http_floor" "$here/http_floor.c" -lcurl
echo "== $(nginx -v 2>&1); $(curl --version | head -1 | cut -d' ' -f1-3); load average $(cut -d' ' -f1-3 /proc/loadavg)"
bench_run low_rate_cpu.py --floor "$build/http_floor" "$@"
