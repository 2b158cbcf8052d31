#!/usr/bin/env python3
"""blip's store writer thread (src/store/store_writer.cpp): what one write costs
through the minute at 20,000 samples/s, and what a locked database does to the
queue, to the writes and to the probe loop.

Run through bench/store_bench.sh, which builds blip (Release) and hands this
script the binary and a scratch directory. Python 3 standard library only; the
helpers are in bench/common.py. Everything talks to 127.0.0.1 only, and every
loop is bounded in count and time.

Both phases run a fresh blip with Redis probes at 50 ms against one private
redis-server, with --log-level debug so that the writer logs every write
(`store: wrote samples=N rows=M seconds=S`; a write's start is its line's time
less S). Schedule lag is worked out from the stored send times
(common.schedule_lags, good to about 1 ms).

  * steady: --probes probes (20,000 samples/s), a --duration window after a
    --warmup, long enough to span two minute boundaries. The first write that
    starts in a minute merges the closed minute's part rows; it is reported on
    its own, every other write by the 10 s of the minute it started in.
    No blip thread has a name of its own. The writer and the feed's refresher
    are the two that run at nice 10; the writer is the later of them (higher
    tid), and the refresher idles in the window (no feed request is made), which
    the report shows as a check.
  * locked: --lock-probes probes; after a --warmup another process (the sqlite3
    shell) holds BEGIN EXCLUSIVE on blip's database for --lock-seconds, as
    tests/system/database_faults_test.cpp does, and /metrics is read every 200 ms until
    the queue has drained. /metrics shows the snapshot the loop publishes once a
    second, so the drain time is good to about a second. And
    blip_store_pending_samples counts the queue only: a batch the writer has
    taken and is trying to write is not in it, so the gauge can fall while the
    lock still holds. The writes that stored the backlog come from the log. A
    try that fails has waited out SQLite's busy timeout (5 s in src/store/store.cpp),
    and blip_store_flush_seconds counts it.
"""
import argparse
import calendar
import http.client
import json
import math
import os
import re
import sqlite3
import time

from common import (DEGRADED, DOWN, UP, Redis, Window, exit_on_signals, free_port, kill_children, open_log,
                    percentile, read_samples, say, schedule_lags, spawn, stat_fields, stop, vm_hwm_kib, wait_port)

INTERVAL_MS = 50
WRITER_NICE = 10  # kWriterNice in src/store/store_writer.cpp; the feed's refresher uses it too
LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z (\w+) (.*)$")
WROTE = re.compile(r"store: wrote samples=(\d+) rows=(\d+) seconds=([0-9.]+)$")


class Blip:
    """A fresh blip with `probes` Redis probes, its own database and feed port."""

    def __init__(self, args, name, probes, redis):
        d = os.path.join(args.work, name)
        os.makedirs(os.path.join(d, "probes.d"))
        with open(os.path.join(d, "probes.d", "bench.toml"), "w") as f:
            for i in range(probes):
                f.write(f'[[probe]]\nname = "redis-{i}"\ntype = "redis"\naddress = "127.0.0.1:{redis.port}"\n'
                        f'interval = "{INTERVAL_MS}ms"\ntimeout = "{args.timeout_ms}ms"\n\n')
        self.probes, self.db, self.port = probes, os.path.join(d, "blip.db"), free_port()
        self.log = os.path.join(args.work, f"{name}.log")
        self.proc = spawn([args.blip, "run", "-c", os.path.join(d, "probes.d"), "--db", self.db,
                           "--listen", f"127.0.0.1:{self.port}", "--log-level", "debug"], args.work, name)
        wait_port(self.port, self.proc, timeout=30)
        self.pid = self.proc.pid

    def metrics(self):
        """({name: value} of the unlabelled samples, {name: [(le, cumulative count)]} of the unlabelled histograms)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)  # http.client: no proxy from the env
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        values, buckets = {}, {}
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            m = re.match(r'^(\w+)_bucket\{le="([^"]+)"\} (\S+)$', line)
            if m:
                buckets.setdefault(m[1], []).append((float(m[2]), float(m[3])))
            elif "{" not in line:
                name, _, value = line.partition(" ")
                values[name] = float(value)
        return values, buckets

    def nice_threads(self):
        """Thread ids at the writer's nice value, oldest first."""
        tids = sorted(int(t) for t in os.listdir(f"/proc/{self.pid}/task"))
        return [t for t in tids if int(stat_fields(f"{self.pid}/task/{t}")[16]) == WRITER_NICE]

    def thread_ns(self, tid):
        with open(f"/proc/{self.pid}/task/{tid}/schedstat") as f:
            return int(f.read().split()[0])

    def stop(self):
        return stop(self.proc, timeout=60)


def read_log(path):
    """The writer's writes, the lines above info, and the stop line's fields."""
    writes, problems, stopped = [], [], {}
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(line.rstrip("\n"))
            if not m:
                continue
            at_ms = calendar.timegm(time.strptime(m[1], "%Y-%m-%dT%H:%M:%S")) * 1000 + int(m[2])
            level, text = m[3], m[4]
            wrote = WROTE.match(text)
            if wrote:
                seconds = float(wrote[3])
                writes.append({"start_ms": at_ms - seconds * 1000, "end_ms": at_ms, "samples": int(wrote[1]),
                               "rows": int(wrote[2]), "seconds": seconds})
            elif text.startswith("run: stopped"):
                stopped = dict(kv.split("=", 1) for kv in text.split() if "=" in kv)
            elif level not in ("trace", "debug", "info"):
                problems.append({"at_ms": at_ms, "line": line.strip()})
    return writes, problems, stopped


def sample_stats(db, t0_ms, t1_ms, bucket_ms=None):
    """Samples sent in [t0, t1) and their schedule lag (ms), also per bucket_ms from t0; gaps
    of more than two intervals between a probe's consecutive sends anywhere in the run;
    everything stored."""
    per_probe, stored = read_samples(db)
    sent = ok = down = gaps = 0
    lags, buckets = [], {}
    for samples in per_probe.values():
        for (sent_ms, status), lag in zip(samples, schedule_lags(samples, INTERVAL_MS)):
            if t0_ms <= sent_ms < t1_ms:
                sent += 1
                ok += status in (UP, DEGRADED)
                down += status == DOWN
                lags.append(lag)
                if bucket_ms:
                    buckets.setdefault(int((sent_ms - t0_ms) // bucket_ms), []).append((lag, status))
        gaps += sum(b[0] - a[0] > 2 * INTERVAL_MS for a, b in zip(samples, samples[1:]))
    lags.sort()
    per_bucket = {k: {"ok": sum(s in (UP, DEGRADED) for _, s in v),
                      "lag_p99_ms": percentile(sorted(x for x, _ in v), 0.99)} for k, v in buckets.items()}
    return {"sent": sent, "ok": ok, "down": down, "gaps": gaps, "stored": stored, "lag_p50_ms": percentile(lags, 0.5),
            "lag_p99_ms": percentile(lags, 0.99), "lag_max_ms": lags[-1] if lags else -1}, per_bucket


def io_stall_us():
    """Time so far in which some task waited for I/O (Linux pressure stall information), µs."""
    try:
        with open("/proc/pressure/io") as f:
            return int(f.readline().rsplit("total=", 1)[1])
    except (FileNotFoundError, IndexError):
        return 0


def quantile(buckets, q):
    """Prometheus' histogram_quantile, linear inside the bucket the q-th observation falls
    in, with that bucket's bounds: (estimate, lower, upper); None without observations."""
    total = buckets[-1][1] if buckets else 0
    if not total:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            return lower if le == math.inf else lower + (le - lower) * (rank - below) / (count - below), lower, le
        lower, below = le, count
    return None


def since(after, before):
    return [(le, c1 - c0) for (le, c1), (_, c0) in zip(after, before)]


def spread(values):
    v = sorted(values)
    return {"n": len(v), "p50": percentile(v, 0.5), "p99": percentile(v, 0.99), "max": v[-1] if v else -1}


def check_stop(name, rc, stopped, stats, problems, expected=()):
    """The problems of one phase's run, as lines."""
    out = [f"{name}: blip exited with {rc}"] if rc != 0 else []
    if int(stopped.get("samples", -1)) != stats["stored"]:
        out.append(f"{name}: stop line says samples={stopped.get('samples')}, the database holds {stats['stored']}")
    out += [f"{name}: log: {p['line']}" for p in problems if not any(e in p["line"] for e in expected)][:5]
    return out


# --------------------------------------------------------------------------

def steady(args, redis):
    rate = args.probes * 1000 // INTERVAL_MS
    say(f"== steady: {args.probes} Redis probes × {INTERVAL_MS} ms ({rate}/s), {args.duration:g} s window after "
        f"{args.warmup:g} s warm-up")
    blip = Blip(args, "blip-steady", args.probes, redis)
    time.sleep(args.warmup)
    nice = blip.nice_threads()
    writer = nice[-1] if nice else None

    def mark():
        return time.time() * 1000, [blip.thread_ns(t) for t in nice], io_stall_us()

    def load(a, b, window):
        s = (b[0] - a[0]) / 1000
        cpu = window.close(s)
        return {"blip_cores": cpu.pop("cpu_ns") / 1e9 / s, **cpu, "io_stall": (b[2] - a[2]) / 1e6 / s,
                "nice_cores": [(y - x) / 1e9 / s for x, y in zip(a[1], b[1])]}

    # Also a reading every 10 s, so that a slow stretch can be told from a busy machine.
    first, whole_window = mark(), Window(blip.pid, redis.cpu_ns, "redis_cores")
    t0_ms, parts = first[0], []
    for k in range(1, math.ceil(args.duration / 10) + 1):
        a, part = mark(), Window(blip.pid, redis.cpu_ns, "redis_cores")
        time.sleep(max(0.0, (t0_ms + min(k * 10, args.duration) * 1000 - time.time() * 1000) / 1000))
        b = mark()
        parts.append((a[0], b[0], load(a, b, part)))
    last = mark()
    whole = load(first, last, whole_window)
    t1_ms = last[0]
    window_s = (t1_ms - t0_ms) / 1000
    values, _ = blip.metrics()
    hwm = vm_hwm_kib(blip.pid)
    rc = blip.stop()
    writes, problems, stopped = read_log(blip.log)
    stats, lag_by_ten = sample_stats(blip.db, t0_ms, t1_ms, 10000)

    minute = lambda w: int(w["start_ms"] // 60000)  # noqa: E731
    in_window, merges = [], []
    for prev, w in zip(writes, writes[1:]):
        if t0_ms <= w["start_ms"] < t1_ms:
            (merges if minute(w) > minute(prev) else in_window).append(w)
    by_tens = []
    for k in range(6):
        ws = [w for w in in_window if k * 10000 <= w["start_ms"] % 60000 < (k + 1) * 10000]
        by_tens.append({"from_s": k * 10, "seconds": spread(w["seconds"] for w in ws),
                        "samples_p50": percentile(sorted(w["samples"] for w in ws), 0.5)})
    timeline = []
    for k, (a_ms, b_ms, cpu) in enumerate(parts):
        ws = [w["seconds"] for w in writes if a_ms <= w["start_ms"] < b_ms]
        lag = lag_by_ten.get(k, {"ok": 0, "lag_p99_ms": -1})
        timeline.append({"utc": time.strftime("%H:%M:%S", time.gmtime(a_ms / 1000)),
                         "achieved": lag["ok"] / ((b_ms - a_ms) / 1000), "lag_p99_ms": lag["lag_p99_ms"],
                         "write_max_s": max(ws, default=-1), **cpu})
    n_writes = len(in_window) + len(merges)
    writer_cores = whole["nice_cores"][-1] if writer else None
    row = {
        "probes": args.probes, "target": rate, "window_s": round(window_s, 3), **stats,
        "achieved": stats["ok"] / window_s, "writes": n_writes,
        "write_seconds": spread(w["seconds"] for w in in_window), "by_tens": by_tens,
        "merges": [{"start_utc": time.strftime("%H:%M:%S", time.gmtime(w["start_ms"] / 1000)),
                    "seconds": w["seconds"], "samples": w["samples"]} for w in merges],
        "merge_seconds": spread(w["seconds"] for w in merges),
        "samples_per_write": spread(w["samples"] for w in in_window), **whole,
        "writer_tid": writer, "writer_cores": writer_cores,
        "writer_ms_per_write": writer_cores * window_s * 1000 / n_writes if writer and n_writes else None,
        "timeline": timeline, "stop_lag_p99_us": int(stopped.get("schedule_lag_p99_us", -1)),
        "max_loop_lag_us": int(stopped.get("max_loop_lag_us", -1)),
        "dropped": values.get("blip_store_dropped_samples_total", -1), "rss_mib": hwm / 1024, "exit": rc,
    }
    row["problems"] = check_stop("steady", rc, stopped, stats, problems)
    if row["dropped"] != 0:
        row["problems"].append(f"steady: {row['dropped']:.0f} samples dropped")
    busy = [t["utc"] for t in timeline if t["other_cores"] > 0.1]
    if busy:
        row["problems"].append(f"steady: the machine did other work (> 0.1 cores) in the 10 s from {', '.join(busy)}")

    ws, spw = row["write_seconds"], row["samples_per_write"]
    say(f"   achieved {row['achieved']:.0f}/s ({stats['sent']} sent, {stats['down']} down) in {window_s:.1f} s; "
        f"schedule lag in window p50/p99/max {stats['lag_p50_ms']}/{stats['lag_p99_ms']}/{stats['lag_max_ms']} ms; "
        f"max loop lag (whole run) {row['max_loop_lag_us'] / 1000:.1f} ms; gaps > 2 intervals {stats['gaps']}")
    say(f"   {n_writes} writes in window, {len(merges)} of them minute merges; per write (merges apart) "
        f"p50/p99/max {ws['p50'] * 1000:.1f}/{ws['p99'] * 1000:.1f}/{ws['max'] * 1000:.1f} ms, "
        f"samples p50 {spw['p50']} max {spw['max']}")
    say("   minute merges: " + ("; ".join(f"{m['start_utc']} {m['seconds'] * 1000:.1f} ms ({m['samples']} samples)"
                                         for m in row["merges"]) or "none"))
    say("   per 10 s of the minute, ms p50/p99/max (n): " + "; ".join(
        f"{b['from_s']}–{b['from_s'] + 10} s {b['seconds']['p50'] * 1000:.1f}/{b['seconds']['p99'] * 1000:.1f}/"
        f"{b['seconds']['max'] * 1000:.1f} ({b['seconds']['n']})" for b in by_tens if b["seconds"]["n"]))
    if writer:
        say(f"   CPU: blip {row['blip_cores']:.3f} cores; writer thread (tid {writer}) {writer_cores:.3f} cores "
            f"= {row['writer_ms_per_write']:.1f} ms per write; the other nice-{WRITER_NICE} thread(s) (the feed's "
            f"refresher, idle here): {', '.join(f'{c:.3f}' for c in whole['nice_cores'][:-1]) or 'none'} cores")
    else:
        say(f"   CPU: blip {row['blip_cores']:.3f} cores (no thread at nice {WRITER_NICE} found: whole process only)")
    say(f"   machine: redis {whole['redis_cores']:.2f}, driver {whole['driver_cores']:.2f}, other "
        f"{whole['other_cores']:.2f}, steal {whole['steal_cores']:.2f} cores; some task waiting for I/O "
        f"{whole['io_stall'] * 100:.1f}% of the time")
    say("   per 10 s of the window (UTC start, achieved/s, p99 lag ms, slowest write ms, blip/other/steal cores, "
        "I/O wait %): " + "; ".join(
            f"{t['utc']} {t['achieved']:.0f} {t['lag_p99_ms']} {t['write_max_s'] * 1000:.0f} "
            f"{t['blip_cores']:.2f}/{t['other_cores']:.2f}/{t['steal_cores']:.2f} {t['io_stall'] * 100:.0f}"
            for t in timeline))
    say(f"   rss {row['rss_mib']:.0f} MiB, dropped {row['dropped']:.0f}, exit {rc}")
    return row


def locked(args, redis):
    per_s = args.lock_probes * 1000 // INTERVAL_MS
    say(f"== locked: {args.lock_probes} Redis probes × {INTERVAL_MS} ms ({per_s}/s); after {args.warmup:g} s another "
        f"process holds BEGIN EXCLUSIVE on the database for {args.lock_seconds:g} s; /metrics every 200 ms")
    blip = Blip(args, "blip-locked", args.lock_probes, redis)
    time.sleep(args.warmup)
    _, before = blip.metrics()
    # .timeout lets BEGIN wait out a write of blip's in progress; the two dates bracket the lock as held.
    locker = spawn(["sqlite3", "-bail", blip.db, ".timeout 10000", "BEGIN EXCLUSIVE;",
                    "INSERT OR REPLACE INTO meta(key, value) VALUES('lock', 1);", ".shell date +%s%3N",
                    f".shell sleep {args.lock_seconds:g}", "ROLLBACK;", ".shell date +%s%3N"], args.work, "locker")
    polls, unlocked = [], None
    deadline = time.monotonic() + 10 + args.lock_seconds + args.drain_limit
    while time.monotonic() < deadline:
        began = time.monotonic()
        at_ms = time.time() * 1000
        values, _ = blip.metrics()
        polls.append({"at_ms": at_ms, "pending": values["blip_store_pending_samples"],
                      "bytes": values["blip_store_pending_bytes"], "dropped": values["blip_store_dropped_samples_total"]})
        if unlocked is None and locker.poll() is not None:
            unlocked = time.monotonic()
        # Past the unlock, a second to let the backlog's write be logged and the gauge settle.
        if unlocked is not None and time.monotonic() - unlocked > 1 and polls[-1]["pending"] < per_s:
            break
        time.sleep(max(0.0, 0.2 - (time.monotonic() - began)))
    values, after = blip.metrics()
    rc_locker = stop(locker)
    with open(os.path.join(args.work, "locker.log")) as f:
        stamps = [int(x) for x in f.read().split() if x.isdigit()]
    if rc_locker != 0 or len(stamps) != 2:
        raise RuntimeError(f"the locker failed ({rc_locker}); see {args.work}/locker.log")
    lock0, lock1 = stamps
    rc = blip.stop()
    writes, problems, stopped = read_log(blip.log)
    stats, _ = sample_stats(blip.db, lock0, lock1)
    con = sqlite3.connect(blip.db)
    try:
        blind = con.execute("SELECT count(*) FROM blind_windows").fetchone()[0]
    finally:
        con.close()

    under = [p for p in polls if lock0 <= p["at_ms"] <= lock1]
    drained = next((p for p in polls if p["at_ms"] >= lock1 and p["pending"] < per_s), None)
    backlog = [w for w in writes if w["end_ms"] >= lock0][:2]
    flush = after["blip_store_flush_seconds"]
    loop = since(after["blip_loop_lag_seconds"], before["blip_loop_lag_seconds"])
    row = {
        "probes": args.lock_probes, "target": per_s, "lock_s": (lock1 - lock0) / 1000, **stats,
        "expected": args.lock_probes * (lock1 - lock0) // INTERVAL_MS,
        "polls_locked": len(under), "max_pending": max((p["pending"] for p in under), default=-1),
        "max_pending_bytes": max((p["bytes"] for p in under), default=-1),
        "drained_after_s": (drained["at_ms"] - lock1) / 1000 if drained else None,
        "backlog_writes": [{"samples": w["samples"], "seconds": w["seconds"],
                            "started_s": (w["start_ms"] - lock0) / 1000,
                            "ended_after_unlock_s": (w["end_ms"] - lock1) / 1000} for w in backlog],
        "failed_writes": sum("store: write failed" in p["line"] for p in problems),
        "flush_count": flush[-1][1], "flush_p50_s": quantile(flush, 0.5)[0], "flush_p99": quantile(flush, 0.99),
        "loop_lag_p99_s": quantile(loop, 0.99)[0], "dropped": values["blip_store_dropped_samples_total"],
        "blind_windows": blind, "stop_lag_p99_us": int(stopped.get("schedule_lag_p99_us", -1)),
        "max_loop_lag_us": int(stopped.get("max_loop_lag_us", -1)), "exit": rc,
    }
    row["problems"] = check_stop("locked", rc, stopped, stats, problems,
                                 expected=("store: write failed", "store: writing again"))
    if row["dropped"] or row["gaps"] or blind or stats["sent"] < row["expected"] - args.lock_probes:
        row["problems"].append(f"locked: dropped {row['dropped']:.0f}, gaps {row['gaps']}, blind windows {blind}, "
                               f"{stats['sent']} samples in the locked span of {row['expected']} due")
    if drained is None:
        row["problems"].append(f"locked: the queue did not drain within {args.drain_limit:g} s of the unlock")

    say(f"   lock held {row['lock_s']:.2f} s; {len(under)} polls under it: max pending {row['max_pending']:.0f} "
        f"samples, {row['max_pending_bytes'] / 1e6:.2f} MB; {row['failed_writes']} failed write(s) logged")
    say(f"   pending < {per_s} (one second's samples) "
        + (f"{row['drained_after_s']:.2f} s after the unlock" if drained else "never") + "; first writes after the "
        "lock took: " + "; ".join(f"{w['samples']} samples in {w['seconds']:.3f} s (began {w['started_s']:.2f} s "
                                  f"into the lock, ended {w['ended_after_unlock_s']:+.2f} s from the unlock)"
                                  for w in row["backlog_writes"]))
    say(f"   blip_store_flush_seconds over the phase: {row['flush_count']:.0f} tries, p50 ≈ {row['flush_p50_s']:.4f} s, "
        f"p99 ≈ {row['flush_p99'][0]:.2f} s (inside its bucket, {row['flush_p99'][1]:g}–{row['flush_p99'][2]:g} s; "
        "failed tries count too)")
    say(f"   locked span: {stats['sent']} samples sent of {row['expected']} due, {stats['down']} down, schedule lag "
        f"p50/p99/max {stats['lag_p50_ms']}/{stats['lag_p99_ms']}/{stats['lag_max_ms']} ms; loop lag p99 ≈ "
        f"{row['loop_lag_p99_s'] * 1000:.2f} ms (lock to drain, histogram); whole run: gaps > 2 intervals "
        f"{stats['gaps']}, dropped {row['dropped']:.0f}, blind windows {blind}, stored {stats['stored']}, "
        f"max loop lag {row['max_loop_lag_us'] / 1000:.1f} ms, exit {rc}")
    return row


def tables(s, lk):
    ms = lambda v: f"{v * 1000:.1f}" if v >= 0 else "–"  # noqa: E731  (an empty spread is -1)
    if s:
        say("")
        say(f"Steady: {s['probes']} Redis probes × 50 ms ({s['target']:,}/s), {s['window_s']:.0f} s window. "
            "Cost of one write (one transaction) by the 10 s of the minute it started in; the minute-merge "
            "writes apart. With 100 writes or fewer in a row, p99 is its slowest.")
        say("")
        say("| writes starting at | writes | samples per write (p50) | ms p50 | ms p99 | ms max |")
        say("|---|---:|---:|---:|---:|---:|")
        for b in s["by_tens"]:
            c = b["seconds"]
            say(f"| {b['from_s']}–{b['from_s'] + 10} s | {c['n']} | {b['samples_p50']} | {ms(c['p50'])} | "
                f"{ms(c['p99'])} | {ms(c['max'])} |")
        m = s["merge_seconds"]
        say(f"| minute merge (first write of a minute) | {m['n']} | "
            f"{percentile(sorted(x['samples'] for x in s['merges']), 0.5)} | {ms(m['p50'])} | – | {ms(m['max'])} |")
        w = s["write_seconds"]
        say(f"| all but the merges | {w['n']} | {s['samples_per_write']['p50']} | {ms(w['p50'])} | {ms(w['p99'])} | "
            f"{ms(w['max'])} |")
        say("")
        writer = (f"{s['writer_cores']:.3f} ({s['writer_ms_per_write']:.1f} ms per write)" if s["writer_tid"]
                  else "not found")
        say("| steady | value |")
        say("|---|---:|")
        say(f"| achieved samples/s (target {s['target']:,}) | {s['achieved']:,.0f} |")
        say(f"| schedule lag in window p50 / p99 / max ms | {s['lag_p50_ms']} / {s['lag_p99_ms']} / {s['lag_max_ms']} |")
        say(f"| writer thread CPU cores | {writer} |")
        say(f"| blip CPU cores | {s['blip_cores']:.3f} |")
        say(f"| down in window / dropped / gaps > 2 intervals | {s['down']} / {s['dropped']:.0f} / {s['gaps']} |")
    if lk:
        say("")
        say(f"Locked database: {lk['probes']} Redis probes × 50 ms ({lk['target']:,}/s), BEGIN EXCLUSIVE held "
            f"{lk['lock_s']:.1f} s by another process.")
        say("")
        say("| locked database | value |")
        say("|---|---:|")
        say(f"| max pending samples / MB while locked (200 ms polls) | {lk['max_pending']:,.0f} / "
            f"{lk['max_pending_bytes'] / 1e6:.2f} |")
        say(f"| pending < one second's samples, s after the unlock | "
            f"{'never' if lk['drained_after_s'] is None else format(lk['drained_after_s'], '.2f')} |")
        for i, w in enumerate(lk["backlog_writes"]):
            say(f"| write {i + 1} after the lock: samples, seconds, ended (s from the unlock) | {w['samples']:,}, "
                f"{w['seconds']:.3f}, {w['ended_after_unlock_s']:+.2f} |")
        say(f"| failed writes (busy timeout) | {lk['failed_writes']} |")
        say(f"| blip_store_flush_seconds p99 over the phase (histogram estimate; its bucket) | "
            f"{lk['flush_p99'][0]:.2f} s ({lk['flush_p99'][1]:g}–{lk['flush_p99'][2]:g} s) |")
        say(f"| schedule lag p50 / p99 / max ms in the locked span | {lk['lag_p50_ms']} / {lk['lag_p99_ms']} / "
            f"{lk['lag_max_ms']} |")
        say(f"| samples in the locked span: sent / due | {lk['sent']:,} / {lk['expected']:,} |")
        say(f"| dropped / gaps > 2 intervals / blind windows (whole run) | {lk['dropped']:.0f} / {lk['gaps']} / "
            f"{lk['blind_windows']} |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--blip", required=True)
    p.add_argument("--work", required=True, help="scratch directory (logs, databases, configs)")
    p.add_argument("--probes", type=int, default=1000, help="steady phase: Redis probes at 50 ms")
    p.add_argument("--duration", type=float, default=130.0,
                   help="steady phase window, seconds (over 120 spans two minute boundaries); 0 skips the phase")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds from blip's start to the window or the lock")
    p.add_argument("--lock-probes", type=int, default=100, help="locked phase: Redis probes at 50 ms; 0 skips it")
    p.add_argument("--lock-seconds", type=float, default=8.0, help="how long the other process holds the lock")
    p.add_argument("--drain-limit", type=float, default=30.0, help="seconds after the unlock to wait for the drain")
    p.add_argument("--timeout-ms", type=int, default=1000, help="probe timeout")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    open_log(args.work)
    exit_on_signals()
    began = time.monotonic()
    try:
        redis = Redis(args.work)
        say(f"redis-server {redis.version()} on 127.0.0.1:{redis.port}; load average at start "
            f"{open('/proc/loadavg').read().split()[:3]}")
        s = steady(args, redis) if args.duration else None
        lk = locked(args, redis) if args.lock_probes else None
        redis.stop()
    finally:
        kill_children()
    tables(s, lk)
    problems = (s["problems"] if s else []) + (lk["problems"] if lk else [])
    say("")
    say(f"wall time {time.monotonic() - began:.0f} s; " + ("problems:" if problems else "no problems found"))
    for line in problems:
        say(f"   {line}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"steady": s, "locked": lk}, f, indent=1)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
