#!/usr/bin/env bash
# The soak: blip at 250 ms against a private nginx, Postgres and Redis for two
# hours (by default), one of them frozen every 10 minutes, the feed and /metrics
# scraped every second. Checks that RSS and open descriptors stay flat, that every
# stall is an outage and that the stored sample count is the expected one within
# 0.1%. Not in CI; its result is in docs/reliability.md.
#
#   bench/soak.sh                          # 2 hours
#   bench/soak.sh --duration 900 --stall-every 120   # a 15-minute look
#
# Run as root (PostgreSQL runs as the postgres user); installs what is missing
# with apt-get. All traffic stays on 127.0.0.1; everything started is killed on exit.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bench_begin soak
chmod 755 "$work"

need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v redis-server >/dev/null || need+=(redis-server)
[[ -x /usr/lib/postgresql/15/bin/postgres ]] || need+=(postgresql-15)
bench_install "${need[@]}"

bench_build
bench_run soak.py "$@"
