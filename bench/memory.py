"""blip's memory with a month of history behind the feed (issue 22), driven by bench/memory.sh.

rss: for each N in --probes, writes N probes x --days of history with bench/generate_history
  (a sample every --history-interval-ms, a minute by default: the feed reads hour totals, outages and incidents,
  whose number does not depend on the rate, so 1,000 probes' month is written in minutes),
  starts `blip run` with N tcp probes of those names against a private nginx, and reads VmRSS,
  VmHWM and RssAnon (/proc/PID/status) with blip's own heap gauges (/metrics): before the feed
  is asked, after the first summary.json (the hour cache is then loaded), and each minute while
  summary.json and /metrics are fetched every second. With --fresh, the same N probes on an
  empty database beside it: what the history costs, apart from what the probes cost.

plateau: two blips side by side, each with --flapping probes against a listener that refuses
  connections from :05 to :15 of every minute (an outage a minute per probe at --interval-ms)
  and the rest against nginx: "full" starts on --days of generated history with the same
  outage a minute (every window the feed shows already full), "empty" on an empty database.
  The heap besides SQLite's, RssAnon and VmRSS are read every --every seconds for --duration:
  the full one must stay flat while the empty one grows with its outages.
"""
import argparse
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.request

import common
from common import free_port, say, spawn, stop, wait_port
from http_vs_blackbox import start_nginx
from soak import MEMORY_GAUGES, Scraper, status_kib


def generate(args, db, probes, days, interval_ms, extra=(), base=None):
    """Writes the history on --scratch (a tmpfs: the generator syncs every simulated minute),
    widened from `base` probes when given, and moves it to `db`."""
    started = time.monotonic()
    prefix = os.path.join(args.scratch, os.path.basename(args.work) + "-")
    scratch = prefix + os.path.basename(db)
    written = prefix + f"generated-{base or probes}.db"  # kept for the next N with the same base
    if os.path.exists(written):
        shutil.copy(written, scratch)
        out = f"copied the {base} probes' history written before"
    else:
        out = subprocess.run([args.generator, "--db", scratch, "--probes", str(base or probes), "--days",
                              str(days), "--interval-ms", str(interval_ms), *extra],
                             check=True, capture_output=True, text=True).stdout.strip()
        if base:
            shutil.copy(scratch, written)
    if base:
        fan_out(scratch, probes, base)
        out += f"; widened to {probes} probes"
    shutil.move(scratch, db)
    for suffix in ("-wal", "-shm", ".lock"):
        if os.path.exists(scratch + suffix):
            os.remove(scratch + suffix)
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    counts = {table: con.execute(f"select count(*) from {table}{where}").fetchone()[0]
              for table, where in (("outages", " where kind = 'outage'"), ("incidents", ""),
                                   ("rollups", ""), ("hour_totals", ""))}
    con.close()
    say(f"   history {os.path.basename(db)}: {probes} probes x {days} days, a sample every {interval_ms} ms: "
        f"{time.monotonic() - started:.0f} s, {os.path.getsize(db) / 2**20:.0f} MiB; {out}; "
        + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    return counts


def fan_out(db, probes, base, incident_probes=5):
    """Widens a history of `base` probes to `probes`: each new probe gets the rollups, hour
    totals and outages of one of the base probes that the hourly stall does not hit, at the
    same times, each outage in an incident of its own (as a lone random outage is). The
    generator's cost is per probe-minute (about 25,000 a CPU second here), so 1,000 probes'
    month (43 million) would take half an hour of CPU; this takes a minute. Raw samples are not
    copied: the feed never reads them."""
    con = sqlite3.connect(db)
    con.execute("pragma synchronous = off")
    ids = {name: i for i, name in con.execute("select id, name from probes")}
    sources = [ids[f"probe-{i:02d}"] for i in range(incident_probes, base)]
    shift = 1 << 24  # new outage and incident ids: (probe id << 24) + the source's id
    with con:
        con.execute("create temp table copies(new_id integer primary key, src_id integer not null)")
        for k in range(base, probes):
            src = sources[k % len(sources)]
            new_id = con.execute("insert into probes(name, type, target, interval_ms, confirm) "
                                 "select ?, type, target, interval_ms, confirm from probes where id = ?",
                                 (f"probe-{k:02d}", src)).lastrowid
            con.execute("insert into copies values (?, ?)", (new_id, src))
        con.execute("insert into rollups select c.new_id, r.minute_ms, r.count, r.down, r.degraded, r.p50_us, "
                    "r.p95_us, r.max_us, r.first_ms from copies c join rollups r on r.probe_id = c.src_id")
        con.execute("insert into hour_totals select c.new_id, h.hour_ms, h.minutes, h.first_minute_ms, "
                    "h.last_minute_ms, h.samples, h.down, h.degraded, h.first_ms "
                    "from copies c join hour_totals h on h.probe_id = c.src_id")
        con.execute(f"insert into incidents(id, start_ms, end_ms) select c.new_id * {shift} + o.id, o.start_ms, "
                    "o.end_ms from copies c join outages o on o.probe_id = c.src_id where o.kind = 'outage'")
        con.execute(f"insert into outages(id, probe_id, start_ms, end_ms, error, detail, down_samples, end_reason, "
                    f"kind, incident_id, in_maintenance) select c.new_id * {shift} + o.id, c.new_id, o.start_ms, "
                    f"o.end_ms, o.error, o.detail, o.down_samples, o.end_reason, o.kind, "
                    f"case when o.kind = 'outage' then c.new_id * {shift} + o.id end, o.in_maintenance "
                    "from copies c join outages o on o.probe_id = c.src_id")
    con.execute("pragma wal_checkpoint(truncate)")
    con.close()


def write_probes(directory, probes, interval_ms, nginx_port, flapping=0, flapping_port=0):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "probes.toml"), "w") as f:
        for i in range(probes):
            port = flapping_port if i < flapping else nginx_port
            # The generated history's names, so the feed shows its month for each.
            f.write(f'[[probe]]\nname = "probe-{i:02d}"\ntype = "tcp"\naddress = "127.0.0.1:{port}"\n'
                    f'interval = "{interval_ms}ms"\ntimeout = "1s"\n\n')


def start_blip(args, name, db, probes_dir, binary=None):
    port = free_port()
    blip = spawn([binary or args.blip, "run", "-c", probes_dir, "--db", db, "--listen", f"127.0.0.1:{port}"],
                 args.work, name)
    wait_port(port, blip, timeout=120)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # /healthz answers once the first samples are in
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                break
        except Exception:
            time.sleep(0.2)
    return blip, port


def metrics_gauges(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        body = r.read()
    gauges = {}
    for gauge in MEMORY_GAUGES:
        found = re.search(rb"^" + gauge.encode() + rb" (\S+)$", body, re.M)
        if found:
            gauges[gauge] = float(found.group(1))
    return gauges


def reading(pid, gauges):
    heap = round(gauges.get("blip_heap_in_use_bytes", 0) / 1024)
    sqlite_kib = round(gauges.get("blip_store_sqlite_memory_bytes", 0) / 1024)
    return {"rss_kib": status_kib(pid, "VmRSS"), "hwm_kib": status_kib(pid, "VmHWM"),
            "anon_kib": status_kib(pid, "RssAnon"), "heap_kib": heap, "sqlite_kib": sqlite_kib,
            "rest_kib": heap - sqlite_kib}


def show(label, row):
    common.log_row({"reading": label, **row})
    say(f"   {label:<34} VmRSS {row['rss_kib']:>8,} KiB  VmHWM {row['hwm_kib']:>8,}  RssAnon {row['anon_kib']:>8,}  "
        f"heap {row['heap_kib']:>8,} (SQLite {row['sqlite_kib']:>6,}, rest {row['rest_kib']:>8,})"
        + (f"  outages {row['outages']:,}" if "outages" in row else ""))


def fetch_ms(port, path):
    started = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=120) as r:
        size = len(r.read())
    return (time.monotonic() - started) * 1000, size


def rss_run(args, name, db, probes, nginx_port, binary):
    probes_dir = os.path.join(args.work, f"probes-{name}")
    write_probes(probes_dir, probes, args.interval_ms, nginx_port)
    blip, port = start_blip(args, name, db, probes_dir, binary)
    say(f"== {name}: {probes} tcp probes at {args.interval_ms} ms, {binary}, pid {blip.pid}")
    show("started, feed not yet asked", reading(blip.pid, metrics_gauges(port)))
    ms, size = fetch_ms(port, "/api/v2/summary.json")
    time.sleep(2)  # blip's heap gauges are read with the loop's snapshot
    show(f"first summary.json ({ms:.0f} ms, {size // 1024} KiB)", reading(blip.pid, metrics_gauges(port)))
    scraper = Scraper(port)
    scraper.start()
    t0 = time.monotonic()
    for minute in range(1, args.minutes + 1):
        time.sleep(max(0.0, t0 + 60 * minute - time.monotonic()))
        show(f"{minute} min, feed fetched every second", reading(blip.pid, scraper.gauges))
    scraper.stop_event.set()
    scraper.join(10)
    rc = stop(blip, timeout=60)
    # A fetch that takes over 5 s (a busy machine) is counted, not fatal: memory is what is measured.
    say(f"   scrapes ok {scraper.ok}, failed {scraper.failed} {scraper.errors[:3]}, slowest "
        f"{scraper.slowest_ms:.0f} ms; blip exited with {rc}")
    if rc != 0:
        raise RuntimeError(f"{name}: blip exited with {rc}")


class FlappingListener(threading.Thread):
    """Accepts and closes connections on `port`, except from second 5 to 15 of each minute (UTC),
    when nothing listens: the generator's --stall-every 60 --stall-for 10, live."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop_event = threading.Event()

    def run(self):
        sock = None
        while not self.stop_event.is_set():
            down = 5 <= time.time() % 60 < 15
            if down and sock:
                sock.close()
                sock = None
            elif not down and not sock:
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("127.0.0.1", self.port))
                sock.listen(256)
                sock.settimeout(0.05)
            if sock:
                try:
                    sock.accept()[0].close()
                except OSError:
                    pass
            else:
                time.sleep(0.05)


def count_outages(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    n = con.execute("select count(*) from outages where kind = 'outage'").fetchone()[0]
    con.close()
    return n


def plateau(args, nginx_port):
    flapping_port = free_port()
    listener = FlappingListener(flapping_port)
    listener.start()
    dbs = {"full": os.path.join(args.work, "full.db"), "empty": os.path.join(args.work, "empty.db")}
    say(f"== plateau: {args.probes[0]} probes, {args.flapping} of them down from :05 to :15 of every minute")
    generate(args, dbs["full"], args.probes[0], args.days, args.history_interval_ms,
             ["--stall-every", "60", "--stall-for", "10", "--incident-probes", str(args.flapping)])
    blips = {}
    for name, db in dbs.items():
        probes_dir = os.path.join(args.work, f"probes-{name}")
        write_probes(probes_dir, args.probes[0], args.interval_ms, nginx_port, args.flapping, flapping_port)
        blips[name] = start_blip(args, name, db, probes_dir)
    scrapers = {name: Scraper(port) for name, (_, port) in blips.items()}
    for scraper in scrapers.values():
        scraper.start()
    t0 = time.monotonic()
    rows = {name: [] for name in blips}
    k = 0
    while time.monotonic() < t0 + args.duration:
        time.sleep(max(0.0, t0 + k * args.every - time.monotonic()))
        for name, (blip, port) in blips.items():
            if blip.poll() is not None:
                raise RuntimeError(f"{name}: blip exited with {blip.returncode}")
            row = {"t": round(time.monotonic() - t0), **reading(blip.pid, scrapers[name].gauges),
                   "outages": count_outages(dbs[name])}
            rows[name].append(row)
            show(f"{name:<5} t={row['t']:>5} s", row)
        k += 1
    for name, (blip, _) in blips.items():
        scrapers[name].stop_event.set()
        scrapers[name].join(10)
        say(f"   {name}: scrapes ok {scrapers[name].ok}, failed {scrapers[name].failed}, "
            f"slowest {scrapers[name].slowest_ms:.0f} ms; blip exited with {stop(blip, timeout=60)}")
    listener.stop_event.set()
    # Growth per outage after the first --warmup seconds: the heap besides SQLite's
    # (SQLite's page caches fill towards their own bound as the database grows).
    for name, series in rows.items():
        settled = [r for r in series if r["t"] >= args.warmup]
        if len(settled) < 2:
            continue
        a, b = settled[0], settled[-1]
        outages = b["outages"] - a["outages"]
        per = lambda key: (b[key] - a[key]) * 1024 / outages if outages else float("nan")
        say(f"== {name}: from t={a['t']} s to t={b['t']} s, {outages} new outages: "
            f"heap besides SQLite {a['rest_kib']:,} -> {b['rest_kib']:,} KiB ({per('rest_kib'):+,.0f} B an outage), "
            f"RssAnon {a['anon_kib']:,} -> {b['anon_kib']:,} KiB ({per('anon_kib'):+,.0f} B an outage), "
            f"VmRSS {a['rss_kib']:,} -> {b['rss_kib']:,} KiB, highest heap besides SQLite "
            f"{max(r['rest_kib'] for r in settled):,} KiB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--blip", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--generator", required=True, help="bench/generate_history's binary")
    ap.add_argument("--mode", choices=("rss", "plateau"), default="rss")
    ap.add_argument("--probes", default="100,1000", help="rss: each count in turn; plateau: the first")
    ap.add_argument("--days", type=int, default=30, help="of generated history")
    ap.add_argument("--history-interval-ms", type=int,
                    help="the generated history's time between samples (rss: 60,000; plateau: 1,000, "
                         "for its 10 s outages)")
    ap.add_argument("--base", type=int, default=20,
                    help="rss: probes the generator writes; the rest copy their rollups and outages")
    ap.add_argument("--scratch", default="/dev/shm", help="where the history is written first")
    ap.add_argument("--interval-ms", type=int, default=1000, help="the live probes' interval")
    ap.add_argument("--minutes", type=int, default=3, help="rss: how long each blip runs after the first summary")
    ap.add_argument("--blip-before", help="rss: another blip binary, run first on a copy of each history")
    ap.add_argument("--fresh", action="store_true", help="rss: also each N on an empty database")
    ap.add_argument("--flapping", type=int, default=2, help="plateau: probes with an outage a minute")
    ap.add_argument("--duration", type=float, default=1500, help="plateau: seconds")
    ap.add_argument("--every", type=float, default=60, help="plateau: seconds between readings")
    ap.add_argument("--warmup", type=float, default=300, help="plateau: seconds before growth counts")
    args = ap.parse_args()
    args.probes = [int(n) for n in args.probes.split(",")]
    if args.history_interval_ms is None:
        args.history_interval_ms = 1000 if args.mode == "plateau" else 60_000
    common.open_log(args.work)
    common.exit_on_signals()
    nginx_port = free_port()
    nginx = start_nginx(args.work, nginx_port)
    if args.mode == "plateau":
        plateau(args, nginx_port)
    else:
        for probes in args.probes:
            db = os.path.join(args.work, f"history-{probes}.db")
            generate(args, db, probes, args.days, args.history_interval_ms,
                     base=args.base if probes > args.base else None)
            if args.blip_before:  # on a copy of the same history, before the one measured
                shutil.copy(db, db + ".before")
                rss_run(args, f"before-history-{probes}", db + ".before", probes, nginx_port, args.blip_before)
                os.remove(db + ".before")
            rss_run(args, f"history-{probes}", db, probes, nginx_port, args.blip)
            if args.fresh:
                rss_run(args, f"empty-{probes}", os.path.join(args.work, f"empty-{probes}.db"), probes, nginx_port,
                        args.blip)
            os.remove(db)
    stop(nginx)
    for name in os.listdir(args.scratch):
        if name.startswith(os.path.basename(args.work) + "-"):
            os.remove(os.path.join(args.scratch, name))


if __name__ == "__main__":
    main()
