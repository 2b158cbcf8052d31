#!/usr/bin/env bash
# `blip report --prometheus` over a fleet's 30 days (issue 20's scale goal: 10 vantages ×
# 100 probes answer in under 2 s), and how its time grows with vantages and probes.
#
# The history holds only what the fleet report reads: blip_outage, blip_hour_samples,
# blip_minute_samples and blip_blind (raw samples for 30 days × 1,000 series do not fit
# here, and the report never needs them), written as blip's own OpenMetrics by bench/generate_fleet_openmetrics
# (one file per 18 h block), loaded with `promtool tsdb create-blocks-from openmetrics
# --max-block-duration=24h` (timed), and served by one Prometheus per probe count.
# Vantages are narrowed with --vantages on the full set; probe counts are sets of their own.
#
#   bench/fleet_report.sh                 # 10 × 100 × 30 days, plus 10 × 10 and 10 × 30
#   DAYS=7 bench/fleet_report.sh          # a shorter history
#   BLIP_BUILD=build-release bench/fleet_report.sh   # an existing build directory
#   OLD_BLIP=/path/to/blip bench/fleet_report.sh     # also time another blip (1 run after a
#                                                    # warm-up), side by side; same JSON?
set -euo pipefail
source "$(dirname "$0")/common.sh"
bench_begin fleet-report

build="${BLIP_BUILD:-build-bench}"
[[ "$build" = /* ]] || build="$root/$build"
days="${DAYS:-30}"
vantages="${VANTAGES:-10}"
probe_sets="${PROBE_SETS:-100 30 10}"
runs="${RUNS:-5}"
port0="${PORT:-19390}"

echo "== building blip and generate_fleet_openmetrics (Release) in $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLIP_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target blip generate_fleet_openmetrics -- -j2 >/dev/null
blip="$build/blip"
echo "== blip $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src include 2>/dev/null || echo ' + uncommitted changes')"
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $(prometheus --version 2>&1 | head -1)"

ms_now() { date +%s%3N; }

declare -A url
port=$port0
for probes in $probe_sets; do
  set_dir="$work/set-$probes"
  mkdir -p "$set_dir"
  t0=$(ms_now)
  read -r begin end series points < <("$build/bench/generate_fleet_openmetrics" --days "$days" \
    --vantages "$vantages" --probes "$probes" --out "$set_dir/om")
  t1=$(ms_now)
  bytes=$(du -sb "$set_dir/om" | cut -f1)
  for file in "$set_dir"/om/part-*.om; do
    promtool tsdb create-blocks-from openmetrics --max-block-duration=24h -q "$file" "$set_dir/tsdb" >/dev/null
    rm -f "$file"
  done
  t2=$(ms_now)
  echo "== $vantages vantages × $probes probes × $days days: $series series, $points points ($((bytes / 1000000)) MB of OpenMetrics): generated in $(((t1 - t0) / 1000)) s, promtool $(((t2 - t1) / 1000)) s"
  printf 'global: {}\n' >"$set_dir/prometheus.yml"
  # 24h blocks stay as loaded: no compaction while the report is timed.
  prometheus --config.file="$set_dir/prometheus.yml" --storage.tsdb.path="$set_dir/tsdb" \
    --storage.tsdb.retention.time=1y --storage.tsdb.max-block-duration=24h \
    --web.listen-address="127.0.0.1:$port" >"$set_dir/prometheus.log" 2>&1 &
  echo $! >>"$work/pids"
  url[$probes]="http://127.0.0.1:$port"
  port=$((port + 1))
done
for probes in $probe_sets; do
  for _ in $(seq 1 120); do
    curl -fs "${url[$probes]}/-/ready" >/dev/null 2>&1 && break
    sleep 0.5
  done
done
from=$(date -u -d "@$((begin / 1000))" +%Y-%m-%dT%H:%M:%SZ)
to=$(date -u -d "@$((end / 1000))" +%Y-%m-%dT%H:%M:%SZ)

# Median wall time of $runs reports after one warm-up; the JSON's outage counts.
timed() {
  local bin=$1 && shift
  "$bin" report "$@" --from "$from" --to "$to" --format json >"$work/last.json"
  local times=()
  for _ in $(seq 1 "$runs"); do
    local a b
    a=$(ms_now)
    "$bin" report "$@" --from "$from" --to "$to" --format json >/dev/null
    b=$(ms_now)
    times+=($((b - a)))
  done
  local median
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
  local counts
  counts=$(python3 -c 'import json,sys; o=json.load(open(sys.argv[1]))["outages"]; q=sum(1 for x in o if x.get("quorum")); print(q, len(o)-q)' "$work/last.json" 2>/dev/null || echo "? ?")
  echo "$median ms (runs: ${times[*]}) | quorum outages, local faults: $counts | json $(sha256sum <"$work/last.json" | cut -c1-12)"
}
vantage_list() { local n=$1 out="" && for ((v = 0; v < n; v++)); do out+="${out:+,}$(printf 'v%02d' "$v")"; done && echo "$out"; }

echo "== blip report --prometheus URL --from $from --to $to --format json: median of $runs after a warm-up (ms), the runs"
full=${probe_sets%% *}
for n in 2 5 "$vantages"; do
  ((n <= vantages)) || continue
  echo "$n vantages × $full probes: $(timed "$blip" --prometheus "${url[$full]}" --vantages "$(vantage_list "$n")")"
  if [[ -n "${OLD_BLIP:-}" ]]; then
    echo "  OLD_BLIP, 1 run: $(runs=1 timed "$OLD_BLIP" --prometheus "${url[$full]}" --vantages "$(vantage_list "$n")")"
  fi
done
for probes in $probe_sets; do
  echo "$vantages vantages × $probes probes: $(timed "$blip" --prometheus "${url[$probes]}")"
done
echo "$vantages vantages × 1 probe (--probe p000): $(timed "$blip" --prometheus "${url[$full]}" --probe p000)"
echo "== load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
