#!/usr/bin/python3
"""Dynamic reconfiguration (ZooKeeper 3.5+ `reconfig`) on Keeper-only and mixed Keeper / Apache
ZooKeeper 3.8 ensembles (issue #17).

Every member runs with reconfigEnabled=true and a super digest (world may only read
/zookeeper/config, so reconfig needs the super identity, as upstream since ZOOKEEPER-2014).
Per scenario: three members serve (the largest id leads); /zookeeper/config holds the server
lines and, as reconfig is on, the first NEWLEADER zxid as version (ZOOKEEPER-1783) on
each (and in zkCli.sh `config` through a Keeper); reconfig without the super identity is NOAUTH, with a stale fromConfig BADVERSION, and a
new config without a synced quorum NEWCONFIGNOQUORUM; a fourth member started with the old
members plus itself syncs as a non-voter, is added with an incremental reconfig (kazoo
client.reconfig), and every member then shows the new config with the reconfig's zxid as its
version (each Keeper also wrote zoo.cfg.dynamic.<version> and points zoo.cfg at it); a write through
the new member is read through the others; a follower is removed; the leader is removed and a new
leader takes writes. One PASS/FAIL line per check; the exit status is 1 if any check failed.

    /usr/bin/python3 tests/ensemble/reconfig.py --samsa src/Samsa.Host/bin/Release/net10.0/samsa [--scenarios keepers,keeper-leads,apache-leads]
"""
import argparse, base64, hashlib, os, shutil, signal, subprocess, sys, tempfile, time

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, ConnectionLoss, NewConfigNoQuorumError, NoAuthError, ZookeeperError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ensemble_common import free_ports, mode, wait_until as _wait_until  # noqa: E402


def wait_until(cond, timeout):
    return _wait_until(cond, timeout, step=0.1, ignore_errors=True)

JAR = "/usr/share/java/zookeeper.jar"
LOG_CP = JAR + ":/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"
SUPER_PASS = "reconfig-secret"
SUPER_DIGEST = "super:" + base64.b64encode(hashlib.sha1(f"super:{SUPER_PASS}".encode()).digest()).decode()

# sid -> kind for the first three members and the kind of the joining fourth; among equal logs the
# largest id leads, so the order picks the first leader
SCENARIOS = {
    "keepers": (["keeper", "keeper", "keeper"], "keeper"),
    "keeper-leads": (["apache", "keeper", "keeper"], "apache"),  # Keeper 3 leads, an Apache member joins
    "apache-leads": (["keeper", "keeper", "apache"], "keeper"),  # Apache 3 leads, a Keeper joins
}

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)
    return ok


class Member:
    def __init__(self, sid, kind, root, server_lines, client_port, samsa):
        self.sid, self.kind, self.port = sid, kind, client_port
        self.dir = os.path.join(root, f"m{sid}")
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "myid"), "w") as f:
            f.write(f"{sid}\n")
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        with open(self.cfg, "w") as f:
            f.write("tickTime=500\ninitLimit=10\nsyncLimit=5\nstandaloneEnabled=false\nreconfigEnabled=true\n")
            f.write(f"dataDir={self.dir}\nadmin.enableServer=false\n4lw.commands.whitelist=*\n")
            f.write(f"DigestAuthenticationProvider.superDigest={SUPER_DIGEST}\n")
            f.write("".join(s + "\n" for s in server_lines))
        self.log = open(os.path.join(self.dir, "out.log"), "w")
        if kind == "keeper":
            cmd = [samsa, "keeper", "--config", self.cfg]
        else:
            cmd = ["java", "-Xmx128m", "-cp", LOG_CP, "-Dlog4j.configuration=file:/etc/zookeeper/conf_example/log4j.properties",
                   "-Dzookeeper.root.logger=INFO,CONSOLE", "org.apache.zookeeper.server.quorum.QuorumPeerMain", self.cfg]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def name(self):
        return f"{self.kind}{self.sid}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.log.close()


def client(port, auth=True):
    zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10.0,
                     auth_data=[("digest", f"super:{SUPER_PASS}")] if auth else None)
    zk.start(timeout=15)
    return zk


def config_of(port):
    zk = client(port, auth=False)
    try:
        zk.sync("/zookeeper/config")
        data, stat = zk.get("/zookeeper/config")
        return data.decode()
    finally:
        zk.stop(); zk.close()


def server_ids(cfg_text):
    return sorted(int(l.split("=")[0][len("server."):]) for l in cfg_text.splitlines() if l.startswith("server."))


def version_of(cfg_text):
    for l in cfg_text.splitlines():
        if l.startswith("version="):
            return l[len("version="):]
    return None


def leader_of(members):
    for m in members:
        if mode(m.port) == "leader":
            return m
    return None


def run(label, kinds, joiner_kind, samsa, root):
    print(f"== {label}: members {', '.join(f'{k}{i + 1}' for i, k in enumerate(kinds))}; {joiner_kind}4 joins", flush=True)
    ports = free_ports(12)
    lines = [f"server.{i + 1}=127.0.0.1:{ports[3 * i]}:{ports[3 * i + 1]}:participant;127.0.0.1:{ports[3 * i + 2]}" for i in range(4)]
    # the largest id starts first and gets a head start, so it leads (the JVM starts slower than a Keeper)
    members = [None, None, None]
    members[2] = Member(3, kinds[2], root, lines[:3], ports[8], samsa)
    time.sleep(4 if kinds[2] == "apache" else 1)
    for i in (1, 0):
        members[i] = Member(i + 1, kinds[i], root, lines[:3], ports[3 * i + 2], samsa)
    everyone = list(members)
    try:
        if not check(f"{label}: 3 members serve", wait_until(lambda: all(mode(m.port) in ("leader", "follower") for m in members), 90),
                     ", ".join(f"{m.name()}={mode(m.port)}" for m in members)):
            return
        leader = leader_of(members)
        check(f"{label}: {members[2].name()} (largest id, started first) leads", leader is members[2], leader.name() if leader else "none")
        # with reconfigEnabled the leader gives the initial config the first NEWLEADER zxid as its
        # version (upstream ZOOKEEPER-1783), so every member shows <epoch>00000000
        want = lambda c: server_ids(c) == [1, 2, 3] and version_of(c) is not None and version_of(c).endswith("00000000") and version_of(c) != "0"
        ok = wait_until(lambda: all(want(config_of(m.port)) and version_of(config_of(m.port)) == version_of(config_of(members[0].port)) for m in members), 30)
        cfgs = {m.name(): config_of(m.port) for m in members}
        check(f"{label}: /zookeeper/config lists servers 1-3 with version=<first NEWLEADER zxid> on every member", ok,
              ", ".join(f"{k}: version={version_of(c)}" for k, c in cfgs.items()))
        # zkCli's `config` (ZooKeeper.getConfig: getData of /zookeeper/config) through a Keeper member
        keeper = next(m for m in members if m.kind == "keeper")
        try:
            out = subprocess.run(["/usr/share/zookeeper/bin/zkCli.sh", "-server", f"127.0.0.1:{keeper.port}", "config"],
                                 capture_output=True, text=True, timeout=60).stdout
        except subprocess.TimeoutExpired:
            out = ""
        check(f"{label}: zkCli config through {keeper.name()} prints the membership",
              all(f"server.{i}=" in out for i in (1, 2, 3)) and f"version={version_of(cfgs[keeper.name()])}" in out, out[-300:])
        zk = client(members[0].port)
        anon = client(members[0].port, auth=False)
        try:
            anon.reconfig(joining=None, leaving="1", new_members=None)
            check(f"{label}: reconfig without the super identity is refused", False, "accepted")
        except NoAuthError:
            check(f"{label}: reconfig without the super identity is refused", True, "NOAUTH")
        except ZookeeperError as e:
            check(f"{label}: reconfig without the super identity is refused", False, repr(e))
        anon.stop(); anon.close()
        try:
            zk.reconfig(joining=None, leaving="1", new_members=None, from_config=12345)
            check(f"{label}: stale fromConfig is BADVERSION", False, "accepted")
        except BadVersionError:
            check(f"{label}: stale fromConfig is BADVERSION", True)
        dead = [f"server.{9 + i}=127.0.0.1:{p}:{p + 1}:participant;127.0.0.1:{p + 2}" for i, p in enumerate((free_ports(1)[0], free_ports(1)[0]))]
        try:
            zk.reconfig(joining=None, leaving=None, new_members=",".join([lines[0]] + dead))
            check(f"{label}: a new config without a synced quorum is NEWCONFIGNOQUORUM", False, "accepted")
        except NewConfigNoQuorumError:
            check(f"{label}: a new config without a synced quorum is NEWCONFIGNOQUORUM", True)

        # ---- a fourth member joins: started with the old members plus itself, then added
        j = Member(4, joiner_kind, root, lines[:4], ports[11], samsa)
        everyone.append(j)
        check(f"{label}: {j.name()} syncs as a non-voting follower", wait_until(lambda: mode(j.port) == "follower", 60), f"mode {mode(j.port)}")
        data, stat = zk.reconfig(joining=lines[3], leaving=None, new_members=None)
        text = data.decode()
        ver = version_of(text)
        check(f"{label}: incremental add returns the new config", server_ids(text) == [1, 2, 3, 4] and ver == format(stat.mzxid, "x"),
              f"{text!r} mzxid {stat.mzxid:x}")
        members.append(j)
        ok = wait_until(lambda: all(version_of(config_of(m.port)) == ver and server_ids(config_of(m.port)) == [1, 2, 3, 4] for m in members), 30)
        check(f"{label}: every member shows the new config (version {ver})", ok,
              "; ".join(f"{m.name()}: {config_of(m.port)!r}" for m in members) if not ok else "")
        files_ok = True
        for m in members:
            if m.kind != "keeper":
                continue
            dyn = m.cfg + ".dynamic." + ver
            static = open(m.cfg).read()
            files_ok &= os.path.exists(dyn) and f"dynamicConfigFile={dyn}" in static and "server." not in static
        check(f"{label}: Keeper members wrote zoo.cfg.dynamic.{ver} and point zoo.cfg at it", files_ok)
        zj = client(j.port)
        zj.create("/joined", b"4")
        seen = []
        for m in members:
            c = client(m.port, auth=False)
            c.sync("/joined")
            seen.append(c.exists("/joined") is not None)
            c.stop(); c.close()
        zj.stop(); zj.close()
        check(f"{label}: a write through {j.name()} is read through every member", all(seen), repr(seen))

        # ---- remove a follower
        follower = next(m for m in members if m is not leader and m is not j)
        data, _ = zk.reconfig(joining=None, leaving=str(follower.sid), new_members=None)
        check(f"{label}: removing follower {follower.name()}", follower.sid not in server_ids(data.decode()), data.decode())
        rest = [m for m in members if m is not follower]
        zk.stop(); zk.close()
        zk = client(rest[0].port if rest[0] is not leader else rest[1].port)
        zk.create("/after-remove", b"x")
        check(f"{label}: writes go on after the removal", zk.exists("/after-remove") is not None)

        # ---- remove the leader: a new leader among the rest takes writes. The member the client
        # is connected to elects again right after the commit; an Apache follower may close the
        # connection before the answer goes out (upstream Follower throws "changes proposed in
        # reconfig" after handing the commit on), so a lost connection is checked on the result
        lost = False
        try:
            data, _ = zk.reconfig(joining=None, leaving=str(leader.sid), new_members=None)
            removed = leader.sid not in server_ids(data.decode())
            detail = data.decode()
        except ConnectionLoss:
            lost, removed, detail = True, None, "connection lost while the members elected again"
        except ZookeeperError as e:
            removed, detail = False, repr(e)
        try:
            zk.stop(); zk.close()
        except Exception:
            pass
        rest = [m for m in rest if m is not leader]
        if lost:
            removed = wait_until(lambda: leader.sid not in server_ids(config_of(rest[0].port)), 60)
        check(f"{label}: removing the leader {leader.name()}", removed, detail)
        ok = wait_until(lambda: leader_of(rest) is not None, 60)
        new_leader = leader_of(rest)
        check(f"{label}: a new leader is elected among {', '.join(m.name() for m in rest)}", ok and new_leader is not None,
              new_leader.name() if new_leader else ", ".join(f"{m.name()}={mode(m.port)}" for m in rest))

        def write_after():
            c = client(rest[0].port, auth=False)
            try:
                c.create(f"/after-leader-{time.monotonic_ns()}", b"x")
                return True
            finally:
                c.stop(); c.close()
        check(f"{label}: writes go on after the leader left", wait_until(write_after, 30))
    finally:
        for m in everyone:
            m.stop()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--samsa", required=True)
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--keep", action="store_true", help="keep the member directories (logs)")
    a = p.parse_args()
    for name in a.scenarios.split(","):
        kinds, joiner = SCENARIOS[name]
        root = tempfile.mkdtemp(prefix="samsa-reconfig-")
        try:
            run(name, kinds, joiner, os.path.abspath(a.samsa), root)
        except Exception as e:  # a scenario that breaks counts as a failed check
            check(f"{name}: scenario ran to the end", False, repr(e))
        finally:
            if a.keep:
                print(f"  logs in {root}")
            else:
                shutil.rmtree(root, ignore_errors=True)
    failed = results.count(False)
    print(f"reconfig: {results.count(True)} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
