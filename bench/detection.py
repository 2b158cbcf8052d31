#!/usr/bin/env python3
"""Detection against ground truth: blip at 250 ms and 1 s, Prometheus scraping
blackbox_exporter at 15 s and 60 s, and Uptime-Kuma-style pollers at 1 s and 20 s,
all watching the same private nginx, PostgreSQL 15 and Redis while this script
freezes them on a schedule (issue 12).

Run through bench/detection.sh, which installs what is missing, builds blip
(Release) unless given --blip, and hands this script the binary and a scratch
directory. Python 3 standard library only; servers and helpers come from
bench/common.py, bench/pg_redis_bench.py (Postgres) and bench/http_vs_blackbox.py
(nginx).

Everything talks to 127.0.0.1 only. The schedule is a fixed list, so the run's
length is known before it starts (printed first).

Ground truth (written to WORK/truth.json and truth.csv, CLOCK_REALTIME ms):
  * freeze: SIGSTOP of nginx (one process), of Redis, or of the postmaster and then
    every child of it (so open backends stop too), SIGCONT after the stall.
    Start = just before the first SIGSTOP, end = just before the first SIGCONT.
  * write_lock: a session of this script holds LOCK TABLE blip_heartbeat IN
    EXCLUSIVE MODE (the table blip's write mode upserts into); reads go on.
    Start = when the server answered the LOCK, end = just before COMMIT is sent.
  * quiet: nothing injected, and nothing ended within one gap before it; any
    outage overlapping one is a false outage.
Each service has its own track of stalls with `gap` seconds of service plus a
random 0..`jitter` s between stalls (so that stalls begin at every phase of every
monitor's schedule); the three tracks run at the same time, staggered, since
every monitor watches each service with a check of its own.

Monitors and where their outages are read from after the run:
  * blip: its own SQLite file (table outages, kind 'outage', joined to probes).
  * Prometheus: its HTTP API, the raw samples of ALERTS{alertstate="firing"} of
    the rule `probe_success == 0` (for: 0s); an alert runs from its first firing
    evaluation to the evaluation that no longer returned it. The raw probe_success
    samples are kept in the JSON as well.
  * pollers: this script's threads, one per service and interval, in Uptime Kuma's
    manner: a new connection per check, timeout 0.8 x interval, no retries (down
    on the first failure), the next check due one interval after the previous one
    started. An outage runs from the send time of the first failed check to the
    answer of the next good one (blip's rule, with confirm 1).
"""
import argparse
import csv
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

from common import Redis, exit_on_signals, free_port, kill_children, open_log, say, spawn, stop, wait_port
from http_vs_blackbox import start_nginx
from pg_redis_bench import PG_BIN, Postgres


def now_ms():
    return time.time_ns() // 1_000_000


def iso(ms):
    return time.strftime("%H:%M:%S", time.gmtime(ms / 1000)) + f".{int(ms) % 1000:03d}"


# --------------------------------------------------------------------------
# wire-level checks: the pollers' probes and the lock session (deadline-bound)

class Deadline:
    def __init__(self, seconds):
        self.at = time.monotonic() + seconds

    def left(self):
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        return left


def connect(port, deadline):
    s = socket.create_connection(("127.0.0.1", port), timeout=deadline.left())
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_some(s, deadline):
    s.settimeout(deadline.left())
    data = s.recv(65536)
    if not data:
        raise ConnectionError("closed by the server")
    return data


def check_http(port, deadline):
    with connect(port, deadline) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: kuma-style-poller\r\n"
                  b"Connection: close\r\n\r\n")
        data = b""
        while b"\r\n" not in data:
            data += recv_some(s, deadline)
        status = int(data.split(b" ", 2)[1])
        if not 200 <= status < 300:
            raise RuntimeError(f"status {status}")


def check_redis(port, deadline):
    with connect(port, deadline) as s:
        s.sendall(b"PING\r\n")
        data = b""
        while b"\r\n" not in data:
            data += recv_some(s, deadline)
        if not data.startswith(b"+PONG"):
            raise RuntimeError(f"reply {data[:20]!r}")


class PgSession:
    """A minimal PostgreSQL frontend (protocol 3, trust authentication, simple queries)."""

    def __init__(self, port, user, deadline):
        self.sock = connect(port, deadline)
        self.buf = b""
        body = struct.pack("!i", 196608) + f"user\0{user}\0database\0postgres\0\0".encode()
        self.sock.sendall(struct.pack("!i", len(body) + 4) + body)
        self.until_ready(deadline)

    def message(self, deadline):
        while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack("!i", self.buf[1:5])[0]:
            self.buf += recv_some(self.sock, deadline)
        length = struct.unpack("!i", self.buf[1:5])[0]
        kind, payload, self.buf = self.buf[:1], self.buf[5:1 + length], self.buf[1 + length:]
        return kind, payload

    def until_ready(self, deadline):
        error = None
        while True:
            kind, payload = self.message(deadline)
            if kind == b"R" and struct.unpack("!i", payload[:4])[0] != 0:
                raise RuntimeError("the server asks for a password; trust authentication expected")
            if kind == b"E":
                error = payload.replace(b"\0", b" ").decode(errors="replace")
            if kind == b"Z":
                if error:
                    raise RuntimeError(error)
                return

    def query(self, sql, deadline):
        body = sql.encode() + b"\0"
        self.sock.sendall(b"Q" + struct.pack("!i", len(body) + 4) + body)
        self.until_ready(deadline)

    def close(self):
        try:
            self.sock.sendall(b"X\0\0\0\4")
        except OSError:
            pass
        self.sock.close()


def check_postgres(port, deadline):
    session = PgSession(port, "blip", deadline)
    try:
        session.query("SELECT 1", deadline)
    finally:
        session.close()


class Poller(threading.Thread):
    """One Kuma-style monitor of one service: the checks' (sent_ms, answered_ms, ok)."""

    def __init__(self, interval_s, service, check, port, stop_event):
        super().__init__(daemon=True, name=f"poller-{interval_s}s-{service}")
        self.interval_s, self.service, self.check, self.port = interval_s, service, check, port
        self.timeout_s = 0.8 * interval_s  # Uptime Kuma's default timeout
        self.stop_event = stop_event
        self.checks = []

    def run(self):
        due = time.monotonic()
        while not self.stop_event.is_set():
            sent = now_ms()
            try:
                self.check(self.port, Deadline(self.timeout_s))
                ok = True
            except Exception:  # any failure is a down beat, as in Kuma
                ok = False
            self.checks.append((sent, now_ms(), ok))
            due += self.interval_s
            self.stop_event.wait(max(0.0, due - time.monotonic()))
            due = max(due, time.monotonic())

    def outages(self):
        out, start = [], None
        for sent, answered, ok in self.checks:
            if not ok and start is None:
                start = sent
            elif ok and start is not None:
                out.append((start, answered))
                start = None
        if start is not None:
            out.append((start, None))
        return out


# --------------------------------------------------------------------------
# the services and what freezes them

class FrozenPostgres(Postgres):
    def processes(self):
        """The postmaster and its children now (a frozen postmaster forks no more)."""
        with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
            return [self.pid] + [int(p) for p in f.read().split()]

    def freeze(self):
        os.kill(self.pid, signal.SIGSTOP)  # first, so that it forks nothing we would miss
        for pid in self.processes()[1:]:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self):
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


class Services:
    def __init__(self, work):
        self.nginx_port = free_port()
        self.nginx = start_nginx(work, self.nginx_port)
        self.redis = Redis(work)
        self.pg = FrozenPostgres(work, 100)
        self.pg.sql("GRANT pg_monitor TO blip")
        self.lock_session = None

    def freeze(self, service):
        if service == "nginx":
            os.kill(self.nginx.pid, signal.SIGSTOP)
        elif service == "redis":
            os.kill(self.redis.pid, signal.SIGSTOP)
        else:
            self.pg.freeze()

    def thaw(self, service):
        if service == "nginx":
            os.kill(self.nginx.pid, signal.SIGCONT)
        elif service == "redis":
            os.kill(self.redis.pid, signal.SIGCONT)
        else:
            self.pg.thaw()

    def lock_writes(self):
        """Returns when the lock is held (CLOCK_REALTIME ms of the server's answer)."""
        self.lock_session = PgSession(self.pg.port, "postgres", Deadline(10))
        self.lock_session.query("BEGIN; LOCK TABLE blip_heartbeat IN EXCLUSIVE MODE", Deadline(10))
        return now_ms()

    def unlock_writes(self):
        at = now_ms()
        self.lock_session.query("COMMIT", Deadline(10))
        self.lock_session.close()
        self.lock_session = None
        return at

    def thaw_all(self):
        for service in ("nginx", "redis", "postgres"):
            try:
                self.thaw(service)
            except (OSError, FileNotFoundError):
                pass
        if self.lock_session:
            self.lock_session.close()
            self.lock_session = None


# --------------------------------------------------------------------------
# the schedule

SERVICES = ("nginx", "postgres", "redis")


def plan(args):
    """[(offset_s, service, kind, length_s, round)] of the stalls, quiet stretches
    [(offset_s, length_s)], and the schedule's total length (s)."""
    if args.short:
        lengths, write_lengths, rounds = [0.5, 2, 5, 30], [5], 1
    else:
        lengths, write_lengths, rounds = [0.5, 1, 2, 5, 15, 30, 60], [2, 5, 30], args.rounds
    stalls, quiets = [], []
    rng = random.Random(args.seed)
    t = 0.0
    for r in range(rounds):
        quiets.append((t, args.quiet))
        t += args.quiet
        ends = []
        for i, service in enumerate(SERVICES):
            # Each track a different order (long and short stalls alternate), and staggered.
            order = lengths[i:] + lengths[:i] if r % 2 == 0 else list(reversed(lengths[i:] + lengths[:i]))
            events = [("freeze", x) for x in order]
            if service == "postgres":
                for j, x in enumerate(write_lengths):
                    events.insert(1 + 3 * j, ("write_lock", x))
            at = t + i * args.gap / len(SERVICES)
            for kind, x in events:
                # A random part of the gap, so that stalls begin at every phase of
                # every monitor's schedule (blip's 250 ms, a 60 s scrape), not at one.
                at += rng.uniform(0, args.jitter)
                stalls.append((at, service, kind, x, r))
                at += x + args.gap
            ends.append(at)
        t = max(ends)
    if not args.short:  # the short mode has one quiet stretch, at its start
        quiets.append((t, args.quiet))
        t += args.quiet
    return stalls, quiets, t


def run_schedule(services, stalls, t0, truth, stop_event):
    """Carries out the plan from monotonic time t0; appends every stall as it happened to truth."""
    actions = []
    for at, service, kind, length, r in stalls:
        actions.append((at, 0, service, kind, length, r))
        actions.append((at + length, 1, service, kind, length, r))
    actions.sort(key=lambda a: (a[0], a[1]))
    open_ = {}
    for at, is_end, service, kind, length, r in actions:
        delay = t0 + at - time.monotonic()
        if delay > 0 and stop_event.wait(delay):
            return
        key = (service, kind)
        if not is_end:
            if kind == "freeze":
                start = now_ms()
                services.freeze(service)
            else:
                start = services.lock_writes()
            open_[key] = {"service": service, "kind": kind, "planned_s": length, "round": r, "start_ms": start}
            say(f"   {iso(start)} {kind:<10} {service:<8} {length:g} s")
        else:
            if kind == "freeze":
                end = now_ms()
                services.thaw(service)
            else:
                end = services.unlock_writes()
            event = open_.pop(key)
            event["end_ms"] = end
            event["actual_s"] = (end - event["start_ms"]) / 1000
            truth.append(event)


# --------------------------------------------------------------------------
# blip

BLIP_SETTINGS = {
    # interval: (timeout, confirm). The timeout equals the interval: one attempt in
    # flight, a stall longer than one interval times the probe out, and a probe sent
    # in the last interval of a stall is still waiting when the server thaws, so
    # its answer marks the end within milliseconds. confirm 2 (the default): one
    # slow answer on a busy machine does not open an outage.
    250: (250, 2),
    1000: (1000, 2),
}


def blip_config(directory, interval_ms, services):
    timeout_ms, confirm = BLIP_SETTINGS[interval_ms]
    tag = f"{interval_ms}ms"
    dsn = f"host=127.0.0.1 port={services.pg.port} dbname=postgres user=blip"
    common = f'interval = "{interval_ms}ms"\ntimeout = "{timeout_ms}ms"\nconfirm = {confirm}\n'
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "detection.toml"), "w") as f:
        f.write(f"""# written by bench/detection.py
[[probe]]
name = "nginx-{tag}"
type = "http"
url = "http://127.0.0.1:{services.nginx_port}/health"
{common}
[[probe]]
name = "pg-read-{tag}"
type = "postgres"
dsn = "{dsn}"
mode = "read"
{common}
# The heartbeat row is keyed by probe name: each blip writes its own.
[[probe]]
name = "pg-write-{tag}"
type = "postgres"
dsn = "{dsn}"
mode = "write"
{common}
[[probe]]
name = "redis-{tag}"
type = "redis"
address = "127.0.0.1:{services.redis.port}"
{common}""")
    return {"nginx": f"nginx-{tag}", "postgres": f"pg-read-{tag}", "postgres-write": f"pg-write-{tag}",
            "redis": f"redis-{tag}"}, timeout_ms


def start_blip(args, work, interval_ms, services):
    d = os.path.join(work, f"blip-{interval_ms}ms")
    names, timeout_ms = blip_config(os.path.join(d, "probes.d"), interval_ms, services)
    db = os.path.join(d, "blip.db")
    proc = spawn([args.blip, "run", "-c", os.path.join(d, "probes.d"), "--db", db,
                  "--listen", f"127.0.0.1:{free_port()}"], work, f"blip-{interval_ms}ms")
    return {"proc": proc, "db": db, "names": names, "timeout_ms": timeout_ms}


def heartbeat_rows(pg):
    if pg.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'blip_heartbeat'") != "1":
        return 0
    return int(pg.sql("SELECT count(*) FROM blip_heartbeat"))


def blip_outages(blip):
    con = sqlite3.connect(blip["db"])
    try:
        rows = con.execute("SELECT p.name, o.start_ms, o.end_ms FROM outages o JOIN probes p ON p.id = o.probe_id "
                           "WHERE o.kind = 'outage' ORDER BY o.start_ms").fetchall()
        blind = con.execute("SELECT start_ms, end_ms, reason FROM blind_windows ORDER BY start_ms").fetchall()
    finally:
        con.close()
    by_name = {}
    for name, start, end in rows:
        by_name.setdefault(name, []).append((start, end))
    return {check: by_name.get(name, []) for check, name in blip["names"].items()}, blind


# --------------------------------------------------------------------------
# Prometheus and blackbox_exporter

BLACKBOX_TIMEOUT_S = 5  # the exporter's example configuration's module timeout
EVALUATION_INTERVAL_S = 15  # Prometheus's own example configuration


def start_prometheus(args, work, services):
    d = os.path.join(work, "prometheus")
    os.makedirs(os.path.join(d, "data"), exist_ok=True)
    bb_port, prom_port = free_port(), free_port()
    with open(os.path.join(d, "blackbox.yml"), "w") as f:
        f.write(f"""# written by bench/detection.py
modules:
  http_2xx:
    prober: http
    timeout: {BLACKBOX_TIMEOUT_S}s
    http:
      preferred_ip_protocol: ip4
  # All blackbox can ask of Postgres: a frozen postmaster still completes the
  # TCP handshake (the kernel does it), so this succeeds through any freeze.
  tcp_connect:
    prober: tcp
    timeout: {BLACKBOX_TIMEOUT_S}s
    tcp:
      preferred_ip_protocol: ip4
  redis_ping:
    prober: tcp
    timeout: {BLACKBOX_TIMEOUT_S}s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - send: "PING"
        - expect: "^\\\\+PONG"
""")
    bb = spawn([args.blackbox, f"--web.listen-address=127.0.0.1:{bb_port}",
                f"--config.file={os.path.join(d, 'blackbox.yml')}"], work, "blackbox")
    wait_port(bb_port, bb, timeout=15)
    targets = [(f"http://127.0.0.1:{services.nginx_port}/health", "http_2xx", "nginx"),
               (f"127.0.0.1:{services.pg.port}", "tcp_connect", "postgres"),
               (f"127.0.0.1:{services.redis.port}", "redis_ping", "redis")]
    jobs = ""
    for interval in args.scrape_intervals:
        static = "".join(f"""      - targets: ['{t}']
        labels: {{module: {m}, service: {s}}}
""" for t, m, s in targets)
        jobs += f"""  - job_name: blackbox-{interval}s
    scrape_interval: {interval}s
    scrape_timeout: 10s
    metrics_path: /probe
    static_configs:
{static}    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [module]
        target_label: __param_module
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:{bb_port}
"""
    with open(os.path.join(d, "rules.yml"), "w") as f:
        f.write("""groups:
  - name: probes
    rules:
      - alert: ProbeFailed
        expr: probe_success == 0
        for: 0s
""")
    with open(os.path.join(d, "prometheus.yml"), "w") as f:
        f.write(f"""# written by bench/detection.py
global:
  evaluation_interval: {EVALUATION_INTERVAL_S}s
rule_files: [rules.yml]
scrape_configs:
{jobs}""")
    prom = spawn(["prometheus", f"--config.file={os.path.join(d, 'prometheus.yml')}",
                  f"--storage.tsdb.path={os.path.join(d, 'data')}", f"--web.listen-address=127.0.0.1:{prom_port}",
                  "--storage.tsdb.retention.time=1d"], work, "prometheus")
    wait_port(prom_port, prom, timeout=30)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/-/ready", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("prometheus not ready after 30 s")
        time.sleep(0.2)
    return {"proc": prom, "blackbox": bb, "port": prom_port}


def prom_query(port, query, at_s):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query, "time": f"{at_s:.3f}"})
    with urllib.request.urlopen(url, timeout=30) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"prometheus query {query} failed: {body}")
    return body["data"]["result"]


def prometheus_outages(prom, scrape_intervals, from_ms, to_ms):
    """{job: {service: [(start_ms, end_ms)]}} from the raw ALERTS samples, and the raw
    probe_success samples {job: {service: [(ms, value)]}}."""
    span = int((to_ms - from_ms) / 1000) + 120
    at = to_ms / 1000
    alerts = {f"blackbox-{i}s": {s: [] for s in SERVICES} for i in scrape_intervals}
    for series in prom_query(prom["port"], f'ALERTS{{alertname="ProbeFailed",alertstate="firing"}}[{span}s]', at):
        job, service = series["metric"]["job"], series["metric"]["service"]
        stamps = [float(ts) * 1000 for ts, _ in series["values"]]
        runs, start, last = [], None, None
        for ts in stamps:
            if start is None:
                start = ts
            elif ts - last > 1.5 * EVALUATION_INTERVAL_S * 1000:
                runs.append((start, last + EVALUATION_INTERVAL_S * 1000))
                start = ts
            last = ts
        if start is not None:
            # still firing at the last evaluation before the query: open
            runs.append((start, None if to_ms - last < 1.5 * EVALUATION_INTERVAL_S * 1000 else
                         last + EVALUATION_INTERVAL_S * 1000))
        alerts[job][service] = [(int(a), None if b is None else int(b)) for a, b in runs]
    scrapes = {f"blackbox-{i}s": {} for i in scrape_intervals}
    for series in prom_query(prom["port"], f"probe_success[{span}s]", at):
        job, service = series["metric"]["job"], series["metric"]["service"]
        scrapes[job][service] = [(int(float(ts) * 1000), int(v)) for ts, v in series["values"]]
    return alerts, scrapes


# --------------------------------------------------------------------------
# scoring

CHECKS = {
    # check: (kinds of stall it is meant to see, service)
    "nginx": ({"freeze"}, "nginx"),
    "postgres": ({"freeze"}, "postgres"),
    "postgres-write": ({"freeze", "write_lock"}, "postgres"),
    "redis": ({"freeze"}, "redis"),
}


def score(monitor, check, outages, truth, quiets, lag_ms, run_end_ms):
    """Per stall of the check's service: caught, start and end error (s); and the false outages."""
    kinds, service = CHECKS[check]
    closed = [(a, b if b is not None else run_end_ms) for a, b in outages]
    rows = []
    meant = []
    for stall in truth:
        if stall["service"] != service:
            continue
        lo, hi = stall["start_ms"] - 1000, stall["end_ms"] + lag_ms
        hits = [(a, b) for a, b in closed if a <= hi and b >= lo]
        if stall["kind"] in kinds:
            meant.append((lo, hi))
        row = {"monitor": monitor, "check": check, "kind": stall["kind"], "length_s": stall["planned_s"],
               "stall_start_ms": stall["start_ms"], "stall_end_ms": stall["end_ms"], "caught": bool(hits),
               "fragments": len(hits)}
        if hits:
            row["start_error_s"] = (min(a for a, _ in hits) - stall["start_ms"]) / 1000
            row["end_error_s"] = (max(b for _, b in hits) - stall["end_ms"]) / 1000
        rows.append(row)
    false = [{"start_ms": a, "end_ms": b, "in_quiet": any(a <= q1 and b >= q0 for q0, q1 in quiets)}
             for a, b in closed if not any(a <= hi and b >= lo for lo, hi in meant)]
    return rows, false


def median(xs):
    return statistics.median(xs) if xs else None


def fmt_s(x):
    return "–" if x is None else f"{x:.2f}"


def summarise(rows, false_by):
    """Table rows: (monitor, check, kind) x length -> caught/n, plus edge errors and false outages."""
    groups = {}
    for r in rows:
        groups.setdefault((r["monitor"], r["check"], r["kind"]), []).append(r)
    out = []
    for (monitor, check, kind), rs in groups.items():
        by_len = {}
        for r in rs:
            by_len.setdefault(r["length_s"], []).append(r)
        caught = [r for r in rs if r["caught"]]
        starts = [abs(r["start_error_s"]) for r in caught]
        ends = [abs(r["end_error_s"]) for r in caught]
        out.append({
            "monitor": monitor, "check": check, "kind": kind,
            "recall": {str(k): f"{sum(r['caught'] for r in v)}/{len(v)}" for k, v in sorted(by_len.items())},
            "start_error_median_s": median(starts), "start_error_max_s": max(starts) if starts else None,
            "end_error_median_s": median(ends), "end_error_max_s": max(ends) if ends else None,
            "false_outages": len(false_by.get((monitor, check), [])),
            "false_in_quiet": sum(f["in_quiet"] for f in false_by.get((monitor, check), [])),
        })
    return out


def check_targets(rows, false_by, monitor):
    """blip's targets at 250 ms: every stall >= 2 s caught, its edges within 0.5 s, no false outage in quiet."""
    failures = []
    for r in rows:
        if r["monitor"] != monitor or r["length_s"] < 2:
            continue
        if r["check"] in ("postgres",) and r["kind"] == "write_lock":
            continue  # a read probe is not meant to see a write lock
        what = f"{r['check']} {r['kind']} {r['length_s']:g} s at {iso(r['stall_start_ms'])}"
        if not r["caught"]:
            failures.append(f"missed: {what}")
        elif abs(r["start_error_s"]) > 0.5 or abs(r["end_error_s"]) > 0.5:
            failures.append(f"edge error above 0.5 s: {what} (start {r['start_error_s']:+.3f} s, "
                            f"end {r['end_error_s']:+.3f} s)")
    for (m, check), falses in false_by.items():
        if m != monitor:
            continue
        for f in falses:
            if f["in_quiet"]:
                failures.append(f"false outage in a quiet stretch: {check} {iso(f['start_ms'])}–"
                                f"{iso(f['end_ms'])}")
    return failures


# --------------------------------------------------------------------------

def thaw_on_signals(services):
    """SIGTERM or SIGINT thaws every service and releases the lock before the children
    are killed: a postmaster killed while its backends are stopped leaves them stopped."""
    def on_signal(signum, _frame):
        services.thaw_all()
        kill_children()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def versions(args):
    def first_line(cmd):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    return {
        "prometheus": first_line(["prometheus", "--version"]),
        "blackbox_exporter": first_line([args.blackbox, "--version"]),
        "nginx": first_line(["nginx", "-v"]),
        "postgres": first_line([PG_BIN + "postgres", "--version"]),
        "redis": first_line(["redis-server", "--version"]),
        "blip": first_line([args.blip, "--version"]),
        "machine": f"{os.cpu_count()} cores, " + next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                                                       if l.startswith("model name")), "?") + f", {os.uname().release}",
    }


def loadavg():
    return open("/proc/loadavg").read().split()[:3]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--blip", required=True)
    p.add_argument("--blackbox", default="prometheus-blackbox-exporter")
    p.add_argument("--work", required=True, help="scratch directory (logs, databases, configs, results)")
    p.add_argument("--short", action="store_true",
                   help="a few minutes: 0.5/2/5/30 s on each service, one write-only stall, Prometheus at 15 s only")
    p.add_argument("--rounds", type=int, default=2, help="long mode: how often every length runs on every service")
    p.add_argument("--gap", type=float, help="least seconds of service between two stalls of a service "
                                             "(default 25 short, 70 long: above one 60 s scrape plus its timeout)")
    p.add_argument("--jitter", type=float, default=10.0,
                   help="up to this many seconds (uniform) added to each gap, before the stall")
    p.add_argument("--seed", type=int, default=12, help="of the jitter")
    p.add_argument("--quiet", type=float, help="seconds of each quiet stretch (default 30 short, 120 long)")
    p.add_argument("--warmup", type=float, default=15.0, help="seconds after everything started before the schedule")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    args.gap = args.gap if args.gap is not None else (25.0 if args.short else 70.0)
    args.quiet = args.quiet if args.quiet is not None else (30.0 if args.short else 120.0)
    args.scrape_intervals = [15] if args.short else [15, 60]
    open_log(args.work)
    exit_on_signals()  # until the services exist; then thaw_on_signals
    stalls, quiets, length_s = plan(args)
    say(f"== detection ({'short' if args.short else 'long'}): {len(stalls)} stalls, {len(quiets)} quiet stretches "
        f"of {args.quiet:g} s, gap {args.gap:g} s + up to {args.jitter:g} s; schedule {length_s / 60:.1f} min after a {args.warmup:g} s warm-up")
    load_start = loadavg()
    info = versions(args)
    for k, v in info.items():
        say(f"   {k}: {v}")
    say(f"   load average at start: {' '.join(load_start)}")
    services = None
    stop_event = threading.Event()
    truth = []
    try:
        services = Services(args.work)
        thaw_on_signals(services)
        blips = {250: start_blip(args, args.work, 250, services), 1000: start_blip(args, args.work, 1000, services)}
        prom = start_prometheus(args, args.work, services)
        pollers = []
        for interval in (1, 20):
            for service, check, port in (("nginx", check_http, services.nginx_port),
                                         ("postgres", check_postgres, services.pg.port),
                                         ("redis", check_redis, services.redis.port)):
                pollers.append(Poller(interval, service, check, port, stop_event))
        for poller in pollers:
            poller.start()
        say(f"   nginx :{services.nginx_port}, postgres :{services.pg.port}, redis :{services.redis.port}, "
            f"prometheus :{prom['port']}")
        # The write lock needs blip's heartbeat table: both write probes create it.
        deadline = time.monotonic() + 30
        while heartbeat_rows(services.pg) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("blip's write probes did not write their heartbeat rows in 30 s")
            for b in blips.values():
                if b["proc"].poll() is not None:
                    raise RuntimeError(f"blip exited early ({b['proc'].returncode}); see {args.work}")
            time.sleep(0.5)
        time.sleep(args.warmup)
        t0 = time.monotonic()
        t0_ms = now_ms()
        say(f"== schedule from {iso(t0_ms)} UTC")
        run_schedule(services, stalls, t0, truth, stop_event)
        delay = t0 + length_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        end_ms = now_ms()
        stop_event.set()
        for poller in pollers:
            poller.join(20)
        for b in blips.values():
            rc = stop(b["proc"])
            if rc != 0:
                raise RuntimeError(f"blip exited with {rc}; see {args.work}")
        quiet_windows = [(t0_ms + int(a * 1000), t0_ms + int((a + q) * 1000)) for a, q in quiets]

        # ---- ground truth
        truth.sort(key=lambda e: e["start_ms"])
        with open(os.path.join(args.work, "truth.json"), "w") as f:
            json.dump({"stalls": truth, "quiet": [{"start_ms": a, "end_ms": b} for a, b in quiet_windows]}, f,
                      indent=1)
        with open(os.path.join(args.work, "truth.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["service", "kind", "planned_s", "round", "start_ms", "end_ms", "actual_s"])
            for e in truth:
                w.writerow([e["service"], e["kind"], e["planned_s"], e["round"], e["start_ms"], e["end_ms"],
                            e["actual_s"]])
            for a, b in quiet_windows:
                w.writerow(["all", "quiet", (b - a) / 1000, "", a, b, (b - a) / 1000])

        # ---- every monitor's outages
        monitors = {}  # name: ({check: outages}, lag_ms)
        blind = {}
        for interval, b in blips.items():
            name = f"blip {interval} ms" if interval < 1000 else "blip 1 s"
            outs, blind[name] = blip_outages(b)
            monitors[name] = (outs, b["timeout_ms"] + 1000)
        alerts, scrapes = prometheus_outages(prom, args.scrape_intervals, t0_ms, end_ms)
        for job, by_service in alerts.items():
            interval = job.split("-")[1]
            # a probe started in the stall answers within its timeout; the rule sees it at the next evaluation
            monitors[f"Prometheus+blackbox {interval[:-1]} s"] = (
                by_service, (BLACKBOX_TIMEOUT_S + EVALUATION_INTERVAL_S + 2) * 1000)
        for interval in (1, 20):
            mine = [x for x in pollers if x.interval_s == interval]
            monitors[f"poller {interval} s"] = ({x.service: x.outages() for x in mine},
                                                int(0.8 * interval * 1000) + 1000)

        rows, false_by = [], {}
        for name, (outs, lag_ms) in monitors.items():
            for check in CHECKS:
                if check not in outs:
                    continue
                r, false = score(name, check, outs[check], truth, quiet_windows, lag_ms, end_ms)
                rows += r
                false_by[(name, check)] = false
        summary = summarise(rows, false_by)
        failures = check_targets(rows, false_by, "blip 250 ms")
        load_end = loadavg()

        results = {
            "mode": "short" if args.short else "long", "versions": info, "load_start": load_start,
            "load_end": load_end, "schedule_start_ms": t0_ms, "schedule_end_ms": end_ms, "gap_s": args.gap,
            "blip_settings": {str(k): {"timeout_ms": v[0], "confirm": v[1]} for k, v in BLIP_SETTINGS.items()},
            "prometheus": {"scrape_intervals_s": args.scrape_intervals, "evaluation_interval_s": EVALUATION_INTERVAL_S,
                           "blackbox_module_timeout_s": BLACKBOX_TIMEOUT_S, "scrape_timeout_s": 10},
            "truth": truth, "quiet": quiet_windows, "summary": summary, "stalls": rows,
            "false_outages": {f"{m} / {c}": v for (m, c), v in false_by.items()},
            "outages": {m: outs for m, (outs, _) in monitors.items()},
            "prometheus_probe_success": scrapes, "blip_blind_windows": blind,
            "poller_checks": {x.name: len(x.checks) for x in pollers}, "target_failures": failures,
        }
        with open(os.path.join(args.work, "detection.json"), "w") as f:
            json.dump(results, f, indent=1)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)

        # ---- the tables
        lengths = sorted({r["length_s"] for r in rows})
        say("")
        say(f"Stalls caught / stalls per length (s); edges = |monitor − truth| in s, median / max over the caught "
            f"ones; false = outages overlapping no stall of the check (in quiet stretches). "
            f"Load average {' '.join(load_start)} at start, {' '.join(load_end)} at end.")
        say("")
        say("| monitor | check | stall | " + " | ".join(f"{x:g} s" for x in lengths)
            + " | start edge | end edge | false (quiet) |")
        say("|---|---|---|" + "---:|" * len(lengths) + "---:|---:|---:|")
        order = list(monitors)
        for s in sorted(summary, key=lambda s: (order.index(s["monitor"]), list(CHECKS).index(s["check"]),
                                                s["kind"])):
            cells = [s["recall"].get(str(x), "") for x in lengths]
            kind = s["kind"].replace("_", " ") + ("" if s["kind"] in CHECKS[s["check"]][0] else " †")
            say(f"| {s['monitor']} | {s['check']} | {kind} | " + " | ".join(cells)
                + f" | {fmt_s(s['start_error_median_s'])} / {fmt_s(s['start_error_max_s'])}"
                f" | {fmt_s(s['end_error_median_s'])} / {fmt_s(s['end_error_max_s'])}"
                f" | {s['false_outages']} ({s['false_in_quiet']}) |")
        say("")
        say("† a read check under a write lock: it is not meant to fail, so 0/n says reads stayed up.")
        say("")
        say("Stalls of 30–60 s (freezes; Postgres through each monitor's read check): caught, and how late the "
            "monitor said so (its outage start − stall start, s: mean / max).")
        say("")
        say("| monitor | nginx | postgres | redis | all | late mean / max |")
        say("|---|---:|---:|---:|---:|---:|")
        for name in order:
            cells, lates, n_all, c_all = [], [], 0, 0
            for check in ("nginx", "postgres", "redis"):
                rs = [r for r in rows if r["monitor"] == name and r["check"] == check and r["kind"] == "freeze"
                      and r["length_s"] >= 30]
                c = [r for r in rs if r["caught"]]
                cells.append(f"{len(c)}/{len(rs)}")
                lates += [r["start_error_s"] for r in c]
                n_all, c_all = n_all + len(rs), c_all + len(c)
            late = f"{statistics.mean(lates):.1f} / {max(lates):.1f}" if lates else "–"
            say(f"| {name} | " + " | ".join(cells) + f" | {c_all}/{n_all} | {late} |")
        say("")
        for name, windows in blind.items():
            if windows:
                say(f"{name}: {len(windows)} blind windows (blip itself stalled): {windows[:5]}")
        if failures:
            say("blip 250 ms targets FAILED:")
            for f_ in failures:
                say(f"   {f_}")
            return 1
        say("blip 250 ms targets held: every stall >= 2 s caught, edges within 0.5 s, no false outage in the "
            "quiet stretches.")
        return 0
    finally:
        stop_event.set()
        if services:
            services.thaw_all()
            try:
                services.pg.stop()
            except Exception as e:  # the rest is killed below in any case
                say(f"postgres did not stop cleanly: {e}")
        kill_children()


if __name__ == "__main__":
    raise SystemExit(main())
