#!/usr/bin/python3
"""Local sessions and read-only mode in Keeper-only and mixed Keeper/Apache ensembles (issue #17),
checked with kazoo, one PASS/FAIL line per check; Apache-only ensembles run the same checks as
the baseline (what upstream 3.8 does is what the Keeper must do).

Every member gets localSessionsEnabled=true (upstream requires the same setting on all members)
and -Dreadonlymode.enabled=true (Apache reads only that system property; `samsa keeper` takes the
same -D flag).

Per ensemble:
  local sessions, through every member: the session id carries the member's id in its top byte;
  a persistent create works; a session that never created an ephemeral cannot move to another
  member (the client is told it expired and gets a new session); an ephemeral create upgrades the
  session to a global one, which can move and owns the node.
  with --no-upgrade ensembles (localSessionsUpgradingEnabled=false): an ephemeral create of a
  local session fails with EPHEMERALONLOCALSESSION (-120).
  read-only mode, at the member under test (the Keeper in a mixed ensemble): the two others are
  killed; isro says "ro"; a client without canBeReadOnly is refused; a read-only client reads the
  data, gets NOTREADONLY for writes; the killed members restart; isro says "rw" again and the
  read-only client ends up connected read-write and writes.

Exit status 0 when every check passed.
    tests/ensemble/sessions_readonly.py --samsa src/Samsa.Host/bin/Release/net10.0/samsa [--ensembles keepers,1k2a,2a1k,apache]
"""
import argparse, os, shutil, signal, socket, struct, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ensemble_common import free_ports, four, mode, wait_until  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402
from kazoo.protocol.states import KazooState, KeeperState  # noqa: E402
from kazoo.exceptions import NotReadOnlyCallError  # noqa: E402

JAR = "/usr/share/java/zookeeper.jar"
LOG_CP = JAR + ":/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"

# name -> kinds by server id (the largest id leads first), and the member read-only mode is tested at
ENSEMBLES = {
    "keepers": (["keeper", "keeper", "keeper"], 1),
    "1k2a": (["keeper", "apache", "apache"], 1),      # Apache leads, Keeper follows
    "2a1k": (["apache", "apache", "keeper"], 3),      # Keeper leads two Apache
    "apache": (["apache", "apache", "apache"], 1),    # upstream baseline
    "keepers-noupgrade": (["keeper", "keeper", "keeper"], None),
    "apache-noupgrade": (["apache", "apache", "apache"], None),
}

results = []


def check(name, ok, detail=""):
    results.append((name, ok))
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)


class Member:
    def __init__(self, sid, kind, root, servers, client_port, samsa, upgrading):
        self.sid, self.kind, self.port, self.samsa = sid, kind, client_port, samsa
        self.dir = os.path.join(root, f"m{sid}")
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "myid"), "w") as f:
            f.write(f"{sid}\n")
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        with open(self.cfg, "w") as f:
            f.write("tickTime=500\ninitLimit=10\nsyncLimit=5\n")
            f.write(f"dataDir={self.dir}\nclientPort={client_port}\nclientPortAddress=127.0.0.1\n")
            f.write("admin.enableServer=false\n4lw.commands.whitelist=*\n")
            f.write(f"localSessionsEnabled=true\nlocalSessionsUpgradingEnabled={'true' if upgrading else 'false'}\n")
            f.write("".join(s + "\n" for s in servers))
        self.proc = None
        self.log = open(os.path.join(self.dir, "out.log"), "a")
        self.start()

    def start(self):
        if self.kind == "keeper":
            cmd = [self.samsa, "keeper", "-Dreadonlymode.enabled=true", "--config", self.cfg]
        else:
            cmd = ["java", "-Xmx128m", "-XX:TieredStopAtLevel=1", "-cp", LOG_CP, "-Dreadonlymode.enabled=true",
                   "-Dlog4j.configuration=file:/etc/zookeeper/conf_example/log4j.properties",
                   "-Dzookeeper.root.logger=INFO,CONSOLE", "org.apache.zookeeper.server.quorum.QuorumPeerMain", self.cfg]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def name(self):
        return f"{self.kind}{self.sid}"


def client(port, **kw):
    zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=6.0, **kw)
    zk.start(timeout=10)
    return zk


def stop(zk):
    try:
        zk.stop(); zk.close()
    except Exception:
        pass


def _frame(b):
    return struct.pack(">i", len(b)) + b


def _read_frame(sock):
    def exactly(n):
        out = b""
        while len(out) < n:
            c = sock.recv(n - len(out))
            if not c:
                raise ConnectionError("closed")
            out += c
        return out
    return exactly(struct.unpack(">i", exactly(4))[0])


def _jstr(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def raw_ephemeral_create(port, path):
    """Error code of an ephemeral create by a new session, on the wire: kazoo 2.9 has no exception
    for EPHEMERALONLOCALSESSION (-120) and its connection thread dies on it ("Invalid error code")."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sk:
        sk.sendall(_frame(struct.pack(">iqiq", 0, 0, 10000, 0) + struct.pack(">i", 16) + b"\0" * 16 + b"\0"))
        _read_frame(sk)
        acl = struct.pack(">i", 1) + struct.pack(">i", 31) + _jstr("world") + _jstr("anyone")
        sk.sendall(_frame(struct.pack(">ii", 1, 1) + _jstr(path) + struct.pack(">i", 0) + acl + struct.pack(">i", 1)))
        rsp = _read_frame(sk)
        return struct.unpack(">iqi", rsp[:16])[2]


def local_session_checks(label, members, upgrading):
    for m in members:
        others = [o for o in members if o is not m]
        zk = client(m.port)
        sid, pw = zk.client_id
        check(f"{label}: session id of {m.name()} carries server id {m.sid}", (sid >> 56) == m.sid, f"0x{sid:x}")
        try:
            zk.create(f"/ls-{m.name()}", b"v")
            ok = zk.exists(f"/ls-{m.name()}") is not None
            check(f"{label}: persistent create by a local session through {m.name()}", ok)
        except Exception as e:
            check(f"{label}: persistent create by a local session through {m.name()}", False, repr(e))
        # a local session cannot move: another member does not know it (the leader says it expired)
        zk2 = KazooClient(hosts=f"127.0.0.1:{others[0].port}", timeout=6.0, client_id=(sid, pw))
        states = []
        zk2.add_listener(lambda s: states.append(s))
        try:
            zk2.start(timeout=15)
            new_id = zk2.client_id[0]
            check(f"{label}: local session of {m.name()} cannot move to {others[0].name()}", new_id != sid,
                  f"old 0x{sid:x} new 0x{new_id:x} states {states}")
        except Exception as e:
            check(f"{label}: local session of {m.name()} cannot move to {others[0].name()}", False, repr(e))
        finally:
            stop(zk2)
        # first ephemeral: upgraded (or refused with upgrading off)
        path = f"/eph-{m.name()}"
        if not upgrading:
            try:
                err = raw_ephemeral_create(m.port, path)
                check(f"{label}: ephemeral by a local session refused with EPHEMERALONLOCALSESSION through {m.name()}", err == -120, f"error {err}")
                zk.sync("/")
                check(f"{label}: the refused ephemeral does not exist ({m.name()})", zk.exists(path) is None)
            except Exception as e:
                check(f"{label}: ephemeral by a local session refused with EPHEMERALONLOCALSESSION through {m.name()}", False, repr(e))
        else:
            try:
                zk.create(path, b"e", ephemeral=True)
                owner = zk.exists(path).ephemeralOwner
                check(f"{label}: ephemeral create upgrades the session through {m.name()}", owner == sid, f"owner 0x{owner:x}")
            except Exception as e:
                check(f"{label}: ephemeral create upgrades the session through {m.name()}", False, repr(e))
        stop(zk)
        if upgrading:
            # upgraded sessions move: open a session, upgrade it, take it over from another member
            a = client(m.port)
            aid, apw = a.client_id
            try:
                a.create(f"/move-{m.name()}", b"e", ephemeral=True)
                # the same session from another member: the leader knows it now (REVALIDATE says valid)
                b = KazooClient(hosts=f"127.0.0.1:{others[1].port}", timeout=6.0, client_id=(aid, apw))
                b.start(timeout=15)
                bid = b.client_id[0]
                st = b.exists(f"/move-{m.name()}")
                check(f"{label}: upgraded session of {m.name()} moves to {others[1].name()}",
                      bid == aid and st is not None and st.ephemeralOwner == aid, f"0x{aid:x} -> 0x{bid:x}")
                stop(b)
            except Exception as e:
                check(f"{label}: upgraded session of {m.name()} moves to {others[1].name()}", False, repr(e))
            finally:
                stop(a)


def read_only_checks(label, members, at):
    m = members[at - 1]
    others = [o for o in members if o is not m]
    zk = client(m.port)
    zk.ensure_path("/ro-data")
    zk.set("/ro-data", b"before")
    stop(zk)
    for o in others:
        o.kill()
    t0 = time.monotonic()
    ok = wait_until(lambda: four(m.port, "isro").strip() == "ro", 40)
    check(f"{label}: {m.name()} without quorum answers isro 'ro'", ok,
          f"after {time.monotonic() - t0:.1f} s" if ok else f"isro={four(m.port, 'isro')!r}")
    if not ok:
        return
    check(f"{label}: {m.name()} srvr mode is read-only", mode(m.port) == "read-only", f"mode {mode(m.port)!r}")
    # a client that cannot be read-only is refused
    plain = KazooClient(hosts=f"127.0.0.1:{m.port}", timeout=4.0, connection_retry={"max_tries": 1})
    try:
        plain.start(timeout=5)
        check(f"{label}: {m.name()} refuses a client without readOnly", False, "connected")
    except Exception:
        check(f"{label}: {m.name()} refuses a client without readOnly", True)
    finally:
        stop(plain)
    ro = KazooClient(hosts=f"127.0.0.1:{m.port}", timeout=6.0, read_only=True)
    states = []
    ro.add_listener(lambda s: states.append(s))
    try:
        ro.start(timeout=10)
        check(f"{label}: read-only client connects to {m.name()}", ro.client_state == KeeperState.CONNECTED_RO, ro.client_state)
        data, _ = ro.get("/ro-data")
        check(f"{label}: read-only client reads through {m.name()}", data == b"before", repr(data))
        check(f"{label}: read-only client lists children through {m.name()}", "ro-data" in ro.get_children("/"))
        try:
            ro.create("/ro-write", b"x")
            check(f"{label}: write in read-only mode answered NOTREADONLY", False, "created")
        except NotReadOnlyCallError:
            check(f"{label}: write in read-only mode answered NOTREADONLY", True)
        except Exception as e:
            check(f"{label}: write in read-only mode answered NOTREADONLY", False, repr(e))
        try:
            ro.set("/ro-data", b"x")
            check(f"{label}: setData in read-only mode answered NOTREADONLY", False, "set")
        except NotReadOnlyCallError:
            check(f"{label}: setData in read-only mode answered NOTREADONLY", True)
        except Exception as e:
            check(f"{label}: setData in read-only mode answered NOTREADONLY", False, repr(e))
        # quorum back
        for o in others:
            o.start()
        t1 = time.monotonic()
        ok = wait_until(lambda: four(m.port, "isro").strip() == "rw", 60)
        check(f"{label}: {m.name()} back to read-write when the quorum returns", ok,
              f"after {time.monotonic() - t1:.1f} s" if ok else f"isro={four(m.port, 'isro')!r}")
        ok = wait_until(lambda: ro.client_state == KeeperState.CONNECTED, 60)
        wrote = False
        if ok:
            for _ in range(20):
                try:
                    ro.create("/after-ro", b"x")
                    wrote = True
                    break
                except Exception:
                    time.sleep(0.5)
        check(f"{label}: read-only client reconnects read-write and writes", ok and wrote, f"state {ro.client_state}")
    except Exception as e:
        check(f"{label}: read-only client session", False, repr(e))
    finally:
        stop(ro)


def run(label, kinds, ro_at, samsa, root):
    upgrading = not label.endswith("noupgrade")
    ports = free_ports(3 * len(kinds))
    servers = [f"server.{i + 1}=127.0.0.1:{ports[3 * i]}:{ports[3 * i + 1]}" for i in range(len(kinds))]
    members = [Member(i + 1, k, root, servers, ports[3 * i + 2], samsa, upgrading) for i, k in enumerate(kinds)]
    try:
        ok = wait_until(lambda: all(mode(m.port) in ("leader", "follower") for m in members), 60)
        check(f"{label}: ensemble serving", ok, ", ".join(f"{m.name()}={mode(m.port)}" for m in members))
        if not ok:
            return
        leader = next(m for m in members if mode(m.port) == "leader")
        print(f"{label}: leader {leader.name()}", flush=True)
        local_session_checks(label, members, upgrading)
        if ro_at is not None:
            read_only_checks(label, members, ro_at)
    finally:
        for m in members:
            m.kill()
            m.log.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--samsa", required=True)
    p.add_argument("--ensembles", default="keepers,1k2a,2a1k,apache,keepers-noupgrade")
    p.add_argument("--keep", action="store_true", help="keep the member directories (logs)")
    a = p.parse_args()
    for name in a.ensembles.split(","):
        kinds, ro_at = ENSEMBLES[name]
        root = tempfile.mkdtemp(prefix="samsa-sessro-")
        try:
            run(name, kinds, ro_at, os.path.abspath(a.samsa), root)
        except Exception as e:
            check(f"{name}: ran", False, repr(e))
        finally:
            if a.keep:
                print(f"{name}: logs in {root}")
            else:
                shutil.rmtree(root, ignore_errors=True)
    failed = [n for n, ok in results if not ok]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
