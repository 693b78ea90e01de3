"""ZooKeeper scenarios through zkCli.sh, the Java command-line client of Debian's
zookeeper 3.8.0 package. Each session is one zkCli.sh process fed a script on stdin;
its output is the thing compared: command results in order, then the watch events
(which arrive asynchronously, so only their own order is stable).
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from scenario import ADDR, Fail, check, main, note, scenario  # noqa: E402

ZKCLI = os.environ.get("ZKCLI", "/usr/share/zookeeper/bin/zkCli.sh")
BASE = "/compat-zkcli"


class Session:
    def __init__(self, out):
        self.raw = out
        self.events = []
        # zkCli's watcher thread prints "\nWATCHER::" and "\nWatchedEvent ..." (each a println of
        # "\n" + text) while the main thread may be half-way through a command's answer (ls
        # appends "[", the children and "]\n" separately): take those prints out of the stream
        # whole before splitting it into lines, so an answer they landed in reads as printed.
        def take(m):
            if m.group(1).startswith("WatchedEvent "):
                self.events.append(m.group(1))
            return ""
        out = re.sub(r"\n(WATCHER::|WatchedEvent [^\n]*)\n", take, out)
        lines = [l for l in out.splitlines() if not l.startswith("SLF4J:")]
        self.lines = []
        skip_blank = False
        for l in lines:
            if l.startswith("WatchedEvent "):
                self.events.append(l)
            elif l in ("WATCHER::",):
                continue
            elif l.strip() == "":
                continue
            elif l.startswith(("Connecting to ", "Welcome to ZooKeeper", "JLine support")):
                continue
            else:
                self.lines.append(l)
        # The connect and close events bracket every session; keep only the rest.
        self.events = [e for e in self.events if "type:None" not in e]

    @property
    def text(self):
        return "\n".join(self.lines)

    def has(self, needle):
        return needle in self.text

    def must(self, needle, why=None):
        check(needle in self.text, (why or f"output lacks {needle!r}") + f"; got: {self.text[-400:]!r}")

    def must_not(self, needle, why=None):
        check(needle not in self.text, (why or f"output has {needle!r}") + f"; got: {self.text[-400:]!r}")

    def stat(self, index=0):
        """The index-th stat block printed (get -s, stat, ls -s) as a dict."""
        blocks = []
        cur = {}
        for l in self.lines:
            m = re.match(r"^(cZxid|ctime|mZxid|mtime|pZxid|cversion|dataVersion|aclVersion|ephemeralOwner|dataLength|numChildren) = (.*)$", l)
            if m:
                cur[m.group(1)] = m.group(2)
                if m.group(1) == "numChildren":
                    blocks.append(cur)
                    cur = {}
        if index >= len(blocks):
            raise Fail(f"no stat block #{index} in output: {self.text[-300:]!r}")
        return blocks[index]


def zkcli(*commands, settle=0.0):
    """One zkCli session running these commands; stderr is merged because zkCli prints
    "Created ..." and errors there. `settle` seconds of idle before quit let watch events arrive."""
    script = "\n".join(commands) + "\n"
    proc = subprocess.Popen([ZKCLI, "-server", ADDR], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    proc.stdin.write(script)
    proc.stdin.flush()
    if settle:
        time.sleep(settle)
    out, _ = proc.communicate("quit\n", timeout=20)
    s = Session(out)
    print("\n".join(f"  > {c}" for c in commands))
    print(s.text)
    for e in s.events:
        print("  event:", e)
    return s


def sorted_list(line):
    """`[b, a]` -> `[a, b]`: for answers whose order upstream leaves unspecified."""
    if line.startswith("[") and line.endswith("]"):
        return "[" + ", ".join(sorted(x for x in line[1:-1].split(", ") if x)) + "]"
    return line


def sorted_blocks(lines, header):
    """Sorts the lines after each `header` line up to the next header (whoami's id list)."""
    out, block = [], None
    for l in lines + [header]:
        if l == header:
            if block is not None:
                out += sorted(block)
            out.append(l)
            block = []
        elif block is not None:
            block.append(l)
        else:
            out.append(l)
    return out[:-1]


def record(s, lines=None):
    note("--- output")
    for l in s.lines if lines is None else lines:
        note(l)
    note("--- events")
    for e in s.events:
        note(e)


def prepare(name):
    p = f"{BASE}/{name}"
    zkcli(f"deleteall {p}", f"create {BASE}", f"create {p}")
    return p


@scenario("crud")
def crud():
    p = prepare("crud")
    s = zkcli(f"create {p}/a one", f"get {p}/a", f"set {p}/a two", f"get -s {p}/a",
                     f"create {p}/b", f"ls {p}", f"stat {p}", f"delete -v 1 {p}/a", f"ls {p}",
                     f"deleteall {p}/b", f"ls -s {p}")
    record(s)
    s.must(f"Created {p}/a")
    s.must("one")
    st = s.stat(0)
    check(st["dataVersion"] == "1" and st["dataLength"] == "3", f"stat after set {st}")
    s.must("[a, b]")
    check(s.stat(1)["numChildren"] == "2", "parent numChildren")
    s.must("[b]")
    last = s.stat(2)
    check(last["numChildren"] == "0" and last["cversion"] == "4", f"parent after deletes {last}")


@scenario("errors")
def errors():
    p = prepare("errors")
    s = zkcli(f"create {p}/x v", f"create {p}/x v", f"get {p}/missing", f"set -v 9 {p}/x w",
                     f"create {p}/x/kid", f"delete {p}/x", f"create {p}/nope/kid", f"delete -v 5 {p}/x/kid")
    record(s)
    s.must(f"Node already exists: {p}/x")
    s.must(f"Node does not exist: {p}/missing")
    s.must(f"version No is not valid : {p}/x")
    s.must(f"Node not empty: {p}/x")
    s.must(f"Node does not exist: {p}/nope/kid")


@scenario("create-sequential")
def create_sequential():
    p = prepare("create-sequential")
    s = zkcli(f"create -s {p}/n- a", f"create -s {p}/n- b", f"create {p}/plain", f"create -s {p}/n-", f"ls {p}")
    record(s)
    for n in ("n-0000000000", "n-0000000001", "n-0000000003"):
        s.must(f"Created {p}/{n}")


@scenario("create-ephemeral")
def create_ephemeral():
    p = prepare("create-ephemeral")
    s = zkcli(f"create -e {p}/e x", f"stat {p}/e", f"getEphemerals {p}", f"create {p}/e/kid")
    record(s)
    s.must(f"Created {p}/e")
    check(s.stat(0)["ephemeralOwner"] != "0x0", "ephemeralOwner is 0 for an ephemeral")
    s.must(f"[{p}/e]")
    s.must(f"Ephemerals cannot have children: {p}/e/kid")


@scenario("create-ephemeral-sequential")
def create_ephemeral_sequential():
    p = prepare("create-ephemeral-sequential")
    s = zkcli(f"create -e -s {p}/l- x", f"create -e -s {p}/l- y", f"stat {p}/l-0000000001")
    record(s)
    s.must(f"Created {p}/l-0000000000")
    s.must(f"Created {p}/l-0000000001")
    check(s.stat(0)["ephemeralOwner"] != "0x0", "not ephemeral")


@scenario("create-container")
def create_container():
    p = prepare("create-container")
    s = zkcli(f"create -c {p}/c", f"create {p}/c/kid", f"stat {p}/c", f"create -c {p}/c/kid/deeper", f"ls {p}/c")
    record(s)
    s.must(f"Created {p}/c")
    st = s.stat(0)
    # Upstream shows 0 to clients: the container marker lives only in the persisted stat.
    check(st["numChildren"] == "1", f"container stat {st}")


@scenario("create-ttl")
def create_ttl():
    p = prepare("create-ttl")
    s = zkcli(f"create -t 60000 {p}/t v", f"stat {p}/t", f"create -s -t 60000 {p}/ts- v",
                     f"create -e -t 60000 {p}/bad v", f"ls {p}")
    record(s)
    s.must(f"Created {p}/t", "TTL node not created (server needs zookeeper.extendedTypesEnabled=true)")
    s.must(f"Created {p}/ts-0000000001")
    s.must_not(f"Created {p}/bad", "an ephemeral TTL node was accepted")


@scenario("stat-versions")
def stat_versions():
    p = prepare("stat-versions")
    s = zkcli(f"create {p}/k0", f"create {p}/k1", f"create {p}/k2", f"set {p} 12345", f"delete {p}/k1",
                     f"setAcl {p} world:anyone:cdrwa", f"stat {p}")
    record(s)
    st = s.stat(0)
    check((st["cversion"], st["dataVersion"], st["aclVersion"], st["numChildren"], st["dataLength"]) == ("4", "1", "1", "2", "5"),
          f"stat {st}")


@scenario("watch-data")
def watch_data():
    p = prepare("watch-data")
    s = zkcli(f"create {p}/w 1", f"get -w {p}/w", f"set {p}/w 2", f"set {p}/w 3", settle=1.0)
    record(s)
    check(s.events == [f"WatchedEvent state:SyncConnected type:NodeDataChanged path:{p}/w"], f"events {s.events}")


@scenario("watch-exists")
def watch_exists():
    p = prepare("watch-exists")
    s = zkcli(f"stat -w {p}/later", f"create {p}/later", f"stat -w {p}/later", f"delete {p}/later", settle=1.0)
    record(s)
    check(s.events == [f"WatchedEvent state:SyncConnected type:NodeCreated path:{p}/later",
                       f"WatchedEvent state:SyncConnected type:NodeDeleted path:{p}/later"], f"events {s.events}")


@scenario("watch-children")
def watch_children():
    p = prepare("watch-children")
    s = zkcli(f"ls -w {p}", f"set {p} x", f"create {p}/kid", f"create {p}/kid2", settle=1.0)
    record(s)
    check(s.events == [f"WatchedEvent state:SyncConnected type:NodeChildrenChanged path:{p}"], f"events {s.events}")


@scenario("watch-persistent")
def watch_persistent():
    p = prepare("watch-persistent")
    s = zkcli(f"addWatch -m PERSISTENT {p}", f"set {p} a", f"set {p} b", f"create {p}/kid",
                     f"create {p}/kid/grandkid", f"set {p}/kid c", settle=1.0)
    record(s)
    check(s.events == [f"WatchedEvent state:SyncConnected type:NodeDataChanged path:{p}",
                       f"WatchedEvent state:SyncConnected type:NodeDataChanged path:{p}",
                       f"WatchedEvent state:SyncConnected type:NodeChildrenChanged path:{p}"], f"events {s.events}")


@scenario("watch-persistent-recursive")
def watch_persistent_recursive():
    p = prepare("watch-persistent-recursive")
    s = zkcli(f"addWatch {p}", f"create {p}/a", f"create {p}/a/b", f"set {p}/a/b x", f"delete {p}/a/b",
                     f"set {p} y", settle=1.0)
    record(s)
    # Recursive watches report no NodeChildrenChanged (ZOOKEEPER-1416 / addWatch docs).
    check(s.events == [f"WatchedEvent state:SyncConnected type:NodeCreated path:{p}/a",
                       f"WatchedEvent state:SyncConnected type:NodeCreated path:{p}/a/b",
                       f"WatchedEvent state:SyncConnected type:NodeDataChanged path:{p}/a/b",
                       f"WatchedEvent state:SyncConnected type:NodeDeleted path:{p}/a/b",
                       f"WatchedEvent state:SyncConnected type:NodeDataChanged path:{p}"], f"events {s.events}")


@scenario("watch-remove")
def watch_remove():
    p = prepare("watch-remove")
    s = zkcli(f"create {p}/r", f"get -w {p}/r", f"ls -w {p}/r", f"removewatches {p}/r -d", f"set {p}/r x",
                     f"create {p}/r/kid", f"removewatches {p}/r -a", settle=1.0)
    record(s)
    check(s.events == [f"WatchedEvent state:SyncConnected type:DataWatchRemoved path:{p}/r",
                       f"WatchedEvent state:SyncConnected type:NodeChildrenChanged path:{p}/r"], f"events {s.events}")
    # The child watch already fired, so removing "all" finds none left.
    s.must(f"KeeperErrorCode = No such watcher for {p}/r")


@scenario("ephemeral-session-close")
def ephemeral_session_close():
    p = prepare("ephemeral-session-close")
    a = zkcli(f"create -e {p}/e", f"ls {p}")
    b = zkcli(f"ls {p}", f"stat {p}/e")
    record(a)
    record(b)
    a.must("[e]")
    b.must("[]", "ephemeral survived its session's close")
    b.must(f"Node does not exist: {p}/e")


@scenario("acl-digest")
def acl_digest():
    p = prepare("acl-digest")
    a = zkcli(f"create {p}/priv s3cret", "addauth digest alice:secret", f"setAcl {p}/priv auth:alice:secret:cdrwa",
                     f"getAcl {p}/priv", f"get {p}/priv")
    b = zkcli(f"get {p}/priv", f"set {p}/priv x", "addauth digest alice:wrong", f"get {p}/priv",
                     "addauth digest alice:secret", f"get {p}/priv")
    record(a)
    record(b)
    a.must("'digest,'alice:")
    a.must("s3cret")
    b.must(f"Insufficient permission : {p}/priv")
    check(b.lines[-1] == "s3cret", f"read after the right addauth: {b.lines[-1:]}")


@scenario("acl-world-readonly")
def acl_world_readonly():
    p = prepare("acl-world-readonly")
    s = zkcli(f"create {p}/ro r", f"setAcl -v 0 {p}/ro world:anyone:r", f"getAcl -s {p}/ro", f"get {p}/ro",
                     f"set {p}/ro w", f"create {p}/ro/kid", f"setAcl {p}/ro world:anyone:cdrwa", f"delete {p}/ro")
    record(s)
    s.must("'world,'anyone\n: r")
    check(s.stat(0)["aclVersion"] == "1", "aclVersion after setAcl")
    check(s.text.count(f"Insufficient permission : {p}/ro") >= 3, "writes to a read-only node were allowed")


@scenario("quota")
def quota():
    p = prepare("quota")
    s = zkcli(f"setquota -n 3 {p}", f"create {p}/a 12", f"create {p}/b 345", f"listquota {p}",
                     f"setquota -b 100 {p}", f"delquota -n {p}", f"listquota {p}", f"delquota {p}", f"listquota {p}")
    record(s)
    s.must(f"Output quota for {p} count=3,bytes=-1")
    s.must(f"Output stat for {p} count=3,bytes=5")
    s.must(f"quota for {p} does not exist.")


@scenario("sync")
def sync():
    p = prepare("sync")
    s = zkcli(f"sync {p}")
    record(s)
    s.must("Sync is OK")


@scenario("get-ephemerals")
def get_ephemerals():
    p = prepare("get-ephemerals")
    s = zkcli(f"create -e {p}/e1", f"create {p}/p", f"create -e {p}/p/e2", f"getEphemerals {p}", f"getEphemerals {p}/p")
    # Upstream answers from a hash set: the order is unspecified, so it is not compared.
    record(s, [sorted_list(l) for l in s.lines])
    check(f"[{p}/e1, {p}/p/e2]" in s.text or f"[{p}/p/e2, {p}/e1]" in s.text, "getEphemerals under the prefix")
    s.must(f"[{p}/p/e2]")


@scenario("all-children-number")
def all_children_number():
    p = prepare("all-children-number")
    s = zkcli(f"create {p}/a", f"create {p}/a/b", f"create {p}/a/b/c", f"create {p}/d", f"getAllChildrenNumber {p}",
                     f"ls -R {p}")
    record(s)
    check("4" in s.lines, f"getAllChildrenNumber: {s.lines}")
    s.must(f"{p}/a/b/c")


@scenario("whoami")
def whoami():
    s = zkcli("whoami", "addauth digest bob:pw", "whoami")
    # The order of a session's ids is unspecified upstream (a set), so it is not compared.
    record(s, sorted_blocks(s.lines, "Auth scheme: User"))
    s.must("ip: 127.0.0.1")
    s.must("digest: bob")


@scenario("config-node")
def config_node():
    s = zkcli("ls /zookeeper", "config")
    record(s)
    check("[config, quota]" in s.text, f"/zookeeper children: {s.text!r}")


if __name__ == "__main__":
    sys.exit(main())
