#!/usr/bin/env bash
# How fast `blip report` is over a month of data, and how big that month is on
# disk. Writes 20 probes x 4 samples/s x 30 days (207 million samples, about
# 4,000 outages in 1,400 incidents) through blip's own SampleRecorder and
# Store, then times the report over 30 days and over 24 hours.
#   bench/report_speed.sh [DAYS] [PROBES]      (defaults: 30 20)
# Needs ~2 GB in $TMPDIR. Takes a few minutes; writing dominates.
set -euo pipefail
cd "$(dirname "$0")/.."
days=${1:-30} probes=${2:-20}
build=build-bench-report
work=$(mktemp -d "${TMPDIR:-/tmp}/blip-report-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

scripts/install-deps
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLIP_BUILD_TESTS=OFF -DBLIP_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target blip generate_history >/dev/null

db="$work/history.db"
echo "generating $probes probes x 4 Hz x $days days into $db"
/usr/bin/time -f "generate: %e s wall, %M KiB peak RSS" "$build/bench/generate_history" --db "$db" --probes "$probes" --days "$days"
bytes=$(stat -c %s "$db")
samples=$(sqlite3 "$db" "select sum(count) from sample_blocks")
echo "database: $bytes bytes, $samples samples, $(awk -v b="$bytes" -v s="$samples" 'BEGIN{printf "%.2f", b/s}') bytes/sample, $(awk -v b="$bytes" -v p="$probes" -v d="$days" 'BEGIN{printf "%.2f", b/p/d/1e6}') MB per probe-day"
echo "outages: $(sqlite3 "$db" "select count(*) from outages where kind='outage'"), incidents: $(sqlite3 "$db" "select count(*) from incidents")"

# Each report once to warm the page cache, then five timed runs; the median counts.
for since in ${days}d 24h; do
  "$build/blip" report --db "$db" --since "$since" >/dev/null
  times=()
  for _ in 1 2 3 4 5; do
    start=$(date +%s%N)
    "$build/blip" report --db "$db" --since "$since" --format json >/dev/null
    times+=($(( ($(date +%s%N) - start) / 1000000 )))
  done
  sorted=$(printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' ')
  echo "report --since $since: runs ms = $sorted; median $(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p) ms"
done
/usr/bin/time -f "report --since ${days}d (table): %e s wall, %M KiB peak RSS" "$build/blip" report --db "$db" --since "${days}d" >"$work/report.txt"
sed -n '/^Pattern/,$p' "$work/report.txt"
