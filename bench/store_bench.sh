#!/usr/bin/env bash
# blip's store writer thread: the cost of each write through the minute at 20,000
# samples/s, and a database locked by another process for 8 s (queue, drain,
# flush histogram, schedule lag). See docs/benchmarks.md.
#
#   bench/store_bench.sh                                   # defaults: about 4 minutes
#   bench/store_bench.sh --duration 20 --lock-seconds 3    # quick look
#
# Extra arguments go to bench/store_bench.py (--help lists them).
# Needs redis-server and the sqlite3 shell; installs the missing ones with apt-get
# (their packaged services are not started). Builds blip Release in build-bench/.
# All traffic stays on 127.0.0.1; every process started is killed on exit.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bench_begin store

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v sqlite3 >/dev/null || need+=(sqlite3)
bench_install "${need[@]}"
bench_raise_open_files

bench_build
echo "== database: $(df -T "$work" | awk 'NR == 2 {print $2}') under $work"
echo "== $(redis-server --version | cut -d' ' -f1-3); sqlite3 shell $(sqlite3 --version | cut -d' ' -f1)"
echo "== libraries: $(dpkg-query -W -f='${Package} ${Version}; ' libsqlite3-0 libhiredis0.14 libuv1 2>/dev/null)"
bench_run store_bench.py "$@"
