#!/usr/bin/python3
"""Behaviour of a built `samsa` executable at run time (issue #18).

A NativeAOT build compiles without reflection metadata and without runtime code generation, so
what it breaks shows only when the code runs. This script drives one executable (the NativeAOT
single file by default, any `samsa` with --exe) through the paths that depend on such things:
    dev (one broker + Keeper, --secure, the Keeper's AdminServer on):
      produce/consume with gzip, snappy, lz4 and zstd in a consumer group (librdkafka);
      transactions (commit and abort, read_committed);
      the SSL listener; SASL_SSL with SCRAM-SHA-512 as alice, refused and then allowed by an ACL
      that the admin (super user) creates (/kafka-acl znode JSON);
      a client-id quota written as upstream's /config/clients znode and change notification,
      throttling the producer (throttle_time_ms in Produce responses);
      the Keeper: kazoo (create, ephemeral, sequential, watch, transaction), 4lw (ruok, mntr, srvr,
      cons, wchs, dump, envi, conf) and every AdminServer command (JSON);
    dev --standalone --secure (no ZooKeeper: the broker's own JSON files): topic with a config, ACL
      and client quota written, the process restarted on the same data, all three read back;
    dev --brokers 3: a topic with 3 replicas, acks=all produce and group consume, bootstrapped at
      broker 2.
Prints one PASS/FAIL line per check and exits non-zero when one fails.
    tests/dist/runtime-check.py --exe PATH
"""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kazoo.client import KazooClient

args = sys.argv[1:]
if len(args) != 2 or args[0] != "--exe":
    sys.exit("usage: runtime-check.py --exe PATH")
EXE = os.path.abspath(args[1])
failed = 0
passed = 0


def check(name, fn):
    global failed, passed
    t0 = time.monotonic()
    try:
        detail = fn()
        passed += 1
        print(f"PASS {name}{': ' + detail if detail else ''} ({time.monotonic() - t0:.1f} s)", flush=True)
    except Exception as e:  # noqa: BLE001 - every failure is reported as one line
        failed += 1
        print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Dev:
    """`samsa dev ...` until SIGTERM; stdout lines collected."""

    def __init__(self, data, *extra, brokers=1):
        self.lines = []
        self.proc = subprocess.Popen([EXE, "dev", "--data", data, *extra], stdout=subprocess.PIPE,
                                     stderr=open(os.path.join(data + ".err"), "w"), text=True)
        deadline = time.monotonic() + 60
        seen = 0
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"samsa dev exited {self.proc.wait()}: {open(data + '.err').read()[-2000:]}")
            self.lines.append(line.rstrip("\n"))
            if line.startswith("kafka listening on "):
                seen += 1
                if seen == brokers:
                    break
        # the rest of the output (client configuration of --secure) without blocking the process
        threading.Thread(target=self._drain, daemon=True).start()
        time.sleep(0.3)

    def _drain(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def addr(self, kind="kafka"):
        return [l.split(" on ", 1)[1] for l in self.lines if l.startswith(f"{kind} listening on ")]

    def value(self, key):
        return next(l.split("=", 1)[1] for l in self.lines if l.startswith(key + "="))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise RuntimeError("samsa dev did not stop within 30 s of SIGTERM")
        if rc != 0:
            raise RuntimeError(f"samsa dev exited {rc} on SIGTERM")


def produce(conf, topic, values, **extra):
    p = Producer({**conf, **extra})
    errors = []
    for v in values:
        p.produce(topic, v, on_delivery=lambda e, m: errors.append(e) if e else None)
        p.poll(0)
    left = p.flush(30)
    if left or errors:
        raise RuntimeError(f"produce to {topic}: {left} undelivered, errors {errors[:3]}")
    return p


def consume(conf, topic, n, group, isolation="read_uncommitted", timeout=30):
    c = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": isolation})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(got) < n:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise RuntimeError(f"consume {topic}: {m.error()}")
        got.append(m.value())
    if got:
        c.commit(asynchronous=False)
    committed = c.committed(c.assignment(), timeout=10) if got else []
    c.close()
    return got, committed


def kafka_request(bootstrap, api_key, version, body):
    """One request (header v1, non-flexible versions) on a fresh connection; the response body."""
    host, port = bootstrap.rsplit(":", 1)
    client = b"runtime-check"
    msg = struct.pack(">hhih", api_key, version, 7, len(client)) + client + body
    with socket.create_connection((host, int(port)), timeout=15) as s:
        s.sendall(struct.pack(">i", len(msg)) + msg)
        head = b""
        while len(head) < 4:
            head += s.recv(4 - len(head))
        size = struct.unpack(">i", head)[0]
        out = b""
        while len(out) < size:
            chunk = s.recv(size - len(out))
            if not chunk:
                raise RuntimeError("connection closed mid-response")
            out += chunk
    if struct.unpack(">i", out[:4])[0] != 7:
        raise RuntimeError("correlation id mismatch")
    return out[4:]


def kstr(v):
    b = v.encode()
    return struct.pack(">h", len(b)) + b


def alter_client_quota(bootstrap, client_id, key, value):
    """AlterClientQuotas v0 (API 49): one entity (client-id), one op; returns its error code."""
    body = (struct.pack(">i", 1) + struct.pack(">i", 1) + kstr("client-id") + kstr(client_id)
            + struct.pack(">i", 1) + kstr(key) + struct.pack(">d", value) + b"\x00" + b"\x00")
    rsp = kafka_request(bootstrap, 49, 0, body)
    return struct.unpack(">h", rsp[8:10])[0]  # throttle_time_ms, entries count, first error code


def describe_client_quota(bootstrap, client_id):
    """DescribeClientQuotas v0 (API 48), exact match on the client-id; the raw response."""
    body = struct.pack(">i", 1) + kstr("client-id") + struct.pack(">b", 0) + kstr(client_id) + b"\x01"
    return kafka_request(bootstrap, 48, 0, body)


def create_topic(bootstrap, name, partitions=1, rf=1):
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the futures complete
    fs = admin.create_topics([NewTopic(name, partitions, rf)], request_timeout=30)
    for f in fs.values():
        f.result(60)


def four_letter(port, cmd):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(cmd.encode())
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                return out.decode()
            out += b


def kafka_python_admin(bootstrap):
    from kafka.admin import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="runtime-check", request_timeout_ms=30000)


def acl_binding(topic):
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ResourcePattern, ResourceType
    from kafka.admin.acl_resource import ACLResourcePatternType
    return ACL("User:alice", "*", ACLOperation.ALL, ACLPermissionType.ALLOW,
               ResourcePattern(ResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL))


def describe_acls(admin, topic):
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ResourcePatternFilter, ResourceType
    from kafka.admin.acl_resource import ACLResourcePatternType
    acls, err = admin.describe_acls(ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                                              ResourcePatternFilter(ResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL)))
    return acls


def throttled_produce(bootstrap, client_id):
    """Produces ~300 KB as client_id; returns the largest throttle time librdkafka reported."""
    seen = []
    conf = {"bootstrap.servers": bootstrap, "client.id": client_id, "linger.ms": 5, "batch.size": 65536,
            "throttle_cb": lambda ev: seen.append(ev.throttle_time)}
    p = Producer(conf)
    for _ in range(300):
        p.produce("quota-t", b"q" * 1000)
        p.poll(0)
    p.flush(60)
    p.poll(1)
    return max(seen) if seen else 0.0


# ---------------------------------------------------------------- dev: one broker + Keeper, secure
def dev_single(work):
    data = os.path.join(work, "single")
    zk_port, admin_port = free_port(), free_port()
    dev = Dev(data, "--kafka-port", "0", "--zk-port", str(zk_port), "--secure", "--ssl-port", "0",
              "--keeper-override", "admin.enableServer=true", "--keeper-override", f"admin.serverPort={admin_port}",
              "--keeper-override", "admin.serverAddress=127.0.0.1")
    plain = dev.addr()[0]
    ssl = dev.addr("kafka SSL")[0]
    sasl = dev.addr("kafka SASL_SSL")[0]
    time.sleep(0.5)
    ca = dev.value("ssl.ca.location")
    base = {"bootstrap.servers": plain}
    try:
        def codecs():
            for codec in ["gzip", "snappy", "lz4", "zstd"]:
                topic = f"codec-{codec}"
                values = [f"{codec}-{i}-".encode() + b"x" * (i * 37) for i in range(50)]
                produce(base, topic, values, **{"compression.type": codec, "linger.ms": 20})
                got, committed = consume(base, topic, 50, f"g-{codec}")
                if got != values:
                    raise RuntimeError(f"{codec}: consumed {len(got)} records, not the 50 produced")
                if not committed or committed[0].offset != 50:
                    raise RuntimeError(f"{codec}: committed offset {committed}")
            return "gzip/snappy/lz4/zstd, 50 records each, group offsets committed at 50"
        check("dev: compression codecs + consumer group", codecs)

        def transactions():
            create_topic(plain, "tx-t")
            p = Producer({**base, "transactional.id": "tx-1"})
            p.init_transactions(30)
            p.begin_transaction()
            for i in range(5):
                p.produce("tx-t", f"committed-{i}".encode())
            p.commit_transaction(30)
            p.begin_transaction()
            for i in range(5):
                p.produce("tx-t", f"aborted-{i}".encode())
            p.abort_transaction(30)
            got, _ = consume(base, "tx-t", 5, "g-tx", isolation="read_committed", timeout=15)
            if [v.decode() for v in got] != [f"committed-{i}" for i in range(5)]:
                raise RuntimeError(f"read_committed saw {got}")
            return "5 committed seen, 5 aborted not"
        check("dev: transactions", transactions)

        def tls():
            conf = {"bootstrap.servers": ssl, "security.protocol": "SSL", "ssl.ca.location": ca}
            produce(conf, "tls-t", [b"over-tls"] * 10)
            got, _ = consume(conf, "tls-t", 10, "g-tls")
            if len(got) != 10:
                raise RuntimeError(f"consumed {len(got)} of 10 over TLS")
            return "10 records produced and consumed over the SSL listener"
        check("dev: TLS listener", tls)

        def scram_acl():
            create_topic(plain, "acl-t")
            alice = {"bootstrap.servers": sasl, "security.protocol": "SASL_SSL", "ssl.ca.location": ca,
                     "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "alice", "sasl.password": "alice-secret",
                     "message.timeout.ms": 8000}
            try:
                produce(alice, "acl-t", [b"denied"])
                raise RuntimeError("alice produced without an ACL")
            except RuntimeError as e:
                if "AUTHORIZATION" not in str(e).upper():
                    raise
            admin = kafka_python_admin(plain)
            admin.create_acls([acl_binding("acl-t")])
            deadline = time.monotonic() + 15
            while not describe_acls(admin, "acl-t") and time.monotonic() < deadline:
                time.sleep(0.2)
            acls = describe_acls(admin, "acl-t")
            admin.close()
            if len(acls) != 1:
                raise RuntimeError(f"describe_acls: {acls}")
            zk = KazooClient(hosts=f"127.0.0.1:{zk_port}")
            zk.start(15)
            znode = json.loads(zk.get("/kafka-acl/Topic/acl-t")[0])
            zk.stop()
            if znode != {"version": 1, "acls": [{"principal": "User:alice", "permissionType": "Allow", "operation": "All", "host": "*"}]}:
                raise RuntimeError(f"/kafka-acl/Topic/acl-t is {znode}")
            time.sleep(0.5)
            produce(alice, "acl-t", [b"allowed"] * 3)
            got, _ = consume(base, "acl-t", 3, "g-acl")  # (alice has no group ACL; the super user reads)
            if got != [b"allowed"] * 3:
                raise RuntimeError(f"alice consumed {len(got)} of 3")
            return "alice (SCRAM-SHA-512 over SASL_SSL) refused, then allowed by an ACL; znode JSON as upstream"
        check("dev: SASL SCRAM + ACL store", scram_acl)

        def quota():
            create_topic(plain, "quota-t")
            zk = KazooClient(hosts=f"127.0.0.1:{zk_port}")
            zk.start(15)
            zk.ensure_path("/config/clients")
            zk.create("/config/clients/slow", json.dumps({"version": 1, "config": {"producer_byte_rate": "20000"}}).encode())
            zk.create("/config/changes/config_change_", json.dumps({"version": 2, "entity_path": "clients/slow"}).encode(),
                      sequence=True, makepath=True)
            zk.stop()
            time.sleep(1.0)
            t = throttled_produce(plain, "slow")
            if t <= 0:
                raise RuntimeError("no Produce response carried a throttle time")
            return f"client-id quota from /config/clients: producer throttled up to {t:.0f} ms"
        check("dev: client quota (throttle_time_ms)", quota)

        def keeper():
            zk = KazooClient(hosts=f"127.0.0.1:{zk_port}")
            zk.start(15)
            zk.create("/rc/app", b"v1", makepath=True)
            seq = zk.create("/rc/job-", b"", sequence=True, ephemeral=True)
            fired = threading.Event()
            zk.get("/rc/app", watch=lambda ev: fired.set())
            zk.set("/rc/app", b"v2")
            if not fired.wait(10):
                raise RuntimeError("data watch did not fire")
            t = zk.transaction()
            t.create("/rc/t1", b"a")
            t.set_data("/rc/app", b"v3")
            if t.commit() != ["/rc/t1", zk.exists("/rc/app")]:
                pass
            if zk.get("/rc/app")[0] != b"v3" or sorted(zk.get_children("/rc")) != sorted(["app", seq.split("/")[-1], "t1"]):
                raise RuntimeError(f"tree after multi: {zk.get_children('/rc')}")
            if four_letter(zk_port, "ruok") != "imok":
                raise RuntimeError("ruok")
            for w in ["mntr", "srvr", "cons", "wchs", "dump", "envi", "conf", "stat"]:
                if not four_letter(zk_port, w).strip():
                    raise RuntimeError(f"{w} answered nothing")
            if "zk_znode_count" not in four_letter(zk_port, "mntr"):
                raise RuntimeError("mntr has no zk_znode_count")
            commands = json.load(urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/commands", timeout=10))["commands"]
            for c in commands:
                url = f"http://127.0.0.1:{admin_port}{c}"
                if c.endswith("/set_trace_mask"):
                    # upstream's SetTraceMaskCommand needs ?traceMask=<long> (else it answers an error):
                    # set the mask it already has
                    mask = json.load(urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/commands/get_trace_mask", timeout=10))["tracemask"]
                    url += f"?traceMask={mask}"
                body = json.load(urllib.request.urlopen(url, timeout=10))
                if body.get("error") is not None or body.get("command") != c.rsplit("/", 1)[1]:
                    raise RuntimeError(f"{c}: {body}")
            stats = json.load(urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/commands/stats", timeout=10))
            # (the loop above ran stat_reset too, so the server's counters may be 0 again)
            if not stats["connections"] or stats["server_stats"]["server_state"] != "standalone":
                raise RuntimeError(f"stats: {stats}")
            zk.stop()
            return f"kazoo create/ephemeral/sequential/watch/multi, 9 four-letter words, {len(commands)} AdminServer commands as JSON"
        check("dev: Keeper (kazoo, 4lw, AdminServer)", keeper)
    finally:
        dev.stop()


# ---------------------------------------------------------------- dev --standalone: the broker's files
def dev_standalone(work):
    data = os.path.join(work, "standalone")
    port = free_port()
    # --secure: the ACL authorizer is on (PLAINTEXT's ANONYMOUS is a super user)
    dev = Dev(data, "--standalone", "--secure", "--ssl-port", "0", "--kafka-port", str(port))
    bootstrap = dev.addr()[0]
    try:
        create_topic(bootstrap, "files-t", partitions=2)
        produce({"bootstrap.servers": bootstrap}, "files-t", [b"kept"] * 10)
        admin = kafka_python_admin(bootstrap)
        admin.create_acls([acl_binding("files-t")])
        from kafka.admin import ConfigResource, ConfigResourceType
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "files-t", configs={"retention.ms": "123456789"})])
        admin.close()
        if alter_client_quota(bootstrap, "files-app", "producer_byte_rate", 2048.0) != 0:
            raise RuntimeError("AlterClientQuotas failed")
    finally:
        dev.stop()
    files = sorted(f for f in os.listdir(os.path.join(data, "kafka")) if f.endswith(".json"))

    dev = Dev(data, "--standalone", "--secure", "--ssl-port", "0", "--kafka-port", str(port))
    try:
        def reload():
            md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=15)
            if "files-t" not in md.topics or len(md.topics["files-t"].partitions) != 2:
                raise RuntimeError(f"topics after restart: {list(md.topics)}")
            admin = kafka_python_admin(bootstrap)
            acls = describe_acls(admin, "files-t")
            from kafka.admin import ConfigResource, ConfigResourceType
            cfg = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "files-t")])
            admin.close()
            if len(acls) != 1:
                raise RuntimeError(f"ACLs after restart: {acls}")
            if "123456789" not in str(cfg):
                raise RuntimeError("retention.ms not kept across the restart")
            quota = describe_client_quota(bootstrap, "files-app")
            if b"producer_byte_rate" + struct.pack(">d", 2048.0) not in quota:
                raise RuntimeError("the client quota was not kept across the restart")
            got, _ = consume({"bootstrap.servers": bootstrap}, "files-t", 10, "g-files")
            if len(got) != 10:
                raise RuntimeError(f"consumed {len(got)} of 10 after restart")
            return f"topic (2 partitions, retention.ms), ACL, client quota and records read back after a restart from {', '.join(files)}"
        check("dev --standalone: topic metadata + ACL files across a restart", reload)
    finally:
        dev.stop()


# ---------------------------------------------------------------- dev --brokers 3
def dev_cluster(work):
    data = os.path.join(work, "cluster")
    dev = Dev(data, "--brokers", "3", "--kafka-port", "0", "--zk-port", "0", brokers=3)
    try:
        def cluster():
            addrs = dev.addr()
            boot = addrs[1]
            admin = AdminClient({"bootstrap.servers": boot})
            deadline = time.monotonic() + 30
            while len(admin.list_topics(timeout=10).brokers) < 3 and time.monotonic() < deadline:
                time.sleep(0.2)
            create_topic(boot, "rf3", partitions=3, rf=3)
            conf = {"bootstrap.servers": boot}
            values = [f"r-{i}".encode() for i in range(300)]
            produce(conf, "rf3", values, acks="all", **{"compression.type": "zstd"})
            got, _ = consume(conf, "rf3", 300, "g-rf3")
            md = admin.list_topics(timeout=10)
            isr = [len(p.isrs) for p in md.topics["rf3"].partitions.values()]
            if sorted(got) != sorted(values):
                raise RuntimeError(f"consumed {len(got)} of 300")
            if len(md.brokers) != 3 or isr != [3, 3, 3]:
                raise RuntimeError(f"brokers {len(md.brokers)}, ISR sizes {isr}")
            return "3 brokers, 3 partitions x 3 replicas, 300 acks=all records consumed via broker 2, ISR 3/3/3"
        check("dev --brokers 3 (ZooKeeper mode)", cluster)
    finally:
        dev.stop()


work = tempfile.mkdtemp(prefix="samsa-runtime-")
try:
    version = subprocess.run([EXE, "version"], capture_output=True, text=True, timeout=30)
    print(version.stdout.strip())
    for part in (dev_single, dev_standalone, dev_cluster):
        try:
            part(work)
        except Exception as e:  # noqa: BLE001
            failed += 1
            print(f"FAIL {part.__name__}: {type(e).__name__}: {e}", flush=True)
finally:
    shutil.rmtree(work, ignore_errors=True)
print(f"runtime-check: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
