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

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="$root/build-bench"

work="$(mktemp -d /tmp/blip-store-bench.XXXXXX)"
cleanup() {
  local rc=$?
  # Kill only what this run started: the pids the Python side recorded.
  if [[ -f "$work/pids" ]]; then
    while read -r pid; do
      [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
    done <"$work/pids"
  fi
  if [[ -n "${py_pid:-}" ]]; then kill -KILL "$py_pid" 2>/dev/null || true; fi
  if ((rc == 0)) && [[ -z "${BENCH_KEEP:-}" ]]; then
    rm -rf "$work"
  else
    echo "logs kept in $work" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v sqlite3 >/dev/null || need+=(sqlite3)
if ((${#need[@]})); then
  echo "== installing ${need[*]}"
  apt-get update -qq
  made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
  ((made_policy)) && rm -f /usr/sbin/policy-rc.d
fi

# 1,000 Redis probes hold 1,000 connections, and redis-server needs maxclients + 32.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < 10100)); then
  echo "open files limit $(ulimit -n) is below 10100: redis-server --maxclients 10000 needs more" >&2
  exit 1
fi

echo "== building blip (Release) in $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DBLIP_BUILD_TESTS=OFF -DBLIP_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --target blip  # a TERM/INT during the build takes effect when it ends

echo "== blip: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD -- src include CMakeLists.txt 2>/dev/null || echo ' + uncommitted changes in src/include')"
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(uname -r)"
echo "== database: $(df -T "$work" | awk 'NR == 2 {print $2}') under $work"
echo "== $(redis-server --version | cut -d' ' -f1-3); sqlite3 shell $(sqlite3 --version | cut -d' ' -f1)"
echo "== libraries: $(dpkg-query -W -f='${Package} ${Version}; ' libsqlite3-0 libhiredis0.14 libuv1 2>/dev/null)"
python3 "$here/store_bench.py" --blip "$build/blip" --work "$work" "$@" &
py_pid=$!
wait "$py_pid"
