#!/usr/bin/env bash
# The image: its size, how long from `podman run` until /healthz answers 200
# and until the image's HEALTHCHECK passes, and blip's memory after a while.
#   bench/container_bench.sh [MINUTES] [PROBES]     (defaults: 10 20)
# Builds the image with scripts/container, starts a private nginx, and runs
# the image --read-only --cap-drop=ALL --network host with PROBES http probes
# at 250 ms against it (half of them with a fresh connection each, half
# reusing one), three times for the start-up figures and once for MINUTES for
# the memory (VmRSS and VmHWM of blip, PID 1 of the container, every minute).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10} probes=${2:-20}
image=localhost/blip:bench
work=$(mktemp -d "${TMPDIR:-/tmp}/blip-container-bench.XXXXXX")
nginx_pid=""
cleanup() {
  scripts/container podman rm -f blip-bench >/dev/null 2>&1 || true
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

scripts/install-deps
started=$(date +%s)
scripts/container build "$image" >"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; exit 1; }
echo "build: $(($(date +%s) - started)) s (base image cached: $(grep -c 'debootstrap' "$work/build.log" || true) debootstrap lines)"
size=$(scripts/container podman image inspect --format '{{.Size}}' "$image")
echo "image: $size bytes ($(awk -v s="$size" 'BEGIN{printf "%.1f", s / 1e6}') MB), version $(scripts/container podman run --rm --no-healthcheck --network none "$image" --version)"

nginx_port=18492 feed_port=18493
mkdir -p "$work"/{nginx/logs,nginx/tmp,probes.d,data}
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
for i in $(seq "$probes"); do
  reuse=false
  [ $((i % 2)) -eq 0 ] && reuse=true
  printf '[[probe]]\nname = "web-%02d"\ntype = "http"\nurl = "http://127.0.0.1:%s/health"\ninterval = "250ms"\nreuse_connection = %s\n\n' \
    "$i" "$nginx_port" "$reuse"
done >"$work/probes.d/probes.toml"
chown 10001:10001 "$work/data"

start_container() {
  rm -f "$work"/data/blip.db*
  scripts/container podman run -d --name blip-bench --read-only --cap-drop=ALL --network host \
    -v "$work/data:/var/lib/blip" -v "$work/probes.d:/etc/blip/probes.d:ro" \
    -e "BLIP_LISTEN=127.0.0.1:$feed_port" "$image" run -c /etc/blip/probes.d --db /var/lib/blip/blip.db \
    >/dev/null 2>"$work/podman-run.log"  # podman says it has no systemd for healthcheck timers
}
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

for run in 1 2 3; do
  t0=$(date +%s%N)
  start_container
  until curl -sf "http://127.0.0.1:$feed_port/healthz" >/dev/null; do sleep 0.02; done
  feed_ms=$(ms_since "$t0")
  until scripts/container podman healthcheck run blip-bench >/dev/null 2>&1; do sleep 0.1; done
  check_ms=$(ms_since "$t0")
  t1=$(date +%s%N)
  scripts/container podman stop -t 10 blip-bench >/dev/null 2>&1
  stop_ms=$(ms_since "$t1")
  code=$(scripts/container podman inspect --format '{{.State.ExitCode}}' blip-bench)
  scripts/container podman rm blip-bench >/dev/null 2>&1
  echo "start-up $run: /healthz 200 after $feed_ms ms, HEALTHCHECK passes after $check_ms ms; podman stop took $stop_ms ms, exit $code"
done

start_container
pid=$(scripts/container podman inspect --format '{{.State.Pid}}' blip-bench)
for minute in $(seq "$minutes"); do
  sleep 60
  echo "minute $minute: $(grep -E 'VmRSS|VmHWM' "/proc/$pid/status" | tr -s ' \t' ' ' | tr '\n' ' ')samples=$(sqlite3 "file:$work/data/blip.db?mode=ro" 'select coalesce(sum(count),0) from sample_blocks' 2>/dev/null || echo '?')"
done
scripts/container podman stop -t 10 blip-bench >/dev/null 2>&1
echo "exit $(scripts/container podman inspect --format '{{.State.ExitCode}}' blip-bench); $(scripts/container podman logs blip-bench 2>&1 | grep -o 'run: stopped.*')"
