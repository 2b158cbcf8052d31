#!/usr/bin/env bash
# Detection against ground truth (issue 12): blip at 250 ms and 1 s, Prometheus
# scraping blackbox_exporter at 15 s and 60 s, and Uptime-Kuma-style pollers at
# 1 s and 20 s, side by side, while nginx, PostgreSQL and Redis are frozen on a
# logged schedule. See docs/benchmarks.md.
#
#   bench/detection.sh                    # the long run for the record (about 40 min)
#   bench/detection.sh --short            # about 4 min; what CI runs
#   bench/detection.sh --short --blip build-asan/blip   # an already-built blip, no Release build
#
# Extra arguments go to bench/detection.py (--help lists them). Exits non-zero
# when blip at 250 ms misses a stall of 2 s or more, puts an edge more than 0.5 s
# off, or reports an outage in a quiet stretch.
# Needs nginx, redis-server, PostgreSQL 15, prometheus and
# prometheus-blackbox-exporter; installs the missing ones with apt-get as root
# (their packaged services are not started), and does nothing of the kind when all
# are present. As root, PostgreSQL runs as the postgres user (setpriv). All traffic
# stays on 127.0.0.1; every process started is killed on exit.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bench_begin detection
chmod 755 "$work"  # the postgres user must reach its data directory inside

blip_binary=""
args=()
while (($#)); do
  case "$1" in
    --blip) blip_binary="$(realpath "$2")"; shift 2 ;;
    --blip=*) blip_binary="$(realpath "${1#--blip=}")"; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v redis-server >/dev/null || need+=(redis-server)
[[ -x /usr/lib/postgresql/15/bin/postgres ]] || need+=(postgresql-15)
command -v psql >/dev/null || need+=(postgresql-client-15)
command -v prometheus >/dev/null || need+=(prometheus)
command -v prometheus-blackbox-exporter >/dev/null || need+=(prometheus-blackbox-exporter)
if ((${#need[@]})) && (($(id -u) != 0)); then
  echo "missing packages: ${need[*]} (run scripts/install-deps, or this script as root)" >&2
  exit 1
fi
bench_install "${need[@]}"
for name in prometheus prometheus-blac; do
  if pgrep -x "$name" >/dev/null; then
    echo "note: a $name process not started here is running; it does not take part" >&2
  fi
done

if [[ -z "$blip_binary" ]]; then
  bench_build
  blip_binary="$build/blip"
fi
echo "== blip binary: $blip_binary"
bench_run_with "$blip_binary" detection.py ${args[@]+"${args[@]}"}
