"""What the benchmark drivers (bench/http_vs_blackbox.py, bench/pg_redis_bench.py,
bench/store_bench.py) share: logging, child processes, /proc CPU and memory
readers, the measuring window, the decoder of blip's stored samples and their
schedule lag, a private Redis, and blackbox_exporter with its open-loop driver.

The drivers are run as scripts, so Python puts this directory first on sys.path
and `import common` finds this file from any working directory.
"""
import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
LOG = None  # set by open_log: a file that gets everything said plus raw rows


def open_log(work):
    global LOG
    LOG = open(os.path.join(work, "bench.log"), "a")


def say(*parts):
    text = " ".join(str(p) for p in parts)
    print(text, flush=True)
    if LOG:
        LOG.write(text + "\n")
        LOG.flush()


def log_row(row):
    LOG.write(json.dumps(row) + "\n")


# --------------------------------------------------------------------------
# processes: every child is recorded in WORK/pids so the shell wrapper's EXIT
# trap can kill it even if the driver dies hard.

CHILDREN = []


def spawn(args, work, name, **kwargs):
    out = open(os.path.join(work, f"{name}.log"), "ab")
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kwargs)
    CHILDREN.append(proc)
    with open(os.path.join(work, "pids"), "a") as f:
        f.write(f"{proc.pid}\n")
    return proc


def stop(proc, sig=signal.SIGTERM, timeout=15.0):
    if proc.poll() is None:
        proc.send_signal(sig)
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


def exit_on_signals():
    """SIGTERM or SIGINT kills every child, then exits with 128 + the signal."""
    def on_signal(signum, _frame):
        kill_children()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


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

def ticks_ns(ticks):
    return ticks * 1_000_000_000 // CLK_TCK


def stat_fields(pid):
    """/proc/PID/stat after the command name (which may contain spaces): field 3 on."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_ns(pid):
    """The sum of /proc/PID/task/*/schedstat (ns), or utime+stime (clock ticks,
    exited threads included) if that is larger by more than a few ticks."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # thread exited between listdir and open
    fields = stat_fields(pid)
    from_ticks = ticks_ns(int(fields[11]) + int(fields[12]))
    if from_ticks - total > ticks_ns(3):
        return from_ticks
    return total


def tree_cpu_ns(pid):
    """CPU of a server and all its children, exited ones included: the parent's
    utime+stime+cutime+cstime plus every live child's utime+stime. (A postmaster
    reaps its backends at once, so an exited backend moves into cutime/cstime.)"""
    f = stat_fields(pid)
    total = sum(int(x) for x in f[11:15])
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as c:
            kids = c.read().split()
    except FileNotFoundError:
        kids = []
    for kid in kids:
        try:
            k = stat_fields(kid)
            total += sum(int(x) for x in k[11:15])
        except (FileNotFoundError, ProcessLookupError):
            pass  # exited between the two reads: counted in the parent's cutime next time
    return ticks_ns(total)


def system_ns():
    """(busy, steal) CPU time of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    return ticks_ns(user + nice + system + irq + softirq), ticks_ns(steal)


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def thread_count(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


class Window:
    """CPU of the measured tool, of the server it probes, of this script (the driver)
    and of the whole machine over one window, so that the rest ('other') shows how
    busy the machine was with things outside the benchmark. `server_key` names the
    server's cores in the result."""

    def __init__(self, tool_pid, server_cpu_ns, server_key="server_cores"):
        self.tool_pid, self.server_cpu_ns, self.server_key = tool_pid, server_cpu_ns, server_key
        self.start = self._read()

    def _read(self):
        busy, steal = system_ns()
        return (cpu_ns(self.tool_pid), self.server_cpu_ns(), cpu_ns(os.getpid()), busy, steal)

    def close(self, seconds):
        end = self._read()
        tool, server, me, busy, steal = (e - s for e, s in zip(end, self.start))
        return {"cpu_ns": tool, self.server_key: server / 1e9 / seconds, "driver_cores": me / 1e9 / seconds,
                "other_cores": max(0.0, busy - tool - server - me) / 1e9 / seconds,
                "steal_cores": steal / 1e9 / seconds}


def percentile(ordered, p):
    """The p-quantile (0 <= p < 1) of an ascending list, -1 if it is empty."""
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else -1


# --------------------------------------------------------------------------
# blip's stored samples (the format of src/store/sample_codec.cpp)

UP, DEGRADED, DOWN, BLIND = range(4)  # a sample's status; blind (blip itself stalled) is neither up nor down


def decode_block(base_ms, data):
    """[(sent_ms, status), ...] of one sample block. Per sample: a zigzag varint of
    the change in send-time delta (the chain starts at base_ms), a header byte
    (status in bits 6-7, bits 0-3 say which of 4 phases follow, bit 4 that the
    detail's numbers follow its id, bit 5 zero), for a down sample an error-class
    byte, a varint detail id and, with bit 4, a varint length and that many bytes
    of numbers, then varints: the latency and each phase present."""
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

    out = []
    prev_ms, prev_delta = base_ms, 0
    while pos < len(data):
        z = varint()
        delta = prev_delta + ((z >> 1) ^ -(z & 1))
        prev_ms, prev_delta = prev_ms + delta, delta
        header = data[pos]
        pos += 1
        if header & 0x20:
            raise RuntimeError(f"sample block at {base_ms} has an invalid header byte {header:#04x}")
        status = header >> 6
        if status == DOWN:
            pos += 1  # error class
            varint()  # detail id
            if header & 0x10:
                length = varint()  # (not `pos += varint()`: that reads pos before varint moves it)
                pos += length  # the detail's numbers
        varint()  # latency
        for i in range(4):
            if header & (1 << i):
                varint()
        out.append((prev_ms, status))
    return out


def read_samples(db_path):
    """{probe_id: [(sent_ms, status), ...] in send order} from sample_blocks, and sum(count).

    A probe's minute may be several rows (parts, merged into one when the minute
    closes), each a block of its own decoded from its minute_ms; a probe's rows
    are taken in (minute_ms, id) order."""
    con = sqlite3.connect(db_path)
    try:
        total = con.execute("SELECT coalesce(sum(count), 0) FROM sample_blocks").fetchone()[0]
        rows = con.execute("SELECT probe_id, minute_ms, count, data FROM sample_blocks "
                           "ORDER BY probe_id, minute_ms, id").fetchall()
    finally:
        con.close()
    out = {}
    for probe_id, base_ms, count, data in rows:
        samples = decode_block(base_ms, data)
        if len(samples) != count:
            raise RuntimeError(f"sample block at {base_ms} decodes to {len(samples)} samples, count says {count}")
        out.setdefault(probe_id, []).extend(samples)
    return out, total


def schedule_lags(samples, interval):
    """Schedule lag (ms) of each sample of one probe, from its stored send times.

    blip fires each probe on an absolute schedule phase + k*interval, never early,
    and after firing at time t its next slot is the first one after t (missed slots
    are skipped). The phase is the offset that minimises the mean lag; the first
    sample's lag is its offset from the phase, every later sample's lag is its send
    time minus the first slot after the previous send. Send times are whole
    milliseconds of the wall clock, so each value is good to about ±1 ms."""
    times = [t for t, _ in samples]
    hist = {}
    for t in times:
        r = (t - times[0]) % interval
        hist[r] = hist.get(r, 0) + 1
    offset = min(range(interval), key=lambda c: sum(n * ((r - c) % interval) for r, n in hist.items()))
    phase = times[0] + offset
    # The phase is a whole millisecond, so a sample can look 1 ms early: allow for it.
    lags = [max(0, (times[0] - phase + 1) % interval - 1)]
    for prev, t in zip(times, times[1:]):
        next_slot = phase + interval * ((prev + 1 - phase) // interval + 1)
        lags.append(max(0, t - next_slot))
    return lags


# --------------------------------------------------------------------------
# a private Redis

class Redis:
    own_conns = 1  # the INFO read at the end of a window is itself a connection

    def __init__(self, work):
        self.port = free_port()
        d = os.path.join(work, "redis")
        os.makedirs(d, exist_ok=True)
        self.proc = spawn(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--maxclients", "10000", "--dir", d,
                           "--logfile", os.path.join(d, "redis.log")], work, "redis-server")
        wait_port(self.port, self.proc, timeout=15.0)
        self.pid = self.proc.pid

    def info(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"INFO\r\n")
            data = b""
            while b"\r\n" not in data:
                data += s.recv(65536)
            length = int(data[1:data.index(b"\r\n")])
            body_start = data.index(b"\r\n") + 2
            while len(data) < body_start + length:
                data += s.recv(65536)
        out = {}
        for line in data[body_start:body_start + length].decode().splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                out[k] = v
        return out

    def connections(self):
        return int(self.info()["total_connections_received"])

    def held(self):
        """Client connections open now, not counting the one asking."""
        return int(self.info()["connected_clients"]) - 1

    def cpu_ns(self):
        return cpu_ns(self.pid)

    def version(self):
        return self.info().get("redis_version", "?")

    def stop(self):
        stop(self.proc)


# --------------------------------------------------------------------------
# blackbox_exporter and its driver

def write_blackbox_config(path, module, prober, timeout_ms, comment, prober_extra=""):
    """A config with one module; `comment` says how the prober behaves (lines
    starting with #), `prober_extra` is the prober's settings beyond the IPv4 ones."""
    with open(path, "w") as f:
        f.write(f"""# written by bench/{os.path.basename(sys.argv[0])}
{comment}modules:
  {module}:
    prober: {prober}
    timeout: {timeout_ms}ms
    {prober}:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
{prober_extra}""")


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


async def drive(bb_port, target, module, rate, warmup, duration, workers, request_timeout, pid, open_window):
    """Open-loop: request i is due at start + i/rate. Returns per-window counts and the
    exporter's load (open_window(pid), read from inside the loop at the window's edges)
    and VmHWM."""
    loop = asyncio.get_running_loop()
    request = (f"GET /probe?target={target}&module={module} HTTP/1.1\r\n"
               f"Host: 127.0.0.1:{bb_port}\r\nUser-Agent: blip-bench\r\n\r\n").encode()
    queue = asyncio.Queue()
    window = {"ok": 0, "failed": 0, "errors": 0, "sent": 0, "lateness_us": []}
    state = {"t0": None, "t1": None}

    async def worker():
        reader = writer = None
        while True:
            due = await queue.get()
            if due is None:
                break
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
    measuring = None
    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if i == first_window:
            state["t0"] = loop.time()
            measuring = open_window(pid)
        queue.put_nowait(due)
    # the window closes when the last request is due plus one slot
    delay = start + total / rate - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)
    state["t1"] = loop.time()
    load = measuring.close(state["t1"] - state["t0"])
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


def run_exporter(args, work, tag, rate, duration, warmup, config, target, module, open_window, start_timeout=10.0):
    """One phase of a fresh exporter (args.blackbox, with `config`) driven through
    /probe at `rate`; the row fields both drivers report. Only the exporter's CPU
    counts; its "lag" is the driver's lateness (request sent minus request due)."""
    port = free_port()
    proc = spawn([args.blackbox, f"--web.listen-address=127.0.0.1:{port}", f"--config.file={config}"],
                 work, f"blackbox-{tag}")
    wait_port(port, proc, timeout=start_timeout)
    workers = min(256, max(8, rate // 10))
    window, window_s, load, hwm, dropped = asyncio.run(
        drive(port, target, module, rate, warmup, duration, workers, args.timeout_ms / 1000 + 3, proc.pid,
              open_window))
    threads = thread_count(proc.pid)
    rc = stop(proc)
    late = sorted(window["lateness_us"])
    return {
        "tool": "blackbox", "tag": tag, "target": rate, "workers": workers,
        "window_s": round(window_s, 3), "sent": window["sent"], "ok": window["ok"],
        "failed": window["failed"], "errors": window["errors"], "dropped": dropped,
        "achieved": window["ok"] / window_s,
        "cpu_ms_per_1000": load["cpu_ns"] / 1e6 / max(1, window["sent"]) * 1000,
        "lag_p50_us": int(percentile(late, 0.5)), "lag_p99_us": int(percentile(late, 0.99)),
        "rss_mib": hwm / 1024, "threads": threads, "exit": rc, **load,
    }
