"""ZooKeeper scenarios through kazoo 2.8 (Debian python3-kazoo), the Python client.

kazoo 2.8 has no create modes beyond ephemeral/sequential (no container, no TTL) and no
persistent watches (addWatch came in kazoo 2.9), so those scenarios are left to zkCli,
cli_mt and node-zookeeper-client. Four-letter words go through KazooClient.command.
"""
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from scenario import ADDR, Fail, check, eventually, expect_error, main, note, scenario  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402
from kazoo import exceptions as ke  # noqa: E402
from kazoo.security import ACL, Id, Permissions, make_digest_acl, OPEN_ACL_UNSAFE  # noqa: E402

BASE = "/compat-kazoo"


def connect(**kw):
    kw.setdefault("timeout", 10.0)
    zk = KazooClient(hosts=ADDR, **kw)
    zk.start(timeout=10)
    return zk


def fresh(zk, name):
    """A clean parent node for one scenario (paths are the same on both targets so their
    transcripts can be diffed)."""
    path = f"{BASE}/{name}"
    if zk.exists(path):
        zk.delete(path, recursive=True)
    zk.ensure_path(BASE)
    zk.create(path, b"")
    return path


def stat_str(st, session_id=None):
    """A stat with the parts that are the same everywhere; zxids only as relations."""
    owner = "none" if st.ephemeralOwner == 0 else ("self" if st.ephemeralOwner == session_id else "other")
    return (f"version={st.version} cversion={st.cversion} aversion={st.aversion} "
            f"dataLength={st.dataLength} numChildren={st.numChildren} owner={owner} "
            f"mzxid>=czxid={st.mzxid >= st.czxid} pzxid>=czxid={st.pzxid >= st.czxid}")


@scenario("crud")
def crud():
    zk = connect()
    try:
        p = fresh(zk, "crud")
        created = zk.create(p + "/a", b"one")
        check(created == p + "/a", f"create returned {created}")
        data, st = zk.get(p + "/a")
        check(data == b"one", f"get returned {data!r}")
        note("get", data, stat_str(st))
        st2 = zk.set(p + "/a", b"two")
        check(st2.version == 1, f"version after set is {st2.version}")
        note("set", stat_str(st2))
        data, st3 = zk.get(p + "/a")
        check(data == b"two" and st3.version == 1, f"after set: {data!r} v{st3.version}")
        check(st3.ctime == st.ctime and st3.mtime >= st.mtime, "ctime changed or mtime went back")
        zk.create(p + "/b", b"")
        kids = sorted(zk.get_children(p))
        check(kids == ["a", "b"], f"children {kids}")
        note("children", kids)
        st4 = zk.exists(p + "/a")
        check(st4 is not None and st4.version == 1, "exists on /a")
        check(zk.exists(p + "/nope") is None, "exists on a missing node returned a stat")
        zk.delete(p + "/a", version=1)
        check(zk.exists(p + "/a") is None, "node still exists after delete")
        _, pst = zk.get(p)
        note("parent", stat_str(pst))
        check(pst.cversion == 3 and pst.numChildren == 1, f"parent cversion={pst.cversion} numChildren={pst.numChildren}")
        # Empty data and large data round-trip unchanged (1 MiB - a little is the default jute.maxbuffer margin).
        big = bytes(range(256)) * 2048
        zk.create(p + "/big", big)
        check(zk.get(p + "/big")[0] == big, "512 KiB value did not round-trip")
        zk.create(p + "/empty")
        check(zk.get(p + "/empty")[0] == b"", "empty value did not round-trip")
    finally:
        zk.stop()


@scenario("errors")
def errors():
    zk = connect()
    try:
        p = fresh(zk, "errors")
        zk.create(p + "/x", b"v")
        zk.create(p + "/x/child", b"")
        e = expect_error(ke.NoNodeError, lambda: zk.get(p + "/missing"), "get missing node")
        e = expect_error(ke.NodeExistsError, lambda: zk.create(p + "/x"), "create existing node")
        expect_error(ke.BadVersionError, lambda: zk.set(p + "/x", b"w", version=7), "set with wrong version")
        expect_error(ke.BadVersionError, lambda: zk.delete(p + "/x/child", version=3), "delete with wrong version")
        expect_error(ke.NotEmptyError, lambda: zk.delete(p + "/x"), "delete node with children")
        expect_error(ke.NoNodeError, lambda: zk.create(p + "/nope/child"), "create under a missing parent")
        zk.create(p + "/eph", ephemeral=True)
        expect_error(ke.NoChildrenForEphemeralsError, lambda: zk.create(p + "/eph/kid"), "create under an ephemeral")
        note("errors ok", type(e).__name__)
    finally:
        zk.stop()


@scenario("create-sequential")
def create_sequential():
    zk = connect()
    try:
        p = fresh(zk, "create-sequential")
        names = [zk.create(p + "/n-", b"", sequence=True) for _ in range(3)]
        zk.create(p + "/other", b"")
        names.append(zk.create(p + "/n-", b"", sequence=True))
        note("sequential", [n.rsplit("/", 1)[1] for n in names])
        want = [f"{p}/n-{i:010d}" for i in (0, 1, 2, 4)]
        check(names == want, f"sequential names {names}, want {want} (counter is the parent's cversion)")
    finally:
        zk.stop()


@scenario("create-ephemeral")
def create_ephemeral():
    zk = connect()
    try:
        p = fresh(zk, "create-ephemeral")
        zk.create(p + "/e", b"x", ephemeral=True)
        sid = zk.client_id[0]
        st = zk.exists(p + "/e")
        check(st.ephemeralOwner == sid, f"ephemeralOwner {st.ephemeralOwner:#x} != session {sid:#x}")
        note("ephemeral", stat_str(st, sid))
    finally:
        zk.stop()


@scenario("create-ephemeral-sequential")
def create_ephemeral_sequential():
    zk = connect()
    try:
        p = fresh(zk, "create-ephemeral-sequential")
        a = zk.create(p + "/lock-", b"", ephemeral=True, sequence=True)
        b = zk.create(p + "/lock-", b"", ephemeral=True, sequence=True)
        check(a.endswith("0000000000") and b.endswith("0000000001"), f"names {a}, {b}")
        st = zk.exists(b)
        check(st.ephemeralOwner == zk.client_id[0], "not owned by this session")
        note("ephemeral-sequential", a.rsplit("/", 1)[1], b.rsplit("/", 1)[1], stat_str(st, zk.client_id[0]))
    finally:
        zk.stop()


@scenario("create-with-stat")
def create_with_stat():
    zk = connect()
    try:
        p = fresh(zk, "create-with-stat")
        path, st = zk.create(p + "/c2", b"abc", include_data=True)  # create2 (opcode 15)
        check(path == p + "/c2", f"path {path}")
        check(st.dataLength == 3 and st.version == 0 and st.czxid == st.mzxid, f"stat {st}")
        note("create2", stat_str(st))
    finally:
        zk.stop()


@scenario("stat-versions")
def stat_versions():
    zk = connect()
    try:
        p = fresh(zk, "stat-versions")
        seen = []
        st0 = zk.exists(p)
        for i in range(3):
            zk.create(f"{p}/k{i}")
        zk.set(p, b"12345")
        zk.delete(f"{p}/k1")
        zk.set_acls(p, OPEN_ACL_UNSAFE)
        st = zk.exists(p)
        seen.append(stat_str(st))
        note("after 3 creates, 1 set, 1 delete, 1 setACL:", stat_str(st))
        check(st.cversion == 4, f"cversion {st.cversion}, want 4 (3 creates + 1 delete)")
        check(st.version == 1 and st.aversion == 1, f"version {st.version} aversion {st.aversion}")
        check(st.numChildren == 2 and st.dataLength == 5, f"numChildren {st.numChildren} dataLength {st.dataLength}")
        check(st.pzxid > st0.pzxid and st.mzxid > st0.mzxid, "pzxid/mzxid did not advance")
        check(st.ctime == st0.ctime, "ctime changed")
    finally:
        zk.stop()


def _collector():
    events = []
    cond = threading.Condition()

    def watch(ev):
        with cond:
            events.append(ev)
            cond.notify_all()
    return events, watch


def _wait_events(events, n, what):
    eventually(lambda: len(events) >= n, what, timeout=8)
    time.sleep(0.3)  # a second event where only one is due would show here


@scenario("watch-data")
def watch_data():
    zk = connect()
    try:
        p = fresh(zk, "watch-data")
        zk.create(p + "/w", b"1")
        events, w = _collector()
        zk.get(p + "/w", watch=w)
        zk.set(p + "/w", b"2")
        zk.set(p + "/w", b"3")  # one-shot: this second change must not fire again
        _wait_events(events, 1, "no NodeDataChanged event")
        note("events", [(e.type, e.path) for e in events])
        check(len(events) == 1 and events[0].type == "CHANGED" and events[0].path == p + "/w", f"events {events}")
    finally:
        zk.stop()


@scenario("watch-exists")
def watch_exists():
    zk = connect()
    try:
        p = fresh(zk, "watch-exists")
        events, w = _collector()
        check(zk.exists(p + "/later", watch=w) is None, "node exists already")
        zk.create(p + "/later", b"")
        _wait_events(events, 1, "no NodeCreated event")
        ev2, w2 = _collector()
        zk.exists(p + "/later", watch=w2)
        zk.delete(p + "/later")
        _wait_events(ev2, 1, "no NodeDeleted event from an exists watch")
        note("events", [(e.type, e.path) for e in events + ev2])
        check([e.type for e in events] == ["CREATED"], f"events {events}")
        check([e.type for e in ev2] == ["DELETED"], f"events {ev2}")
    finally:
        zk.stop()


@scenario("watch-children")
def watch_children():
    zk = connect()
    try:
        p = fresh(zk, "watch-children")
        events, w = _collector()
        zk.get_children(p, watch=w)
        zk.set(p, b"data change does not fire a child watch")
        zk.create(p + "/kid", b"")
        _wait_events(events, 1, "no NodeChildrenChanged event")
        note("events", [(e.type, e.path) for e in events])
        check([(e.type, e.path) for e in events] == [("CHILD", p)], f"events {events}")
    finally:
        zk.stop()


@scenario("watch-delete")
def watch_delete():
    zk = connect()
    try:
        p = fresh(zk, "watch-delete")
        zk.create(p + "/d", b"")
        data_events, wd = _collector()
        child_events, wc = _collector()
        zk.get(p + "/d", watch=wd)
        zk.get_children(p + "/d", watch=wc)
        zk.delete(p + "/d")
        _wait_events(data_events, 1, "no NodeDeleted event on the data watch")
        _wait_events(child_events, 1, "no NodeDeleted event on the child watch")
        note("data", [(e.type, e.path) for e in data_events], "child", [(e.type, e.path) for e in child_events])
        check([e.type for e in data_events] == ["DELETED"], f"data watch events {data_events}")
        check([e.type for e in child_events] == ["DELETED"], f"child watch events {child_events}")
    finally:
        zk.stop()


@scenario("watch-other-session")
def watch_other_session():
    """A watch set by one session fires for a change made by another."""
    a, b = connect(), connect()
    try:
        p = fresh(a, "watch-other-session")
        a.create(p + "/n", b"")
        events, w = _collector()
        a.get(p + "/n", watch=w)
        b.set(p + "/n", b"from b")
        _wait_events(events, 1, "no event for another session's change")
        note("events", [(e.type, e.path) for e in events])
        check([e.type for e in events] == ["CHANGED"], f"events {events}")
    finally:
        a.stop()
        b.stop()


@scenario("ephemeral-session-close")
def ephemeral_session_close():
    a, b = connect(), connect()
    try:
        p = fresh(b, "ephemeral-session-close")
        a.create(p + "/e", b"", ephemeral=True)
        events, w = _collector()
        check(b.exists(p + "/e", watch=w) is not None, "ephemeral not visible to another session")
        a.stop()
        a.close()
        _wait_events(events, 1, "no NodeDeleted event when the owner closed its session")
        check(b.exists(p + "/e") is None, "ephemeral still there after its session closed")
        note("events", [(e.type, e.path) for e in events])
    finally:
        b.stop()


@scenario("session-expiry")
def session_expiry():
    """The owner process is killed without closing its session; the server must expire it
    after the negotiated timeout and delete its ephemerals."""
    b = connect()
    try:
        p = fresh(b, "session-expiry")
        child = subprocess.Popen([sys.executable, "-c", (
            "import sys,time\n"
            "from kazoo.client import KazooClient\n"
            f"zk=KazooClient(hosts={ADDR!r}, timeout=4.0); zk.start(timeout=10)\n"
            f"zk.create({p + '/e'!r}, b'', ephemeral=True)\n"
            "print('created', zk._session_timeout, flush=True)\n"
            "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
        line = child.stdout.readline().strip()
        check(line.startswith("created"), f"child did not create its ephemeral: {line!r}")
        negotiated_ms = int(line.split()[1])
        note("negotiated session timeout ms", negotiated_ms)
        events, w = _collector()
        check(b.exists(p + "/e", watch=w) is not None, "ephemeral not visible")
        child.send_signal(signal.SIGKILL)
        child.wait()
        killed = time.monotonic()
        _wait_events(events, 1, "ephemeral not deleted after its session should have expired")
        took = time.monotonic() - killed
        print(f"  expired after {took:.1f}s (negotiated {negotiated_ms} ms)")
        check(took >= negotiated_ms / 1000 * 0.5, f"deleted after {took:.1f}s, before the session timeout")
        check(b.exists(p + "/e") is None, "ephemeral still there")
        note("events", [(e.type, e.path) for e in events])
    finally:
        b.stop()


@scenario("multi")
def multi():
    zk = connect()
    try:
        p = fresh(zk, "multi")
        zk.create(p + "/old", b"v")
        t = zk.transaction()
        t.create(p + "/m1", b"a")
        t.create(p + "/m2", b"b")
        t.set_data(p + "/old", b"w")
        t.check(p + "/old", 1)
        t.delete(p + "/old")
        results = t.commit()
        note("results", [r if not hasattr(r, "version") else stat_str(r) for r in results])
        check(results[0] == p + "/m1" and results[1] == p + "/m2", f"results {results}")
        check(results[3] is True and results[4] is True, f"check/delete results {results[3:]}")
        check(sorted(zk.get_children(p)) == ["m1", "m2"], f"children {zk.get_children(p)}")
    finally:
        zk.stop()


@scenario("multi-abort")
def multi_abort():
    zk = connect()
    try:
        p = fresh(zk, "multi-abort")
        zk.create(p + "/x", b"v")
        t = zk.transaction()
        t.create(p + "/new", b"")
        t.set_data(p + "/x", b"changed")
        t.check(p + "/x", 42)          # wrong version: the whole multi fails
        t.delete(p + "/x")
        results = t.commit()
        names = [type(r).__name__ for r in results]
        note("results", names)
        check(names == ["RolledBackError", "RolledBackError", "BadVersionError", "RuntimeInconsistency"],
              f"per-op results {names}")
        check(zk.exists(p + "/new") is None, "create in an aborted multi took effect")
        check(zk.get(p + "/x")[0] == b"v", "set in an aborted multi took effect")
    finally:
        zk.stop()


@scenario("acl-digest")
def acl_digest():
    owner = connect(auth_data=[("digest", "alice:secret")])
    other = connect()
    try:
        p = fresh(owner, "acl-digest")
        acl = make_digest_acl("alice", "secret", all=True)
        owner.create(p + "/private", b"s3cret", acl=[acl])
        check(owner.get(p + "/private")[0] == b"s3cret", "owner cannot read its node")
        expect_error(ke.NoAuthError, lambda: other.get(p + "/private"), "unauthenticated read")
        expect_error(ke.NoAuthError, lambda: other.set(p + "/private", b"x"), "unauthenticated write")
        other.add_auth("digest", "alice:secret")
        check(other.get(p + "/private")[0] == b"s3cret", "read after add_auth")
        acls, st = owner.get_acls(p + "/private")
        note("acl", [(a.perms, a.id.scheme, a.id.id) for a in acls], "aversion", st.aversion)
        check(len(acls) == 1 and acls[0].id.scheme == "digest" and acls[0].perms == Permissions.ALL, f"acls {acls}")
        bad = connect(auth_data=[("digest", "alice:wrong")])
        try:
            expect_error(ke.NoAuthError, lambda: bad.get(p + "/private"), "read with the wrong password")
        finally:
            bad.stop()
    finally:
        owner.stop()
        other.stop()


@scenario("acl-world-readonly")
def acl_world_readonly():
    zk = connect()
    try:
        p = fresh(zk, "acl-world-readonly")
        ro = [ACL(Permissions.READ, Id("world", "anyone"))]
        zk.create(p + "/ro", b"r", acl=ro)
        check(zk.get(p + "/ro")[0] == b"r", "read")
        expect_error(ke.NoAuthError, lambda: zk.set(p + "/ro", b"w"), "write to a read-only node")
        expect_error(ke.NoAuthError, lambda: zk.create(p + "/ro/kid"), "create under a read-only node")
        zk.delete(p + "/ro")  # delete needs DELETE on the parent, which is open
        check(zk.exists(p + "/ro") is None, "delete under an open parent")
        note("ok")
    finally:
        zk.stop()


@scenario("acl-get-set")
def acl_get_set():
    zk = connect()
    try:
        p = fresh(zk, "acl-get-set")
        zk.create(p + "/n", b"")
        acls, st = zk.get_acls(p + "/n")
        note("default", [(a.perms, a.id.scheme, a.id.id) for a in acls], st.aversion)
        check([(a.perms, a.id.scheme, a.id.id) for a in acls] == [(31, "world", "anyone")], f"default acl {acls}")
        new = [ACL(Permissions.READ | Permissions.WRITE, Id("world", "anyone")),
               ACL(Permissions.ALL, Id("ip", "127.0.0.1"))]
        zk.set_acls(p + "/n", new, version=0)
        acls, st = zk.get_acls(p + "/n")
        note("after", sorted((a.perms, a.id.scheme, a.id.id) for a in acls), st.aversion)
        check(st.aversion == 1, f"aversion {st.aversion}")
        check(sorted((a.perms, a.id.scheme, a.id.id) for a in acls) == [(3, "world", "anyone"), (31, "ip", "127.0.0.1")], f"acls {acls}")
        expect_error(ke.BadVersionError, lambda: zk.set_acls(p + "/n", new, version=0), "setACL with a stale aversion")
        expect_error(ke.InvalidACLError, lambda: zk.set_acls(p + "/n", [ACL(31, Id("digest", "no-colon"))]), "setACL with a malformed digest id")
    finally:
        zk.stop()


@scenario("sync")
def sync():
    zk = connect()
    try:
        p = fresh(zk, "sync")
        r = zk.sync(p)
        note("sync", r)
        check(r == p, f"sync returned {r!r}")
    finally:
        zk.stop()


@scenario("config-node")
def config_node():
    zk = connect()
    try:
        st = zk.exists("/zookeeper/config")
        check(st is not None, "/zookeeper/config missing")
        check(zk.exists("/zookeeper/quota") is not None, "/zookeeper/quota missing")
        kids = sorted(zk.get_children("/zookeeper"))
        note("/zookeeper children", kids)
        check({"config", "quota"} <= set(kids), f"/zookeeper children {kids}")
        expect_error(ke.ZookeeperError, lambda: zk.delete("/zookeeper"), "deleting /zookeeper")
    finally:
        zk.stop()


@scenario("session-resume")
def session_reconnect():
    """Two clients share the session via client_id; the second one's presence must not
    lose the first's ephemeral (session moved), and closing it closes the session."""
    a = connect()
    b = connect()
    try:
        p = fresh(b, "session-resume")
        a.create(p + "/e", b"", ephemeral=True)
        sid, pwd = a.client_id
        c = KazooClient(hosts=ADDR, client_id=(sid, pwd), timeout=10.0)
        c.start(timeout=10)
        check(c.client_id[0] == sid, "resumed with a different session id")
        check(c.exists(p + "/e").ephemeralOwner == sid, "ephemeral owner changed")
        c.stop()  # closes the shared session: its ephemerals go
        eventually(lambda: b.exists(p + "/e") is None, "ephemeral not deleted after the shared session closed", timeout=8)
        note("ok")
    finally:
        for z in (a, b):
            try:
                z.stop()
            except Exception:  # noqa: BLE001 - a's session was closed under it
                pass


MNTR_CORE = ["zk_version", "zk_avg_latency", "zk_max_latency", "zk_min_latency", "zk_packets_received",
             "zk_packets_sent", "zk_num_alive_connections", "zk_outstanding_requests", "zk_server_state",
             "zk_znode_count", "zk_watch_count", "zk_ephemerals_count", "zk_approximate_data_size"]

FOUR_LETTER = {
    "ruok": lambda out: out == "imok",
    "srvr": lambda out: "Zookeeper version:" in out and "Mode:" in out and "Node count:" in out,
    "stat": lambda out: "Clients:" in out and "Mode:" in out,
    "mntr": lambda out: "zk_server_state" in out and "zk_znode_count" in out,
    "conf": lambda out: "clientPort=" in out and "dataDir=" in out,
    "envi": lambda out: "Environment:" in out,
    "cons": lambda out: "queued=" in out,
    "wchs": lambda out: "connections watching" in out,
    "dump": lambda out: "ession" in out,
    "isro": lambda out: out == "rw",
}


def _lw(word):
    def run():
        zk = connect()
        try:
            out = zk.command(word.encode()).strip()
            print(out)
            check(FOUR_LETTER[word](out), f"unexpected answer to {word}: {out[:200]!r}")
            # Transcript: which fields there are, not their values.
            keys = []
            for line in out.splitlines():
                if word == "mntr":
                    keys.append(line.split("\t")[0])
                elif ":" in line and word in ("srvr", "stat"):
                    keys.append(line.split(":")[0].strip())
                elif "=" in line and word == "conf":
                    keys.append(line.split("=")[0])
            if word == "mntr":
                # The keys monitoring tools read; the full set varies by release, and
                # kazoo's command() reads a bounded buffer, so long answers arrive cut.
                keys = [k for k in MNTR_CORE if k in keys]
                check(keys == MNTR_CORE, f"mntr lacks {sorted(set(MNTR_CORE) - set(keys))}")
            note(word, "fields", sorted(set(keys)) if keys else out.splitlines()[0][:20] if word in ("ruok", "isro") else "-")
        finally:
            zk.stop()
    return run


for _w in FOUR_LETTER:
    scenario(f"4lw-{_w}")(_lw(_w))


if __name__ == "__main__":
    sys.exit(main())
