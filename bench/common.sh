# What the benchmark wrappers share; sourced, not run. After `bench_begin NAME`:
# $here, $root, $build and a scratch $work (removed on success unless BENCH_KEEP
# is set), and every pid the Python side records in $work/pids killed on exit.

bench_begin() {
  here="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
  root="$(cd "$here/.." && pwd)"
  build="${BENCH_BUILD:-$root/build-bench}"  # another tree: e.g. a change measured beside the one before it
  work="$(mktemp -d "/tmp/blip-$1-bench.XXXXXX")"
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

bench_cleanup() {
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

# Installs the named packages with apt-get; their packaged services are kept from starting.
bench_install() {
  (($#)) || return 0
  echo "== installing $*"
  apt-get update -qq
  local made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
  ((made_policy)) && rm -f /usr/sbin/policy-rc.d
  return 0
}

# 1,000 Redis probes hold 1,000 connections, and redis-server needs maxclients + 32.
bench_raise_open_files() {
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  if (($(ulimit -n) < 10100)); then
    echo "open files limit $(ulimit -n) is below 10100: redis-server --maxclients 10000 needs more" >&2
    exit 1
  fi
}

# Builds blip and the named bench/ programs (e.g. generate_history), if any, into $build.
bench_build() {
  echo "== building blip${1:+ and $*} (Release) in $build"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DBLIP_BUILD_TESTS=OFF -DBLIP_BUILD_BENCH="$( (($#)) && echo ON || echo OFF)" >/dev/null
  cmake --build "$build" --target blip "$@"  # a TERM/INT during the build takes effect when it ends
  echo "== blip: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD -- src include CMakeLists.txt 2>/dev/null || echo ' + uncommitted changes in src/include')"
  echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(uname -r)"
}

# Runs a driver in the background so that a signal reaches this shell's traps at once.
bench_run() {
  python3 "$here/$1" --blip "$build/blip" --work "$work" "${@:2}" &
  py_pid=$!
  wait "$py_pid"
}

# bench_run with a blip binary of the caller's choosing (a sanitizer build in CI).
bench_run_with() {
  python3 "$here/$2" --blip "$1" --work "$work" "${@:3}" &
  py_pid=$!
  wait "$py_pid"
}
