#!/usr/bin/env bash
# Postgres and Redis probes: probes per second, CPU per probe and schedule lag of
# blip, and blackbox_exporter's tcp module (PING / +PONG) against the same private
# Redis. See docs/benchmarks.md.
#
#   bench/pg_redis_bench.sh                                    # defaults: 3 reps, 10 s windows
#   bench/pg_redis_bench.sh --reps 1 --duration 5 --redis-rates 5000   # quick look
#
# Extra arguments go to bench/pg_redis_bench.py (--help lists them).
# Needs redis-server, PostgreSQL 15 (/usr/lib/postgresql/15/bin) and
# prometheus-blackbox-exporter; installs the missing ones with apt-get (their
# packaged services are not started). Builds blip Release in build-bench/.
# Run as root, PostgreSQL runs as the postgres user (setpriv). All traffic stays on
# 127.0.0.1; every process started is killed on exit.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="$root/build-bench"

work="$(mktemp -d /tmp/blip-pg-redis-bench.XXXXXX)"
chmod 755 "$work"  # the postgres user must reach its data directory inside
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
[[ -x /usr/lib/postgresql/15/bin/postgres ]] || need+=(postgresql-15)
command -v psql >/dev/null || need+=(postgresql-client-15)
command -v prometheus-blackbox-exporter >/dev/null || need+=(prometheus-blackbox-exporter)
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
echo "== $(redis-server --version | cut -d' ' -f1-3); $(/usr/lib/postgresql/15/bin/postgres --version); $(prometheus-blackbox-exporter --version 2>&1 | head -1)"
echo "== libraries: $(dpkg-query -W -f='${Package} ${Version}; ' libhiredis0.14 libpq5 libuv1 2>/dev/null)"
python3 "$here/pg_redis_bench.py" --blip "$build/blip" --work "$work" "$@" &
py_pid=$!
wait "$py_pid"
