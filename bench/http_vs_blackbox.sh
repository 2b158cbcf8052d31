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

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bench_begin http

need=()
command -v nginx >/dev/null || need+=(nginx)
command -v prometheus-blackbox-exporter >/dev/null || need+=(prometheus-blackbox-exporter)
bench_install "${need[@]}"
# If anything did start the packaged exporter, the comparison would share the
# machine with it: say so rather than kill what this script did not start.
if pgrep -x prometheus-blac >/dev/null; then
  echo "warning: a prometheus-blackbox-exporter service is running; stop it for clean numbers" >&2
fi

bench_build
echo "== $(nginx -v 2>&1); $(prometheus-blackbox-exporter --version 2>&1 | head -1); $(curl --version | head -1 | cut -d' ' -f1-3)"
bench_run http_vs_blackbox.py "$@"
