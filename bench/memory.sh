#!/usr/bin/env bash
# blip's memory with a month of history behind the feed (issue 22): RSS at 100 and
# 1,000 probes over 30 days of generated history, and the per-outage heap's plateau.
#
#   bench/memory.sh                                    # rss: 100 and 1,000 probes, 3 minutes each
#   bench/memory.sh --probes 100,1000 --fresh          # each beside the same probes on an empty database
#   bench/memory.sh --blip-before OLD/blip             # each history first under another build
#   bench/memory.sh --mode plateau --probes 4 --flapping 2 --days 91 --interval-ms 50 --duration 1500
#
# rss writes its history with bench/generate_history for 20 probes at a sample a minute
# (--history-interval-ms; each outage at least three samples long, so none is lost) and gives
# the other probes copies of their rollups, hour totals and outages (--base): the feed reads
# those, not raw samples, and the generator's cost is per probe-minute (1,000 probes' month
# would take it half an hour of CPU). The plateau's history is generated whole, at 1 Hz.
# Everything started is on 127.0.0.1 and killed on exit.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bench_begin memory
command -v nginx >/dev/null || bench_install nginx-light
bench_build generate_history
bench_run memory.py --generator "$build/bench/generate_history" "$@"
