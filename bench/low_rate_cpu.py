#!/usr/bin/env python3
"""blip's CPU per HTTP probe at low rates and when idle, against a private nginx
on 127.0.0.1, optionally beside other blip builds (--also) and beside the floor
under any prober (bench/http_floor.c: a fresh TCP connection and one GET, raw
sockets or libcurl's easy interface, nothing else).

Run through bench/low_rate_cpu.sh. Python 3 standard library only.

Layouts:
  * rate R/s: the probes and intervals bench/http_vs_blackbox.py uses (R <= 100:
    R/10 probes at 100 ms; above: R/20 probes at 50 ms).
  * idle N: N probes at 1 s; N = 0 is one probe every hour (it fires once, in
    the warm-up: blip refuses to run with nothing configured).
Each phase is a fresh process: after the warm-up, its CPU (utime+stime from
/proc/PID/stat, and the threads' schedstat in ns, the larger if they differ by
more than a few ticks: common.cpu_ns) is read at the start and the end of a
fixed window. blip's attempts in the window are counted from its SQLite file.
Variants alternate which goes first from one repetition to the next.
"""
import argparse
import os
import statistics
import subprocess
import time

from common import (cpu_ns, exit_on_signals, free_port, kill_children, log_row, open_log, read_samples, say, spawn,
                    stop)
from http_vs_blackbox import blip_probe_layout, start_nginx


def layouts(args):
    out = []
    for r in filter(None, args.rates.split(",")):
        rate = int(r)
        n, interval_ms = blip_probe_layout(rate)
        out.append({"name": f"{rate}/s", "probes": n, "interval_ms": interval_ms, "rate": rate})
    for p in filter(None, args.idle.split(",")):
        n = int(p)
        out.append({"name": f"{n} at 1 s", "probes": max(1, n), "interval_ms": 1000 if n else 3_600_000,
                    "rate": n})
    return out


def run_blip(binary, args, nginx_port, layout, tag):
    phase = os.path.join(args.work, tag)
    os.makedirs(os.path.join(phase, "probes.d"), exist_ok=True)
    with open(os.path.join(phase, "probes.d", "bench.toml"), "w") as f:
        for i in range(layout["probes"]):
            f.write(f'[[probe]]\nname = "p{i:04d}"\ntype = "http"\nurl = "http://127.0.0.1:{nginx_port}/health"\n'
                    f'interval = "{layout["interval_ms"]}ms"\ntimeout = "2000ms"\n\n')
    db = os.path.join(phase, "blip.db")
    proc = spawn([binary, "run", "-c", os.path.join(phase, "probes.d"), "--db", db,
                  "--listen", f"127.0.0.1:{free_port()}"], args.work, tag)
    time.sleep(args.warmup)
    if proc.poll() is not None:
        raise RuntimeError(f"{binary} exited early ({proc.returncode}); see {args.work}/{tag}.log")
    t0_ms, c0 = time.time() * 1000, cpu_ns(proc.pid)
    time.sleep(args.duration)
    t1_ms, c1 = time.time() * 1000, cpu_ns(proc.pid)
    stop(proc)
    per_probe, _total = read_samples(db)
    attempts = sum(1 for samples in per_probe.values() for sent, _status in samples if t0_ms <= sent < t1_ms)
    return c1 - c0, attempts, (t1_ms - t0_ms) / 1000


def run_floor(kind, args, nginx_port, layout, tag):
    seconds = args.warmup + args.duration + 2
    proc = spawn([args.floor, kind, str(nginx_port), str(layout["rate"]), str(seconds)], args.work, tag)
    time.sleep(args.warmup)
    t0, c0 = time.monotonic(), cpu_ns(proc.pid)
    time.sleep(args.duration)
    t1, c1 = time.monotonic(), cpu_ns(proc.pid)
    proc.wait(seconds + 10)
    return c1 - c0, round(layout["rate"] * (t1 - t0)), t1 - t0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--blip", required=True)
    p.add_argument("--also", action="append", default=[], metavar="LABEL=PATH",
                   help="another blip binary to measure beside it (e.g. a build of an earlier commit)")
    p.add_argument("--floor", help="bench/http_floor built; adds its raw and curl rows to rate layouts")
    p.add_argument("--work", required=True)
    p.add_argument("--duration", type=float, default=20.0, help="measured window per phase, seconds")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--rates", default="10,100,1000,10000")
    p.add_argument("--idle", default="0,1,10,100", help="probe counts at 1 s")
    args = p.parse_args()
    open_log(args.work)
    exit_on_signals()
    variants = [("blip", args.blip)] + [tuple(a.split("=", 1)) for a in args.also]
    began = time.monotonic()
    try:
        nginx_port = free_port()
        nginx = start_nginx(args.work, nginx_port)
        say(f"nginx on 127.0.0.1:{nginx_port}; load average at start: {open('/proc/loadavg').read().split()[:3]}")
        rows = []
        for rep in range(args.reps):
            for li, layout in enumerate(layouts(args)):
                tools = [(label, lambda lay, tag, b=path: run_blip(b, args, nginx_port, lay, tag))
                         for label, path in variants]
                if args.floor and layout["name"].endswith("/s"):
                    tools += [(f"floor {k}", lambda lay, tag, k=k: run_floor(k, args, nginx_port, lay, tag))
                              for k in ("raw", "curl")]
                if (rep + li) % 2:
                    tools.reverse()
                for label, run in tools:
                    tag = f"r{rep}-{layout['name'].replace('/', 'per').replace(' ', '')}-{label.replace(' ', '_')}"
                    used_ns, attempts, window_s = run(layout, tag)
                    row = {"rep": rep, "layout": layout["name"], "variant": label, "cpu_ms": used_ns / 1e6,
                           "attempts": attempts, "window_s": window_s,
                           "per_1000": used_ns / 1e6 / attempts * 1000 if attempts else None,
                           "cpu_ms_per_s": used_ns / 1e6 / window_s, "load1": float(open("/proc/loadavg").read().split()[0])}
                    rows.append(row)
                    log_row(row)
                    say(f"   rep {rep + 1} {layout['name']:>10} {label:<12} cpu={row['cpu_ms']:8.1f} ms "
                        f"attempts={attempts:6d} per 1000={row['per_1000'] or 0:7.1f} ms "
                        f"cpu ms/s={row['cpu_ms_per_s']:6.2f} load1={row['load1']:.2f}")
        stop(nginx)
        labels = [label for label, _ in variants] + (["floor raw", "floor curl"] if args.floor else [])
        say("")
        say(f"Medians of {args.reps} repetitions, {args.duration:g} s window after {args.warmup:g} s warm-up "
            f"(whole run {time.monotonic() - began:.0f} s); load average at the end: "
            f"{open('/proc/loadavg').read().split()[:3]}.")
        say("Cells: CPU ms per 1,000 attempts (CPU ms per second of wall time).")
        say("")
        say("| layout | " + " | ".join(labels) + " |")
        say("|---|" + "---:|" * len(labels))
        for layout in layouts(args):
            cells = []
            for label in labels:
                got = [r for r in rows if r["layout"] == layout["name"] and r["variant"] == label]
                if not got:
                    cells.append("")
                    continue
                per = [r["per_1000"] for r in got if r["per_1000"] is not None]
                per_s = statistics.median(r["cpu_ms_per_s"] for r in got)
                cells.append(f"{statistics.median(per):.0f} ({per_s:.2f})" if per else f"– ({per_s:.2f})")
            say(f"| {layout['name']} | " + " | ".join(cells) + " |")
    finally:
        kill_children()


if __name__ == "__main__":
    main()
