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

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bench_begin pg-redis
chmod 755 "$work"  # the postgres user must reach its data directory inside

need=()
command -v redis-server >/dev/null || need+=(redis-server)
[[ -x /usr/lib/postgresql/15/bin/postgres ]] || need+=(postgresql-15)
command -v psql >/dev/null || need+=(postgresql-client-15)
command -v prometheus-blackbox-exporter >/dev/null || need+=(prometheus-blackbox-exporter)
bench_install "${need[@]}"
bench_raise_open_files

bench_build
echo "== $(redis-server --version | cut -d' ' -f1-3); $(/usr/lib/postgresql/15/bin/postgres --version); $(prometheus-blackbox-exporter --version 2>&1 | head -1)"
echo "== libraries: $(dpkg-query -W -f='${Package} ${Version}; ' libhiredis0.14 libpq5 libuv1 2>/dev/null)"
bench_run pg_redis_bench.py "$@"
