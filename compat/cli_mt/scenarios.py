"""ZooKeeper scenarios through cli_mt, the shell of the C client library (Debian
zookeeper-bin, 3.8.0). cli_mt runs commands asynchronously, so the driver sends one
command, waits for its completion line (`... rc = N`), then sends the next. cli_mt has
no setAcl and no multi; it creates every node with the data "new".
"""
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from scenario import ADDR, Fail, check, main, note, scenario  # noqa: E402

CLI_MT = os.environ.get("CLI_MT", "/usr/lib/zookeeper/bin/cli_mt")
BASE = "/compat-cli_mt"

# ZooKeeper C client return codes (zookeeper.h ZOO_ERRORS).
ZOK, ZNONODE, ZNODEEXISTS, ZNOTEMPTY, ZNOCHILDRENFOREPHEMERALS, ZBADVERSION = 0, -101, -110, -111, -108, -103


class CliMt:
    def __init__(self):
        self.proc = subprocess.Popen([CLI_MT, ADDR], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines = []
        self.lock = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(lambda: any("Got a new session id" in l for l in self.lines), "no session", 10)
        self.session_id = next(l for l in self.lines if "Got a new session id" in l).split()[-1]

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))
                self.lock.notify_all()

    def wait_for(self, pred, what, timeout=5):
        deadline = time.monotonic() + timeout
        with self.lock:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Fail(f"cli_mt: {what}; output so far: {self.lines[-8:]}")
                self.lock.wait(left)

    def cmd(self, line, completes=True):
        """Send one command; with `completes`, wait for its `rc = N` line and return N."""
        with self.lock:
            start = len(self.lines)
        self.lines_cmd_start = start
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        pat = re.compile(r"rc = (-?\d+)|^Error (-?\d+) for ")
        if line.startswith(("exists ", "wexists ")):
            # The threaded cli_mt runs exists synchronously (zoo_exists) and prints only
            # failures, as "Error N for PATH".
            time.sleep(0.3)
            for l in self.lines[start:]:
                m = pat.search(l)
                if m:
                    return int(m.group(1) or m.group(2))
            return ZOK
        if not completes:
            time.sleep(0.3)
            return None

        def done():
            return any(pat.search(l) for l in self.lines[start:])
        self.wait_for(done, f"no completion for {line!r}")
        time.sleep(0.05)  # the rest of the completion's block (stat, value) follows the rc line
        for l in self.lines[start:]:
            m = pat.search(l)
            if m:
                return int(m.group(1) or m.group(2))

    def output_since(self, start):
        return self.lines[start:]

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=5)
        except Exception:  # noqa: BLE001 - already gone
            self.proc.kill()
        print("\n".join("  cli_mt: " + l for l in self.lines))

    def events(self):
        return [l for l in self.lines if l.startswith("Watcher ") and "SESSION_EVENT" not in l]

    def record(self):
        """Transcript: everything but timings, session banners and the process noise; watch
        events after the rest, since they race with the completions."""
        for l in [l for l in self.lines if not l.startswith("Watcher ")] + self.events():
            if re.match(r"^\s*time = -?\d+ msec", l) or l.startswith(("Got a new session id", "Quitting")) or not l.strip():
                continue
            if "ZOO_" in l or "zookeeper_" in l or "zk_" in l:
                continue  # C client's own log lines: timestamps, thread ids
            note(l)


def session(fn):
    c = CliMt()
    try:
        fn(c)
    finally:
        c.close()
    return c


def prepare(c, name):
    p = f"{BASE}/{name}"
    c.cmd(f"create {BASE}")
    rc = c.cmd(f"create {p}")
    check(rc in (ZOK, ZNODEEXISTS), f"create {p}: rc {rc}")
    return p


@scenario("crud")
def crud():
    def body(c):
        p = prepare(c, "crud")
        c.cmd(f"delete {p}/a")
        check(c.cmd(f"create {p}/a") == ZOK, "create")
        start = len(c.lines)
        check(c.cmd(f"get {p}/a") == ZOK, "get")
        check(any(l.endswith("new") for l in c.lines[start:]) or "new" in "\n".join(c.lines[start:]), "get did not show the data 'new'")
        check(c.cmd(f"set {p}/a hello") == ZOK, "set")
        start = len(c.lines)
        check(c.cmd(f"get {p}/a") == ZOK, "get after set")
        text = "\n".join(c.lines[start:])
        check("value_len = 5" in text and "hello" in text, f"get after set showed {text!r}")
        check("version=1" in text, f"version after set: {text!r}")
        start = len(c.lines)
        check(c.cmd(f"ls {p}") == ZOK, "ls")
        check("\ta" in c.lines[start:], f"ls shows {c.lines[start:]}")
        check(c.cmd(f"exists {p}/a") == ZOK, "exists")
        check(c.cmd(f"delete {p}/a") == ZOK, "delete")
        check(c.cmd(f"exists {p}/a") == ZNONODE, "exists after delete")
    c = session(body)
    c.record()


@scenario("errors")
def errors():
    def body(c):
        p = prepare(c, "errors")
        c.cmd(f"create {p}/x")
        c.cmd(f"create {p}/x/kid")
        check(c.cmd(f"create {p}/x") == ZNODEEXISTS, "create existing")
        check(c.cmd(f"get {p}/missing") == ZNONODE, "get missing")
        check(c.cmd(f"delete {p}/x") == ZNOTEMPTY, "delete non-empty")
        check(c.cmd(f"create {p}/nope/kid") == ZNONODE, "create under missing parent")
        c.cmd(f"create +e {p}/eph")
        check(c.cmd(f"create {p}/eph/kid") == ZNOCHILDRENFOREPHEMERALS, "create under an ephemeral")
    c = session(body)
    c.record()


def _names(c, start):
    return [l.split("name = ", 1)[1] for l in c.lines[start:] if "name = " in l]


@scenario("create-sequential")
def create_sequential():
    def body(c):
        p = prepare(c, "create-sequential")
        start = len(c.lines)
        for path in (f"{p}/n-", f"{p}/n-", f"{p}/plain", f"{p}/n-"):
            c.cmd(f"create {'+s ' if path.endswith('-') else ''}{path}")
        names = _names(c, start)
        check(names == [f"{p}/n-0000000000", f"{p}/n-0000000001", f"{p}/plain", f"{p}/n-0000000003"], f"names {names}")
    c = session(body)
    c.record()


@scenario("create-ephemeral")
def create_ephemeral():
    def body(c):
        p = prepare(c, "create-ephemeral")
        check(c.cmd(f"create +e {p}/e") == ZOK, "create +e")
        start = len(c.lines)
        c.cmd(f"get {p}/e")
        owner = [l for l in c.lines[start:] if "ephemeralOwner" in l]
        check(owner and owner[0].split("=")[1].strip() == c.session_id[2:], f"ephemeralOwner {owner} vs session {c.session_id}")
    c = session(body)
    c.record()


@scenario("create-ephemeral-sequential")
def create_ephemeral_sequential():
    def body(c):
        p = prepare(c, "create-ephemeral-sequential")
        start = len(c.lines)
        c.cmd(f"create +es {p}/l-")
        c.cmd(f"create +es {p}/l-")
        check(_names(c, start) == [f"{p}/l-0000000000", f"{p}/l-0000000001"], f"names {_names(c, start)}")
    c = session(body)
    c.record()


@scenario("create-container")
def create_container():
    def body(c):
        p = prepare(c, "create-container")
        check(c.cmd(f"create +c {p}/c") == ZOK, "create +c")
        check(c.cmd(f"create {p}/c/kid") == ZOK, "child of a container")
    c = session(body)
    c.record()


@scenario("create-ttl")
def create_ttl():
    def body(c):
        p = prepare(c, "create-ttl")
        check(c.cmd(f"create +t=60000 {p}/t") == ZOK, "create +t=60000 (needs extendedTypesEnabled)")
        start = len(c.lines)
        check(c.cmd(f"create +st=60000 {p}/ts-") == ZOK, "create +st=60000")
        check(_names(c, start) == [f"{p}/ts-0000000001"], f"names {_names(c, start)}")
    c = session(body)
    c.record()


@scenario("create-with-stat")
def create_with_stat():
    def body(c):
        p = prepare(c, "create-with-stat")
        start = len(c.lines)
        check(c.cmd(f"create2 {p}/c2") == ZOK, "create2")
        time.sleep(0.1)
        text = "\n".join(c.lines[start:])
        check("version=0" in text and "czxid=" in text, f"create2 printed no stat: {text!r}")
    c = session(body)
    c.record()


@scenario("watch-data")
def watch_data():
    def body(c):
        p = prepare(c, "watch-data")
        c.cmd(f"create {p}/w")
        c.cmd(f"get {p}/w")              # cli_mt's get leaves a watch
        c.cmd(f"set {p}/w one")
        c.cmd(f"set {p}/w two")
        time.sleep(0.5)
        ev = c.events()
        check(ev == [f"Watcher CHANGED_EVENT state = CONNECTED_STATE for path {p}/w"], f"events {ev}")
    c = session(body)
    c.record()


@scenario("watch-exists")
def watch_exists():
    def body(c):
        p = prepare(c, "watch-exists")
        check(c.cmd(f"exists {p}/later") == ZNONODE, "exists on a missing node")
        c.cmd(f"create {p}/later")
        time.sleep(0.5)
        ev = c.events()
        check(ev == [f"Watcher CREATED_EVENT state = CONNECTED_STATE for path {p}/later"], f"events {ev}")
    c = session(body)
    c.record()


@scenario("watch-children")
def watch_children():
    def body(c):
        p = prepare(c, "watch-children")
        c.cmd(f"ls {p}")
        c.cmd(f"create {p}/k1")
        c.cmd(f"create {p}/k2")
        time.sleep(0.5)
        ev = c.events()
        check(ev == [f"Watcher CHILD_EVENT state = CONNECTED_STATE for path {p}"], f"events {ev}")
    c = session(body)
    c.record()


@scenario("ephemeral-session-close")
def ephemeral_session_close():
    holder = {}

    def first(c):
        holder["p"] = p = prepare(c, "ephemeral-session-close")
        check(c.cmd(f"create +e {p}/e") == ZOK, "create +e")
    a = session(first)
    p = holder["p"]

    def second(c):
        check(c.cmd(f"exists {p}/e") == ZNONODE, "ephemeral survived its session's close")
    b = session(second)
    a.record()
    b.record()


@scenario("sync")
def sync():
    def body(c):
        p = prepare(c, "sync")
        check(c.cmd(f"sync {p}") == ZOK, "sync")
    c = session(body)
    c.record()


@scenario("config-node")
def config_node():
    def body(c):
        start = len(c.lines)
        check(c.cmd("config") == ZOK, "getconfig")
        check(c.cmd("ls /zookeeper") == ZOK, "ls /zookeeper")
        kids = {l.strip() for l in c.lines[start:] if l.startswith("\t")}
        check({"config", "quota"} <= kids, f"/zookeeper children {kids}")
    c = session(body)
    c.record()


if __name__ == "__main__":
    sys.exit(main())
