#!/usr/bin/env bash
# Bytes per stored sample against what the samples hold (issue 22). Writes HOURS of
# PROBES probes at 4 Hz with bench/generate_history (a fixed end and seed, so a run
# repeats), then reports per sample:
#   (a) on disk: the file as written, where its pages go (dbstat), and the same data
#       after VACUUM in layout 2 (new) and with every block in layout 1 (old);
#   (b) payload: the blocks' bytes as stored, and in layout 1 and 2;
#   (c) the order-0 entropy of each column at the codec's units, each probe's own;
#   (d) zstd -19 of the same samples exported (`blip export --format csv`) as columns:
#       one file per field (sent_ms, status, latency, the four phases, error, detail);
# and the CPU time of decoding the last 24 h (or all HOURS) of blocks in each layout, side
# by side. Every figure is per sample, so a few hours stand for a month: the hourly
# incident and the daily random outage come at the same rate.
#   bench/sample_bytes.sh [HOURS] [PROBES]     (defaults: 24 20; a day is ~7 million samples
#                                              and ~600 MB of CSV in $TMPDIR; zstd -19 of its
#                                              ~290 MB of columns takes many minutes, over 11
#                                              on a busy 2-core VM: 3 hours take ~1.5 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
hours=${1:-24} probes=${2:-20}
build=build-bench-report
work=$(mktemp -d "${TMPDIR:-/tmp}/blip-sample-bytes.XXXXXX")
trap 'rm -rf "$work"' EXIT

scripts/install-deps
command -v zstd >/dev/null || { echo "needs the zstd command (apt-get install zstd)" >&2; exit 1; }
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLIP_BUILD_TESTS=OFF -DBLIP_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target blip generate_history sample_bytes >/dev/null
echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src include bench 2>/dev/null || echo ' + uncommitted changes'), $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"

end=2026-12-01T00:00:00Z
from=$(date -u -d "$end - $hours hours" +%FT%TZ)
db="$work/history.db"
"$build/bench/generate_history" --db "$db" --probes "$probes" --minutes $((hours * 60)) --end "$end" >/dev/null
samples=$(sqlite3 "$db" "select sum(count) from sample_blocks")
per() { awk -v b="$1" -v s="$samples" 'BEGIN{printf "%.3f", b/s}'; }
echo "$probes probes x 4 Hz x $hours hours: $samples samples"

echo "(a) on disk, bytes/sample"
echo "  as written (layout 2):       $(per "$(stat -c %s "$db")")"
# Where the pages go: each table and index of more than 0.005 bytes a sample.
sqlite3 "$db" "select name, sum(pgsize), sum(unused) from dbstat group by name order by 2 desc" |
  while IFS='|' read -r name size unused; do
    if awk -v b="$size" -v s="$samples" 'BEGIN{exit !(b/s >= 0.005)}'; then
      echo "    $(printf '%-30s' "$name") $(per "$size") (of which unused in pages $(per "$unused"))"
    fi
  done

echo "(b), (c) payload and entropy"
cp "$db" "$work/legacy.db"
"$build/bench/sample_bytes" --db "$db" --decode-hours $((hours < 24 ? hours : 24)) --legacy-copy "$work/legacy.db" | sed 's/^/  /'

sqlite3 "$db" "VACUUM INTO '$work/new-vacuumed.db'"
sqlite3 "$work/legacy.db" "VACUUM INTO '$work/old-vacuumed.db'"
echo "(a) after VACUUM: layout 1 (old) $(per "$(stat -c %s "$work/old-vacuumed.db")"), layout 2 (new) $(per "$(stat -c %s "$work/new-vacuumed.db")") bytes/sample"
rm -f "$work/legacy.db" "$work/old-vacuumed.db" "$work/new-vacuumed.db"

# (d) The export's fields as columns (probe, type and vantage are the same for a probe's
# rows; sent_at is sent_ms again), each column's values one a line, then zstd -19.
"$build/blip" export --db "$db" --from "$from" --to "$end" --format csv >"$work/export.csv"
mkdir "$work/columns"
awk -F, -v dir="$work/columns" 'NR > 1 { for (c = 2; c <= 13; c++) if (c < 3 || c > 5) print $c > (dir "/" c) }' "$work/export.csv"
rm "$work/export.csv"
cat "$work"/columns/{2,6,7,8,9,10,11,12,13} >"$work/columns.txt"
rm -r "$work/columns"
zstd -19 -T2 -q -c "$work/columns.txt" >"$work/columns.zst"
echo "(d) zstd -19 of the export as columns: $(per "$(stat -c %s "$work/columns.zst")") bytes/sample ($(per "$(stat -c %s "$work/columns.txt")") before)"
