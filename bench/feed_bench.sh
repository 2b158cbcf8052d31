#!/usr/bin/env bash
# The feed under load: requests per second and p99 latency of summary.json
# and /metrics from a blip with 100 probes and 30 days of history, and the
# probes' schedule lag with and without that load, side by side in one run.
#   bench/feed_bench.sh [REPS] [DAYS]        (defaults: 2 30)
#   BENCH_HISTORY=FILE reuses a history written before (it takes ~12 min on 2 cores); one of
#   an older schema is migrated by each run's first start (schema 12 adds hour_totals: ~8 s
#   for 4.3 million rollups), before /healthz answers, so not in cold_ms.
# Writes the history once (100 probes x 1 sample/s x DAYS through blip's own
# recorder; the feed reads rollups and outages, which do not depend on the
# rate), then per repetition runs blip three times on a copy of it: with no
# feed client ("idle"), with 100 summary.json and 100 /metrics requests a
# second ("paced", the test's load) and with wrk flat out on each for 10 s
# ("flat"; 1 thread, 4 connections), reversing the order every other
# repetition. Each run: 100 tcp probes at 250 ms against a private nginx.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-2} days=${2:-30}
build=build-bench-feed
work=$(mktemp -d "${TMPDIR:-/tmp}/blip-feed-bench.XXXXXX")
nginx_pid=""
cleanup() {
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
  pkill -f "$work/probes.d" 2>/dev/null || true
  [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

scripts/install-deps
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLIP_BUILD_TESTS=OFF -DBLIP_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target blip generate_history >/dev/null

if [ -n "${BENCH_HISTORY:-}" ]; then
  echo "history: $BENCH_HISTORY"
  cp "$BENCH_HISTORY" "$work/history.db"
else
  echo "history: 100 probes x 1 Hz x $days days"
  /usr/bin/time -f "generate: %e s wall" "$build/bench/generate_history" --db "$work/history.db" --probes 100 --rate 1 \
    --days "$days" | sed 's/^/  /'
fi
echo "  outages: $(sqlite3 "$work/history.db" "select count(*) from outages where kind='outage'"), incidents: $(sqlite3 "$work/history.db" "select count(*) from incidents"), rollup rows: $(sqlite3 "$work/history.db" "select count(*) from rollups")"

nginx_port=18490 feed_port=18491
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
nginx_pid=$!
# The history's probe names, now as tcp probes, so the feed shows 30 days for each.
for i in $(seq 0 99); do
  printf '[[probe]]\nname = "probe-%02d"\ntype = "tcp"\naddress = "127.0.0.1:%s"\ninterval = "250ms"\ntimeout = "1s"\ntags = ["group-%d"]\n\n' \
    "$i" "$nginx_port" $((i / 10))
done >"$work/probes.d/probes.toml"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# 100 summary.json and 100 /metrics requests a second for 10 s, each path on
# one keep-alive connection, every latency kept: prints "summary_p50 summary_p99 metrics_p50 metrics_p99" in ms.
paced_client() {
  python3 - "$feed_port" <<'PY'
import http.client, sys, threading, time
port = int(sys.argv[1])
def run(path, out):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    start = time.monotonic()
    for i in range(1000):
        due = start + i / 100
        time.sleep(max(0, due - time.monotonic()))
        began = time.monotonic()
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
        out.append(time.monotonic() - began)
results = {p: [] for p in ("/api/v2/summary.json", "/metrics")}
threads = [threading.Thread(target=run, args=(p, out)) for p, out in results.items()]
for t in threads: t.start()
for t in threads: t.join()
cells = []
for latencies in results.values():
    latencies.sort()
    cells += ["%.2f" % (latencies[len(latencies) // 2] * 1e3), "%.2f" % (latencies[int(len(latencies) * 0.99)] * 1e3)]
print(" ".join(cells))
PY
}

# One blip run of phase idle (no client), paced (paced_client) or flat (wrk flat out on
# summary.json, then on /metrics). Prints "lag_p50_us lag_p99_us blip_cpu_s cold_ms and the phase's own cells".
run_phase() {
  local phase=$1 db="$work/run.db" log="$work/run-$1.log"
  cp "$work/history.db" "$db"
  sync  # or the copy's write-back stalls blip's first checkpoint (the store still runs on the loop)
  "$build/blip" run -c "$work/probes.d" --db "$db" --listen "127.0.0.1:$feed_port" 2>"$log" &
  local pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$feed_port/healthz" >/dev/null && break; sleep 0.1; done
  local ticks0 cold="-" cells="- - - -"
  ticks0=$(cpu_ticks "$pid")
  case $phase in
    idle) sleep 24 ;;
    paced)
      cold=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$feed_port/api/v2/summary.json" | awk '{printf "%.0f", $1 * 1000}')
      sleep 3
      cells=$(paced_client)
      sleep 10 ;;
    flat)
      curl -s -o /dev/null -w 'summary.json: %{size_download} bytes\n' "http://127.0.0.1:$feed_port/api/v2/summary.json" >"$work/size.txt"
      sleep 3
      wrk -t1 -c4 -d10s --latency "http://127.0.0.1:$feed_port/api/v2/summary.json" >"$work/wrk-summary.txt"
      wrk -t1 -c4 -d10s --latency "http://127.0.0.1:$feed_port/metrics" >"$work/wrk-metrics.txt"
      cells=""
      for file in "$work/wrk-summary.txt" "$work/wrk-metrics.txt"; do
        cells+="$(awk '/Requests\/sec/ {rps = $2} $1 == "99%" {p99 = $2} END {printf "%.0f %s ", rps, p99}' "$file")"
      done ;;
  esac
  local cpu
  cpu=$(awk -v a="$ticks0" -v b="$(cpu_ticks "$pid")" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", (b - a) / hz}')
  kill -TERM "$pid"
  wait "$pid" || true
  echo "$(grep -o 'schedule_lag_p50_us=[0-9]*' "$log" | cut -d= -f2) $(grep -o 'schedule_lag_p99_us=[0-9]*' "$log" | cut -d= -f2) $cpu $cold $cells"
}

echo "columns: paced = summary p50/p99 ms, metrics p50/p99 ms at 100/s each; flat = summary req/s, p99, metrics req/s, p99 (wrk)"
printf '%-4s %-6s %11s %11s %10s %8s  %s\n' rep phase lag_p50_us lag_p99_us blip_cpu_s cold_ms cells
for rep in $(seq "$reps"); do
  order="idle paced flat"
  [ $((rep % 2)) -eq 0 ] && order="flat paced idle"
  for phase in $order; do
    read -r p50 p99 cpu cold cells < <(run_phase "$phase")
    printf '%-4s %-6s %11s %11s %10s %8s  %s\n' "$rep" "$phase" "$p50" "$p99" "$cpu" "$cold" "$cells"
  done
done
cat "$work/size.txt"
echo "cold_ms: the first summary.json after start (the hour cache filled from hour_totals: a row a probe-hour); lag: over each whole run"
