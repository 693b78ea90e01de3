#!/usr/bin/python3
"""Time to ready and memory of `samsa dev` (issue #18).

Starts `samsa dev --kafka-port 0 --zk-port 0` on a fresh data directory RUNS times (default 10) and
prints, per run and as the median: milliseconds from process start to the line
`kafka listening on ...` on stdout (the moment a client can connect), and the process's RSS at that
moment and 1 s later (VmRSS from /proc/PID/status, MB = 2^20 bytes), and the CPU time (user + system,
all threads) the process used until ready, which a loaded machine disturbs much less than the
wall-clock figure. Usage:
    tests/dist/dev-startup.py [--runs 10] [--exe PATH] [-- extra samsa dev flags]
PATH defaults to the Release build (src/Samsa.Host/bin/Release/net10.0/samsa).
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
args = sys.argv[1:]
extra = []
if "--" in args:
    extra = args[args.index("--") + 1:]
    args = args[:args.index("--")]
runs = 10
exe = os.path.join(root, "src/Samsa.Host/bin/Release/net10.0/samsa")
i = 0
while i < len(args):
    if args[i] == "--runs":
        runs = int(args[i + 1]); i += 2
    elif args[i] == "--exe":
        exe = args[i + 1]; i += 2
    else:
        sys.exit(f"unknown argument {args[i]}")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_ms(pid):
    # utime + stime of all threads, in clock ticks (fields 14 and 15 of /proc/PID/stat)
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


ready, rss_ready, rss_later, cpu = [], [], [], []
for n in range(runs):
    data = tempfile.mkdtemp(prefix="samsa-startup-")
    t0 = time.monotonic()
    p = subprocess.Popen([exe, "dev", "--data", data, "--kafka-port", "0", "--zk-port", "0", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in p.stdout:
            if line.startswith("kafka listening on "):
                break
        else:
            sys.exit(f"samsa dev exited with {p.wait()} before listening")
        t1 = time.monotonic()
        c0 = cpu_ms(p.pid)
        r0 = rss_mb(p.pid)
        time.sleep(1)
        r1 = rss_mb(p.pid)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
        shutil.rmtree(data, ignore_errors=True)
    ready.append((t1 - t0) * 1000)
    rss_ready.append(r0)
    rss_later.append(r1)
    cpu.append(c0)
    print(f"run {n + 1}: ready {ready[-1]:.0f} ms, CPU {c0:.0f} ms, RSS {r0:.1f} MB at ready, {r1:.1f} MB 1 s later", flush=True)

print(f"samsa dev {' '.join(extra)}: median of {runs}: ready {statistics.median(ready):.0f} ms "
      f"(min {min(ready):.0f}, max {max(ready):.0f}), CPU to ready {statistics.median(cpu):.0f} ms, RSS {statistics.median(rss_ready):.1f} MB at ready, "
      f"{statistics.median(rss_later):.1f} MB 1 s later; load average {os.getloadavg()[0]:.1f}")
