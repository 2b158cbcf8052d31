#!/usr/bin/env python3
"""Postgres and Redis probes: rate, CPU per probe and schedule lag of blip, and
blackbox_exporter's tcp module (PING / +PONG) against the same Redis.

Run through bench/pg_redis_bench.sh, which builds blip (Release) and hands this
script the binaries and a scratch directory. Python 3 standard library only;
what it shares with bench/http_vs_blackbox.py is in bench/common.py.

Everything talks to 127.0.0.1 only. Every loop is bounded in count and time.

Servers (private, started here, stopped at the end):
  * redis-server --port P --bind 127.0.0.1 --save "" --appendonly no --maxclients 10000
  * PostgreSQL 15: initdb into the scratch directory (as the postgres user when run
    as root), trust authentication on 127.0.0.1, max_connections 300, otherwise
    the defaults (fsync and synchronous_commit on). blip logs in as an ordinary
    role `blip`, so the superuser slots stay free for this script's psql.
  * For reference, pgbench -C (connect, SELECT 1, disconnect) on that server.

Phases (one tool, one workload, one rate), each a fresh process:
  * blip: N = rate/20 probes at an interval of 50 ms (blip's minimum).
    After a warm-up, its CPU time is read at the start and end of a fixed window;
    samples whose send time falls in the window are decoded from its SQLite file
    and split into up and down. Schedule lag: p50/p99 from its stop line (the
    whole run, start-up included) and p50/p99 over the window only, worked out
    from the stored send times (see schedule_lags; good to about 1 ms).
  * blackbox_exporter: a fresh exporter with a tcp module that sends PING and
    expects ^+PONG, driven through /probe by an open-loop asyncio driver (request i
    due at t0 + i/rate, keep-alive connections to the exporter). Only the
    exporter's CPU is charged to it. Its "lag" is the driver's lateness.
  * The server's CPU (redis-server; or the postmaster plus every backend, live or
    exited), the connections it accepted in the window and the connections open
    at its end are read around every window, and the machine's busy time minus
    tool, server and driver is reported as "other".
  * Single runs: the Redis rates are tried from the highest down until one passes;
    reconnect_each reads at --pg-reconnect-single; and two long runs (highest Redis
    rate, Postgres reads at --pg-rate) whose window spans a minute boundary.
"""
import argparse
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import time

from common import (UP, DEGRADED, DOWN, Redis, Window, exit_on_signals, free_port, kill_children, log_row, open_log,
                    percentile, read_samples, run_exporter, say, schedule_lags, spawn, stop, thread_count,
                    tree_cpu_ns, vm_hwm_kib, write_blackbox_config)

PG_BIN = "/usr/lib/postgresql/15/bin/"


# --------------------------------------------------------------------------
# the measuring window

def listen_overflows():
    """Machine-wide TcpExt ListenOverflows (accept queue full: a client's handshake is
    dropped and retried a second later)."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for head, vals in zip(lines[::2], lines[1::2]):
        if head.startswith("TcpExt:"):
            return dict(zip(head.split()[1:], (int(v) for v in vals.split()[1:])))["ListenOverflows"]
    return 0


class ServerWindow(Window):
    """A Window with Redis or Postgres as the server, plus the connections the server
    accepted in it, the ones open at its end and the machine's listen overflows."""

    def __init__(self, tool_pid, server):
        super().__init__(tool_pid, server.cpu_ns)
        self.server = server
        self.conns0 = server.connections()
        self.overflows0 = listen_overflows()

    def close(self, seconds):
        load = super().close(seconds)
        return {"cpu_ns": load["cpu_ns"], "tool_cores": load["cpu_ns"] / 1e9 / seconds, **load,
                "server_conns": self.server.connections() - self.conns0 - self.server.own_conns,
                "held_conns": self.server.held(),
                "listen_overflows": listen_overflows() - self.overflows0}


# --------------------------------------------------------------------------
# servers

class Postgres:
    own_conns = 1  # the psql that reads pg_stat_database

    def __init__(self, work, max_connections):
        self.port = free_port()
        self.dir = os.path.join(work, "pg")
        self.run_dir = os.path.join(self.dir, "run")
        data = os.path.join(self.dir, "data")
        os.makedirs(self.run_dir, exist_ok=True)
        self._give_to_postgres()
        subprocess.run(self._as_postgres([PG_BIN + "initdb", "-D", data, "-U", "postgres", "--auth=trust",
                                          "--no-sync", "-E", "UTF8", "--locale=C"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        with open(os.path.join(data, "pg_hba.conf"), "w") as f:
            f.write("local all all trust\nhost all all 127.0.0.1/32 trust\n")
        with open(os.path.join(data, "postgresql.conf"), "a") as f:
            f.write(f"# written by bench/pg_redis_bench.py\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.run_dir}'\nmax_connections = {max_connections}\n")
        self._give_to_postgres()
        self.proc = spawn(self._as_postgres([PG_BIN + "postgres", "-D", data]), work, "postgres")
        self.pid = self.proc.pid  # setpriv execs in place: this is the postmaster
        deadline = time.monotonic() + 30
        while subprocess.run([PG_BIN + "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]).returncode:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start; see {work}/postgres.log")
            time.sleep(0.1)
        # blip logs in as an ordinary role, as it would in production; that also keeps
        # superuser_reserved_connections free for this script's own psql reads.
        self.sql("CREATE ROLE blip LOGIN; GRANT CREATE ON SCHEMA public TO blip")

    @staticmethod
    def _as_postgres(argv):
        if os.geteuid() == 0:
            return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + argv
        return argv

    def _give_to_postgres(self):
        if os.geteuid() != 0:
            return
        import pwd
        pw = pwd.getpwnam("postgres")
        for root, dirs, files in os.walk(self.dir):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)

    def sql(self, statement):
        out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.run_dir,
                              "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-c", statement],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def connections(self):
        """Sessions opened in database postgres (PostgreSQL 14+ counts them per database)."""
        return int(self.sql("SELECT sessions FROM pg_stat_database WHERE datname = 'postgres'"))

    def cpu_ns(self):
        return tree_cpu_ns(self.pid)

    def held(self):
        return int(self.sql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'blip'"))

    def pgbench_connect_rate(self, seconds):
        """PostgreSQL's own rate of connect + SELECT 1 + disconnect, one client (pgbench -C)."""
        out = subprocess.run([PG_BIN + "pgbench", "-n", "-C", "-T", str(seconds), "-c", "1", "-h", "127.0.0.1",
                              "-p", str(self.port), "-U", "blip", "-f", "-", "postgres"],
                             input="SELECT 1;\n", capture_output=True, text=True, check=True).stdout
        tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))
        conn_ms = float(re.search(r"average connection time = ([0-9.]+) ms", out).group(1))
        return tps, conn_ms

    def stop(self):
        stop(self.proc, signal.SIGINT, timeout=30)  # fast shutdown


# --------------------------------------------------------------------------
# blip's database

def window_stats(db_path, t0_ms, t1_ms, interval, bucket_s=0):
    per_probe, total = read_samples(db_path)
    n_all = n_ok = n_down = run_down = run_all = 0
    lags = []
    buckets = {}
    for samples in per_probe.values():
        run_all += len(samples)
        run_down += sum(status == DOWN for _, status in samples)
        for (sent, status), lag in zip(samples, schedule_lags(samples, interval)):
            if t0_ms <= sent < t1_ms:
                n_all += 1
                n_ok += status in (UP, DEGRADED)
                n_down += status == DOWN
                lags.append(lag)
                if bucket_s:
                    buckets.setdefault(int((sent - t0_ms) // (bucket_s * 1000)), []).append((lag, status))
    lags.sort()
    per_bucket = []
    for k in sorted(buckets):
        if (k + 1) * bucket_s * 1000 > t1_ms - t0_ms:
            break  # a partial bucket at the end
        b = sorted(lag for lag, _ in buckets[k])
        per_bucket.append({"from_s": k * bucket_s,
                           "wall": time.strftime("%H:%M:%S", time.gmtime(t0_ms / 1000 + k * bucket_s)),
                           "achieved": sum(status in (UP, DEGRADED) for _, status in buckets[k]) / bucket_s,
                           "p99_ms": percentile(b, 0.99), "max_ms": b[-1]})

    return {"sent": n_all, "failed": n_down, "ok": n_ok, "run_down": run_down, "run_samples": run_all,
            "stored_total": total, "wlag_p50_ms": percentile(lags, 0.5), "wlag_p99_ms": percentile(lags, 0.99),
            "wlag_max_ms": lags[-1] if lags else -1, "buckets": per_bucket}


# --------------------------------------------------------------------------
# blip

def layout(rate):
    """(probes, interval_ms) whose rates add up to `rate` per second: 50 ms, blip's minimum."""
    return max(1, round(rate / 20)), 50


def probe_toml(kind, i, interval_ms, args, redis, pg):
    head = f'[[probe]]\nname = "{kind}{i:04d}"\ninterval = "{interval_ms}ms"\ntimeout = "{args.timeout_ms}ms"\n'
    if kind == "redis":
        return head + f'type = "redis"\naddress = "127.0.0.1:{redis.port}"\n\n'
    mode = "write" if "write" in kind else "read"
    reconnect = "true" if kind.endswith("reconnect") else "false"
    return (head + f'type = "postgres"\ndsn = "host=127.0.0.1 port={pg.port} dbname=postgres user=blip"\n'
            f'mode = "{mode}"\nreconnect_each = {reconnect}\n\n')


LEVEL = re.compile(r"^\S+ (\w+) (.*)$")


def log_summary(path):
    """Stop line fields; counts of outage lines; every other warning/error line (first few)."""
    stop_line, opened, closed, others = "", 0, 0, []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if "run: stopped" in line:
                stop_line = line
            m = LEVEL.match(line)
            if not m or m.group(1) == "info":
                if "outage: closed" in line:
                    closed += 1
                continue
            if "outage: opened" in line:
                opened += 1
            else:
                others.append(line)
    fields = dict(kv.split("=", 1) for kv in stop_line.split() if "=" in kv)
    return fields, opened, closed, others


def run_blip(args, work, kind, rate, duration, warmup, tag, redis, pg, bucket_s=0):
    n, interval_ms = layout(rate)
    phase = os.path.join(work, f"blip-{kind}-{tag}")
    os.makedirs(os.path.join(phase, "probes.d"), exist_ok=True)
    with open(os.path.join(phase, "probes.d", "bench.toml"), "w") as f:
        for i in range(n):
            f.write(probe_toml(kind, i, interval_ms, args, redis, pg))
    db = os.path.join(phase, "blip.db")
    log_path = os.path.join(work, f"blip-{kind}-{tag}.log")
    server = redis if kind == "redis" else pg
    overflows0 = listen_overflows()
    proc = spawn([args.blip, "run", "-c", os.path.join(phase, "probes.d"), "--db", db], work, f"blip-{kind}-{tag}")
    time.sleep(warmup)
    if proc.poll() is not None:
        raise RuntimeError(f"blip exited early ({proc.returncode}); see {log_path}")
    t0_ms, window = time.time() * 1000, ServerWindow(proc.pid, server)
    time.sleep(duration)
    t1_ms = time.time() * 1000
    window_s = (t1_ms - t0_ms) / 1000
    load = window.close(window_s)
    hwm = vm_hwm_kib(proc.pid)
    threads = thread_count(proc.pid)
    rc = stop(proc)
    run_overflows = listen_overflows() - overflows0
    fields, opened, closed, others = log_summary(log_path)
    stats = window_stats(db, t0_ms, t1_ms, interval_ms, bucket_s)
    con = sqlite3.connect(db)
    try:
        rollup_down = con.execute("SELECT coalesce(sum(down), 0) FROM rollups").fetchone()[0]
    finally:
        con.close()
    return {
        "tool": "blip", "kind": kind, "tag": tag, "target": rate, "probes": n, "interval_ms": interval_ms,
        "window_s": round(window_s, 3), **stats, "rollup_down": rollup_down,
        "stop_samples": int(fields.get("samples", -1)),
        "achieved": stats["ok"] / window_s,
        "cpu_ms_per_1000": load["cpu_ns"] / 1e6 / max(1, stats["sent"]) * 1000,
        "lag_p50_us": int(fields.get("schedule_lag_p50_us", -1)),
        "lag_p99_us": int(fields.get("schedule_lag_p99_us", -1)),
        "max_loop_lag_us": int(fields.get("max_loop_lag_us", -1)),
        "rss_mib": hwm / 1024, "threads": threads, "exit": rc,
        "outages_opened": opened, "run_overflows": run_overflows, "log_problems": others[:5], "log_problem_count": len(others),
        **load,
    }


# --------------------------------------------------------------------------
# blackbox_exporter

def run_blackbox(args, work, rate, duration, warmup, tag, redis):
    config = os.path.join(work, "blackbox.yml")
    write_blackbox_config(config, "redis_ping", "tcp", args.timeout_ms,
                          "# The tcp prober dials a fresh connection for every probe, sends PING, waits\n"
                          "# for a line matching ^+PONG and closes the connection.\n",
                          '      query_response:\n'
                          '        - send: "PING"\n'
                          '        - expect: "^\\\\+PONG"\n')
    row = run_exporter(args, work, tag, rate, duration, warmup, config, f"127.0.0.1:{redis.port}", "redis_ping",
                       lambda pid: ServerWindow(pid, redis), start_timeout=15.0)
    return {"tool": "blackbox", "kind": "redis", **row, "max_loop_lag_us": -1}


# --------------------------------------------------------------------------

def p99_ms(row):
    """blip: p99 schedule lag over the measured window, from the stored send times;
    blackbox_exporter: the driver's p99 lateness."""
    return row["wlag_p99_ms"] if row["tool"] == "blip" else row["lag_p99_us"] / 1000


def sustains(row, args):
    """At least 95% of the target as up samples, no down sample in the window, and
    p99 lag in the window under the limit."""
    return (row["achieved"] >= 0.95 * row["target"] and row["failed"] == 0 and not row.get("errors")
            and 0 <= p99_ms(row) < args.max_p99_ms)


def describe(row):
    if row["tool"] == "blip":
        lag = (f"lag run p50/p99={row['lag_p50_us'] / 1000:.2f}/{row['lag_p99_us'] / 1000:.2f}ms "
               f"window p50/p99/max={row['wlag_p50_ms']}/{row['wlag_p99_ms']}/{row['wlag_max_ms']}ms "
               f"maxloop={row['max_loop_lag_us'] / 1000:.1f}ms")
        extra = (f" held_conns={row['held_conns']} run_down={row['run_down']} outages={row['outages_opened']}"
                 f" blip_cores={row['tool_cores']:.2f}")
        if row["log_problem_count"]:
            extra += f" LOG_PROBLEMS={row['log_problem_count']}"
    else:
        lag = f"driver lateness p50/p99={row['lag_p50_us'] / 1000:.2f}/{row['lag_p99_us'] / 1000:.2f}ms"
        extra = f" errors={row['errors']} dropped={row['dropped']} exporter_cores={row['tool_cores']:.2f}"
    return (f"achieved={row['achieved']:8.1f}/s ok={row['ok']} failed={row['failed']} "
            f"cpu/1000={row['cpu_ms_per_1000']:6.1f}ms {lag} rss={row['rss_mib']:.1f}MiB "
            f"new_conns={row['server_conns']} server={row['server_cores']:.2f} "
            f"other={row['other_cores']:.2f} overflows={row['listen_overflows']}{extra}")


def single_runs(args, work, kind, rates, redis, pg, stop_at_pass):
    rows, passed = [], None
    for rate in rates:
        row = run_blip(args, work, kind, rate, args.search_duration, args.warmup, f"search-{rate}", redis, pg)
        ok = sustains(row, args)
        row["search"] = True
        row["rep"] = -1
        rows.append(row)
        log_row(row)
        say(f"   single {kind} {rate:>6}/s probes={row['probes']} {describe(row)} -> {'pass' if ok else 'FAIL'}")
        for line in row["log_problems"]:
            say(f"      log: {line}")
        if ok and passed is None:
            passed = rate
            if stop_at_pass:
                break
    return passed, rows


LABELS = {
    "redis": "Redis PING",
    "pg-read": "Postgres read, persistent",
    "pg-write": "Postgres write, persistent",
    "pg-read-reconnect": "Postgres read, `reconnect_each`",
    "pg-write-reconnect": "Postgres write, `reconnect_each`",
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--blip", required=True)
    p.add_argument("--blackbox", default="prometheus-blackbox-exporter")
    p.add_argument("--work", required=True, help="scratch directory (logs, databases, configs)")
    p.add_argument("--duration", type=float, default=10.0, help="measured window per phase, seconds")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before the window opens")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--timeout-ms", type=int, default=1000)
    p.add_argument("--max-p99-ms", type=float, default=5.0)
    p.add_argument("--compare-rate", type=int, default=1000, help="blip vs blackbox_exporter on Redis")
    p.add_argument("--redis-rates", default="20000,15000,10000,5000",
                   help="blip-only Redis rates tried in order; the first that passes is repeated")
    p.add_argument("--search-duration", type=float, default=8.0, help="window of the single (search) runs")
    p.add_argument("--pg-rate", type=int, default=2000, help="persistent-connection Postgres rate")
    p.add_argument("--pg-reconnect-rates", default="100,200", help="reconnect_each rates, repeated")
    p.add_argument("--pg-reconnect-single", default="500", help="reconnect_each read rates run once")
    p.add_argument("--pg-max-connections", type=int, default=300)
    p.add_argument("--long-duration", type=float, default=65.0,
                   help="window of the long runs (highest Redis rate, Postgres read at --pg-rate); 0 skips them")
    p.add_argument("--pgbench-seconds", type=int, default=5, help="pgbench -C reference; 0 skips it")
    p.add_argument("--json", help="also write all raw rows here")
    args = p.parse_args()
    open_log(args.work)
    exit_on_signals()
    began = time.monotonic()
    redis = pg = None
    try:
        redis = Redis(args.work)
        pg = Postgres(args.work, args.pg_max_connections)
        say(f"redis-server {redis.version()} on 127.0.0.1:{redis.port} (maxclients 10000); "
            f"{pg.sql('SELECT version()').split(' on ')[0]} on 127.0.0.1:{pg.port}, "
            f"max_connections={pg.sql('SHOW max_connections')}, fsync={pg.sql('SHOW fsync')}, "
            f"synchronous_commit={pg.sql('SHOW synchronous_commit')}, shared_buffers={pg.sql('SHOW shared_buffers')}; "
            f"open files limit {os.sysconf('SC_OPEN_MAX')}; load average at start {open('/proc/loadavg').read().split()[:3]}")
        pgbench = None
        if args.pgbench_seconds:
            c0, t0 = pg.cpu_ns(), time.monotonic()
            tps, conn_ms = pg.pgbench_connect_rate(args.pgbench_seconds)
            pg_cores = (pg.cpu_ns() - c0) / 1e9 / (time.monotonic() - t0)
            pgbench = (tps, conn_ms, pg_cores)
            say(f"== reference: pgbench -C (connect, SELECT 1, disconnect; one client): {tps:.0f}/s, "
                f"average connection time {conn_ms:.2f} ms, postgres {pg_cores:.2f} cores "
                f"= {pg_cores / tps * 1e6:.0f} µs of server CPU per connection")

        say(f"== single runs (blip alone, {args.search_duration:g}s window each; pass = >= 95% of target up, "
            f"no down sample in the window, window p99 lag < {args.max_p99_ms:g} ms)")
        max_rate, single_rows = single_runs(args, args.work, "redis", [int(r) for r in args.redis_rates.split(",")],
                                            redis, pg, stop_at_pass=True)
        if args.pg_reconnect_single:
            _, more = single_runs(args, args.work, "pg-read-reconnect",
                                  [int(r) for r in args.pg_reconnect_single.split(",")], redis, pg, stop_at_pass=False)
            single_rows += more
        if args.long_duration:
            say(f"== long runs: {args.long_duration:g}s window, so that it spans a minute boundary (blip packs "
                "samples per probe and minute); achieved and p99 lag per 10 s")
            for kind, rate in (("redis", int(args.redis_rates.split(",")[0])), ("pg-read", args.pg_rate)):
                row = run_blip(args, args.work, kind, rate, args.long_duration, args.warmup, f"long-{rate}", redis, pg,
                               bucket_s=10)
                row["search"] = "long"
                row["rep"] = -1
                single_rows.append(row)
                log_row(row)
                say(f"   long {kind} {rate:>6}/s probes={row['probes']} {describe(row)}")
                say("      per 10 s (UTC start, achieved/s, p99 lag ms, max lag ms): " + "; ".join(
                    f"{b['wall']} {b['achieved']:.0f} {b['p99_ms']} {b['max_ms']}" for b in row["buckets"]))
                for line in row["log_problems"]:
                    say(f"      log: {line}")
        rows = []
        phases = [("redis", "blip", args.compare_rate), ("redis", "blackbox", args.compare_rate)]
        if max_rate:
            say(f"   Redis: the repetitions use {max_rate}/s, the first rate blip sustained")
            phases.append(("redis", "blip", max_rate))
        else:
            say("   Redis: blip sustained none of the rates tried; the repetitions use the highest one anyway")
            phases.append(("redis", "blip", int(args.redis_rates.split(",")[0])))
        phases += [("pg-read", "blip", args.pg_rate), ("pg-write", "blip", args.pg_rate)]
        for r in [int(x) for x in args.pg_reconnect_rates.split(",") if x]:
            phases += [("pg-read-reconnect", "blip", r), ("pg-write-reconnect", "blip", r)]
        say(f"== {args.reps} repetitions x {len(phases)} phases, {args.duration:g}s window after {args.warmup:g}s "
            "warm-up; the phase order is reversed in every other repetition")
        for rep in range(args.reps):
            order = phases if rep % 2 == 0 else phases[::-1]
            for kind, tool, rate in order:
                tag = f"r{rep}-{rate}"
                if tool == "blip":
                    row = run_blip(args, args.work, kind, rate, args.duration, args.warmup, tag, redis, pg)
                else:
                    row = run_blackbox(args, args.work, rate, args.duration, args.warmup, tag, redis)
                row["rep"] = rep
                rows.append(row)
                log_row(row)
                say(f"   rep {rep + 1} {kind:<18} {tool:<8} {rate:>6}/s {describe(row)}")
                for line in row.get("log_problems", []):
                    say(f"      log: {line}")
        redis.stop()
        pg.stop()
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"pgbench": pgbench, "rows": single_rows + rows}, f, indent=1)

        # ---- summary table: medians over the repetitions
        say("")
        say(f"Medians of {args.reps} repetitions, {args.duration:g} s measured window each "
            f"(wall time of the whole run: {time.monotonic() - began:.0f} s).")
        say("")
        say("| workload | tool | target/s | probes × 50 ms | achieved/s | CPU ms per 1,000 probes | "
            "p99 lag in window ms | blip's lag p50 / p99 ms (whole run) | tool CPU s/s | "
            "server CPU s/s | connections held | new connections/s | down in window | held the rate |")
        say("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        seen = []
        for kind, tool, rate in phases:
            if (kind, tool, rate) in seen:
                continue
            seen.append((kind, tool, rate))
            rs = [r for r in rows if r["kind"] == kind and r["tool"] == tool and r["target"] == rate]
            med = lambda f: statistics.median(f(r) for r in rs)  # noqa: E731
            down = sum(r["failed"] + r.get("errors", 0) for r in rs)
            if tool == "blip":
                name, shape = "blip", str(rs[0]["probes"])
                whole = f"{med(lambda r: r['lag_p50_us']) / 1000:.2f} / {med(lambda r: r['lag_p99_us']) / 1000:.2f}"
                held = f"{med(lambda r: r['held_conns']):.0f}"
            else:
                name, shape, whole, held = "blackbox_exporter", "–", "–", "–"
            say(f"| {LABELS[kind]} | {name} | {rate} | {shape} | {med(lambda r: r['achieved']):.0f} | "
                f"{med(lambda r: r['cpu_ms_per_1000']):.0f} | "
                f"{'' if tool == 'blip' else '('}{med(p99_ms):.1f}{'' if tool == 'blip' else ')'} | {whole} | "
                f"{med(lambda r: r['tool_cores']):.2f} | {med(lambda r: r['server_cores']):.2f} | {held} | "
                f"{med(lambda r: r['server_conns'] / r['window_s']):.0f} | {down} | "
                f"{sum(sustains(r, args) for r in rs)}/{len(rs)} |")
        b = sorted((r for r in rows if r["kind"] == "redis" and r["tool"] == "blip" and r["target"] == args.compare_rate),
                   key=lambda r: r["rep"])
        x = sorted((r for r in rows if r["tool"] == "blackbox"), key=lambda r: r["rep"])
        ratios = [rb["cpu_ms_per_1000"] / rx["cpu_ms_per_1000"] for rb, rx in zip(b, x)]
        if ratios:
            say("")
            say(f"Redis at {args.compare_rate}/s: blip CPU per probe ÷ blackbox_exporter CPU per probe = "
                f"**{statistics.median(ratios):.2f}** (reps: {', '.join(f'{r:.2f}' for r in ratios)}); blip keeps "
                "its connections open, blackbox_exporter dials a new one for every probe.")
        say("")
        say("p99 lag in window: blip's, from the stored send times (±1 ms); blackbox_exporter's in parentheses is "
            "the driver's lateness. blip's lag from its stop line covers the whole run, start-up included.")
        say(f"'held the rate': >= 95% of target up, no down sample in the window, p99 lag in window < "
            f"{args.max_p99_ms:g} ms. Down samples are summed over the repetitions' windows.")
        say("")
        say("Every run ('cores' = CPU seconds per second over the window; 'other' = the machine's busy "
            "time minus the tool, the server and this script):")
        say("")
        say("| rep | workload | tool | target/s | achieved/s | down in window / whole run | CPU ms/1000 "
            "| lag in window p50 / p99 / max ms | blip's lag p50 / p99 ms | max loop lag ms | tool cores | RSS MiB "
            "| server cores | held conns | new conns | listen overflows | driver cores | other cores | steal cores |")
        say("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in single_rows + rows:
            rep = {True: "single", "long": "long"}.get(r.get("search"), r["rep"] + 1)
            if r["tool"] == "blip":
                down = f"{r['failed']} / {r['run_down']}"
                wl = f"{r['wlag_p50_ms']} / {r['wlag_p99_ms']} / {r['wlag_max_ms']}"
                bl = f"{r['lag_p50_us'] / 1000:.2f} / {r['lag_p99_us'] / 1000:.2f}"
                ll, held = f"{r['max_loop_lag_us'] / 1000:.1f}", r["held_conns"]
            else:
                down = f"{r['failed'] + r['errors']}"
                wl = f"({r['lag_p50_us'] / 1000:.2f} / {r['lag_p99_us'] / 1000:.2f})"
                bl = ll = held = "–"
            say(f"| {rep} | {r['kind']} | {r['tool']} | {r['target']} | {r['achieved']:.0f} | {down} | "
                f"{r['cpu_ms_per_1000']:.0f} | {wl} | {bl} | {ll} | {r['tool_cores']:.2f} | {r['rss_mib']:.1f} | "
                f"{r['server_cores']:.2f} | {held} | {r['server_conns']} | {r['listen_overflows']} | "
                f"{r['driver_cores']:.2f} | {r['other_cores']:.2f} | {r['steal_cores']:.2f} |")
        say("")
        for r in single_rows + rows:
            if r["tool"] != "blip":
                continue
            if r["run_down"] or r["log_problem_count"] or r["exit"] != 0 or r["stop_samples"] != r["stored_total"]:
                say(f"blip {r['kind']} {r['target']}/s {r['tag']}: exit={r['exit']} stop-line samples="
                    f"{r['stop_samples']} stored={r['stored_total']} down in whole run={r['run_down']} "
                    f"(rollups {r['rollup_down']}) outages opened={r['outages_opened']} other warnings/errors="
                    f"{r['log_problem_count']} listen overflows in window / whole run={r['listen_overflows']} / {r['run_overflows']}")
        over = max((r["tool_cores"] for r in single_rows + rows if r["tool"] == "blip"), default=0)
        say(f"blip's largest CPU/wall over a window: {over:.2f} cores ({'within' if over < 1 else 'NOT within'} one core)")
    finally:
        kill_children()


if __name__ == "__main__":
    main()
