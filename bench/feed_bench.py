"""The status feed under load and from a cold start, for bench/feed_bench.sh (which
builds blip, writes or reuses the history and makes the one working copy this reads).

Every blip run here uses the same working copy of the history. A run appends a few
seconds of samples and rollups to it and nothing else that the feed reads changes
(--retain 400d: nothing is pruned, and runs last well under the writer's first prune
step anyway), so no run needs a fresh copy of the 2.3 GB file.

Phases (one blip run each, 100 tcp probes at 250 ms against a private nginx):
  idle   no feed client for 24 s;
  paced  one summary.json, 3 s, then 100 summary.json and 100 /metrics a second for
         10 s, each path on one keep-alive connection, every latency kept; then 10 s;
  flat   wrk -t1 -c4 -d10s on summary.json, then on /metrics.
  cold   (--cold N) start, the first summary.json the moment /healthz first answers
         200, one more after 1.5 s (a rebuild), stop.

What "cold" is: a new blip process, so the feed's hour cache is empty, its read-only
SQLite connection has an empty page cache and no document has been built. The
kernel's page cache is not cold: blip's start-up quick_check reads every page of the
database before /healthz answers, so the file is in memory whatever was dropped before.
"""
import argparse
import http.client
import os
import re
import signal
import statistics
import subprocess
import threading
import time

from common import cpu_ns, exit_on_signals, free_port, log_row, open_log, percentile, say, spawn, stop

SUMMARY = "/api/v2/summary.json"


def load_average():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def get(port, path, timeout=30):
    """One GET on a new connection: (status, body bytes)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def thread_cpu_ns(pid):
    """CPU so far of each of the process's threads (ns, /proc/PID/task/*/schedstat), by thread id."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                found[tid] = int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return found


def busiest_thread_ms(pid, before):
    """The most CPU any one thread used since `before` (thread_cpu_ns): during a request for a
    Statuspage document, the feed's refresher building it. Unlike wall time, it does not
    grow with what else the machine runs."""
    after = thread_cpu_ns(pid)
    return max(after[tid] - before.get(tid, 0) for tid in after) / 1e6


def timed_get(port, path):
    began = time.monotonic()
    status, body = get(port, path)
    assert status == 200, (path, status)
    return time.monotonic() - began, len(body)


class Blip:
    """One `blip run` on the working copy; healthy() waits for /healthz's first 200."""

    def __init__(self, args, port, tag, binary=None):
        self.port, self.log = port, os.path.join(args.work, f"blip-{tag}.log")  # spawn's log
        self.started = time.monotonic()
        self.proc = spawn([binary or args.blip, "run", "-c", args.probes, "--db", args.db, "--listen", f"127.0.0.1:{port}",
                           "--retain", "400d"], args.work, f"blip-{tag}")

    def healthy(self, timeout=120):
        # Polled every 5 ms on a new connection each time, so the first answer is caught within 5 ms.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"blip exited with {self.proc.returncode}; see {self.log}")
            try:
                status, _ = get(self.port, "/healthz", timeout=1)
                if status == 200:
                    return time.monotonic()
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError(f"/healthz did not answer 200 within {timeout} s; see {self.log}")

    def stop(self):
        stop(self.proc, signal.SIGTERM, timeout=60)
        with open(self.log, errors="replace") as f:
            text = f.read()
        lag = [re.findall(rf"schedule_lag_{p}_us=(\d+)", text) for p in ("p50", "p99")]
        return [found[-1] if found else "-" for found in lag]


def paced_client(port, seconds=10, rate=100):
    """rate summary.json and rate /metrics a second, each path on one keep-alive connection:
    {path: sorted latencies in s}."""
    results = {SUMMARY: [], "/metrics": []}

    def run(path, out):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        start = time.monotonic()
        for i in range(seconds * rate):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            began = time.monotonic()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            assert response.status == 200, (path, response.status)
            out.append(time.monotonic() - began)

    threads = [threading.Thread(target=run, args=(p, out)) for p, out in results.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {p: sorted(v) for p, v in results.items()}


def wrk(port, path, out):
    subprocess.run(["wrk", "-t1", "-c4", "-d10s", "--latency", f"http://127.0.0.1:{port}{path}"], check=True,
                   stdout=open(out, "w"))
    text = open(out).read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1)
    return f"{float(rps):.0f} {p99}"


def run_phase(args, phase, rep):
    """One blip run of idle, paced or flat: prints a row of the phases' table."""
    port = free_port()
    load = load_average()
    blip = Blip(args, port, f"{rep}-{phase}")
    ready = blip.healthy()
    cpu0 = cpu_ns(blip.proc.pid)
    cold, cells, row = "-", "- - - -", {"rep": rep, "phase": phase, "start_s": round(ready - blip.started, 1)}
    if phase == "idle":
        time.sleep(24)
    elif phase == "paced":
        seconds, size = timed_get(port, SUMMARY)
        cold = f"{seconds * 1e3:.0f}"
        time.sleep(3)
        latencies = paced_client(port)
        cells = " ".join(f"{percentile(v, p) * 1e3:.2f}" for v in latencies.values() for p in (0.5, 0.99))
        row.update({"summary_bytes": size, "summary_ms": [round(x * 1e3, 3) for x in latencies[SUMMARY]],
                    "metrics_ms": [round(x * 1e3, 3) for x in latencies["/metrics"]]})
        time.sleep(10)
    elif phase == "flat":
        _, size = timed_get(port, SUMMARY)
        time.sleep(3)
        cells = wrk(port, SUMMARY, os.path.join(args.work, f"wrk-{rep}-summary.txt")) + " " + \
            wrk(port, "/metrics", os.path.join(args.work, f"wrk-{rep}-metrics.txt"))
    cpu = (cpu_ns(blip.proc.pid) - cpu0) / 1e9
    p50, p99 = blip.stop()
    row.update({"lag_p50_us": p50, "lag_p99_us": p99, "cpu_s": cpu, "cold_ms": cold, "cells": cells, "load": load})
    log_row(row)
    say(f"{rep:<4} {phase:<6} {p50:>11} {p99:>11} {cpu:>10.1f} {cold:>8}  {cells}   (load {load})")
    return row


def run_cold(args, run, name, binary):
    """One cold start of `binary`: its row."""
    port = free_port()
    load = load_average()
    blip = Blip(args, port, f"cold-{run}-{name}", binary)
    ready = blip.healthy()
    threads = thread_cpu_ns(blip.proc.pid)
    # From the end of the first 200 from /healthz to the end of the first summary.json.
    _, size = timed_get(port, SUMMARY)
    cold_ms = (time.monotonic() - ready) * 1e3
    cold_cpu_ms = busiest_thread_ms(blip.proc.pid, threads)
    time.sleep(1.5)
    threads = thread_cpu_ns(blip.proc.pid)
    next_seconds, _ = timed_get(port, SUMMARY)
    next_cpu_ms = busiest_thread_ms(blip.proc.pid, threads)
    blip.stop()
    row = {"cold_run": run, "blip": name, "cold_ms": round(cold_ms, 1), "next_ms": round(next_seconds * 1e3, 1),
           "cold_cpu_ms": round(cold_cpu_ms, 1), "next_cpu_ms": round(next_cpu_ms, 1),
           "start_s": round(ready - blip.started, 2), "load": load, "summary_bytes": size}
    log_row(row)
    say(f"{run:>4} {name:>8} {cold_ms:>8.0f} {cold_cpu_ms:>8.0f} {next_seconds * 1e3:>8.0f} {next_cpu_ms:>8.0f} "
        f"{ready - blip.started:>8.1f}   {load}")
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--blip", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--db", required=True, help="the working copy every run uses")
    p.add_argument("--probes", required=True, help="the probes' configuration directory")
    p.add_argument("--reps", type=int, default=2, help="repetitions of the phases")
    p.add_argument("--phases", default="idle,paced,flat", help="which phases, in this order (reversed every "
                   "other repetition)")
    p.add_argument("--cold", type=int, default=0, metavar="N", help="N cold starts, after the repetitions")
    p.add_argument("--also", action="append", default=[], metavar="NAME=BLIP",
                   help="another blip binary for the cold starts, taking turns with this tree's")
    args = p.parse_args()
    open_log(args.work)
    exit_on_signals()

    phases = [x for x in args.phases.split(",") if x]
    if args.reps and phases:
        say("columns: paced = summary p50/p99 ms, metrics p50/p99 ms at 100/s each; "
            "flat = summary req/s, p99, metrics req/s, p99 (wrk)")
        say(f"{'rep':<4} {'phase':<6} {'lag_p50_us':>11} {'lag_p99_us':>11} {'blip_cpu_s':>10} {'cold_ms':>8}  cells")
        paced = []
        for rep in range(1, args.reps + 1):
            for phase in (phases if rep % 2 else phases[::-1]):
                row = run_phase(args, phase, rep)
                if phase == "paced":
                    paced.append(row)
        if paced:
            # Every paced request of every repetition together, beside each repetition's own.
            every = sorted(x for row in paced for x in row["summary_ms"])
            metrics = sorted(x for row in paced for x in row["metrics_ms"])
            say(f"paced, all {len(paced)} repetitions together: summary.json p50 {percentile(every, 0.5):.2f} ms, "
                f"p99 {percentile(every, 0.99):.2f} ms ({len(every)} requests); /metrics p50 "
                f"{percentile(metrics, 0.5):.2f} ms, p99 {percentile(metrics, 0.99):.2f} ms; summary.json "
                f"{paced[0]['summary_bytes']} bytes")
            say("paced cold_ms: " + " ".join(row["cold_ms"] for row in paced))
    if args.cold:
        say("cold starts: the first summary.json, timed from the first 200 of /healthz to its last byte; "
            "then one more 1.5 s later (a rebuild); cpu = CPU of blip's busiest thread (the feed's "
            "refresher) during that request; start = blip run to /healthz")
        say(f"{'run':>4} {'blip':>8} {'cold_ms':>8} {'cold_cpu':>8} {'next_ms':>8} {'next_cpu':>8} {'start_s':>8}   load")
        # With --also, the builds take turns, so each sees the same spells of load.
        blips = [("this", args.blip)] + [tuple(x.split("=", 1)) for x in args.also]
        rows = [run_cold(args, run, name, binary) for run in range(1, args.cold + 1) for name, binary in blips]
        for name, _ in blips:
            mine = [row for row in rows if row["blip"] == name]
            cold = [row["cold_ms"] for row in mine]
            after = [row["next_ms"] for row in mine]
            say(f"{name}: cold summary.json over {len(cold)} runs: median {statistics.median(cold):.0f} ms, "
                f"min {min(cold):.0f}, max {max(cold):.0f}; under 300 ms in {sum(c < 300 for c in cold)} of "
                f"{len(cold)}; the next one (a rebuild): median {statistics.median(after):.0f} ms, "
                f"min {min(after):.0f}, max {max(after):.0f}")
            for key in ("cold_cpu_ms", "next_cpu_ms"):
                cpu = [row[key] for row in mine]
                say(f"{name}: {key} median {statistics.median(cpu):.0f}, min {min(cpu):.0f}, max {max(cpu):.0f}")


if __name__ == "__main__":
    main()
