#!/usr/bin/python3
"""The mixed-ensemble matrix of issue #17: the compat suite's ZooKeeper scenarios through every
member of Keeper / Apache ZooKeeper 3.8 ensembles on loopback.

For each shape (and each implementation that should lead it) the runner starts the members
(`samsa keeper --config zoo.cfg` for Keepers, Debian's ZooKeeper 3.8 QuorumPeerMain for Apache
members, both with zookeeper.extendedTypesEnabled=true as run-compat.sh's upstream target),
waits until every member serves, checks which member leads and that srvr/mntr report each role,
then runs each ZooKeeper client of the compat suite (compat/<client>/run, given COMPAT_ADDR) with
all its scenarios through EACH member in turn, and prints a table

    shape | leader | member | role | client | passed/run | failed scenarios

The leader is put on the wanted implementation by starting it first: FastLeaderElection picks
the largest (epoch, zxid, server id), every log is empty, so the member with the largest id
leads once it is up before the others elect. Observers (a Keeper and an Apache one) are added
to the shapes in OBSERVED (both mixed shapes, so each observer kind observes a leader of each
kind); they never lead. --slice full with kazoo, cli_mt and node-zookeeper-client took 16 min.

    tests/ensemble/matrix.py --samsa src/Samsa.Host/bin/Release/net10.0/samsa \
        [--slice ci|full] [--clients kazoo,zkcli,cli_mt,node-zookeeper-client] [--tsv out.tsv]

--slice ci (the default; 153 s on 2 shared cores) runs one shape per leader implementation, each with both observers,
and kazoo; --slice full runs every shape × leader × every client. Exit status 0 when every
scenario passed, 1 otherwise (report-only callers ignore it).
"""
import argparse, base64, hashlib, os, shutil, signal, socket, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from ensemble_common import four, free_ports, mode, wait_until  # noqa: E402,F401
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
COMPAT = os.path.join(ROOT, "compat")
JAR = "/usr/share/java/zookeeper.jar"
LOG_CP = JAR + ":/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"

# shape name -> {leader kind: member kinds by server id (the last one leads)}; "+obs" adds a
# Keeper observer and an Apache observer as servers 4 and 5
SHAPES = {
    "3 Keepers": {"keeper": ["keeper", "keeper", "keeper"]},
    "2 Keepers + 1 Apache": {"keeper": ["apache", "keeper", "keeper"], "apache": ["keeper", "keeper", "apache"]},
    "1 Keeper + 2 Apache": {"keeper": ["apache", "apache", "keeper"], "apache": ["keeper", "apache", "apache"]},
}
OBSERVED = {"2 Keepers + 1 Apache", "1 Keeper + 2 Apache"}
CI_SLICE = [("2 Keepers + 1 Apache", "keeper"), ("1 Keeper + 2 Apache", "apache")]
ALL_CLIENTS = ["kazoo", "zkcli", "cli_mt", "node-zookeeper-client"]
CI_CLIENTS = ["kazoo"]
# each failed scenario's own FAIL line (with its reason), printed after the table so that the
# tail of the log, all CI shows, says why
FAILURE_LINES = []
# the ACL scenarios leave nodes only their own digest users may delete: the runner deletes them
# between members as upstream's super user (zookeeper.DigestAuthenticationProvider.superDigest)
SUPER = "super:matrix"
SUPER_DIGEST = "super:" + base64.b64encode(hashlib.sha1(SUPER.encode()).digest()).decode()
SERVER_PROPS = ["-Dzookeeper.extendedTypesEnabled=true", f"-Dzookeeper.DigestAuthenticationProvider.superDigest={SUPER_DIGEST}"]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Member:
    def __init__(self, sid, kind, observer, root, servers, ports, samsa):
        self.sid, self.kind, self.observer = sid, kind, observer
        self.quorum_port, self.election_port, self.port = ports
        d = os.path.join(root, f"m{sid}")
        os.makedirs(d, exist_ok=True)
        self.dir = d
        with open(os.path.join(d, "myid"), "w") as f:
            f.write(f"{sid}\n")
        self.cfg = os.path.join(d, "zoo.cfg")
        with open(self.cfg, "w") as f:
            f.write("tickTime=500\ninitLimit=10\nsyncLimit=5\n")
            f.write(f"dataDir={d}\nclientPort={self.port}\nclientPortAddress=127.0.0.1\n")
            f.write("admin.enableServer=false\n4lw.commands.whitelist=*\n")
            if observer:
                f.write("peerType=observer\n")
            f.write("".join(s + "\n" for s in servers))
        self.samsa = samsa
        self.proc = None
        self.log = None

    def start(self):
        self.log = open(os.path.join(self.dir, "out.log"), "a")
        if self.kind == "keeper":
            cmd = [self.samsa, "keeper", "--config", self.cfg] + SERVER_PROPS
        else:
            cmd = ["java", "-Xmx160m"] + SERVER_PROPS + ["-cp", LOG_CP,
                   "-Dlog4j.configuration=file:/etc/zookeeper/conf_example/log4j.properties",
                   "-Dzookeeper.root.logger=INFO,CONSOLE", "org.apache.zookeeper.server.quorum.QuorumPeerMain", self.cfg]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        if self.log is not None:
            self.log.close()

    def name(self):
        return f"{self.kind}{self.sid}" + ("-observer" if self.observer else "")


def ensure_node_modules(clients, log):
    for c in clients:
        d = os.path.join(COMPAT, c)
        if os.path.exists(os.path.join(d, "package.json")) and not os.path.isdir(os.path.join(d, "node_modules")):
            print(f"npm ci in compat/{c}", file=sys.stderr, flush=True)
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=d, stdout=log, stderr=subprocess.STDOUT)


def role_check(m, expected):
    """srvr's Mode and mntr's zk_server_state must both name the member's role."""
    srvr = mode(m.port)
    mntr = {}
    for line in four(m.port, "mntr").splitlines():
        k, _, v = line.partition("\t")
        mntr[k] = v
    problems = []
    if srvr != expected:
        problems.append(f"srvr Mode {srvr}")
    if mntr.get("zk_server_state") != expected:
        problems.append(f"mntr zk_server_state {mntr.get('zk_server_state')}")
    if expected == "leader" and "zk_synced_followers" not in mntr:
        problems.append("mntr has no zk_synced_followers")
    return problems, mntr


def clean_compat_nodes(port):
    """Each client's scenarios expect the tree run-compat.sh gives them: a fresh server. Through
    the second and later members of one ensemble, the nodes the earlier runs left (sequence
    counters, containers, ...) would change their answers, so /compat* goes first."""
    from kazoo.client import KazooClient
    from kazoo import exceptions as ke
    zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10.0, auth_data=[("digest", SUPER)])
    try:
        zk.start(timeout=10)
        # a scenario's ephemerals may still be expiring (session-expiry), containers being
        # reaped: a recursive delete that meets them fails with NotEmpty/NoNode; try again
        deadline = time.monotonic() + 30
        while True:
            try:
                for child in zk.get_children("/"):
                    if child.startswith("compat"):
                        zk.delete("/" + child, recursive=True)
                zk.sync("/")
                return
            except (ke.NotEmptyError, ke.NoNodeError) as e:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{type(e).__name__} for 30 s") from e
                time.sleep(0.5)
    finally:
        try:
            zk.stop(); zk.close()
        except Exception:
            pass


def run_client(client, member, prefix, logdir, timeout_each):
    runner = os.path.join(COMPAT, client, "run")
    try:
        clean_compat_nodes(member.port)
    except Exception as e:  # noqa: BLE001 - reported as the row's reason
        return [], ["(clean-up)"], f"could not delete /compat* first: {type(e).__name__} {e}"
    env = dict(os.environ, COMPAT_TARGET="ensemble", COMPAT_ADDR=f"127.0.0.1:{member.port}",
               COMPAT_PREFIX=prefix, COMPAT_RUN_ID=prefix, COMPAT_TIMEOUT=str(timeout_each))
    try:
        lst = subprocess.run([runner, "--list"], env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return [], ["(--list timed out)"], "--list timed out"
    names = lst.stdout.split()
    if lst.returncode != 0 or not names:
        return [], ["(--list failed)"], (lst.stderr.strip().splitlines() or ["no scenarios"])[-1][:200]
    logf = os.path.join(logdir, f"{member.name()}-{client}.log")
    passed, failed = [], []
    with open(logf, "w") as out:
        # all of a client's scenarios in one process (each prints PASS/FAIL/SKIP NAME); one that
        # printed nothing (the process timed out or died first) counts as failed
        limit = timeout_each * len(names)
        try:
            r = subprocess.run(["timeout", "-k", "3", str(limit), runner] + names, env=env,
                               capture_output=True, text=True, timeout=limit + 10)
            text = r.stdout + r.stderr
        except subprocess.TimeoutExpired as e:
            text = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        out.write(text)
        status = {}
        for l in text.splitlines():
            for st in ("PASS", "FAIL", "SKIP"):
                if l.startswith(st + " "):
                    status[l[len(st) + 1:].split(":", 1)[0].strip()] = st
                    if st == "FAIL":
                        FAILURE_LINES.append(f"{member.name()} {client}: {l[:400]}")
        for s in names:
            st = status.get(s, "FAIL")
            if st == "PASS":
                passed.append(s)
            elif st == "FAIL":
                failed.append(s)
    return passed, failed, ""


def run_shape(shape, want_leader, kinds, observers, clients, samsa, keep, rows, timeout_each):
    root = tempfile.mkdtemp(prefix="samsa-matrix-")
    n = len(kinds) + len(observers)
    ports = free_ports(3 * n)
    roles = [(k, False) for k in kinds] + [(k, True) for k in observers]
    servers = [f"server.{i + 1}=127.0.0.1:{ports[3 * i]}:{ports[3 * i + 1]}" + (":observer" if obs else "")
               for i, (_, obs) in enumerate(roles)]
    members = [Member(i + 1, k, obs, root, servers, ports[3 * i:3 * i + 3], samsa) for i, (k, obs) in enumerate(roles)]
    voters = [m for m in members if not m.observer]
    label = f"{shape}" + (" + 2 observers" if observers else "")
    t0 = time.monotonic()
    try:
        # the wanted leader first (the largest voter id), listening for election before the rest start
        first = voters[-1]
        first.start()
        wait_until(lambda: port_open(first.election_port), 30)
        for m in members:
            if m is not first:
                m.start()
        ok = wait_until(lambda: all(mode(m.port) in ("leader", "follower", "observer") for m in members), 90)
        serving = time.monotonic() - t0
        if not ok:
            state = ", ".join(f"{m.name()}={mode(m.port)}" for m in members)
            rows.append((label, want_leader, "*", "-", "*", "0/0", f"not all members served within 90 s: {state}"))
            return serving, 0.0
        leader = next((m for m in members if mode(m.port) == "leader"), None)
        actual = leader.kind if leader else "?"
        print(f"{label}, {want_leader} should lead: serving after {serving:.1f} s, leader {leader.name() if leader else '?'}",
              file=sys.stderr, flush=True)
        t1 = time.monotonic()
        logdir = os.path.join(root, "client-logs")
        os.makedirs(logdir, exist_ok=True)
        for m in members:
            expected = "leader" if m is leader else "observer" if m.observer else "follower"
            problems, mntr = role_check(m, expected)
            if m is leader:
                want = len(members) - 1 - len(observers)
                if mntr.get("zk_synced_followers") != str(want) or mntr.get("zk_synced_observers") != str(len(observers)):
                    problems.append(f"mntr zk_synced_followers={mntr.get('zk_synced_followers')} "
                                    f"zk_synced_observers={mntr.get('zk_synced_observers')} (want {want}/{len(observers)})")
            rows.append((label, f"{want_leader} (is {actual})", m.name(), expected, "4lw role", "1/1" if not problems else "0/1",
                         "; ".join(problems)))
            for c in clients:
                tc = time.monotonic()
                passed, failed, err = run_client(c, m, f"matrix-{m.sid}-{int(time.time())}", logdir, timeout_each)
                total = len(passed) + len(failed)
                rows.append((label, f"{want_leader} (is {actual})", m.name(), expected, c, f"{len(passed)}/{total}",
                             (err + " " if err else "") + " ".join(failed)))
                print(f"  {m.name():18} {c:22} {len(passed)}/{total} {time.monotonic() - tc:.0f}s {' '.join(failed)}",
                      file=sys.stderr, flush=True)
        return serving, time.monotonic() - t1
    finally:
        for m in members:
            m.stop()
        if keep:
            print(f"  logs in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--samsa", default=os.path.join(ROOT, "src/Samsa.Host/bin/Release/net10.0/samsa"))
    p.add_argument("--slice", choices=["ci", "full"], default="ci")
    p.add_argument("--clients", help="comma list (default: kazoo,zkcli for ci, all four for full)")
    p.add_argument("--shape", help="run only this shape (e.g. '3 Keepers')")
    p.add_argument("--leader", choices=["keeper", "apache"], help="run only shapes led by this implementation")
    p.add_argument("--tsv", help="also write the table here")
    p.add_argument("--keep", action="store_true", help="keep member directories and client logs")
    p.add_argument("--timeout", type=int, default=40, help="seconds per scenario")
    a = p.parse_args()
    clients = a.clients.split(",") if a.clients else (CI_CLIENTS if a.slice == "ci" else ALL_CLIENTS)
    if not os.path.exists(JAR):
        print("matrix: no Apache ZooKeeper at " + JAR + " (Debian package zookeeper)", file=sys.stderr)
        return 2
    samsa = os.path.abspath(a.samsa)
    if not os.access(samsa, os.X_OK):
        print(f"matrix: no samsa executable at {samsa}", file=sys.stderr)
        return 2
    with open(os.devnull, "w") as devnull:
        ensure_node_modules(clients, devnull)
    if a.slice == "ci" and not (a.shape or a.leader):
        plan = [(s, l) for s, l in CI_SLICE]
    else:
        plan = [(s, l) for s, by in SHAPES.items() for l in by]
    if a.shape:
        plan = [(s, l) for s, l in plan if s == a.shape]
    if a.leader:
        plan = [(s, l) for s, l in plan if l == a.leader]
    if not plan:
        print("matrix: no shape matches --shape/--leader", file=sys.stderr)
        return 2
    rows, figures = [], []
    t_all = time.monotonic()
    for shape, leader in plan:
        observers = ["keeper", "apache"] if shape in OBSERVED else []
        serving, scen = run_shape(shape, leader, SHAPES[shape][leader], observers, clients, samsa, a.keep, rows, a.timeout)
        figures.append((shape + (" + 2 observers" if observers else ""), leader, serving, scen))
    header = ("shape", "leader", "member", "role", "client", "passed", "failed")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(6)]
    fmt = " | ".join("{:%d}" % w for w in widths) + " | {}"
    print(fmt.format(*header))
    print("-+-".join("-" * w for w in widths) + "-+-" + "-" * 20)
    for r in rows:
        print(fmt.format(*r))
    print()
    for shape, leader, serving, scen in figures:
        print(f"{shape}, {leader} leads: serving {serving:.1f} s after start; scenarios through every member {scen:.0f} s")
    print(f"total {time.monotonic() - t_all:.0f} s")
    for line in FAILURE_LINES:
        print("failed: " + line)
    if a.tsv:
        with open(a.tsv, "w") as f:
            f.write("\t".join(header) + "\n")
            for r in rows:
                f.write("\t".join(str(x) for x in r) + "\n")
    bad = [r for r in rows if r[5].split("/")[0] != r[5].split("/")[1] or r[5] == "0/0"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
