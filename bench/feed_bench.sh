#!/usr/bin/env bash
# The feed under load: requests per second and p99 latency of summary.json
# and /metrics from a blip with 100 probes and 30 days of history, the probes'
# schedule lag with and without that load, side by side in one run, and the
# first summary.json after a cold start. See docs/benchmarks.md.
#   bench/feed_bench.sh [--days D] [--reps N] [--phases idle,paced,flat] [--cold N [--also NAME=BLIP]...]
#     defaults: 30 days, 2 repetitions of the three phases, no cold starts;
#     e.g. `--reps 0 --cold 15` (cold starts only), `--reps 5 --phases paced`;
#     --also old=/path/to/blip: cold starts of another build, taking turns with this one.
#   BENCH_HISTORY=FILE reuses a history written before; if FILE does not exist, the
#   history is written there first (~12 min on 2 cores) and kept for the next run.
#   One of an older schema is migrated by the first start (schema 12 adds hour_totals:
#   ~8 s for 4.3 million rollups), before /healthz answers, so in no figure.
# Writes the history once (100 probes x 1 sample/s x D days through blip's own
# recorder; the feed reads rollups and outages, which do not depend on the rate),
# copies it once (cp --reflink=auto) to a working copy, and runs every blip of the
# run on that copy (bench/feed_bench.py says why no run needs a fresh one).
# Each run: 100 tcp probes at 250 ms against a private nginx.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bench_begin feed
build="$root/build-bench-feed"  # with the bench targets (generate_history), unlike bench_build's
days=30 driver_args=()
while (($#)); do
  case $1 in
    --days) days=$2; shift 2 ;;
    *) driver_args+=("$1"); shift ;;
  esac
done

need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v sqlite3 >/dev/null || need+=(sqlite3)
bench_install "${need[@]}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLIP_BUILD_TESTS=OFF -DBLIP_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target blip generate_history >/dev/null
echo "== blip: $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src include 2>/dev/null || echo ' + uncommitted changes in src/include'); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"

history=${BENCH_HISTORY:-$work/history.db}
if [[ -e $history ]]; then
  echo "history: $history"
else
  echo "history: 100 probes x 1 Hz x $days days into $history"
  /usr/bin/time -f "generate: %e s wall" "$build/bench/generate_history" --db "$history" --probes 100 --rate 1 \
    --days "$days" | sed 's/^/  /'
fi
echo "  outages: $(sqlite3 "$history" "select count(*) from outages where kind='outage'"), incidents: $(sqlite3 "$history" "select count(*) from incidents"), rollup rows: $(sqlite3 "$history" "select count(*) from rollups"), hour_totals rows: $(sqlite3 "$history" "select count(*) from hour_totals" 2>/dev/null || echo 'none (schema < 12)')"
/usr/bin/time -f "working copy: %e s wall" cp --reflink=auto "$history" "$work/run.db"
sync  # or the copy's write-back stalls the first run's writes

nginx_port=18490
mkdir -p "$work"/{nginx/logs,nginx/tmp,probes.d}
cat >"$work/nginx/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1;
pid $work/nginx/nginx.pid; error_log $work/nginx/logs/error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
  server { listen 127.0.0.1:$nginx_port; location = /health { return 200 "OK"; } } }
CONF
nginx -e "$work/nginx/logs/error.log" -c "$work/nginx/nginx.conf" -p "$work/nginx" &
echo $! >>"$work/pids"  # killed by bench_cleanup
disown  # so bash does not report that kill
# The history's probe names, now as tcp probes, so the feed shows D days for each.
for i in $(seq 0 99); do
  printf '[[probe]]\nname = "probe-%02d"\ntype = "tcp"\naddress = "127.0.0.1:%s"\ninterval = "250ms"\ntimeout = "1s"\ntags = ["group-%d"]\n\n' \
    "$i" "$nginx_port" $((i / 10))
done >"$work/probes.d/probes.toml"

bench_run feed_bench.py --db "$work/run.db" --probes "$work/probes.d" "${driver_args[@]}"
