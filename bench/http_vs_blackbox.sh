#!/usr/bin/env bash
# HTTP probes per second and CPU per probe: blip vs Prometheus blackbox_exporter,
# side by side against a private nginx on 127.0.0.1. See docs/benchmarks.md.
#
#   bench/http_vs_blackbox.sh                      # defaults: 3 reps x {100, 1000, max} x 15 s
#   bench/http_vs_blackbox.sh --reps 1 --duration 5 --rates 100,1000   # quick look
#
# Extra arguments go to bench/http_vs_blackbox.py (--help lists them).
# Installs nginx and prometheus-blackbox-exporter with apt-get if missing (their
# packaged services are not started: there is no systemd here, and
# policy-rc.d is honoured); builds blip Release in build-bench/. All traffic
# stays on 127.0.0.1; every process started is killed on exit.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="$root/build-bench"

work="$(mktemp -d /tmp/blip-http-bench.XXXXXX)"
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
command -v nginx >/dev/null || need+=(nginx)
command -v prometheus-blackbox-exporter >/dev/null || need+=(prometheus-blackbox-exporter)
if ((${#need[@]})); then
  echo "== installing ${need[*]}"
  apt-get update -qq
  # The package's postinst would start its service; keep it from doing so.
  # (A systemd-less container has nothing to start it with anyway.)
  made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
  ((made_policy)) && rm -f /usr/sbin/policy-rc.d
  # If anything did start the packaged exporter, the comparison would share the
  # machine with it: say so rather than kill what this script did not start.
  if pgrep -x prometheus-blac >/dev/null; then
    echo "warning: a prometheus-blackbox-exporter service is running; stop it for clean numbers" >&2
  fi
fi

echo "== building blip (Release) in $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DBLIP_BUILD_TESTS=OFF -DBLIP_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --target blip  # a TERM/INT during the build takes effect when it ends


echo "== blip: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD -- src include CMakeLists.txt 2>/dev/null || echo ' + uncommitted changes in src/include')"
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "== $(nginx -v 2>&1); $(prometheus-blackbox-exporter --version 2>&1 | head -1); $(curl --version | head -1 | cut -d' ' -f1-3)"
python3 "$here/http_vs_blackbox.py" --blip "$build/blip" --work "$work" "$@" &
py_pid=$!
wait "$py_pid"
