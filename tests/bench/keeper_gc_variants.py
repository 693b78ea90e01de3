#!/usr/bin/python3
"""The Keeper's memory and speed under different .NET GC settings, beside Apache ZooKeeper 3.8
(issue #19, Keeper half: RSS <= 1/4 of ZooKeeper's).

Starts Debian's ZooKeeper 3.8 (standalone, -Xmx1000m as zkEnv.sh) and one standalone Keeper per
variant (same zoo.cfg: forceSync=yes), all running for the whole run; a variant is a name, a
samsa binary and environment settings (DOTNET_gcServer, DOTNET_gcConcurrent,
DOTNET_GCConserveMemory, DOTNET_GCDynamicAdaptationMode, ...), which the runtime reads at start,
JIT and NativeAOT builds alike. Every server gets the same `samsa perf keeper` cells in turn (the
order rotates per cell so a shared machine's noise falls on all alike). Per server: write ops/s
(create, setData, multi, delete) and read ops/s (exists, getData) summed as geometric means per
cell, p99 of the slowest write phase, server CPU µs per request (/proc/PID/stat), RSS after the
run and peak RSS (VmHWM).

    tests/bench/keeper_gc_variants.py --samsa src/Samsa.Host/bin/Release/net10.0/samsa \
        --variant server: --variant wks:DOTNET_gcServer=0 \
        --variant aot-wks=/tmp/aot/samsa:DOTNET_gcServer=0 [--requests 5000] [--rounds 1]

A variant is NAME[=BINARY]:[VAR=VALUE[,VAR=VALUE...]] (BINARY defaults to --samsa).
"""
import argparse, math, os, shutil, socket, struct, subprocess, sys, tempfile, time

JAR = "/usr/share/java/zookeeper.jar"
WRITES = ("create", "setData", "multi", "delete")
READS = ("exists", "getData")
HZ = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, log):
    req = struct.pack(">iqiqi", 0, 0, 30000, 0, 16) + b"\0" * 16
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(struct.pack(">i", len(req)) + req)
                head = s.recv(4, socket.MSG_WAITALL)
                if len(head) == 4 and struct.unpack(">i", head)[0] >= 20:
                    return round((time.monotonic() - t0) * 1000)
        except OSError:
            pass
        time.sleep(0.005)
    sys.exit(f"server not ready within 120 s; see {log}")


def proc_status(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def gmean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samsa", required=True, help="the build whose `perf keeper` drives the load")
    ap.add_argument("--variant", action="append", required=True)
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--serial-requests", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--zk-heap-mb", type=int, default=1000)
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="keeper-gc.")
    servers = []   # (name, cmd, env)
    servers.append(("zookeeper", ["java", f"-Xmx{a.zk_heap_mb}m", "-cp", JAR, "org.apache.zookeeper.server.quorum.QuorumPeerMain"], {}))
    for v in a.variant:
        head, _, envs = v.partition(":")
        name, _, binary = head.partition("=")
        env = dict(kv.split("=", 1) for kv in envs.split(",") if kv)
        servers.append((name, [binary or a.samsa, "keeper", "--config"], env))
    procs, port, ready = {}, {}, {}
    try:
        for name, cmd, env in servers:
            p = free_port()
            data = os.path.join(work, name)
            os.makedirs(data)
            cfg = os.path.join(work, name + ".cfg")
            with open(cfg, "w") as f:
                f.write(f"tickTime=2000\ndataDir={data}\nclientPort={p}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\nforceSync=yes\n")
            log = os.path.join(work, name + ".log")
            e = dict(os.environ)
            for k in list(e):   # each variant gets exactly its own GC settings
                if k.startswith("DOTNET_GC") or k.startswith("DOTNET_gc"):
                    del e[k]
            e.update(env)
            t0 = time.monotonic()
            proc = subprocess.Popen(cmd + [cfg], stdout=open(log, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=e)
            procs[name], port[name] = proc, p
            ready[name] = wait_ready(p, proc, log)
        names = [s[0] for s in servers]
        for n in names:   # warm-up (JITs), not reported
            subprocess.run([a.samsa, "perf", "keeper", "--target", f"127.0.0.1:{port[n]}", "--sessions", "8", "--requests", "3000",
                            "--size", "100", "--inflight", "16"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cells = [(1024, 32, 16, a.requests), (100, 8, 16, a.requests), (100, 1, 1, a.serial_requests)] * a.rounds
        res = {n: {"w": [], "r": [], "p99": [], "cpu": 0.0, "reqs": 0} for n in names}
        loads = []
        for i, (size, sess, infl, reqs) in enumerate(cells):
            order = names[i % len(names):] + names[:i % len(names)]
            loads.append(open("/proc/loadavg").read().split()[0])
            for n in order:
                c0 = cpu_ticks(procs[n].pid)
                out = subprocess.run([a.samsa, "perf", "keeper", "--target", f"127.0.0.1:{port[n]}", "--sessions", str(sess),
                                      "--requests", str(reqs), "--size", str(size), "--inflight", str(infl)],
                                     capture_output=True, text=True).stdout
                res[n]["cpu"] += (cpu_ticks(procs[n].pid) - c0) / HZ
                res[n]["reqs"] += reqs * 6
                ops = {}
                for line in out.splitlines():
                    f = line.split()
                    if f and f[0] in WRITES + READS:
                        ops[f[0]] = (float(f[1]), float(f[7]))
                res[n]["w"].append(gmean([ops[o][0] for o in WRITES if o in ops]))
                res[n]["r"].append(gmean([ops[o][0] for o in READS if o in ops]))
                res[n]["p99"].append(max([ops[o][1] for o in WRITES if o in ops] or [0]))
                print(f"cell {size} B/{sess} sessions/{infl} in flight: {n} done", file=sys.stderr)
        zk = res["zookeeper"]
        zk_rss = proc_status(procs["zookeeper"].pid, "VmRSS")
        zk_hwm = proc_status(procs["zookeeper"].pid, "VmHWM")
        print(f"loopback, forceSync=yes, ZooKeeper -Xmx{a.zk_heap_mb}m; cells (value B/sessions/in flight) "
              + ", ".join(f"{s}/{c}/{f}" for s, c, f, _ in cells) + f"; load average per cell {', '.join(loads)}; "
              + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        print()
        print("| server | settings | write ops/s ×ZK per cell | read ops/s ×ZK per cell | slowest write p99 ms per cell | CPU µs/req | RSS after, MiB | peak RSS, MiB | peak ×ZK | ready ms |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, cmd, env in servers:
            r = res[name]
            rss, hwm = proc_status(procs[name].pid, "VmRSS"), proc_status(procs[name].pid, "VmHWM")
            settings = "JVM" if name == "zookeeper" else (os.path.basename(os.path.dirname(cmd[0])) + " " + (" ".join(f"{k}={v}" for k, v in env.items()) or "(defaults)"))
            wr = ", ".join(f"{x / z:.2f}" for x, z in zip(r["w"], zk["w"]) if z)
            rr = ", ".join(f"{x / z:.2f}" for x, z in zip(r["r"], zk["r"]) if z)
            p99 = ", ".join(f"{x:.1f}" for x in r["p99"])
            print(f"| {name} | {settings} | {wr} | {rr} | {p99} | {r['cpu'] * 1e6 / max(r['reqs'], 1):.0f} | {rss:.0f} | {hwm:.0f} | {hwm / zk_hwm:.2f} | {ready[name]} |")
        print(f"\nZooKeeper RSS after {zk_rss:.0f} MiB, peak {zk_hwm:.0f} MiB")
    finally:
        for p in procs.values():
            try:
                os.killpg(p.pid, 9)
            except OSError:
                pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
