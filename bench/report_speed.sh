#!/usr/bin/env bash
# How fast `blip report` is over a month of data, and how big that month is on
# disk. Writes 20 probes x 4 samples/s x 30 days (207 million samples, about
# 4,000 outages in 1,400 incidents) through blip's own SampleRecorder and
# Store, then times the report over 30 days and over 24 hours.
#   bench/report_speed.sh [DAYS] [PROBES]      (defaults: 30 20)
#   BENCH_HISTORY=FILE reuses a history written before (writing takes 5-20 min on 2 cores);
#   BENCH_BLIP=BLIP (with BENCH_HISTORY) times that blip binary instead of building one;
#   BENCH_ALSO=BLIP times that other blip binary too (an older build), each run of it right
#   after one of this build's, and prints both medians and CPU times.
# Needs ~2 GB in $TMPDIR. Takes a few minutes; writing dominates.
set -euo pipefail
cd "$(dirname "$0")/.."
days=${1:-30} probes=${2:-20}
build=build-bench-report
work=$(mktemp -d "${TMPDIR:-/tmp}/blip-report-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

blip=$build/blip
if [ -n "${BENCH_BLIP:-}" ] && [ -n "${BENCH_HISTORY:-}" ]; then
  blip=$BENCH_BLIP  # a blip built before (BENCH_BLIP=build/blip): no build here
else
  scripts/install-deps
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLIP_BUILD_TESTS=OFF -DBLIP_BUILD_BENCH=ON >/dev/null
  cmake --build "$build" --target blip generate_history >/dev/null
fi

if [ -n "${BENCH_HISTORY:-}" ]; then
  db=$BENCH_HISTORY
  echo "history: $db"
else
  db="$work/history.db"
  echo "generating $probes probes x 4 Hz x $days days into $db"
  /usr/bin/time -f "generate: %e s wall, %M KiB peak RSS" "$build/bench/generate_history" --db "$db" --probes "$probes" --days "$days"
fi
bytes=$(stat -c %s "$db")
samples=$(sqlite3 "$db" "select sum(count) from sample_blocks")
echo "database: $bytes bytes, $samples samples, $(awk -v b="$bytes" -v s="$samples" 'BEGIN{printf "%.2f", b/s}') bytes/sample, $(awk -v b="$bytes" -v p="$probes" -v d="$days" 'BEGIN{printf "%.2f", b/p/d/1e6}') MB per probe-day"
echo "outages: $(sqlite3 "$db" "select count(*) from outages where kind='outage'"), incidents: $(sqlite3 "$db" "select count(*) from incidents")"

# Each report once to warm the page cache, then timed runs (five, or nine beside BENCH_ALSO,
# alternating); the median counts. Wall time and the process's own CPU time (user + system, from
# /usr/bin/time), since on a shared machine the wall time is mostly waiting for a core.
binaries=("$blip")
[ -n "${BENCH_ALSO:-}" ] && binaries+=("$BENCH_ALSO")
runs=5
[ -n "${BENCH_ALSO:-}" ] && runs=9
median() { sort -n | sed -n "$(( (runs + 1) / 2 ))p"; }
for since in ${days}d 24h; do
  for binary in "${binaries[@]}"; do "$binary" report --db "$db" --since "$since" >/dev/null; done
  declare -A wall=() cpu=()
  for _ in $(seq "$runs"); do
    for binary in "${binaries[@]}"; do
      start=$(date +%s%N)
      if command -v perf >/dev/null; then  # task-clock: to the microsecond
        perf stat -x, -e task-clock -o "$work/cpu" "$binary" report --db "$db" --since "$since" --format json >/dev/null
        wall[$binary]+="$(( ($(date +%s%N) - start) / 1000000 )) "
        cpu[$binary]+="$(awk -F, '/task-clock/ {printf "%.1f", $1}' "$work/cpu") "
      else  # to the centisecond
        /usr/bin/time -f "%U %S" -o "$work/cpu" "$binary" report --db "$db" --since "$since" --format json >/dev/null
        wall[$binary]+="$(( ($(date +%s%N) - start) / 1000000 )) "
        cpu[$binary]+="$(awk '{printf "%d", ($1 + $2) * 1000}' "$work/cpu") "
      fi
    done
  done
  for binary in "${binaries[@]}"; do
    echo "report --since $since ($binary): wall ms = $(tr ' ' '\n' <<<"${wall[$binary]}" | grep . | sort -n | tr '\n' ' ');" \
      "median $(tr ' ' '\n' <<<"${wall[$binary]}" | grep . | median) ms; CPU ms median $(tr ' ' '\n' <<<"${cpu[$binary]}" | grep . | median)"
  done
  unset wall cpu
done
/usr/bin/time -f "report --since ${days}d (table): %e s wall, %M KiB peak RSS" "$blip" report --db "$db" --since "${days}d" >"$work/report.txt"
sed -n '/^Pattern/,$p' "$work/report.txt"
