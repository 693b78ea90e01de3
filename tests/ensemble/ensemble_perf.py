#!/usr/bin/python3
"""Ensemble figures, Keeper beside Apache ZooKeeper 3.8 in one run (issue #17).

Starts a three-Keeper ensemble and a three-member Apache ZooKeeper 3.8 ensemble (Debian's
/usr/share/java/zookeeper.jar) on loopback with the same zoo.cfg (tickTime 500 ms, initLimit 10,
syncLimit 5, forceSync=yes), both running for the whole run. Then, the two ensembles taking turns
(the first to go alternates per round, so a shared machine's noise falls on both):

- load: `samsa perf keeper` against a follower (writes are forwarded to the leader and committed
  by a quorum, reads are served by the follower) with --sessions/--inflight/--size; write ops/s =
  create, setData, delete phases; read ops/s = getData and exists (with watch) phases; p50/p99
  per phase;
- RSS per member (VmRSS after the load, and peak VmHWM) from /proc;
- election after leader loss, --elections times per ensemble: SIGKILL the leader, time until one
  of the two others answers srvr with `Mode: leader` ("elected") and until a create through a
  surviving member succeeds ("writable"), then restart the killed member and wait until all three
  serve.

Prints one markdown table plus the load average of every step (the figures are noisy on a shared
machine: say so where they are quoted).

    tests/ensemble/ensemble_perf.py --samsa src/Samsa.Host/bin/Release/net10.0/samsa
        [--rounds 2] [--elections 3] [--sessions 8] [--inflight 16] [--requests 5000] [--size 100]
"""
import argparse, logging, os, re, signal, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kazoo.client import KazooClient  # noqa: E402
from ensemble_common import finish, free_ports, mode, wait_until  # noqa: E402

logging.getLogger("kazoo").setLevel(logging.CRITICAL + 1)
JAR = "/usr/share/java/zookeeper.jar"
LOG_CP = JAR + ":/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"
HOST = "127.0.0.1"
WRITES = ("create", "setData", "delete")
READS = ("getData", "exists")


def loadavg():
    return open("/proc/loadavg").read().split()[0]


class Member:
    def __init__(self, kind, sid, root, samsa, ports, heap_mb):
        self.kind, self.sid, self.samsa, self.heap_mb = kind, sid, samsa, heap_mb
        self.dir = os.path.join(root, f"{kind}{sid}")
        os.makedirs(self.dir)
        with open(os.path.join(self.dir, "myid"), "w") as f:
            f.write(f"{sid}\n")
        self.port = ports[sid - 1][2]
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        with open(self.cfg, "w") as f:
            f.write(f"tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={self.dir}\nclientPort={self.port}\n"
                    f"clientPortAddress={HOST}\nadmin.enableServer=false\n4lw.commands.whitelist=*\nforceSync=yes\n")
            for j, (q, e, _) in enumerate(ports, 1):
                f.write(f"server.{j}={HOST}:{q}:{e}\n")
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        log = open(os.path.join(self.dir, f"out{self.starts}.log"), "wb")
        if self.kind == "keeper":
            cmd = [self.samsa, "keeper", "--config", self.cfg]
        else:
            cmd = ["java", f"-Xmx{self.heap_mb}m", "-cp", LOG_CP,
                   "-Dlog4j.configuration=file:/etc/zookeeper/conf_example/log4j.properties",
                   "-Dzookeeper.root.logger=INFO,CONSOLE", "org.apache.zookeeper.server.quorum.QuorumPeerMain", self.cfg]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def mode(self):
        return mode(self.port)

    def rss(self):
        """(VmRSS, VmHWM) in MiB, or (None, None)."""
        try:
            st = open(f"/proc/{self.proc.pid}/status").read()
            return tuple(int(re.search(rf"^{k}:\s+(\d+)", st, re.M).group(1)) // 1024 for k in ("VmRSS", "VmHWM"))
        except (OSError, AttributeError):
            return (None, None)


class Ens:
    def __init__(self, kind, root, samsa, heap_mb):
        self.kind = kind
        p = free_ports(9)
        ports = [tuple(p[3 * i:3 * i + 3]) for i in range(3)]
        self.members = [Member(kind, i + 1, root, samsa, ports, heap_mb) for i in range(3)]
        self.res = {"ops": {}, "elected": [], "writable": [], "rss": [], "hwm": []}

    def start(self):
        for m in self.members:
            m.start()

    def serving(self):
        return all(m.mode() in ("leader", "follower") for m in self.members)

    def leader(self):
        return next((m for m in self.members if m.mode() == "leader"), None)

    def follower(self):
        return next((m for m in self.members if m.mode() == "follower"), None)

    def stop(self):
        for m in self.members:
            m.kill()


def start_and_warm(ens, samsa, requests, ops):
    """Starts every ensemble, waits until all members serve, then gives each a warm-up load
    through a follower, unreported (the JVM's JIT, the Keeper's tiered JIT)."""
    for e in ens:
        e.start()
    for e in ens:
        if not wait_until(e.serving, 90):
            raise RuntimeError(f"{e.kind} ensemble not serving within 90 s: " + ", ".join(str(m.mode()) for m in e.members))
    for e in ens:
        subprocess.run([samsa, "perf", "keeper", "--target", f"{HOST}:{e.follower().port}", "--sessions", "4",
                        "--requests", str(requests), "--inflight", "8", "--ops", ops], capture_output=True, timeout=300)


def stop_all(ens):
    for e in ens:
        e.stop()


def run_load(samsa, ens, a):
    f = ens.follower()
    out = subprocess.run([samsa, "perf", "keeper", "--target", f"{HOST}:{f.port}", "--sessions", str(a.sessions),
                          "--requests", str(a.requests), "--size", str(a.size), "--inflight", str(a.inflight),
                          "--ops", "create,exists,getData,setData,delete"],
                         capture_output=True, text=True, timeout=600)
    for line in out.stdout.splitlines():
        m = re.match(r"^(\w+)\s+(\d+) ops/s\s+p50\s+([\d.]+) ms\s+p99\s+([\d.]+) ms\s+errors (\d+)", line)
        if m:
            ens.res["ops"].setdefault(m.group(1), []).append((int(m.group(2)), float(m.group(3)), float(m.group(4)), int(m.group(5))))
    if out.returncode != 0:
        print(f"  load against {ens.kind} (member {f.sid}) exited {out.returncode}: {out.stderr.strip()[:300]}", flush=True)


def election(ens):
    leader = ens.leader()
    if leader is None:
        print(f"  {ens.kind}: no leader before the kill", flush=True)
        return
    others = [m for m in ens.members if m is not leader]
    t0 = time.monotonic()
    leader.kill()
    elected = wait_until(lambda: any(m.mode() == "leader" for m in others), 60)
    t_el = time.monotonic() - t0
    writable = None
    zk = KazooClient(hosts=",".join(f"{HOST}:{m.port}" for m in others), timeout=10.0,
                     connection_retry={"max_tries": -1, "delay": 0.05, "max_delay": 0.2})
    try:
        zk.start(timeout=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                zk.create("/election-probe-", b"", sequence=True)
                writable = time.monotonic() - t0
                break
            except Exception:
                time.sleep(0.02)
    except Exception:
        pass
    finally:
        try:
            zk.stop(); zk.close()
        except Exception:
            pass
    if elected:
        ens.res["elected"].append(t_el * 1000)
    if writable is not None:
        ens.res["writable"].append(writable * 1000)
    print(f"  {ens.kind}: killed leader {leader.sid}; elected {t_el * 1000:.0f} ms" if elected else f"  {ens.kind}: no leader within 60 s",
          f"writable {writable * 1000:.0f} ms" if writable is not None else "never writable", f"(load {loadavg()})", flush=True)
    leader.start()
    if not wait_until(ens.serving, 90):
        print(f"  {ens.kind}: not all serving 90 s after restarting member {leader.sid}", flush=True)


def fmt(xs, f="{:.0f}"):
    return f.format(statistics.median(xs)) if xs else "-"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samsa", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--elections", type=int, default=3)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--inflight", type=int, default=16)
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--zk-heap-mb", type=int, default=1000, help="Apache members' -Xmx (zkEnv.sh's default 1000)")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    samsa = os.path.abspath(a.samsa)
    root = tempfile.mkdtemp(prefix="samsa-ens-perf-")
    loads = [loadavg()]
    ens = [Ens("keeper", root, samsa, a.zk_heap_mb), Ens("apache", root, samsa, a.zk_heap_mb)]
    rc = 0
    try:
        start_and_warm(ens, samsa, 2000, "create,getData,delete")
        for r in range(a.rounds):
            order = ens if r % 2 == 0 else ens[::-1]
            for e in order:
                run_load(samsa, e, a)
                loads.append(loadavg())
                print(f"round {r + 1}: load on {e.kind} done (load {loads[-1]})", flush=True)
        for e in ens:
            for m in e.members:
                rss, hwm = m.rss()
                e.res["rss"].append(rss)
                e.res["hwm"].append(hwm)
        for i in range(a.elections):
            order = ens if i % 2 == 0 else ens[::-1]
            for e in order:
                election(e)
                loads.append(loadavg())
    except Exception as ex:
        print(f"FAIL {type(ex).__name__}: {ex}", flush=True)
        rc = 1
    finally:
        stop_all(ens)
    k, z = ens
    print()
    print(f"3-member ensembles on loopback, tickTime 500 ms, forceSync=yes, Apache -Xmx{a.zk_heap_mb}m; load "
          f"`samsa perf keeper` on a follower, {a.sessions} sessions x {a.inflight} in flight, {a.size}-byte values, "
          f"{a.requests} znodes per phase, median of {a.rounds} rounds; {os.cpu_count()} cores shared with other builds, "
          f"load average {min(loads)}–{max(loads)} (noisy)")
    print()
    print("| figure | Apache ZooKeeper 3.8 | Keeper | Keeper/ZK |")
    print("|---|---|---|---|")

    def ratio(kv, zv):
        try:
            return f"{float(kv) / float(zv):.2f}"
        except (ValueError, ZeroDivisionError):
            return "-"

    def med_ops(e, ops, idx):
        xs = [statistics.median([c[idx] for c in e.res["ops"][op]]) for op in ops if op in e.res["ops"]]
        return xs

    for label, ops in (("write", WRITES), ("read", READS)):
        ko, zo = med_ops(k, ops, 0), med_ops(z, ops, 0)
        kv = f"{statistics.mean(ko):.0f}" if ko else "-"
        zv = f"{statistics.mean(zo):.0f}" if zo else "-"
        print(f"| {label} ops/s ({', '.join(ops)}; mean of phase medians) | {zv} | {kv} | {ratio(kv, zv)} |")
    for op in WRITES + READS:
        if op not in k.res["ops"] or op not in z.res["ops"]:
            continue
        kc, zc = k.res["ops"][op], z.res["ops"][op]
        kv, zv = fmt([c[0] for c in kc]), fmt([c[0] for c in zc])
        print(f"| {op} ops/s | {zv} | {kv} | {ratio(kv, zv)} |")
        kp = f"{fmt([c[1] for c in kc], '{:.2f}')} / {fmt([c[2] for c in kc], '{:.2f}')}"
        zp = f"{fmt([c[1] for c in zc], '{:.2f}')} / {fmt([c[2] for c in zc], '{:.2f}')}"
        print(f"| {op} p50 / p99 ms | {zp} | {kp} | |")
    ke, ze = fmt(k.res["elected"]), fmt(z.res["elected"])
    print(f"| election after leader kill, ms (median of {a.elections}: leader elected) | {ze} | {ke} | {ratio(ke, ze)} |")
    kw, zw = fmt(k.res["writable"]), fmt(z.res["writable"])
    print(f"| leader kill to first committed create, ms (median) | {zw} | {kw} | {ratio(kw, zw)} |")
    print(f"| elections, all (elected ms) | {', '.join(f'{x:.0f}' for x in z.res['elected'])} | {', '.join(f'{x:.0f}' for x in k.res['elected'])} | |")
    kr = "/".join(str(x) for x in k.res["rss"])
    zr = "/".join(str(x) for x in z.res["rss"])
    print(f"| RSS per member after the load, MiB | {zr} | {kr} | {ratio(sum(x or 0 for x in k.res['rss']), sum(x or 0 for x in z.res['rss']))} |")
    kh = "/".join(str(x) for x in k.res["hwm"])
    zh = "/".join(str(x) for x in z.res["hwm"])
    print(f"| peak RSS per member (VmHWM), MiB | {zh} | {kh} | {ratio(sum(x or 0 for x in k.res['hwm']), sum(x or 0 for x in z.res['hwm']))} |")
    errs = sum(c[3] for e in ens for cs in e.res["ops"].values() for c in cs)
    return finish(errs, rc, root, a.keep)


if __name__ == "__main__":
    sys.exit(main())
