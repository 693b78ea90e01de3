#!/usr/bin/python3
"""Fault tests under load for Keeper / Apache ZooKeeper 3.8 ensembles (issue #17).

Each run starts a fresh three- or five-member ensemble on loopback in which every connection between members
(quorum and election ports) and every client connection goes through a small TCP proxy of this
script: member i's server.j line (j != i) names the proxy "i -> j", so the script can cut a member
off from the others while its clients still reach it. One kazoo client per member (connect string
starting at that member, the others after it) runs a mixed load, logging each operation's
invocation and completion time:

- register /reg: read = sync() then getData on the same session (ZooKeeper orders the read after
  the sync, which completes after every write the leader committed before it: the ZooKeeper way to
  read recent data; a plain getData on a follower may be stale, so a plain read could only be
  checked for sequential consistency per session), write = setData(-1), CAS = setData(version);
- set: create /set/<unique> (with --burst N, N creates sent at once and then awaited, so the
  leader has up to N proposals per client in flight when the fault hits);
- queue: create sequential /queue/q- with a unique payload; dequeue = the lowest child's getData
  then delete.

After warm-up the current leader (with a "-follower" fault kind, e.g. `pause-follower`, a
follower: no election then, the leader must keep leading) is faulted: `kill` (SIGKILL, restarted later on the same
dataDir), `pause` (SIGSTOP for longer than syncLimit ticks, then SIGCONT), `cut` (its proxies
drop every quorum/election connection to and from it; its client proxy stays up) or `isolate` (as
cut, and its client proxy drops its clients too, so they move to the other members). The script
times the election (fault until another member answers srvr with `Mode: leader`), heals the fault,
waits until all three serve again, lets the load run on, stops it and checks:

- lost: acknowledged set adds and queue enqueues missing from the final state read through every
  member after sync (an enqueue counts as present if it is still queued or was dequeued), plus
  members whose final /set or /queue differs from the others';
- non-linearizable: the register history run through tests/ensemble/linearizability.py (WGL);
  ops whose outcome is unknown (timeouts, connection loss) may take effect or not.

    tests/ensemble/fault_test.py --samsa src/Samsa.Host/bin/Release/net10.0/samsa [--runs 3]
        [--ensembles keepers,2k1a,1k2a[,1k2a-apache,2k1a-apache,apache,keepers5,3k2a]] [--faults kill,pause,cut[,isolate,kill-follower,pause-follower,...]]
        [--load-seconds 4] [--burst N]
"""
import argparse, asyncio, logging, os, random, shutil, signal, socket, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import BadVersionError, NoNodeError, NodeExistsError  # noqa: E402
from linearizability import INF, Op, check  # noqa: E402
from ensemble_common import four, free_ports, mode, wait_until  # noqa: E402,F401

JAR = "/usr/share/java/zookeeper.jar"
LOG_CP = JAR + ":/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"
logging.getLogger("kazoo").setLevel(logging.CRITICAL + 1)  # kazoo logs every dropped connection
TICK_MS, INIT_LIMIT, SYNC_LIMIT = 500, 10, 5
OP_TIMEOUT = 6.0
SESSION_TIMEOUT = 15.0

# sid order: the largest id leads among members with equal logs, so the last kind leads first
ENSEMBLES = {
    "keepers": ("3 Keepers", ["keeper", "keeper", "keeper"]),
    "2k1a": ("2 Keepers + 1 Apache, Keeper leads", ["apache", "keeper", "keeper"]),
    "1k2a": ("1 Keeper + 2 Apache, Keeper leads", ["apache", "apache", "keeper"]),
    "1k2a-apache": ("1 Keeper + 2 Apache, Apache leads", ["keeper", "apache", "apache"]),
    "2k1a-apache": ("2 Keepers + 1 Apache, Apache leads", ["keeper", "keeper", "apache"]),
    "apache": ("3 Apache (baseline)", ["apache", "apache", "apache"]),
    "keepers5": ("5 Keepers", ["keeper"] * 5),
    "3k2a": ("3 Keepers + 2 Apache, Keeper leads", ["apache", "apache", "keeper", "keeper", "keeper"]),
}


# ---------------------------------------------------------------- proxies

class Proxies:
    """TCP proxies on one asyncio loop in a background thread. Each proxy has a tag (src, dst) and
    can be blocked: blocking closes its open connections and closes new ones at once."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.blocked = set()       # tags
        self.conns = {}            # tag -> set of writers
        self.servers = []

    def add(self, listen_port, target_port, tag, election_addr=None, refused_retries=0):
        """election_addr: for an election-port proxy, the "host:port" to put in the opener's initial
        message instead of its own election address. ZooKeeper 3.8's QuorumCnxManager, receiving a
        connection from a smaller sid, connects back to the address that message names, not to its
        server line's; rewritten to the proxy the receiver uses to reach the opener, that connection
        goes through a proxy the script can cut too (without it an Apache member kept a direct
        election channel through a cut).

        refused_retries: for a quorum-port proxy, how many more times to try the target 100 ms apart
        when it refuses. The proxy accepts before it knows whether the target listens, so a refusal
        would reach the opener as a connection closed after it opened. A learner that settles its
        election a few ms before the new leader binds its quorum port (the leader decides after its
        followers: it waits for their changed votes) then sees end-of-stream instead of "connection
        refused"; 3.8's Learner.connectToLeader retries only a refused connect (5 tries, 100 ms
        apart), so the learner goes back to election a round ahead of the leader, which cannot take
        it back and gives up only after initLimit ticks ("Timeout while waiting for epoch from
        quorum"): elections of 5, 10, 15 s in any ensemble with an Apache learner (issue #17)."""
        async def initial_message(reader, uw):
            head = await reader.readexactly(8)
            version = int.from_bytes(head, "big", signed=True)
            if version not in (-65536, -65535):
                uw.write(head)  # an old-style message: the sid alone
                return
            rest = await reader.readexactly(12)
            n = int.from_bytes(rest[8:], "big")
            await reader.readexactly(n)
            addr = election_addr.encode()
            uw.write(head + rest[:8] + len(addr).to_bytes(4, "big") + addr)

        async def handle(reader, writer):
            if tag in self.blocked:
                writer.close()
                return
            ur = uw = None
            for attempt in range(refused_retries + 1):
                if attempt:
                    await asyncio.sleep(0.1)
                if tag in self.blocked:
                    break
                try:
                    ur, uw = await asyncio.open_connection("127.0.0.1", target_port)
                    break
                except ConnectionRefusedError:
                    continue
                except OSError:
                    break
            if uw is None or tag in self.blocked:  # blocked while connecting: block() did not see this pair
                writer.close()
                if uw is not None:
                    uw.close()
                return
            mine = self.conns.setdefault(tag, set())
            mine.add(writer); mine.add(uw)

            async def pipe(r, w, first=None):
                try:
                    if first is not None:
                        await first(r, w)
                    while True:
                        b = await r.read(65536)
                        if not b:
                            break
                        w.write(b)
                        await w.drain()
                except Exception:
                    pass
                finally:
                    for x in (writer, uw):
                        try:
                            x.close()
                        except Exception:
                            pass
                    mine.discard(writer); mine.discard(uw)
            await asyncio.gather(pipe(reader, uw, initial_message if election_addr else None), pipe(ur, writer))

        async def start():
            srv = await asyncio.start_server(handle, "127.0.0.1", listen_port)
            self.servers.append(srv)
        asyncio.run_coroutine_threadsafe(start(), self.loop).result()

    def block(self, pred):
        def do():
            for tag, ws in self.conns.items():
                if pred(tag):
                    self.blocked.add(tag)
                    for w in list(ws):
                        try:
                            w.transport.abort()
                        except Exception:
                            pass
        self.loop.call_soon_threadsafe(do)

    def unblock_all(self):
        self.loop.call_soon_threadsafe(self.blocked.clear)

    def block_tags(self, tags):
        def do():
            self.blocked.update(tags)
            for tag in tags:
                for w in list(self.conns.get(tag, ())):
                    try:
                        w.transport.abort()
                    except Exception:
                        pass
        self.loop.call_soon_threadsafe(do)

    def close(self):
        async def stop():
            for s in self.servers:
                s.close()
            for ws in self.conns.values():
                for w in list(ws):
                    try:
                        w.transport.abort()
                    except Exception:
                        pass
        try:
            asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


# ---------------------------------------------------------------- ensemble

class Member:
    def __init__(self, sid, kind, root, samsa):
        self.sid, self.kind, self.samsa = sid, kind, samsa
        self.dir = os.path.join(root, f"m{sid}")
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "myid"), "w") as f:
            f.write(f"{sid}\n")
        self.proc = None
        self.log = None
        self.starts = 0

    def name(self):
        return f"{self.kind}{self.sid}"

    def write_config(self, client_port, server_lines):
        self.port = client_port
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        with open(self.cfg, "w") as f:
            f.write(f"tickTime={TICK_MS}\ninitLimit={INIT_LIMIT}\nsyncLimit={SYNC_LIMIT}\n")
            f.write(f"dataDir={self.dir}\nclientPort={client_port}\nclientPortAddress=127.0.0.1\n")
            f.write("admin.enableServer=false\n4lw.commands.whitelist=*\n")
            f.write("".join(s + "\n" for s in server_lines))

    def start(self):
        self.starts += 1
        self.log = open(os.path.join(self.dir, f"out{self.starts}.log"), "w")
        if self.kind == "keeper":
            cmd = [self.samsa, "keeper", "--config", self.cfg]
        else:
            cmd = ["java", "-Xmx128m", "-cp", LOG_CP, "-Dlog4j.configuration=file:/etc/zookeeper/conf_example/log4j.properties",
                   "-Dzookeeper.root.logger=INFO,CONSOLE", "org.apache.zookeeper.server.quorum.QuorumPeerMain", self.cfg]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        if self.log:
            self.log.close()
            self.log = None

    def mode(self):
        return mode(self.port)


class Ensemble:
    """Three or five members; member i reaches member j's quorum/election ports through proxy tag (i, j);
    clients reach member i's client port through proxy tag ("client", i)."""

    def __init__(self, kinds, root, samsa, proxies):
        n = len(kinds)
        self.proxies = proxies
        self.members = [Member(i + 1, k, root, samsa) for i, k in enumerate(kinds)]
        allp = free_ports(3 * n + 2 * n * n + n)    # one call: ports of separate calls may repeat
        real = allp[:3 * n]                         # quorum, election, client per member
        prox = allp[3 * n:]
        self.client_ports = []
        k = 0
        proxy_of = {}
        for i in range(1, n + 1):
            for j in range(1, n + 1):
                if i != j:
                    proxy_of[(i, j)] = (prox[k], prox[k + 1])
                    k += 2
        for (i, j), (pq, pe) in proxy_of.items():
            proxies.add(pq, real[3 * (j - 1)], (i, j), refused_retries=4)
            # j connecting back to i (3.8 does, to the address i's initial message names) uses proxy (j, i)
            proxies.add(pe, real[3 * (j - 1) + 1], (i, j), election_addr=f"127.0.0.1:{proxy_of[(j, i)][1]}")
        for i in range(1, n + 1):
            cp = prox[k]
            k += 1
            proxies.add(cp, real[3 * (i - 1) + 2], ("client", i))
            self.client_ports.append(cp)
        for m in self.members:
            i = m.sid
            lines = []
            for j in range(1, n + 1):
                q, e = (real[3 * (j - 1)], real[3 * (j - 1) + 1]) if i == j else proxy_of[(i, j)]
                lines.append(f"server.{j}=127.0.0.1:{q}:{e}")
            m.write_config(real[3 * (i - 1) + 2], lines)

    def start(self):
        """The largest sid (the wanted leader) first, the others once it listens: started together,
        Keepers (up in ~1 s) formed a quorum and elected among themselves before a JVM was up."""
        last = self.members[-1]
        last.start()
        wait_until(lambda: four(last.port, "srvr") != "", 60)
        for m in self.members[:-1]:
            m.start()

    def serving(self):
        return all(m.mode() in ("leader", "follower") for m in self.members)

    def leader(self):
        for m in self.members:
            if m.mode() == "leader":
                return m
        return None

    def hosts_for(self, m):
        """Connect string through the client proxies, starting at member m."""
        i = self.members.index(m)
        order = self.members[i:] + self.members[:i]
        return ",".join(f"127.0.0.1:{self.client_ports[x.sid - 1]}" for x in order)

    def stop(self):
        for m in self.members:
            m.kill()


# ---------------------------------------------------------------- load

class History:
    def __init__(self):
        self.lock = threading.Lock()
        self.reg = []          # linearizability.Op
        self.set_acked, self.set_unknown = set(), set()
        self.enq_acked, self.enq_unknown = set(), set()
        self.deq_acked, self.deq_unknown = [], set()
        self.counts = {}

    def count(self, what):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1


def worker(cid, hosts, hist, stop, seed, burst=1):
    rnd = random.Random(seed)
    zk = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT, randomize_hosts=False,
                     connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 0.5})
    zk.start(timeout=30)
    seq = 0
    last_version = 0
    try:
        while not stop.is_set():
            seq += 1
            uid = f"c{cid}-{seq}"
            r = rnd.random()
            t0 = time.monotonic()
            try:
                if r < 0.30:
                    zk.sync_async("/reg").get(timeout=OP_TIMEOUT)
                    data, stat = zk.get_async("/reg").get(timeout=OP_TIMEOUT)
                    t1 = time.monotonic()
                    last_version = stat.version
                    with hist.lock:
                        hist.reg.append(Op(cid, "read", t0, t1, (data.decode(), stat.version)))
                    hist.count("read")
                elif r < 0.45:
                    op = Op(cid, "write", t0, INF, uid)
                    with hist.lock:
                        hist.reg.append(op)
                    zk.set_async("/reg", uid.encode()).get(timeout=OP_TIMEOUT)
                    op.resp = time.monotonic()
                    hist.count("write")
                elif r < 0.60:
                    exp = last_version if rnd.random() < 0.7 else max(0, last_version + rnd.randint(-1, 1))  # -1 would be a plain write
                    op = Op(cid, "cas", t0, INF, uid, expected=exp, ok=None)
                    with hist.lock:
                        hist.reg.append(op)
                    try:
                        zk.set_async("/reg", uid.encode(), version=exp).get(timeout=OP_TIMEOUT)
                        op.ok = True
                    except BadVersionError:
                        op.ok = False
                    op.resp = time.monotonic()
                    hist.count("cas")
                elif r < 0.80 and burst > 1:
                    uids = [f"{uid}-{b}" for b in range(burst)]
                    with hist.lock:
                        hist.set_unknown.update(uids)
                    pending = [(u, zk.create_async(f"/set/{u}", b"")) for u in uids]
                    failed = None
                    for u, a in pending:
                        try:
                            a.get(timeout=OP_TIMEOUT)
                            with hist.lock:
                                hist.set_acked.add(u)
                                hist.set_unknown.discard(u)
                            hist.count("set-add")
                        except Exception as e:
                            failed = failed or e
                            hist.count("unknown")
                    if failed:
                        time.sleep(0.05)
                elif r < 0.80:
                    try:
                        zk.create_async(f"/set/{uid}", b"").get(timeout=OP_TIMEOUT)
                    except NodeExistsError:
                        pass  # a retried create that had applied: impossible here (no retries), but acked anyway
                    with hist.lock:
                        hist.set_acked.add(uid)
                    hist.count("set-add")
                elif r < 0.92:
                    zk.create_async("/queue/q-", uid.encode(), sequence=True).get(timeout=OP_TIMEOUT)
                    with hist.lock:
                        hist.enq_acked.add(uid)
                    hist.count("enqueue")
                else:
                    kids = sorted(zk.get_children_async("/queue").get(timeout=OP_TIMEOUT))
                    for k in kids[:3]:
                        try:
                            data, _ = zk.get_async(f"/queue/{k}").get(timeout=OP_TIMEOUT)
                        except NoNodeError:
                            continue
                        try:
                            zk.delete_async(f"/queue/{k}").get(timeout=OP_TIMEOUT)
                            with hist.lock:
                                hist.deq_acked.append(data.decode())
                            hist.count("dequeue")
                            break
                        except NoNodeError:
                            continue
                        except Exception:
                            with hist.lock:
                                hist.deq_unknown.add(data.decode())
                            raise
            except (BadVersionError, NoNodeError):
                hist.count("definite-error")
            except Exception:
                # unknown outcome: timeouts, connection loss, session moved/expired
                hist.count("unknown")
                # register writes/CAS stay in the history with resp=INF
                if 0.60 <= r < 0.80:
                    with hist.lock:
                        hist.set_unknown.add(uid)
                elif 0.80 <= r < 0.92:
                    with hist.lock:
                        hist.enq_unknown.add(uid)
                time.sleep(0.05)
            time.sleep(rnd.uniform(0.0, 0.01))
    finally:
        try:
            zk.stop(); zk.close()
        except Exception:
            pass


def final_state(ens):
    """(set members, queued payloads) read through every member after sync."""
    out = []
    for m in ens.members:
        zk = KazooClient(hosts=f"127.0.0.1:{ens.client_ports[m.sid - 1]}", timeout=10.0)
        try:
            zk.start(timeout=15)
            zk.sync("/set"); zk.sync("/queue")
            s = set(zk.get_children("/set"))
            q = set()
            for k in zk.get_children("/queue"):
                try:
                    q.add(zk.get(f"/queue/{k}")[0].decode())
                except NoNodeError:
                    pass
            out.append((m.name(), s, q))
        except Exception as e:
            out.append((m.name(), None, f"{type(e).__name__}: {e}"))
        finally:
            try:
                zk.stop(); zk.close()
            except Exception:
                pass
    return out


def count_truncs(ens):
    """How many times a member cut its log on the leader's TRUNC (Keeper and Apache log lines)."""
    n = 0
    for m in ens.members:
        for f in os.listdir(m.dir):
            if f.startswith("out") and f.endswith(".log"):
                with open(os.path.join(m.dir, f), errors="replace") as fh:
                    for line in fh:
                        if "truncating the txn log to" in line or "Truncating log to get in sync" in line:
                            n += 1
    return n


# ---------------------------------------------------------------- one run

def run(kinds, fault, samsa, root, load_seconds, log, burst=1):
    proxies = Proxies()
    ens = Ensemble(kinds, root, samsa, proxies)
    res = {"ops": 0, "lost": None, "nonlin": None, "election_ms": None, "note": ""}
    stop = threading.Event()
    threads = []
    try:
        ens.start()
        if not wait_until(ens.serving, 60):
            res["note"] = "not serving after start: " + ", ".join(f"{m.name()}={m.mode()}" for m in ens.members)
            return res
        leader = ens.leader()
        zk = KazooClient(hosts=f"127.0.0.1:{ens.client_ports[0]}", timeout=10.0)
        zk.start(timeout=15)
        zk.create("/reg", b"init")
        zk.create("/set"); zk.create("/queue")
        zk.stop(); zk.close()
        hist = History()
        for i, m in enumerate(ens.members):
            t = threading.Thread(target=worker, args=(i + 1, ens.hosts_for(m), hist, stop, random.randrange(1 << 30), burst), daemon=True)
            t.start()
            threads.append(t)
        time.sleep(load_seconds)
        # ---- fault on the current leader (a follower with "-follower")
        leader = ens.leader() or leader
        on_follower = fault.endswith("-follower")
        kind = fault.split("-")[0]
        victim = next(m for m in ens.members if m is not leader) if on_follower else leader
        others = [m for m in ens.members if m is not victim]
        log(f"  fault {fault} on {'follower' if on_follower else 'leader'} {victim.name()}")
        t_fault = time.monotonic()
        if kind == "kill":
            victim.kill()
        elif kind == "pause":
            victim.signal(signal.SIGSTOP)
        elif kind in ("cut", "isolate"):
            s = victim.sid
            proxies.block_tags([(s, o.sid) for o in others] + [(o.sid, s) for o in others]
                               + ([("client", s)] if kind == "isolate" else []))
        new_leader = None

        def elected():
            nonlocal new_leader
            for m in others:
                if m.mode() == "leader":
                    new_leader = m
                    return True
            return False
        if on_follower:
            pass  # the leader keeps its quorum; checked below, before healing
        elif wait_until(elected, 60):
            res["election_ms"] = (time.monotonic() - t_fault) * 1000
            log(f"  new leader {new_leader.name()} after {res['election_ms']:.0f} ms")
        else:
            res["note"] += "no new leader within 60 s; "
        # keep the fault a while under load, then heal
        hold = max(0.0, (SYNC_LIMIT * TICK_MS / 1000.0) * 2 - (time.monotonic() - t_fault))
        time.sleep(hold + 1.0)
        if on_follower and leader.mode() != "leader":
            res["note"] += f"leader {leader.name()} stopped leading while a follower was faulted; "
        if kind == "kill":
            victim.start()
        elif kind == "pause":
            victim.signal(signal.SIGCONT)
        elif kind in ("cut", "isolate"):
            proxies.unblock_all()
        t_heal = time.monotonic()
        if not wait_until(ens.serving, 60):
            res["note"] += "not all serving 60 s after healing: " + ", ".join(f"{m.name()}={m.mode()}" for m in ens.members) + "; "
        else:
            log(f"  all serving {time.monotonic() - t_heal:.2f} s after healing")
        time.sleep(load_seconds)
        stop.set()
        for t in threads:
            t.join(OP_TIMEOUT * 4)
        # ---- checks
        with hist.lock:
            reg = list(hist.reg)
            set_acked, enq_acked = set(hist.set_acked), set(hist.enq_acked)
            deq = list(hist.deq_acked) + list(hist.deq_unknown)
        res["ops"] = sum(hist.counts.get(k, 0) for k in ("read", "write", "cas", "set-add", "enqueue", "dequeue", "definite-error", "unknown"))
        res["counts"] = dict(hist.counts)
        states = final_state(ens)
        lost = 0
        ref = None
        details = []
        for name, s, q in states:
            if s is None:
                res["note"] += f"final read through {name} failed ({q}); "
                continue
            missing_set = set_acked - s
            missing_q = enq_acked - q - set(deq)
            lost = max(lost, len(missing_set) + len(missing_q))
            if missing_set or missing_q:
                details.append(f"{name} misses set {sorted(missing_set)[:5]} queue {sorted(missing_q)[:5]}")
            if ref is None:
                ref = (s, q)
            elif (s, q) != ref:
                details.append(f"{name}'s final state differs from the first member's")
                lost += 1
        acked_deq = list(hist.deq_acked)
        dups = len(acked_deq) - len(set(acked_deq))
        if dups:
            details.append(f"{dups} payload(s) dequeued twice")
            lost += dups
        res["lost"] = lost
        ok, info = check(reg, ("init", 0))
        if ok is not True:
            import json
            with open(os.path.join(root, "register-history.json"), "w") as f:
                json.dump([o.__dict__ for o in reg], f, default=str, indent=0)
        res["nonlin"] = 0 if ok else (1 if ok is False else None)
        if ok is not True:
            details.append(info)
        res["note"] += "; ".join(details)
        res["trunc"] = count_truncs(ens)
        return res
    finally:
        stop.set()
        ens.stop()
        proxies.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--samsa", required=True)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--ensembles", default="keepers,2k1a,1k2a")
    p.add_argument("--faults", default="kill,pause,cut")
    p.add_argument("--load-seconds", type=float, default=4.0)
    p.add_argument("--burst", type=int, default=1, help="set adds as N pipelined creates per client")
    p.add_argument("--keep", action="store_true", help="keep the member directories (logs)")
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args()
    samsa = os.path.abspath(a.samsa)
    log = (lambda s: print(s, flush=True)) if a.verbose else (lambda s: None)
    table = {}
    failures = 0
    t_all = time.monotonic()
    for r in range(a.runs):
        for ek in a.ensembles.split(","):
            label, kinds = ENSEMBLES[ek]
            for fault in a.faults.split(","):
                root = tempfile.mkdtemp(prefix="samsa-fault-")
                t0 = time.monotonic()
                res = run(kinds, fault, samsa, root, a.load_seconds, log, a.burst)
                took = time.monotonic() - t0
                bad = (res["lost"] != 0 or res["nonlin"] != 0 or bool(res["note"])
                       or (res["election_ms"] is None and not fault.endswith("-follower")))
                failures += bad
                el = f"{res['election_ms']:.0f}" if res["election_ms"] is not None else "-"
                print(f"run {r + 1} {label:38s} {fault:5s} ops {res['ops']:5d} lost {res['lost']} non-linearizable {res['nonlin']} "
                      f"election {el} ms, TRUNC syncs {res.get('trunc', 0)} ({took:.0f} s){'  ' + res['note'] if res['note'] else ''}", flush=True)
                t = table.setdefault((label, fault), {"ops": 0, "lost": 0, "nonlin": 0, "el": [], "runs": 0, "bad": 0, "trunc": 0})
                t["runs"] += 1
                t["ops"] += res["ops"]
                t["lost"] += res["lost"] or 0
                t["nonlin"] += 1 if res["nonlin"] != 0 else 0
                t["bad"] += bad
                t["trunc"] += res.get("trunc", 0)
                if res["election_ms"] is not None:
                    t["el"].append(res["election_ms"])
                if a.keep or bad:
                    print(f"  logs in {root}")
                else:
                    shutil.rmtree(root, ignore_errors=True)
    print()
    print("| ensemble | fault | runs | operations | lost | non-linearizable runs | election ms (min–max) | TRUNC syncs | failing runs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (label, fault), t in table.items():
        el = f"{min(t['el']):.0f}–{max(t['el']):.0f}" if t["el"] else "-"
        print(f"| {label} | {fault} | {t['runs']} | {t['ops']} | {t['lost']} | {t['nonlin']} | {el} | {t['trunc']} | {t['bad']} |")
    print(f"\n{failures} failing run(s); total {time.monotonic() - t_all:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
