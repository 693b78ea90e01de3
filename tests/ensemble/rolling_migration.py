#!/usr/bin/python3
"""Rolling migration of an Apache ZooKeeper 3.8 ensemble to Keepers under load (issue #17).

Starts three Debian Apache ZooKeeper 3.8 members on loopback, then kazoo clients (connect string
listing all three) that each hold an ephemeral znode and keep writing: creates of /rm/<unique>
(each acknowledged create is logged) and versioned setData on a per-client counter, with sync+read
checks of the counter in between. The members are then replaced one at a time, followers first and
the leader last: stop the Apache member (SIGTERM), start `samsa keeper --config zoo.cfg` for the
same server id, either on the same dataDir (`--mode datadir`: the Keeper reads Apache's snapshot,
txn logs and epoch files) or on an emptied one (`--mode snap`: myid only, so the Keeper syncs from
the leader by SNAP), and wait until all three members serve before the next. When all three are
Keepers the load runs on a while, stops, and the script checks through every member after sync:

- every acknowledged create is present (lost must be 0), and every member holds the same /rm;
- no session was lost: no client saw its session expire (kazoo state LOST), each client's
  ephemeral still exists and belongs to its session, and each counter holds its last acked value.

    tests/ensemble/rolling_migration.py --samsa src/Samsa.Host/bin/Release/net10.0/samsa [--mode datadir|snap|both] [--runs 2]
"""
import argparse, os, random, shutil, signal, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault_test import Member, free_ports, wait_until  # noqa: E402
from kazoo.client import KazooClient, KazooState  # noqa: E402
from kazoo.exceptions import BadVersionError  # noqa: E402

OP_TIMEOUT = 8.0
SESSION_TIMEOUT = 20.0


class Load:
    def __init__(self, hosts, clients):
        self.hosts, self.n = hosts, clients
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked, self.unknown = set(), set()
        self.lost_sessions = 0
        self.ops = 0
        self.errors = 0
        self.stale = 0
        self.sessions = {}
        self.counters = {}
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(clients)]

    def start(self):
        for t in self.threads:
            t.start()

    def client(self, cid):
        zk = KazooClient(hosts=self.hosts, timeout=SESSION_TIMEOUT,
                         connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 0.5})

        def listener(state):
            if state == KazooState.LOST:
                with self.lock:
                    self.lost_sessions += 1
        zk.add_listener(listener)
        zk.start(timeout=30)
        zk.create(f"/eph-{cid}", b"", ephemeral=True)
        zk.create(f"/ctr-{cid}", b"0")
        with self.lock:
            self.sessions[cid] = zk.client_id[0]
        version, value, seq = 0, 0, 0
        rnd = random.Random(cid)
        try:
            while not self.stop.is_set():
                seq += 1
                uid = f"c{cid}-{seq}"
                try:
                    r = rnd.random()
                    if r < 0.6:
                        try:
                            zk.create_async(f"/rm/{uid}", b"").get(timeout=OP_TIMEOUT)
                            with self.lock:
                                self.acked.add(uid)
                        except Exception:
                            with self.lock:
                                self.unknown.add(uid)
                            raise
                    elif r < 0.8:
                        # only this client writes its counter: a versioned set must match our last ack
                        try:
                            stat = zk.set_async(f"/ctr-{cid}", str(value + 1).encode(), version=version).get(timeout=OP_TIMEOUT)
                            version, value = stat.version, value + 1
                        except BadVersionError:
                            # an earlier set whose answer was lost did apply: read it back
                            zk.sync_async(f"/ctr-{cid}").get(timeout=OP_TIMEOUT)
                            data, stat = zk.get_async(f"/ctr-{cid}").get(timeout=OP_TIMEOUT)
                            version, value = stat.version, int(data)
                    else:
                        zk.sync_async(f"/ctr-{cid}").get(timeout=OP_TIMEOUT)
                        data, stat = zk.get_async(f"/ctr-{cid}").get(timeout=OP_TIMEOUT)
                        if stat.version < version:
                            with self.lock:
                                self.stale += 1
                    with self.lock:
                        self.ops += 1
                except Exception:
                    with self.lock:
                        self.errors += 1
                    time.sleep(0.1)
                time.sleep(rnd.uniform(0, 0.01))
            with self.lock:
                self.counters[cid] = (version, value)
        finally:
            # stop without closing the session: the final check looks for its ephemeral
            self.clients_left = getattr(self, "clients_left", [])
            self.clients_left.append(zk)


def run(samsa, root, mode, log):
    n = 3
    ports = free_ports(3 * n)
    lines = [f"server.{i + 1}=127.0.0.1:{ports[3 * i]}:{ports[3 * i + 1]}" for i in range(n)]
    members = [Member(i + 1, "apache", root, samsa) for i in range(n)]
    for i, m in enumerate(members):
        m.write_config(ports[3 * i + 2], lines)
    hosts = ",".join(f"127.0.0.1:{m.port}" for m in members)
    res = {"ops": 0, "acked": 0, "lost": None, "sessions_lost": None, "note": "", "steps": []}
    load = None
    try:
        for m in members:
            m.start()
        if not wait_until(lambda: all(m.mode() in ("leader", "follower") for m in members), 60):
            res["note"] = "Apache ensemble not serving"
            return res
        zk = KazooClient(hosts=hosts, timeout=10.0)
        zk.start(timeout=15)
        zk.create("/rm")
        zk.stop(); zk.close()
        load = Load(hosts, 3)
        load.start()
        time.sleep(3)
        leader = next(m for m in members if m.mode() == "leader")
        order = [m for m in members if m is not leader] + [leader]
        for m in order:
            t0 = time.monotonic()
            was = m.mode()
            m.signal(signal.SIGTERM)
            try:
                m.proc.wait(15)
            except Exception:
                m.kill()
            m.kill()
            if mode == "snap":
                shutil.rmtree(os.path.join(m.dir, "version-2"), ignore_errors=True)
            m.kind = "keeper"
            m.start()
            ok = wait_until(lambda: all(x.mode() in ("leader", "follower") for x in members), 60)
            took = time.monotonic() - t0
            step = f"sid {m.sid} ({was}) -> keeper in {took:.1f} s" + ("" if ok else " NOT SERVING: " + ", ".join(f"{x.name()}={x.mode()}" for x in members))
            res["steps"].append(step)
            log("  " + step)
            if not ok:
                res["note"] += step + "; "
                break
            time.sleep(2)
        time.sleep(3)
        load.stop.set()
        for t in load.threads:
            t.join(OP_TIMEOUT * 3)
        # ---- checks through every member
        lost = 0
        ref = None
        for m in members:
            c = KazooClient(hosts=f"127.0.0.1:{m.port}", timeout=10.0)
            try:
                c.start(timeout=15)
                c.sync("/rm")
                have = set(c.get_children("/rm"))
                missing = load.acked - have
                if missing:
                    res["note"] += f"{m.name()} misses {len(missing)} acked create(s) e.g. {sorted(missing)[:3]}; "
                lost = max(lost, len(missing))
                if ref is None:
                    ref = have
                elif have != ref:
                    res["note"] += f"{m.name()}'s /rm differs; "
                    lost += 1
                for cid, sid in load.sessions.items():
                    c.sync(f"/eph-{cid}")
                    st = c.exists(f"/eph-{cid}")
                    if st is None or st.ephemeralOwner != sid:
                        res["note"] += f"client {cid}'s ephemeral gone on {m.name()}; "
                        load.lost_sessions += 1
                    data, stat = c.get(f"/ctr-{cid}")
                    if (stat.version, int(data)) != load.counters.get(cid):
                        res["note"] += f"counter {cid} on {m.name()} is {(stat.version, int(data))}, last acked {load.counters.get(cid)}; "
                        lost += 1
            except Exception as e:
                res["note"] += f"check through {m.name()} failed: {type(e).__name__} {e}; "
            finally:
                try:
                    c.stop(); c.close()
                except Exception:
                    pass
        res["ops"], res["acked"], res["lost"] = load.ops, len(load.acked), lost
        res["sessions_lost"], res["errors"], res["stale"] = load.lost_sessions, load.errors, load.stale
        if load.stale:
            res["note"] += f"{load.stale} sync+read(s) older than the client's own acked write; "
        return res
    finally:
        if load is not None:
            load.stop.set()
            for zk in getattr(load, "clients_left", []):
                try:
                    zk.stop(); zk.close()
                except Exception:
                    pass
        for m in members:
            m.kill()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--samsa", required=True)
    p.add_argument("--mode", default="both", choices=["datadir", "snap", "both"])
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args()
    samsa = os.path.abspath(a.samsa)
    log = (lambda s: print(s, flush=True)) if a.verbose else (lambda s: None)
    modes = ["datadir", "snap"] if a.mode == "both" else [a.mode]
    failures = 0
    t_all = time.monotonic()
    for r in range(a.runs):
        for mode in modes:
            root = tempfile.mkdtemp(prefix="samsa-rolling-")
            t0 = time.monotonic()
            res = run(samsa, root, mode, log)
            bad = res["lost"] != 0 or res["sessions_lost"] != 0 or bool(res["note"])
            failures += bad
            print(f"run {r + 1} mode {mode:7s}: ops {res['ops']} acked creates {res['acked']} lost {res['lost']} "
                  f"sessions lost {res['sessions_lost']} failed/unknown ops {res.get('errors')} ({time.monotonic() - t0:.0f} s; "
                  + "; ".join(res["steps"]) + ")" + (f"  {res['note']}" if res["note"] else ""), flush=True)
            if a.keep or bad:
                print(f"  logs in {root}")
            else:
                shutil.rmtree(root, ignore_errors=True)
    print(f"{failures} failing run(s); total {time.monotonic() - t_all:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
