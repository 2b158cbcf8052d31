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
import asyncio
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
LOG = None  # set in main: a file that gets everything printed plus raw rows


def say(*parts):
    text = " ".join(str(p) for p in parts)
    print(text, flush=True)
    if LOG:
        LOG.write(text + "\n")
        LOG.flush()


# --------------------------------------------------------------------------
# process bookkeeping: every child is recorded in WORK/pids so the shell
# wrapper's EXIT trap can kill it even if this script dies hard.

CHILDREN = []


def spawn(args, work, name, **kwargs):
    out = open(os.path.join(work, f"{name}.log"), "ab")
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kwargs)
    CHILDREN.append(proc)
    with open(os.path.join(work, "pids"), "a") as f:
        f.write(f"{proc.pid}\n")
    return proc


def stop(proc, timeout=15.0):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    if proc in CHILDREN:
        CHILDREN.remove(proc)
    return proc.returncode


def kill_children():
    for proc in list(CHILDREN):
        if proc.poll() is None:
            proc.kill()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
    CHILDREN.clear()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.args[0]} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


# --------------------------------------------------------------------------
# /proc readings

def cpu_ns(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # thread exited between listdir and open
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks_ns = (int(fields[11]) + int(fields[12])) * 1_000_000_000 // CLK_TCK
    if ticks_ns - total > 3 * 1_000_000_000 // CLK_TCK:
        return ticks_ns
    return total


def system_ns():
    """(busy, steal) CPU time of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    tick = 1_000_000_000 // CLK_TCK
    return (user + nice + system + irq + softirq) * tick, steal * tick


class Window:
    """CPU of the measured process, of nginx, of this script (the driver) and of the
    whole machine over one window, so that the rest ('other') shows how busy the
    machine was with things outside the benchmark."""

    def __init__(self, pid):
        self.pid = pid
        self.start = self._read()

    def _read(self):
        busy, steal = system_ns()
        return (cpu_ns(self.pid), cpu_ns(NGINX_PID), cpu_ns(os.getpid()), busy, steal)

    def close(self, seconds):
        end = self._read()
        tool, nginx, me, busy, steal = (e - s for e, s in zip(end, self.start))
        return {"cpu_ns": tool, "nginx_cores": nginx / 1e9 / seconds, "driver_cores": me / 1e9 / seconds,
                "other_cores": max(0.0, busy - tool - nginx - me) / 1e9 / seconds,
                "steal_cores": steal / 1e9 / seconds}


NGINX_PID = None


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def nginx_status(port):
    """(accepted connections, requests) from stub_status; the read itself is one of each."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/nginx_status", timeout=5) as r:
        lines = r.read().decode().splitlines()
    accepts, _handled, requests = (int(x) for x in lines[2].split())
    return accepts, requests


# --------------------------------------------------------------------------
# nginx

def start_nginx(work, port):
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
}}
""")
    proc = spawn(["nginx", "-e", f"{root}/logs/error.log", "-p", root + "/", "-c", conf], work, "nginx")
    wait_port(port, proc)
    return proc


# --------------------------------------------------------------------------
# blip

def decode_blocks(db_path, t0_ms, t1_ms):
    """Counts (all, up-or-degraded, down) samples with t0 <= sent_ms < t1, and the stored total."""
    con = sqlite3.connect(db_path)
    try:
        total = con.execute("SELECT coalesce(sum(count), 0) FROM sample_blocks").fetchone()[0]
        rows = con.execute("SELECT minute_ms, count, data FROM sample_blocks").fetchall()
    finally:
        con.close()
    n_all = n_up = n_down = 0
    for base_ms, count, data in rows:
        pos = 0

        def varint():
            nonlocal pos
            value, shift = 0, 0
            while True:
                b = data[pos]
                pos += 1
                value |= (b & 0x7F) << shift
                if not b & 0x80:
                    return value
                shift += 7

        prev_ms, prev_delta, seen = base_ms, 0, 0
        while pos < len(data):
            z = varint()
            delta = prev_delta + ((z >> 1) ^ -(z & 1))
            sent = prev_ms + delta
            prev_ms, prev_delta = sent, delta
            header = data[pos]
            pos += 1
            status = header >> 6
            if status == 2:
                pos += 1  # error class
                varint()  # detail id
            varint()  # latency
            for i in range(4):
                if header & (1 << i):
                    varint()
            seen += 1
            if t0_ms <= sent < t1_ms:
                n_all += 1
                if status == 2:
                    n_down += 1
                else:
                    n_up += 1
        if seen != count:
            raise RuntimeError(f"sample block at {base_ms} decodes to {seen} samples, count says {count}")
    return n_all, n_up, n_down, total


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
            f.write(f'[[probe]]\nname = "p{i:04d}"\ntype = "http"\n'
                    f'url = "http://127.0.0.1:{nginx_port}/health"\n'
                    f'interval = "{interval_ms}ms"\ntimeout = "{args.timeout_ms}ms"\n\n')
    db = os.path.join(phase, "blip.db")
    log_path = os.path.join(work, f"blip-{tag}.log")
    ng0 = nginx_status(nginx_port)
    proc = spawn([args.blip, "run", "-c", os.path.join(phase, "probes.d"), "--db", db], work, f"blip-{tag}")
    time.sleep(warmup)
    if proc.poll() is not None:
        raise RuntimeError(f"blip exited early ({proc.returncode}); see {log_path}")
    t0_ms, window = time.time() * 1000, Window(proc.pid)
    time.sleep(duration)
    t1_ms = time.time() * 1000
    load = window.close((t1_ms - t0_ms) / 1000)
    hwm = vm_hwm_kib(proc.pid)
    threads = len(os.listdir(f"/proc/{proc.pid}/task"))
    rc = stop(proc)
    ng1 = nginx_status(nginx_port)
    stop_line = ""
    with open(log_path, errors="replace") as f:
        for line in f:
            if "run: stopped" in line:
                stop_line = line.strip()
    fields = dict(kv.split("=", 1) for kv in stop_line.split() if "=" in kv)
    n_all, n_up, n_down, total = decode_blocks(db, t0_ms, t1_ms)
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
# blackbox_exporter and its driver

def write_blackbox_config(path, timeout_ms):
    with open(path, "w") as f:
        f.write(f"""# written by bench/http_vs_blackbox.py
# The http prober builds a new client with keep-alives disabled for every
# probe, so each probe opens a fresh TCP connection, as blip does by default.
modules:
  http_2xx:
    prober: http
    timeout: {timeout_ms}ms
    http:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
""")


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if b":" in line:
            k, v = line.split(b":", 1)
            headers[k.strip().lower()] = v.strip().lower()
    if b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    elif headers.get(b"transfer-encoding") == b"chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    else:
        raise RuntimeError("response without length")
    keep = headers.get(b"connection") != b"close"
    return status, body, keep


async def drive(bb_port, nginx_port, rate, warmup, duration, workers, request_timeout, pid):
    """Open-loop: request i is due at start + i/rate. Returns per-window counts and the
    exporter's CPU at the window edges (read from inside the loop at those instants)."""
    loop = asyncio.get_running_loop()
    request = (f"GET /probe?target=http://127.0.0.1:{nginx_port}/health&module=http_2xx HTTP/1.1\r\n"
               f"Host: 127.0.0.1:{bb_port}\r\nUser-Agent: blip-bench\r\n\r\n").encode()
    queue = asyncio.Queue()
    window = {"ok": 0, "failed": 0, "errors": 0, "sent": 0, "lateness_us": []}
    state = {"t0": None, "t1": None, "stopping": False}

    async def worker():
        reader = writer = None
        while True:
            item = await queue.get()
            if item is None:
                break
            due = item
            sent = loop.time()
            in_window = state["t0"] is not None and state["t0"] <= sent and state["t1"] is None
            if in_window:
                window["sent"] += 1
                window["lateness_us"].append((sent - due) * 1e6)
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", bb_port)
                writer.write(request)
                status, body, keep = await asyncio.wait_for(read_response(reader), request_timeout)
                success = status == 200 and b"\nprobe_success 1\n" in body
                if in_window:
                    window["ok" if success else "failed"] += 1
                if not keep:
                    writer.close()
                    reader = writer = None
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, RuntimeError, ValueError):
                if in_window:
                    window["errors"] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    total = int(rate * (warmup + duration))
    first_window = int(rate * warmup)
    start = loop.time() + 0.05
    cpu = {}
    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if i == first_window:
            state["t0"] = loop.time()
            cpu["window"] = Window(pid)
        queue.put_nowait(due)
    # the window closes when the last request is due plus one slot
    delay = start + total / rate - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)
    state["t1"] = loop.time()
    load = cpu["window"].close(state["t1"] - state["t0"])
    hwm = vm_hwm_kib(pid)
    # drop what was never sent, let what is in flight finish (bounded by the request timeout)
    dropped = 0
    while not queue.empty():
        queue.get_nowait()
        dropped += 1
    for _ in tasks:
        queue.put_nowait(None)
    await asyncio.wait(tasks, timeout=request_timeout + 2)
    for t in tasks:
        t.cancel()
    return window, state["t1"] - state["t0"], load, hwm, dropped


def run_blackbox(args, work, nginx_port, rate, duration, warmup, tag):
    port = free_port()
    config = os.path.join(work, "blackbox.yml")
    write_blackbox_config(config, args.timeout_ms)
    ng0 = nginx_status(nginx_port)
    proc = spawn([args.blackbox, f"--web.listen-address=127.0.0.1:{port}", f"--config.file={config}"],
                 work, f"blackbox-{tag}")
    wait_port(port, proc)
    workers = min(256, max(8, rate // 10))
    window, window_s, load, hwm, dropped = asyncio.run(
        drive(port, nginx_port, rate, warmup, duration, workers, args.timeout_ms / 1000 + 3, proc.pid))
    threads = len(os.listdir(f"/proc/{proc.pid}/task"))
    rc = stop(proc)
    ng1 = nginx_status(nginx_port)
    late = sorted(window["lateness_us"])

    def pct(p):
        return int(late[min(len(late) - 1, int(p * len(late)))]) if late else -1

    return {
        "tool": "blackbox", "tag": tag, "target": rate, "workers": workers,
        "window_s": round(window_s, 3), "sent": window["sent"], "ok": window["ok"],
        "failed": window["failed"], "errors": window["errors"], "dropped": dropped,
        "achieved": window["ok"] / window_s,
        "cpu_ms": load["cpu_ns"] / 1e6, "cpu_ms_per_1000": load["cpu_ns"] / 1e6 / max(1, window["sent"]) * 1000,
        "lag_p50_us": pct(0.5), "lag_p99_us": pct(0.99),
        "rss_mib": hwm / 1024, "threads": threads, "exit": rc,
        "nginx_conns": ng1[0] - ng0[0] - 1, "nginx_requests": ng1[1] - ng0[1] - 1, **load,
    }


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
        LOG.write(json.dumps(row) + "\n")
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
    global LOG, NGINX_PID
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
    args = p.parse_args()
    LOG = open(os.path.join(args.work, "bench.log"), "a")

    def on_signal(signum, _frame):
        kill_children()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    began = time.monotonic()
    try:
        nginx_port = free_port()
        nginx = start_nginx(args.work, nginx_port)
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
                    LOG.write(json.dumps(row) + "\n")
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
