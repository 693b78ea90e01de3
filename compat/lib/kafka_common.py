"""Helpers shared by the Python Kafka runners: topic names and payloads that are the same
for every client, so a failure in one client can be compared with another."""
import os
import time

from scenario import PREFIX

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def topic(name):
    # Kafka topic names allow [a-zA-Z0-9._-] and at most 249 characters.
    return f"{PREFIX}-{name}".replace("_", "-")[:240]


def payloads(n, tag):
    """n distinct values, some compressible and one larger than a typical batch
    (so a batch holds several records and the codecs have something to work with)."""
    out = []
    for i in range(n):
        if i == n // 2:
            out.append((f"{tag}-{i}-" + "x" * 20000).encode())
        else:
            out.append(f"{tag}-{i}-{os.urandom(4).hex()}-" .encode() + b"abc" * (i % 7))
    return out


def now_ms():
    return int(time.time() * 1000)


# ---------------------------------------------------------------- the cluster target
# Against the cluster target (COMPAT_TARGET=cluster) the client is bootstrapped at one broker
# (COMPAT_BOOTSTRAP_ID) that must lead none of a scenario's partitions: topics and new
# partitions are created with an explicit assignment whose bootstrap broker is the last
# replica (never the preferred leader, nor the next one when another broker dies); see
# compat/lib/cluster.py, which checks the claim after every scenario.
TARGET = os.environ.get("COMPAT_TARGET", "samsa")
CLUSTER = TARGET == "cluster"
BOOTSTRAP_ID = int(os.environ.get("COMPAT_BOOTSTRAP_ID", "-1"))
LEADERS = [int(x) for x in os.environ.get("COMPAT_LEADERS", "").split(",") if x]
BROKERS = len(LEADERS) + 1 if CLUSTER else 1


def replica_assignment(partitions, first=0):
    """{partition: [replicas]} for partitions first..partitions-1 on the cluster target."""
    out = {}
    for p in range(first, partitions):
        k = p % len(LEADERS)
        out[p] = LEADERS[k:] + LEADERS[:k] + [BOOTSTRAP_ID]
    return out


def cluster_ctl(*args, timeout=90):
    """Runs compat/lib/cluster.py (kill/start a broker, find a coordinator, create a topic)."""
    import subprocess
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run([sys.executable, os.path.join(here, "cluster.py"), *args], capture_output=True, text=True, timeout=timeout)
    print(f"  cluster {' '.join(args)}: {(r.stdout + r.stderr).strip()[:500]}", flush=True)
    if r.returncode != 0:
        from scenario import Fail
        raise Fail(f"cluster.py {' '.join(args)} failed: {(r.stdout + r.stderr).strip()[-300:]}")
    return r.stdout.strip()


def coordinator_of(group):
    return int(cluster_ctl("coordinator", group).splitlines()[-1])
