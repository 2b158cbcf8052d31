#!/usr/bin/env python3
"""HTTP probes: blip vs Prometheus blackbox_exporter, side by side.

Run through bench/http_vs_blackbox.sh, which installs the exporter, builds
blip (Release) and hands this script the binaries and a scratch directory.
Python 3 standard library only.

Everything talks to 127.0.0.1 only. Every loop is bounded in count and time:
each phase sends at most rate x (warm-up + duration) requests, and the whole
run is a fixed list of phases plus a capped search for blip's maximum rate.

What is measured, per phase (one tool, one rate):
  * blip: a fresh `blip run` with N http probes whose intervals add up to the
    rate. After a warm-up, the process's CPU time is read at the start and the
    end of a fixed window; samples whose send time falls in the window are
    read back from its SQLite file (sample blocks decoded here), split into up
    and down. Schedule lag p50/p99 come from its stop line (whole run).
    Peak RSS is VmHWM just before SIGTERM.
  * blackbox_exporter: a fresh exporter process, driven through /probe by an
    open-loop asyncio driver (request i is due at t0 + i/rate; keep-alive
    connections from the driver to the exporter, as Prometheus uses). Only the
    exporter's CPU and VmHWM are measured. A probe counts when the response
    says probe_success 1. "Lag" for it is the driver's lateness: when a
    request was actually sent minus when it was due.
  * nginx's stub_status is read around each phase, so the report can show
    that both tools open one TCP connection per probe.
CPU time: the sum of /proc/PID/task/*/schedstat (ns); if /proc/PID/stat
(utime+stime, clock ticks, includes exited threads) is larger by more than a
few ticks, that is used instead.
"""
import argparse
import json
import os
import statistics
import subprocess
import time
import urllib.request

from common import (UP, DEGRADED, DOWN, Window, cpu_ns, exit_on_signals, free_port, kill_children, log_row,
                    open_log, read_samples, run_exporter, say, spawn, stop, thread_count, vm_hwm_kib,
                    wait_port, write_blackbox_config)

# --------------------------------------------------------------------------
# nginx

NGINX_PID = None  # set in main


def nginx_window(pid):
    """A measuring window of `pid`, with nginx as the server."""
    return Window(pid, lambda: cpu_ns(NGINX_PID), "nginx_cores")


def nginx_status(port):
    """(accepted connections, requests) from stub_status; the read itself is one of each."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/nginx_status", timeout=5) as r:
        lines = r.read().decode().splitlines()
    accepts, _handled, requests = (int(x) for x in lines[2].split())
    return accepts, requests


def tls_server(tls):
    if not tls:
        return ""
    return f"""  server {{
    listen 127.0.0.1:{tls['port']} ssl backlog=4096;
    ssl_certificate {tls['cert']};
    ssl_certificate_key {tls['key']};
    location = /health {{ default_type text/plain; return 200 "OK"; }}
  }}
"""


def target_url(args, nginx_port):
    if args.https:
        return f"https://127.0.0.1:{args.tls['port']}/health"
    return f"http://127.0.0.1:{nginx_port}/health"


def make_certificates(work):
    """A private CA and a certificate for 127.0.0.1 signed by it (openssl CLI); returns their paths."""
    d = os.path.join(work, "tls")
    os.makedirs(d, exist_ok=True)
    ca, ca_key, cert, key = (os.path.join(d, n) for n in ("ca.pem", "ca.key", "server.pem", "server.key"))
    run = lambda *cmd: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "30",
        "-subj", "/CN=bench private CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert + ".csr", "-subj", "/CN=127.0.0.1")
    with open(cert + ".ext", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", cert + ".csr", "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
        "-days", "30", "-extfile", cert + ".ext")
    return {"ca": ca, "cert": cert, "key": key}


def start_nginx(work, port, tls=None):
    """`tls` (make_certificates' paths, with "port"): also an HTTPS server for /health there."""
    root = os.path.join(work, "nginx")
    os.makedirs(os.path.join(root, "logs"), exist_ok=True)
    conf = os.path.join(root, "nginx.conf")
    temp = {k: os.path.join(root, k) for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    with open(conf, "w") as f:
        f.write(f"""# written by bench/http_vs_blackbox.py
daemon off;
master_process off;          # one process: worker_processes does not apply
worker_processes 1;
worker_rlimit_nofile 16384;
pid {root}/nginx.pid;
error_log {root}/logs/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {temp['client_body']};
  proxy_temp_path {temp['proxy']};
  fastcgi_temp_path {temp['fastcgi']};
  uwsgi_temp_path {temp['uwsgi']};
  scgi_temp_path {temp['scgi']};
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location = /health {{ default_type text/plain; return 200 "OK"; }}
    location = /nginx_status {{ stub_status; }}
    location / {{ return 404; }}
  }}
{tls_server(tls)}}}
""")
    proc = spawn(["nginx", "-e", f"{root}/logs/error.log", "-p", root + "/", "-c", conf], work, "nginx")
    wait_port(port, proc)
    return proc


# --------------------------------------------------------------------------
# blip

def window_counts(db_path, t0_ms, t1_ms):
    """Counts (all, up-or-degraded, down) samples with t0 <= sent_ms < t1, and the stored total
    (a blind sample counts in all only)."""
    per_probe, total = read_samples(db_path)
    statuses = [status for samples in per_probe.values() for sent, status in samples if t0_ms <= sent < t1_ms]
    return len(statuses), sum(s in (UP, DEGRADED) for s in statuses), statuses.count(DOWN), total


def blip_probe_layout(rate):
    """(probes, interval_ms) whose intervals add up to `rate` probes/s."""
    if rate <= 100:
        return max(1, rate // 10), 100
    return max(1, round(rate / 20)), 50


def run_blip(args, work, nginx_port, rate, duration, warmup, tag):
    n, interval_ms = blip_probe_layout(rate)
    phase = os.path.join(work, f"blip-{tag}")
    os.makedirs(os.path.join(phase, "probes.d"), exist_ok=True)
    with open(os.path.join(phase, "probes.d", "bench.toml"), "w") as f:
        for i in range(n):
            ca = f'ca_file = "{args.tls["ca"]}"\n' if args.https else ""
            f.write(f'[[probe]]\nname = "p{i:04d}"\ntype = "http"\n'
                    f'url = "{target_url(args, nginx_port)}"\n{ca}'
                    f'interval = "{interval_ms}ms"\ntimeout = "{args.timeout_ms}ms"\n\n')
    db = os.path.join(phase, "blip.db")
    log_path = os.path.join(work, f"blip-{tag}.log")
    ng0 = nginx_status(nginx_port)
    proc = spawn([args.blip, "run", "-c", os.path.join(phase, "probes.d"), "--db", db], work, f"blip-{tag}")
    time.sleep(warmup)
    if proc.poll() is not None:
        raise RuntimeError(f"blip exited early ({proc.returncode}); see {log_path}")
    t0_ms, window = time.time() * 1000, nginx_window(proc.pid)
    time.sleep(duration)
    t1_ms = time.time() * 1000
    load = window.close((t1_ms - t0_ms) / 1000)
    hwm = vm_hwm_kib(proc.pid)
    threads = thread_count(proc.pid)
    rc = stop(proc)
    ng1 = nginx_status(nginx_port)
    stop_line = ""
    with open(log_path, errors="replace") as f:
        for line in f:
            if "run: stopped" in line:
                stop_line = line.strip()
    fields = dict(kv.split("=", 1) for kv in stop_line.split() if "=" in kv)
    n_all, n_up, n_down, total = window_counts(db, t0_ms, t1_ms)
    window_s = (t1_ms - t0_ms) / 1000
    return {
        "tool": "blip", "tag": tag, "target": rate, "probes": n, "interval_ms": interval_ms,
        "window_s": round(window_s, 3), "sent": n_all, "ok": n_up, "failed": n_down,
        "stored_total": total, "achieved": n_up / window_s,
        "cpu_ms": load["cpu_ns"] / 1e6, "cpu_ms_per_1000": load["cpu_ns"] / 1e6 / max(1, n_all) * 1000,
        "lag_p50_us": int(fields.get("schedule_lag_p50_us", -1)),
        "lag_p99_us": int(fields.get("schedule_lag_p99_us", -1)),
        "max_loop_lag_us": int(fields.get("max_loop_lag_us", -1)),
        "rss_mib": hwm / 1024, "threads": threads, "exit": rc,
        "nginx_conns": ng1[0] - ng0[0] - 1, "nginx_requests": ng1[1] - ng0[1] - 1, **load,
    }


# --------------------------------------------------------------------------
# blackbox_exporter

def run_blackbox(args, work, nginx_port, rate, duration, warmup, tag):
    config = os.path.join(work, "blackbox.yml")
    tls = f"      tls_config:\n        ca_file: {args.tls['ca']}\n" if args.https else ""
    write_blackbox_config(config, "http_2xx", "http", args.timeout_ms,
                          "# The http prober builds a new client with keep-alives disabled for every\n"
                          "# probe, so each probe opens a fresh TCP connection, as blip does by default.\n", tls)
    ng0 = nginx_status(nginx_port)
    row = run_exporter(args, work, tag, rate, duration, warmup, config, target_url(args, nginx_port),
                       "http_2xx", nginx_window)
    ng1 = nginx_status(nginx_port)
    row["cpu_ms"] = row["cpu_ns"] / 1e6
    row["nginx_conns"], row["nginx_requests"] = ng1[0] - ng0[0] - 1, ng1[1] - ng0[1] - 1
    return row


# --------------------------------------------------------------------------

def sustains(row, args):
    return row["achieved"] >= 0.95 * row["target"] and 0 <= row["lag_p99_us"] <= args.max_p99_ms * 1000


def find_max(args, work, nginx_port):
    """Doubling from 1000/s while blip sustains the rate, then bisection; steps of 20/s (one probe at 50ms)."""
    say(f"== max search: blip, {args.search_duration}s per step, pass = achieved >= 95% of target "
        f"and schedule lag p99 <= {args.max_p99_ms} ms, cap {args.max_cap}/s")
    tried = {}

    def attempt(rate):
        row = run_blip(args, work, nginx_port, rate, args.search_duration, args.warmup, f"search-{rate}")
        ok = sustains(row, args)
        tried[rate] = ok
        say(f"   search rate={rate}/s probes={row['probes']} achieved={row['achieved']:.0f}/s "
            f"p99_lag={row['lag_p99_us']}us cpu/1000={row['cpu_ms_per_1000']:.1f}ms "
            f"other load={row['other_cores']:.2f} cores -> {'pass' if ok else 'FAIL'}")
        log_row(row)
        return ok

    good, bad = None, None
    rate = 1000
    while rate <= args.max_cap:
        if attempt(rate):
            good = rate
            rate *= 2
        else:
            bad = rate
            break
    if good is None:
        good, bad = 0, 1000
    if bad is not None:
        for _ in range(args.bisect_steps):
            mid = (good + bad) // 2 // 20 * 20
            if mid <= good or mid >= bad:
                break
            if attempt(mid):
                good = mid
            else:
                bad = mid
    if good == 0:
        raise RuntimeError("blip did not sustain even 1000 probes/s; nothing to call max")
    say(f"   max sustained: {good}/s" + (f" (first failure at {bad}/s)" if bad else f" (cap reached)"))
    return good


def fmt_lag(row):
    if row["tool"] == "blip":
        return f"{row['lag_p50_us'] / 1000:.2f} / {row['lag_p99_us'] / 1000:.2f}"
    return f"({row['lag_p50_us'] / 1000:.2f} / {row['lag_p99_us'] / 1000:.2f})"


def median_row(rows):
    keys = ["achieved", "cpu_ms_per_1000", "lag_p50_us", "lag_p99_us", "rss_mib", "ok", "failed",
            "nginx_conns", "nginx_requests", "sent"]
    out = dict(rows[0])
    for k in keys:
        out[k] = statistics.median(r[k] for r in rows)
    return out


def main():
    global NGINX_PID
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--blip", required=True)
    p.add_argument("--blackbox", default="prometheus-blackbox-exporter")
    p.add_argument("--work", required=True, help="scratch directory (logs, databases, configs)")
    p.add_argument("--duration", type=float, default=15.0, help="measured window per phase, seconds")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds before the window opens")
    p.add_argument("--reps", type=int, default=3, help="repetitions; the table shows medians")
    p.add_argument("--rates", default="100,1000,max", help="comma list; 'max' = blip's sustained maximum")
    p.add_argument("--timeout-ms", type=int, default=2000, help="probe timeout for both tools")
    p.add_argument("--search-duration", type=float, default=8.0)
    p.add_argument("--max-p99-ms", type=float, default=20.0)
    p.add_argument("--max-cap", type=int, default=16000)
    p.add_argument("--bisect-steps", type=int, default=2)
    p.add_argument("--json", help="also write all raw rows here")
    p.add_argument("--https", action="store_true",
                   help="probe https:// (a private CA's certificate, ca_file for both tools; a fresh TLS handshake "
                        "per probe)")
    args = p.parse_args()
    open_log(args.work)
    exit_on_signals()
    began = time.monotonic()
    try:
        nginx_port = free_port()
        args.tls = None
        if args.https:
            args.tls = make_certificates(args.work)
            args.tls["port"] = free_port()
        nginx = start_nginx(args.work, nginx_port, args.tls)
        NGINX_PID = nginx.pid
        say(f"nginx (one process, master_process off) on 127.0.0.1:{nginx_port}; load average at start: "
            + open("/proc/loadavg").read().split()[0:3].__str__())
        rates, labels = [], {}
        for r in args.rates.split(","):
            rate = find_max(args, args.work, nginx_port) if r == "max" else int(r)
            rates.append(rate)
            labels[rate] = f"{rate} (max)" if r == "max" else f"{rate}"
        rows = []
        say(f"== {args.reps} repetitions x rates {rates}, {args.duration}s window after {args.warmup}s warm-up; "
            "tools alternate which goes first")
        for rep in range(args.reps):
            for i, rate in enumerate(rates):
                order = ["blip", "blackbox"] if (rep + i) % 2 == 0 else ["blackbox", "blip"]
                for tool in order:
                    run = run_blip if tool == "blip" else run_blackbox
                    row = run(args, args.work, nginx_port, rate, args.duration, args.warmup, f"r{rep}-{rate}")
                    row["rep"] = rep
                    rows.append(row)
                    log_row(row)
                    say(f"   rep {rep + 1} rate {rate:>5}/s {tool:<8} achieved={row['achieved']:8.1f}/s "
                        f"ok={row['ok']} failed={row['failed']} cpu/1000={row['cpu_ms_per_1000']:7.1f}ms "
                        f"lag p50/p99={fmt_lag(row)}ms rss={row['rss_mib']:.1f}MiB "
                        f"nginx conns/requests={row['nginx_conns']}/{row['nginx_requests']} "
                        f"other load={row['other_cores']:.2f} cores")
        stop(nginx)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1)

        # ---- table: medians over repetitions; ratio = median of the per-repetition ratios
        say("")
        say(f"Medians of {args.reps} repetitions, {args.duration:g} s measured window each "
            f"(wall time of the whole run: {time.monotonic() - began:.0f} s).")
        say("")
        say("| target rate | tool | achieved probes/s | CPU ms per 1,000 probes | schedule lag p50 / p99 ms "
            "| peak RSS MiB | held the rate | blip CPU/probe ÷ blackbox CPU/probe |")
        say("|---:|---|---:|---:|---:|---:|---:|---:|")
        for rate in rates:
            label = labels[rate]
            b = [r for r in rows if r["tool"] == "blip" and r["target"] == rate]
            x = [r for r in rows if r["tool"] == "blackbox" and r["target"] == rate]
            ratios = [rb["cpu_ms_per_1000"] / rx["cpu_ms_per_1000"] for rb, rx in zip(
                sorted(b, key=lambda r: r["rep"]), sorted(x, key=lambda r: r["rep"]))]
            ratio = statistics.median(ratios)
            mb, mx = median_row(b), median_row(x)
            held_b = f"{sum(sustains(r, args) for r in b)}/{len(b)}"
            held_x = f"{sum(sustains(r, args) for r in x)}/{len(x)}"
            say(f"| {label} | blip | {mb['achieved']:.0f} | {mb['cpu_ms_per_1000']:.0f} | {fmt_lag(mb)} | "
                f"{mb['rss_mib']:.1f} | {held_b} | **{ratio:.2f}** (reps: {', '.join(f'{r:.2f}' for r in ratios)}) |")
            say(f"| {label} | blackbox_exporter | {mx['achieved']:.0f} | {mx['cpu_ms_per_1000']:.0f} | "
                f"{fmt_lag(mx)} | {mx['rss_mib']:.1f} | {held_x} | |")
        say("")
        say("Each cell is the median over the repetitions; the ratio is the median of the per-repetition ratios.")
        say("Lag in parentheses (blackbox_exporter) is the driver's lateness: request sent minus request due.")
        say(f"'held the rate': repetitions with achieved >= 95% of target and p99 lag <= {args.max_p99_ms:g} ms.")
        say("")
        say("Per repetition (cores = CPU seconds per second over the window; 'other' = the machine's busy time "
            "minus the tool, nginx and this script's driver):")
        say("")
        say("| rep | rate | tool | achieved/s | CPU ms/1000 | lag p50 / p99 ms | RSS MiB "
            "| nginx cores | driver cores | other cores | steal cores |")
        say("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            say(f"| {r['rep'] + 1} | {r['target']} | {r['tool']} | {r['achieved']:.0f} | {r['cpu_ms_per_1000']:.0f} "
                f"| {fmt_lag(r)} | {r['rss_mib']:.1f} | {r['nginx_cores']:.2f} | {r['driver_cores']:.2f} "
                f"| {r['other_cores']:.2f} | {r['steal_cores']:.2f} |")
        say("")
        bad = [r for r in rows if r["failed"] or r.get("errors")]
        if bad:
            say(f"Phases with failed probes: {[(r['tool'], r['target'], r['rep'], r['failed'], r.get('errors')) for r in bad]}")
        say("nginx connections per request, median by tool: " + ", ".join(
            f"{t} {statistics.median(r['nginx_conns'] / max(1, r['nginx_requests']) for r in rows if r['tool'] == t):.3f}"
            for t in ("blip", "blackbox")))
    finally:
        kill_children()


if __name__ == "__main__":
    main()
