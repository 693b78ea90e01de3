"""Kafka scenarios through kafka-python 2.0.2 (Debian python3-kafka), a pure-Python
client that never uses the flexible encodings and picks its protocol versions by
guessing the broker's release from ApiVersions. It has no idempotent or transactional
producer and no read_committed consumer, so those scenarios are not listed here."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from scenario import ADDR, Fail, Skip, check, eventually, expect_error, main, note, scenario  # noqa: E402
from kafka_common import (BOOTSTRAP_ID, BROKERS, CLUSTER, CODECS, cluster_ctl, coordinator_of, now_ms, payloads,  # noqa: E402
                          replica_assignment, topic)

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka import errors as Errors  # noqa: E402
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic  # noqa: E402
from kafka.structs import OffsetAndMetadata  # noqa: E402

COMMON = {"bootstrap_servers": ADDR, "request_timeout_ms": 15000, "api_version_auto_timeout_ms": 8000}


def admin():
    return KafkaAdminClient(**COMMON)


def create_topic(name, partitions=3, config=None):
    if os.environ.get("COMPAT_DEV_MOCK"):
        # Developing the runner against librdkafka's mock cluster (no CreateTopics; it
        # auto-creates 4-partition topics when asked for their metadata).
        p = producer()
        p.partitions_for(name)
        p.close()
        return name
    a = admin()
    try:
        if CLUSTER:  # replicas on every broker, the bootstrap broker last (compat/lib/cluster.py)
            new = NewTopic(name, num_partitions=-1, replication_factor=-1,
                           replica_assignments=replica_assignment(partitions), topic_configs=config or {})
        else:
            new = NewTopic(name, num_partitions=partitions, replication_factor=1, topic_configs=config or {})
        a.create_topics([new], timeout_ms=10000)
        c = KafkaConsumer(**COMMON)
        try:
            eventually(lambda: c.partitions_for_topic(name) == set(range(partitions)) or
                       (c._client.cluster.request_update() and False),
                       f"topic {name} does not show {partitions} partitions", timeout=10, interval=0.3)
        finally:
            c.close()
    finally:
        a.close()
    return name


def producer(**extra):
    kw = dict(COMMON, linger_ms=5)
    if CLUSTER:
        # kafka-python's default is acks=1: with 3 replicas the high watermark (what a reader and
        # ListOffsets see) may still lag when the produce answers, upstream as much as Samsa.
        kw["acks"] = "all"
    kw.update(extra)
    return KafkaProducer(**kw)


def send_all(p, t, records):
    """records: (key, value, partition, timestamp_ms, headers) -> RecordMetadata list."""
    futures = []
    for key, value, part, ts, headers in records:
        futures.append(p.send(t, value=value, key=key, partition=part, timestamp_ms=ts, headers=headers or []))
    p.flush(15)
    return [f.get(timeout=15) for f in futures]


def consumer(group=None, **extra):
    kw = dict(COMMON, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
              session_timeout_ms=6000, heartbeat_interval_ms=1000, consumer_timeout_ms=1000)
    kw.update(extra)
    return KafkaConsumer(**kw)


def read_partition(t, partition, n, timeout=15):
    c = consumer()
    try:
        tp = TopicPartition(t, partition)
        c.assign([tp])
        c.seek_to_beginning(tp)
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                out.extend(recs)
        return out
    finally:
        c.close()


def produce_consume(codec):
    def run():
        t = create_topic(topic(f"codec-{codec}"), partitions=1)
        vals = payloads(50, codec)
        p = producer(compression_type=None if codec == "none" else codec, batch_size=4096)
        md = send_all(p, t, [(b"k%d" % i, v, 0, None, None) for i, v in enumerate(vals)])
        p.close()
        check(sorted(m.offset for m in md) == list(range(50)), "offsets are not 0..49")
        got = read_partition(t, 0, 50)
        check([r.value for r in got] == vals, f"consumed {len(got)} records; values differ or out of order")
        check([r.key for r in got] == [b"k%d" % i for i in range(50)], "keys differ")
    return run


for _codec in CODECS:
    scenario(f"produce-consume-{_codec}")(produce_consume(_codec))


@scenario("keyed-partitioning")
def keyed_partitioning():
    t = create_topic(topic("keyed"), partitions=3)
    keys = [f"key-{i}".encode() for i in range(12)]
    p = producer()  # kafka-python's default partitioner is murmur2, as Java's
    records = [(k, b"v%d" % j, None, None, None) for j in range(5) for k in keys]
    md = send_all(p, t, records)
    p.close()
    where = {}
    for rec, m in zip(records, md):
        where.setdefault(rec[0], set()).add(m.partition)
    check(all(len(s) == 1 for s in where.values()), "one key went to more than one partition")
    check(len({next(iter(s)) for s in where.values()}) > 1, "12 keys all landed in one partition")
    for part in range(3):
        want = [k for k in keys if where[k] == {part}]
        got = read_partition(t, part, 5 * len(want))
        check(sorted({r.key for r in got}) == sorted(want), f"partition {part} holds keys {sorted({r.key for r in got})}")
        for k in want:
            check([r.value for r in got if r.key == k] == [b"v%d" % j for j in range(5)], f"order of key {k}")


@scenario("partition-ordering")
def partition_ordering():
    t = create_topic(topic("ordering"), partitions=2)
    p = producer(batch_size=512, max_in_flight_requests_per_connection=1)
    vals = [b"%05d" % i for i in range(300)]
    send_all(p, t, [(None, v, 1, None, None) for v in vals])
    p.close()
    got = read_partition(t, 1, 300)
    check([r.value for r in got] == vals, "records of one partition came back out of order")
    check([r.offset for r in got] == list(range(300)), "offsets are not 0..299")


@scenario("record-headers")
def record_headers():
    t = create_topic(topic("headers"), partitions=1)
    hdrs = [("a", b"1"), ("b", b""), ("a", b"2")]
    p = producer()
    send_all(p, t, [(b"k", b"v", 0, None, hdrs), (b"k2", b"v2", 0, None, None)])
    p.close()
    got = read_partition(t, 0, 2)
    check(len(got) == 2 and list(got[0].headers) == hdrs, f"headers {[r.headers for r in got]}")
    check(list(got[1].headers) == [], "record without headers has some")


@scenario("timestamps")
def timestamps():
    t = create_topic(topic("timestamps"), partitions=1)
    base = now_ms() - 3_600_000
    p = producer()
    md = send_all(p, t, [(None, b"t%d" % i, 0, base + i * 1000, None) for i in range(5)])
    p.close()
    got = read_partition(t, 0, 5)
    check([r.timestamp for r in got] == [base + i * 1000 for i in range(5)], f"timestamps {[r.timestamp for r in got]}")
    check(all(r.timestamp_type == 0 for r in got), "timestamp type is not CreateTime")
    check(md[0].timestamp == base, f"produce response timestamp {md[0].timestamp} (CreateTime topics echo the record's)")


@scenario("offset-lookup")
def offset_lookup():
    t = create_topic(topic("offset-lookup"), partitions=1)
    base = now_ms() - 3_600_000
    p = producer()
    send_all(p, t, [(None, b"o%d" % i, 0, base + i * 1000, None) for i in range(10)])
    p.close()
    c = consumer()
    try:
        tp = TopicPartition(t, 0)
        check(c.beginning_offsets([tp])[tp] == 0, "earliest offset")
        check(c.end_offsets([tp])[tp] == 10, f"latest offset {c.end_offsets([tp])[tp]}")
        found = c.offsets_for_times({tp: base + 4500})[tp]
        check(found is not None and found.offset == 5 and found.timestamp == base + 5000, f"offset for time: {found}")
        check(c.offsets_for_times({tp: base + 99_000})[tp] is None, "a time after the last record found an offset")
    finally:
        c.close()


@scenario("consumer-group")
def consumer_group():
    t = create_topic(topic("group"), partitions=3)
    p = producer()
    send_all(p, t, [(b"k%d" % i, b"v%d" % i, i % 3, None, None) for i in range(30)])
    p.close()
    g = topic("group-g")
    c = consumer(group=g, consumer_timeout_ms=15000)
    try:
        c.subscribe([t])
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 30 and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                got.extend(recs)
        check(len(got) == 30, f"group member consumed {len(got)} of 30")
        check(sorted(tp.partition for tp in c.assignment()) == [0, 1, 2], f"assignment {c.assignment()}")
        a = admin()
        try:
            groups = [gid for gid, _ in a.list_consumer_groups()]
            check(g in groups, f"group not listed: {groups[:10]}")
            desc = a.describe_consumer_groups([g])[0]
            note("group", desc.state, desc.protocol_type, desc.protocol, len(desc.members))
            check(desc.state == "Stable" and len(desc.members) == 1, f"describe: {desc.state}, {len(desc.members)} members")
        finally:
            a.close()
    finally:
        c.close()


class Poller:
    """kafka-python joins a group inside poll(), blocking until the join completes, so
    each member of a rebalancing group needs its own thread to keep polling."""
    def __init__(self, c):
        import threading
        self.c = c
        self.stop = False
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while not self.stop:
                self.c.poll(timeout_ms=100)
        except Exception as e:  # noqa: BLE001 - reported by the scenario
            self.error = e

    def partitions(self):
        return {tp.partition for tp in self.c.assignment()}

    def close(self):
        self.stop = True
        self.thread.join(10)
        self.c.close()


@scenario("group-rebalance")
def group_rebalance():
    t = create_topic(topic("rebalance"), partitions=4)
    g = topic("rebalance-g")
    a = consumer(group=g)
    a.subscribe([t])
    pa = Poller(a)
    try:
        eventually(lambda: pa.partitions() == {0, 1, 2, 3}, "first member did not get 4 partitions", timeout=8)
        b = consumer(group=g)
        b.subscribe([t])
        pb = Poller(b)

        def split():
            x, y = pa.partitions(), pb.partitions()
            return x and y and not (x & y) and (x | y) == {0, 1, 2, 3}
        eventually(split, "partitions were not split between the two members", timeout=12)
        pb.close()
        eventually(lambda: pa.partitions() == {0, 1, 2, 3}, "remaining member did not get all partitions back", timeout=8)
        check(pa.error is None and pb.error is None, f"poll failed: {pa.error or pb.error}")
    finally:
        pa.close()


@scenario("offset-commit-fetch")
def offset_commit_fetch():
    t = create_topic(topic("commit"), partitions=2)
    g = topic("commit-g")
    c = consumer(group=g)
    try:
        t0, t1 = TopicPartition(t, 0), TopicPartition(t, 1)
        c.commit({t0: OffsetAndMetadata(7, "seven"), t1: OffsetAndMetadata(3, "")})
        check((c.committed(t0), c.committed(t1)) == (7, 3), f"committed {(c.committed(t0), c.committed(t1))}")
    finally:
        c.close()
    a = admin()
    try:
        offs = a.list_consumer_group_offsets(g)
        check({tp.partition: om.offset for tp, om in offs.items()} == {0: 7, 1: 3}, f"group offsets {offs}")
        check(offs[TopicPartition(t, 0)].metadata == "seven", f"commit metadata {offs[TopicPartition(t, 0)].metadata!r}")
    finally:
        a.close()


@scenario("admin-create-topic")
def admin_create_topic():
    t = create_topic(topic("create"), partitions=5, config={"retention.ms": "3600000"})
    a = admin()
    try:
        expect_error(Errors.TopicAlreadyExistsError,
                     lambda: a.create_topics([NewTopic(t, 1, 1)], timeout_ms=10000), "creating an existing topic")
        expect_error(Errors.InvalidReplicationFactorError,
                     lambda: a.create_topics([NewTopic(topic("bad-rf"), 1, BROKERS + 1)], timeout_ms=10000),
                     f"replication factor {BROKERS + 1} on {BROKERS} broker(s)")
        expect_error(Errors.InvalidTopicError,
                     lambda: a.create_topics([NewTopic("bad/name", 1, 1)], timeout_ms=10000), "an invalid topic name")
    finally:
        a.close()


@scenario("admin-delete-topic")
def admin_delete_topic():
    t = create_topic(topic("delete"), partitions=1)
    a = admin()
    try:
        a.delete_topics([t], timeout_ms=10000)
        eventually(lambda: t not in a.list_topics(), "deleted topic still listed", timeout=10)
        expect_error(Errors.UnknownTopicOrPartitionError, lambda: a.delete_topics([topic("never-existed")], timeout_ms=10000),
                     "deleting a missing topic")
    finally:
        a.close()


@scenario("admin-describe-cluster")
def admin_describe_cluster():
    a = admin()
    try:
        d = a.describe_cluster()
        note("cluster keys", sorted(d.keys()))
        check(len(d["brokers"]) == BROKERS, f"{len(d['brokers'])} brokers, want {BROKERS}")
        check(d["controller_id"] in [b["node_id"] for b in d["brokers"]], f"controller {d['controller_id']} not a broker")
        check(d.get("cluster_id"), "no cluster id")
    finally:
        a.close()


def _configs(resp):
    """{name: (value, is_default)} from a DescribeConfigs response's first resource."""
    res = resp.resources[0]
    check(res[0] == 0, f"describe configs error {res[0]} {res[1]}")
    out = {}
    for entry in res[4]:
        name, value, _ro = entry[0], entry[1], entry[2]
        is_default = entry[3] if resp.API_VERSION == 0 else entry[3] == 5  # v1+: config_source 5 = DEFAULT_CONFIG
        out[name] = (value, is_default)
    return out


@scenario("admin-describe-configs")
def admin_describe_configs():
    t = create_topic(topic("describe-configs"), partitions=1, config={"cleanup.policy": "compact"})
    a = admin()
    try:
        cfg = _configs(a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t)])[0])
        check(cfg["cleanup.policy"][0] == "compact", f"cleanup.policy {cfg.get('cleanup.policy')}")
        check("retention.ms" in cfg and cfg["retention.ms"][1], f"retention.ms {cfg.get('retention.ms')} missing or not default")
        broker = a.describe_cluster()["brokers"][0]["node_id"]
        bcfg = _configs(a.describe_configs([ConfigResource(ConfigResourceType.BROKER, str(broker))])[0])
        check("log.retention.hours" in bcfg or "log.retention.ms" in bcfg, "broker configs lack log retention")
    finally:
        a.close()


@scenario("admin-alter-configs")
def admin_alter_configs():
    t = create_topic(topic("alter-configs"), partitions=1)
    a = admin()
    try:
        resp = a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, t, configs={"retention.ms": "123456"})])
        check(resp.resources[0][0] == 0, f"alter configs error {resp.resources[0]}")
        cfg = _configs(a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t)])[0])
        check(cfg["retention.ms"] == ("123456", False), f"retention.ms after alter {cfg['retention.ms']}")
        resp = a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, t, configs={"no.such.config": "1"})])
        check(resp.resources[0][0] == Errors.InvalidConfigurationError.errno, f"unknown key answered {resp.resources[0][:2]}")
    finally:
        a.close()


@scenario("admin-create-partitions")
def admin_create_partitions():
    t = create_topic(topic("add-partitions"), partitions=2)
    a = admin()
    try:
        grow = NewPartitions(5, [r for _, r in sorted(replica_assignment(5, first=2).items())]) if CLUSTER else NewPartitions(5)
        a.create_partitions({t: grow}, timeout_ms=10000)
        expect_error(Errors.InvalidPartitionsError, lambda: a.create_partitions({t: NewPartitions(3)}, timeout_ms=10000),
                     "shrinking the partition count")
    finally:
        a.close()
    c = consumer()
    try:
        eventually(lambda: (c._client.cluster.request_update(), c.partitions_for_topic(t) == set(range(5)))[1],
                   "topic did not grow to 5 partitions", timeout=10, interval=0.5)
    finally:
        c.close()


@scenario("compaction")
def compaction():
    t = create_topic(topic("compacted"), partitions=1, config={"cleanup.policy": "compact"})
    p = producer(retries=0)
    send_all(p, t, [(b"a", b"1", 0, None, None), (b"a", b"2", 0, None, None), (b"b", None, 0, None, None)])
    fut = p.send(t, value=b"no key", partition=0)
    try:
        fut.get(timeout=10)
        raise Fail("a record without a key was accepted by a compacted topic")
    except Errors.KafkaError as e:
        note("keyless record error", type(e).__name__)
        # Upstream's LogValidator refuses it with INVALID_RECORD (87) since Kafka 2.4 (KIP-467);
        # kafka-python 2.0.2 has no class for code 87 and reports UnknownError. Brokers before
        # 2.4 answered CORRUPT_MESSAGE (CorruptRecordException).
        check(isinstance(e, (Errors.CorruptRecordException, Errors.UnknownError)),
              f"keyless record refused with {type(e).__name__}, want UnknownError (INVALID_RECORD, 87) or CorruptRecordException")
    finally:
        p.close()
    got = read_partition(t, 0, 3)
    check([(r.key, r.value) for r in got][:3] == [(b"a", b"1"), (b"a", b"2"), (b"b", None)], "keyed records and tombstone")


def _consume_all(c, n, timeout=20):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        for recs in c.poll(timeout_ms=500).values():
            got.extend(recs)
    return got


def _group_offsets(a, g):
    return {tp.partition: om.offset for tp, om in a.list_consumer_group_offsets(g).items()}


@scenario("group-via-non-coordinator")
def group_via_non_coordinator():
    # On the cluster target the bootstrap broker is not the group's coordinator (the harness
    # checks it), so join, commit, describe and offset fetch all go through FindCoordinator.
    t = create_topic(topic("via-noncoord"), partitions=2)
    p = producer()
    send_all(p, t, [(None, b"v%d" % i, i % 2, None, None) for i in range(20)])
    p.close()
    g = topic("via-noncoord-g")
    c = consumer(group=g)
    a = admin()
    try:
        c.subscribe([t])
        got = _consume_all(c, 20)
        check(len(got) == 20, f"group member consumed {len(got)} of 20")
        c.commit()
        desc = a.describe_consumer_groups([g])[0]
        check(desc.state == "Stable" and len(desc.members) == 1, f"describe: {desc.state}, {len(desc.members)} members")
        offs = _group_offsets(a, g)
        check(offs == {0: 10, 1: 10}, f"committed offsets {offs}, want 10 and 10")
        if CLUSTER:
            coord = coordinator_of(g)
            note("coordinator is the bootstrap broker", coord == BOOTSTRAP_ID)
            check(coord != BOOTSTRAP_ID, f"the bootstrap broker {BOOTSTRAP_ID} coordinates the group")
    finally:
        c.close()
        a.close()


@scenario("admin-describe-groups")
def admin_describe_groups():
    t = create_topic(topic("describe-groups"), partitions=2)
    g = topic("describe-groups-g")
    c = consumer(group=g, client_id="compat-describer")
    c.subscribe([t])
    pc = Poller(c)
    a = admin()
    try:
        eventually(lambda: pc.partitions() == {0, 1}, "the member did not get both partitions", timeout=10)
        desc = a.describe_consumer_groups([g])[0]
        note("describe", desc.state, desc.protocol_type, desc.protocol, len(desc.members))
        check((desc.state, desc.protocol_type) == ("Stable", "consumer"), f"state {desc.state}, protocol type {desc.protocol_type}")
        check(desc.protocol == "range", f"protocol {desc.protocol} (kafka-python's default assignor first: range)")
        check(len(desc.members) == 1 and desc.members[0].client_id == "compat-describer", f"members {desc.members}")
        assignment = desc.members[0].member_assignment
        parts = {p for tp, ps in getattr(assignment, "assignment", []) if tp == t for p in ps}
        check(parts == {0, 1}, f"member assignment {assignment}")
        missing = a.describe_consumer_groups([topic("no-such-group")])[0]
        check(missing.state == "Dead" and not missing.members, f"an unknown group: {missing.state}, {missing.members}")
    finally:
        pc.close()
        a.close()


@scenario("admin-list-group-offsets")
def admin_list_group_offsets():
    t = create_topic(topic("list-offsets"), partitions=3)
    g = topic("list-offsets-g")
    c = consumer(group=g)
    try:
        c.commit({TopicPartition(t, 0): OffsetAndMetadata(5, "m0"), TopicPartition(t, 2): OffsetAndMetadata(9, "")})
    finally:
        c.close()
    a = admin()
    try:
        offs = a.list_consumer_group_offsets(g)
        check({tp.partition: om.offset for tp, om in offs.items()} == {0: 5, 2: 9}, f"all offsets {offs}")
        check(offs[TopicPartition(t, 0)].metadata == "m0", "commit metadata")
        one = a.list_consumer_group_offsets(g, partitions=[TopicPartition(t, 2), TopicPartition(t, 1)])
        got = {tp.partition: om.offset for tp, om in one.items()}
        check(got.get(2) == 9 and got.get(1, -1) == -1, f"offsets of partitions 2 and 1: {got} (1 has none: -1)")
        check(a.list_consumer_group_offsets(topic("no-such-group")) == {}, "an unknown group has offsets")
    finally:
        a.close()


class Member:
    """A group member that consumes and commits after every batch on its own thread, and
    keeps going through errors (the coordinator may be gone for a while)."""
    def __init__(self, g, t, seen):
        import threading
        self.c = consumer(group=g, session_timeout_ms=6000, heartbeat_interval_ms=500, retry_backoff_ms=200)
        self.c.subscribe([t])
        self.seen = seen
        self.errors = []
        self.commits = 0
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                batch = self.c.poll(timeout_ms=200)
                for recs in batch.values():
                    for r in recs:
                        self.seen.add(r.value)
                if batch:
                    self.c.commit()
                    self.commits += 1
            except Exception as e:  # noqa: BLE001 - a failover shows up as errors; the scenario judges the outcome
                self.errors.append(f"{type(e).__name__}: {e}"[:120])
                time.sleep(0.2)

    def close(self):
        self.stop = True
        self.thread.join(10)
        self.c.close()


@scenario("coordinator-failover")
def coordinator_failover():
    if not CLUSTER:
        raise Skip("needs the cluster target (a coordinator to kill)")
    t = create_topic(topic("failover"), partitions=4)
    g = topic("failover-g")
    p = producer(acks="all", retries=20, retry_backoff_ms=300)
    first = [b"a%02d" % i for i in range(40)]
    send_all(p, t, [(None, v, i % 4, None, None) for i, v in enumerate(first)])
    seen = set()
    members = [Member(g, t, seen), Member(g, t, seen)]
    a = admin()
    killed = None
    try:
        eventually(lambda: _group_offsets(a, g) == {0: 10, 1: 10, 2: 10, 3: 10} and set(first) <= seen,
                   "two members did not consume and commit the first 40 records", timeout=15, interval=0.3)
        before = _group_offsets(a, g)
        killed = coordinator_of(g)
        check(killed != BOOTSTRAP_ID, f"the bootstrap broker {BOOTSTRAP_ID} coordinates the group")
        cluster_ctl("kill", str(killed))
        second = [b"b%02d" % i for i in range(40)]
        send_all(p, t, [(None, v, i % 4, None, None) for i, v in enumerate(second)])
        lowest = {}
        admins = [a]

        def bounded_offsets():
            # kafka-python 2.0.2's admin client waits for a connection to the node it picked with
            # no deadline (KafkaAdminClient._send_request_to_node polls until ready): when it picks
            # the killed broker it spins until that broker is back, whatever the other brokers
            # answer. Such a call is abandoned after 5 s and a new admin client bootstraps again.
            import threading
            out = {}

            def work():
                try:
                    out["offsets"] = _group_offsets(admins[-1], g)
                except Exception as e:  # noqa: BLE001 - reported by the caller
                    out["error"] = e
            th = threading.Thread(target=work, daemon=True)
            th.start()
            th.join(5)
            if th.is_alive():
                print("  list offsets: the admin client is stuck connecting to a dead broker; a new one", flush=True)
                admins.append(admin())
                return None
            if "error" in out:
                raise out["error"]
            return out["offsets"]

        def all_committed():
            try:
                offs = bounded_offsets()
            except Exception as e:  # noqa: BLE001 - the coordinator may be moving
                print(f"  list offsets: {type(e).__name__}", flush=True)
                return False
            if offs is None:
                return False
            for part, off in offs.items():
                lowest[part] = min(lowest.get(part, off), off)
            return offs == {0: 20, 1: 20, 2: 20, 3: 20} and set(second) <= seen
        eventually(all_committed, f"after killing coordinator {killed}, the group did not consume and commit the next 40 "
                                  f"(consumed {len(seen)} distinct; member errors {[m.errors[-1:] for m in members]})",
                   timeout=30, interval=0.5)
        check(all(lowest[p_] >= before[p_] for p_ in before), f"a committed offset went back: before {before}, lowest after {lowest}")
        note("commits", sum(m.commits for m in members), "errors", sum(len(m.errors) for m in members))
    finally:
        for m in members:
            m.close()
        for one in locals().get("admins", [a]):
            try:
                one.close()
            except Exception:  # noqa: BLE001 - an abandoned admin may still be polling on its thread
                pass
        p.close()
        if killed is not None:
            cluster_ctl("start", str(killed))


# ---------------------------------------------------------------- security (compat/lib/security.py)
import ssl  # noqa: E402

import security  # noqa: E402
from security import CA_FILE, OTHER_CA_FILE, SASL_SSL_ADDR, SSL_ADDR  # noqa: E402


class _UnsecuredToken:
    """kafka-python's OAUTHBEARER token provider shape (an object with token())."""
    def __init__(self, subject):
        self.subject = subject

    def token(self):
        return security.unsecured_jwt(self.subject)

    def extensions(self):
        return {}


def secured(addr, protocol, mechanism=None, user=None, password=None, ca=None, **extra):
    kw = {"bootstrap_servers": addr, "security_protocol": protocol, "ssl_cafile": ca or CA_FILE,
          "request_timeout_ms": 15000, "api_version_auto_timeout_ms": 8000}
    if mechanism == "OAUTHBEARER":
        kw.update(sasl_mechanism=mechanism, sasl_oauth_token_provider=_UnsecuredToken(user))
    elif mechanism:
        kw.update(sasl_mechanism=mechanism, sasl_plain_username=user, sasl_plain_password=password)
    kw.update(extra)
    return kw


def secured_round_trip(kw, name, n=20):
    t = create_topic(topic(name), partitions=1)
    p = KafkaProducer(linger_ms=5, **kw)
    vals = [b"%s-%d" % (name.encode(), i) for i in range(n)]
    futures = [p.send(t, value=v, partition=0) for v in vals]
    p.flush(15)
    md = [f.get(timeout=15) for f in futures]
    p.close()
    check(len(md) == n, f"{len(md)} of {n} acknowledged")
    c = KafkaConsumer(consumer_timeout_ms=1000, **kw)
    try:
        tp = TopicPartition(t, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        out = []
        deadline = time.monotonic() + 15
        while len(out) < n and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                out.extend(r.value for r in recs)
    finally:
        c.close()
    check(out == vals, f"read back {len(out)} of {n} records, or in another order")


@scenario("sec-tls-produce-consume")
def sec_tls_produce_consume():
    security.require(tls=True)
    secured_round_trip(secured(SSL_ADDR, "SSL"), "sec-tls")


@scenario("sec-tls-untrusted-ca")
def sec_tls_untrusted_ca():
    security.require(tls=True)
    try:
        a = KafkaAdminClient(**secured(SSL_ADDR, "SSL", ca=OTHER_CA_FILE, request_timeout_ms=6000,
                                       api_version_auto_timeout_ms=4000))
        a.close()
    except (Errors.NoBrokersAvailable, ssl.SSLError) as e:
        # kafka-python 2.0.2 raises the handshake's SSLCertVerificationError from the bootstrap.
        print(f"  {type(e).__name__}: {e}", flush=True)
        note("untrusted CA refused")
        return
    raise Fail("connected although the broker's CA is not trusted")


def _sasl(mechanism):
    def run():
        security.require(sasl=True)
        secured_round_trip(secured(SASL_SSL_ADDR, "SASL_SSL", mechanism, security.ADMIN_USER, security.ADMIN_PASSWORD),
                           f"sec-{mechanism.lower()}")
    return run


for _mech in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]:
    scenario(f"sec-sasl-{_mech.lower()}")(_sasl(_mech))


@scenario("sec-sasl-wrong-password")
def sec_sasl_wrong_password():
    security.require(sasl=True)
    for mech in ["PLAIN", "SCRAM-SHA-512"]:
        try:
            # kafka-python surfaces the failed authentication as the bootstrap failing.
            a = KafkaAdminClient(**secured(SASL_SSL_ADDR, "SASL_SSL", mech, security.USER, "not-" + security.PASSWORD,
                                           request_timeout_ms=6000, api_version_auto_timeout_ms=4000))
            a.close()
            raise Fail(f"{mech}: connected with a wrong password")
        except (Errors.NoBrokersAvailable, Errors.AuthenticationFailedError) as e:
            note(mech, "wrong password refused")
            print(f"  {mech}: {type(e).__name__}: {e}", flush=True)


@scenario("sec-acl-topic")
def sec_acl_topic():
    security.require(sasl=True)
    t = create_topic(topic("sec-acl"), partitions=1)
    kw = secured(SASL_SSL_ADDR, "SASL_SSL", "SCRAM-SHA-512", security.USER, security.PASSWORD)
    try:
        # kafka-python 2.0.2 keeps asking for the metadata of a topic it may not describe until
        # max_block_ms and then times out, so the write fails as a KafkaTimeoutError; the broker's
        # answer shows in the admin client's describe_topics as the user would look it up.
        p = KafkaProducer(max_block_ms=6000, retries=0, **kw)
        try:
            expect_error((Errors.TopicAuthorizationFailedError, Errors.KafkaTimeoutError),
                         lambda: p.send(t, b"denied").get(timeout=10), "write without an ACL")
        finally:
            p.close()
        a = KafkaAdminClient(**kw)
        try:
            described = a.describe_topics([t])
        finally:
            a.close()
        check([d["error_code"] for d in described] == [Errors.TopicAuthorizationFailedError.errno],
              f"describe_topics as {security.USER}: {described}")
        note("write without ACL: TOPIC_AUTHORIZATION_FAILED")
        security.grant(security.USER, "TOPIC", t, ["WRITE"])

        def written():
            q = KafkaProducer(max_block_ms=5000, retries=0, **kw)
            try:
                q.send(t, b"allowed", partition=0).get(timeout=8)
                return True
            except (Errors.TopicAuthorizationFailedError, Errors.KafkaTimeoutError):
                return False
            finally:
                q.close()
        eventually(written, "after granting WRITE the write is still refused", timeout=20, interval=0.5)
        group = f"{t}-g"
        c = KafkaConsumer(t, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False, **kw)
        try:
            expect_error((Errors.GroupAuthorizationFailedError, Errors.TopicAuthorizationFailedError),
                         lambda: [c.poll(timeout_ms=500) for _ in range(20)], "read without READ ACLs")
        finally:
            c.close()
        security.grant(security.USER, "TOPIC", t, ["READ"])
        security.grant(security.USER, "GROUP", group, ["READ"])

        def consumed():
            c2 = KafkaConsumer(t, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
                               consumer_timeout_ms=3000, **kw)
            try:
                return any(r.value == b"allowed" for r in c2)
            except (Errors.GroupAuthorizationFailedError, Errors.TopicAuthorizationFailedError):
                return False
            finally:
                c2.close()
        eventually(consumed, "after granting READ the record was not consumed", timeout=25, interval=0.5)
    finally:
        security.revoke_all(security.USER, t)


if __name__ == "__main__":
    sys.exit(main())
