#!/usr/bin/env bash
# CPU per fresh HTTPS connection with and without curl's CA store cache, the
# way blip's HTTP probe sets it per easy handle. See docs/benchmarks.md.
#
#   bench/tls_ca_cache.sh [COUNT]     # default 2000 connections per mode
#
# Makes a private CA and a server certificate with openssl, serves them from a
# private nginx on 127.0.0.1, and verifies against (a) the system bundle plus
# that CA (~290 certificates, as costly as the system store) and (b) the CA alone.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bench_begin tls-ca-cache
count="${1:-2000}"

echo "== building tls_ca_cache in $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLIP_BUILD_TESTS=OFF -DBLIP_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target tls_ca_cache >/dev/null
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); $(curl --version | head -1 | cut -d' ' -f1-5)"

cd "$work"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -subj "/CN=bench private CA" -days 30 -addext basicConstraints=critical,CA:TRUE -out ca.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out server.key 2>/dev/null
openssl req -new -key server.key -subj "/CN=127.0.0.1" -out server.csr
printf 'subjectAltName=IP:127.0.0.1\n' >san.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile san.cnf -out server.pem 2>/dev/null
cat /etc/ssl/certs/ca-certificates.crt ca.pem >bundle.pem
echo "== bundle: $(grep -c 'BEGIN CERTIFICATE' bundle.pem) certificates; private CA: 1"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p logs tmp
cat >nginx.conf <<NGINX
daemon off; master_process off; worker_processes 1; pid $work/nginx.pid; error_log $work/logs/error.log;
events { worker_connections 512; }
http { access_log off; client_body_temp_path $work/tmp; proxy_temp_path $work/tmp; fastcgi_temp_path $work/tmp;
  uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
  server { listen 127.0.0.1:$port ssl; ssl_certificate $work/server.pem; ssl_certificate_key $work/server.key;
    location = /health { default_type text/plain; return 200 "OK"; } } }
NGINX
nginx -e "$work/logs/error.log" -c "$work/nginx.conf" -p "$work" &
echo $! >>"$work/pids"
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

url="https://127.0.0.1:$port/health"
for ca in bundle.pem ca.pem; do
  echo "== CAINFO=$ca"
  for mode in default uncached cached; do "$build/bench/tls_ca_cache" "$url" "$ca" "$ca" "$mode" "$count"; done
done
echo "== alternating bundle.pem and ca.pem on one multi handle (two probes with different CA files)"
"$build/bench/tls_ca_cache" "$url" bundle.pem ca.pem alternate "$count"
