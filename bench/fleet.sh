#!/usr/bin/env bash
# The fleet's costs (docs/benchmarks.md, "The fleet"):
#  1. shipping: CPU per 1,000 samples for blip's remote-write sender, side by side with
#     vmagent forwarding the same samples (received by remote-write, sent on by remote-write);
#  2. scale: 20 generated stores (20 vantages x 100 probes x 4 Hz, 10 minutes each: the
#     8,000 samples/s of 20 such blips) shipped at once into one VictoriaMetrics: samples lost,
#     sender CPU per 1,000 samples, how long 10 minutes of the fleet take to ship.
#   bench/fleet.sh [STORES] [PROBES] [MINUTES]     (defaults: 20 100 10)
#   SHIP_MAX_SAMPLES=N: raw samples a request at most in part 1 (the sender's default otherwise)
# Everything on loopback; takes a few minutes.
set -euo pipefail
source "$(dirname "$0")/common.sh"
bench_begin fleet
stores=${1:-20} probes=${2:-100} minutes=${3:-10}
ship_options=()
[ -n "${SHIP_MAX_SAMPLES:-}" ] && ship_options=(--max-samples "$SHIP_MAX_SAMPLES")
"$root/scripts/install-deps"
build="$root/build-bench-fleet"
echo "== building (Release) in $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLIP_BUILD_TESTS=OFF -DBLIP_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target generate_history ship_store >/dev/null
echo "== blip: $(git -C "$root" rev-parse --short HEAD); machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# utime + stime of a process, in seconds.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
wait_http() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }
start_vm() {  # port dir -> pid in $vm_pid
  victoria-metrics -httpListenAddr="127.0.0.1:$1" -storageDataPath="$2" -search.latencyOffset=1s \
    -dedup.minScrapeInterval=1ms -loggerLevel=ERROR >"$2.log" 2>&1 &
  vm_pid=$!
  echo "$vm_pid" >>"$work/pids"
  wait_http "http://127.0.0.1:$1/health"
}
count_in() {  # port selector -> blip_sample_up samples the engine holds, once 3 answers agree
  local answer last="" same=0
  for _ in $(seq 60); do
    answer=$(curl -sg "http://127.0.0.1:$1/api/v1/query?query=sum(count_over_time(blip_sample_up$2[2h]))" |
      python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')
    if [[ "$answer" == "$last" ]]; then
      same=$((same + 1))
      ((same >= 2)) && break
    else
      same=0
    fi
    last=$answer
    sleep 1
  done
  echo "$answer"
}

echo "== generating $stores stores: $probes probes x 4 Hz x $minutes min each"
for i in $(seq -f '%02g' 1 "$stores"); do
  "$build/bench/generate_history" --db "$work/v$i.db" --probes "$probes" --minutes "$minutes" \
    --vantage "v$i" --seed "$((10#$i))" >/dev/null
done

echo "== 1. shipping cost: blip's sender vs vmagent forwarding the same samples"
vm_port=$(free_port)
start_vm "$vm_port" "$work/vm-direct"
direct=$("$build/bench/ship_store" "${ship_options[@]}" --db "$work/v01.db" --url "http://127.0.0.1:$vm_port/api/v1/write" 2>/dev/null)
echo "blip sender -> VictoriaMetrics: $direct"
agent_port=$(free_port) relay_port=$(free_port)
start_vm "$relay_port" "$work/vm-relay"
vmagent -httpListenAddr="127.0.0.1:$agent_port" -remoteWrite.url="http://127.0.0.1:$relay_port/api/v1/write" \
  -remoteWrite.tmpDataPath="$work/vmagent" -loggerLevel=ERROR >"$work/vmagent.log" 2>&1 &
agent_pid=$!
echo "$agent_pid" >>"$work/pids"
wait_http "http://127.0.0.1:$agent_port/health"
sleep 2
agent_before=$(cpu_of "$agent_pid")
relayed=$("$build/bench/ship_store" "${ship_options[@]}" --db "$work/v02.db" --url "http://127.0.0.1:$agent_port/api/v1/write" 2>/dev/null)
samples=$(sed -E 's/.* samples=([0-9]+) .*/\1/' <<<"$relayed")
# vmagent sends on what it received within its flush interval (1 s): wait until the relay holds it all.
for _ in $(seq 60); do [[ "$(count_in "$relay_port" '{vantage="v02"}')" == "$samples" ]] && break; sleep 1; done
agent_cpu=$(awk -v a="$(cpu_of "$agent_pid")" -v b="$agent_before" 'BEGIN{print a - b}')
echo "blip sender -> vmagent: $relayed"
echo "vmagent forwarding those $samples samples: cpu_seconds=$agent_cpu cpu_ms_per_1000_samples=$(awk -v c="$agent_cpu" -v s="$samples" 'BEGIN{printf "%.3f", c * 1e6 / s}')"
echo "relay holds $(count_in "$relay_port" '{vantage="v02"}') of $samples"

echo "== 2. scale: $stores senders at once into one VictoriaMetrics"
scale_port=$(free_port)
start_vm "$scale_port" "$work/vm-scale"
vm_before=$(cpu_of "$vm_pid")
start=$(date +%s.%N)
pids=()
for i in $(seq -f '%02g' 1 "$stores"); do
  "$build/bench/ship_store" --db "$work/v$i.db" --url "http://127.0.0.1:$scale_port/api/v1/write" \
    >"$work/ship-$i.out" 2>/dev/null &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
seconds=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e - s}')
vm_cpu=$(awk -v a="$(cpu_of "$vm_pid")" -v b="$vm_before" 'BEGIN{print a - b}')
total=0 cpu=0
for i in $(seq -f '%02g' 1 "$stores"); do
  total=$((total + $(sed -E 's/.* samples=([0-9]+) .*/\1/' "$work/ship-$i.out")))
  cpu=$(awk -v a="$cpu" -v b="$(sed -E 's/.*cpu_seconds=([0-9.]+).*/\1/' "$work/ship-$i.out")" 'BEGIN{print a + b}')
done
held=$(count_in "$scale_port" '')
echo "shipped $total samples ($stores x $probes probes x $minutes min) in $seconds s = $(awk -v t="$total" -v s="$seconds" 'BEGIN{printf "%.0f", t / s}') samples/s (the fleet makes $((stores * probes * 4))/s)"
echo "senders: cpu_seconds=$cpu cpu_ms_per_1000_samples=$(awk -v c="$cpu" -v t="$total" 'BEGIN{printf "%.3f", c * 1e6 / t}'); VictoriaMetrics: cpu_seconds=$vm_cpu"
echo "engine holds $held; lost $((total - held))"
