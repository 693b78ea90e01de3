#!/usr/bin/python3
"""Mixed Keeper / Apache ZooKeeper 3.8 ensembles on loopback (issue #17).

For each ensemble of the matrix: start three members (`samsa keeper --config zoo.cfg` for Keeper
members, Debian's Apache ZooKeeper for the others), wait until every member serves, write through
each member and read every write through every member (kazoo, after sync), then kill the leader
and time how long until a write through a surviving member succeeds again (election + sync).
Prints one line per ensemble. Among members with equal logs the largest server id leads, so the
order of kinds in each row picks whether a Keeper or an Apache member leads first.

    tests/ensemble/mixed_ensemble.py --samsa src/Samsa.Host/bin/Release/net10.0/samsa [--rounds 3]
"""
import argparse, os, shutil, signal, socket, subprocess, sys, tempfile, time

from kazoo.client import KazooClient

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ensemble_common import four, free_ports, mode, wait_until  # noqa: E402,F401

JAR = "/usr/share/java/zookeeper.jar"
LOG_CP = JAR + ":/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"

# sid -> kind, in server-id order (the largest id leads first); the matrix of issue #17
MATRIX = {
    "3 Apache (baseline)": ["apache", "apache", "apache"],
    "1 Keeper + 2 Apache, Apache leads": ["keeper", "apache", "apache"],
    "2 Keepers + 1 Apache (Keepers first: a Keeper leads)": ["keeper", "keeper", "apache"],
    "3 Keepers": ["keeper", "keeper", "keeper"],
    "Keeper leads 2 Apache": ["apache", "apache", "keeper"],
    "Keeper leads 1 Keeper + 1 Apache": ["apache", "keeper", "keeper"],
}


class Member:
    def __init__(self, sid, kind, root, servers, client_port, samsa):
        self.sid, self.kind, self.port = sid, kind, client_port
        d = os.path.join(root, f"m{sid}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "myid"), "w") as f:
            f.write(f"{sid}\n")
        cfg = os.path.join(d, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write("tickTime=500\ninitLimit=10\nsyncLimit=5\n")
            f.write(f"dataDir={d}\nclientPort={client_port}\nclientPortAddress=127.0.0.1\n")
            f.write("admin.enableServer=false\n4lw.commands.whitelist=*\n")
            f.write("".join(s + "\n" for s in servers))
        self.log = open(os.path.join(d, "out.log"), "w")
        if kind == "keeper":
            cmd = [samsa, "keeper", "--config", cfg]
        else:
            cmd = ["java", "-Xmx128m", "-cp", LOG_CP, "-Dlog4j.configuration=file:/etc/zookeeper/conf_example/log4j.properties",
                   "-Dzookeeper.root.logger=INFO,CONSOLE", "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def name(self):
        return f"{self.kind}{self.sid}"


def try_write(port, path):
    zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=2.0, connection_retry={"max_tries": 0})
    try:
        zk.start(timeout=2.0)
        zk.create(path, b"x")
        return True
    except Exception:
        return False
    finally:
        try:
            zk.stop(); zk.close()
        except Exception:
            pass


def run(label, kinds, samsa, root):
    n = len(kinds)
    ports = free_ports(3 * n)
    servers = [f"server.{i + 1}=127.0.0.1:{ports[3 * i]}:{ports[3 * i + 1]}" for i in range(n)]
    t0 = time.monotonic()
    members = [Member(i + 1, k, root, servers, ports[3 * i + 2], samsa) for i, k in enumerate(kinds)]
    try:
        if not wait_until(lambda: all(mode(m.port) in ("leader", "follower") for m in members), 60):
            return f"{label}: not all members served within 60 s: " + ", ".join(f"{m.name()}={mode(m.port)}" for m in members)
        start_s = time.monotonic() - t0
        leader = next(m for m in members if mode(m.port) == "leader")
        # every member's write read through every member
        clients = {}
        for m in members:
            zk = KazooClient(hosts=f"127.0.0.1:{m.port}", timeout=10.0)
            zk.start(timeout=10)
            clients[m.sid] = zk
        for m in members:
            clients[m.sid].create(f"/via-{m.name()}", m.name().encode())
        missing = []
        for m in members:
            zk = clients[m.sid]
            zk.sync("/")
            for w in members:
                if not zk.exists(f"/via-{w.name()}"):
                    missing.append(f"{w.name()}->{m.name()}")
        # sequential writes through a follower (each one a quorum round: forward, propose, ACKs, commit)
        fol = next(m for m in members if m is not leader)
        zk = clients[fol.sid]
        n_writes = 200
        t_w = time.monotonic()
        for i in range(n_writes):
            zk.create(f"/seq-{i}", b"v")
        rate = n_writes / (time.monotonic() - t_w)
        for zk in clients.values():
            zk.stop(); zk.close()
        rw = ("all reads OK" if not missing else "MISSING " + ",".join(missing)) + f"; {rate:.0f} sequential writes/s through {fol.name()}"
        # kill the leader; time until a write through a survivor succeeds
        t_kill = time.monotonic()
        leader.kill()
        survivors = [m for m in members if m is not leader]
        target = survivors[0]
        ok = wait_until(lambda: try_write(target.port, f"/after-kill-{time.monotonic_ns()}"), 30)
        took = time.monotonic() - t_kill
        failover = f"write through {target.name()} {took:.2f} s after killing {leader.name()}" if ok else \
            f"no write through {target.name()} within 30 s after killing {leader.name()} (new leader: " + \
            ", ".join(f"{m.name()}={mode(m.port)}" for m in survivors) + ")"
        return f"{label}: all serving {start_s:.2f} s after start, leader {leader.name()}; {rw}; {failover}"
    finally:
        for m in members:
            m.kill()
            m.log.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--samsa", required=True)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--keep", action="store_true", help="keep the member directories (logs)")
    a = p.parse_args()
    for r in range(a.rounds):
        for label, kinds in MATRIX.items():
            root = tempfile.mkdtemp(prefix="samsa-ensemble-")
            try:
                print(f"round {r + 1}: " + run(label, kinds, os.path.abspath(a.samsa), root), flush=True)
            finally:
                if a.keep:
                    print(f"  logs in {root}")
                else:
                    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
