"""Kafka scenarios through confluent-kafka-python 1.7.0 (Debian python3-confluent-kafka)
on Debian's librdkafka 2.0.2. It speaks the flexible (KIP-482) encodings, so it checks
the broker's compact/tagged-field paths. No list/describe of consumer groups' offsets in
this version's admin API, so group checks go through the consumer."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from scenario import ADDR, Fail, Skip, check, eventually, main, note, scenario  # noqa: E402
from kafka_common import (BOOTSTRAP_ID, BROKERS, CLUSTER, CODECS, cluster_ctl, coordinator_of, now_ms, payloads,  # noqa: E402
                          replica_assignment, topic)

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic  # noqa: E402

BASE = {"bootstrap.servers": ADDR, "socket.timeout.ms": 10000, "api.version.request.timeout.ms": 5000,
        "broker.address.family": "v4"}


def admin():
    return AdminClient(dict(BASE))


def wait_futures(fs, what):
    for k, f in fs.items():
        try:
            f.result(timeout=15)
        except KafkaException as e:
            raise Fail(f"{what} {k}: {e.args[0].str() if e.args else e}")


def create_topic(name, partitions=3, config=None):
    a = admin()
    if os.environ.get("COMPAT_DEV_MOCK"):
        # Developing the runner against librdkafka's mock cluster, which has no
        # CreateTopics: it auto-creates topics (4 partitions) on first metadata request.
        producer().list_topics(topic=name, timeout=5)
        return name
    if CLUSTER:  # replicas on every broker, the bootstrap broker last (compat/lib/cluster.py)
        new = NewTopic(name, num_partitions=partitions, replication_factor=-1,
                       replica_assignment=[r for _, r in sorted(replica_assignment(partitions).items())], config=config or {})
    else:
        new = NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})
    wait_futures(a.create_topics([new], operation_timeout=10), "create topic")

    def ready():
        md = a.list_topics(topic=name, timeout=5).topics.get(name)
        return md is not None and md.error is None and len(md.partitions) == partitions and \
            all(p.leader >= 0 for p in md.partitions.values())
    eventually(ready, f"topic {name} has no leaders for its {partitions} partitions", timeout=10)
    return name


def producer(**extra):
    conf = dict(BASE, **{"linger.ms": 5, "partitioner": "murmur2_random"})
    conf.update(extra)
    return Producer(conf)


def produce_all(p, t, records):
    """records: list of (key, value, partition|None, timestamp|None, headers|None);
    returns delivery reports as (partition, offset, key, value)."""
    reports = []
    errors = []

    def cb(err, msg):
        if err is not None:
            errors.append(err)
        else:
            reports.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
    for key, value, part, ts, headers in records:
        kw = {"key": key, "value": value, "on_delivery": cb}
        if part is not None:
            kw["partition"] = part
        if ts is not None:
            kw["timestamp"] = ts
        if headers is not None:
            kw["headers"] = headers
        p.produce(t, **kw)
        p.poll(0)
    left = p.flush(15)
    check(left == 0, f"{left} records not delivered within 15s")
    check(not errors, f"delivery failed: {errors[0].str() if errors else ''}")
    return reports


def consumer(group=None, **extra):
    conf = dict(BASE, **{"group.id": group or f"{topic('g')}-{os.urandom(3).hex()}", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000})
    conf.update(extra)
    return Consumer(conf)


def consume_n(c, n, timeout=15.0):
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise Fail(f"consume error: {m.error().str()}")
        out.append(m)
    return out


def read_partition(t, partition, n, **extra):
    c = consumer(**extra)
    try:
        c.assign([TopicPartition(t, partition, 0)])
        return consume_n(c, n)
    finally:
        c.close()


def produce_consume(codec):
    def run():
        t = create_topic(topic(f"codec-{codec}"), partitions=1)
        vals = payloads(50, codec)
        p = producer(**{"compression.type": codec, "batch.num.messages": 20})
        reports = produce_all(p, t, [(b"k%d" % i, v, 0, None, None) for i, v in enumerate(vals)])
        check(sorted(r[1] for r in reports) == list(range(50)), f"offsets {sorted(r[1] for r in reports)[:10]}...")
        got = read_partition(t, 0, 50)
        check([m.value() for m in got] == vals, f"consumed {len(got)} records, values differ or out of order")
        check([m.offset() for m in got] == list(range(50)), "offsets not contiguous from 0")
        check([m.key() for m in got] == [b"k%d" % i for i in range(50)], "keys differ")
    return run


for _codec in CODECS:
    scenario(f"produce-consume-{_codec}")(produce_consume(_codec))


@scenario("keyed-partitioning")
def keyed_partitioning():
    t = create_topic(topic("keyed"), partitions=3)
    keys = [f"key-{i}".encode() for i in range(12)]
    p = producer()
    reports = produce_all(p, t, [(k, b"v%d" % j, None, None, None) for j in range(5) for k in keys])
    where = {}
    for part, off, k, v in reports:
        where.setdefault(k, set()).add(part)
    check(all(len(s) == 1 for s in where.values()), "one key went to more than one partition")
    check(len({next(iter(s)) for s in where.values()}) > 1, "12 keys all landed in one partition")
    for part in range(3):
        want = [(k, v) for (pp, off, k, v) in sorted(reports, key=lambda r: r[1]) if pp == part]
        got = read_partition(t, part, len(want))
        check([(m.key(), m.value()) for m in got] == want, f"partition {part} content differs from what was produced")


@scenario("partition-ordering")
def partition_ordering():
    t = create_topic(topic("ordering"), partitions=2)
    p = producer(**{"max.in.flight.requests.per.connection": 5, "batch.num.messages": 7})
    vals = [b"%05d" % i for i in range(300)]
    produce_all(p, t, [(None, v, 1, None, None) for v in vals])
    got = read_partition(t, 1, 300)
    check([m.value() for m in got] == vals, "records of one partition came back out of order")
    check([m.offset() for m in got] == list(range(300)), "offsets are not 0..299")


@scenario("record-headers")
def record_headers():
    t = create_topic(topic("headers"), partitions=1)
    hdrs = [("a", b"1"), ("b", b""), ("a", b"2"), ("utf8-\u00e9", b"\x00\xff")]
    produce_all(producer(), t, [(b"k", b"v", 0, None, hdrs), (b"k2", b"v2", 0, None, None)])
    got = read_partition(t, 0, 2)
    check(len(got) == 2, f"consumed {len(got)}")
    check(got[0].headers() == hdrs, f"headers {got[0].headers()}")
    check(not got[1].headers(), f"record without headers has {got[1].headers()}")


@scenario("timestamps")
def timestamps():
    t = create_topic(topic("timestamps"), partitions=1)
    base = now_ms() - 3_600_000
    produce_all(producer(), t, [(None, b"t%d" % i, 0, base + i * 1000, None) for i in range(5)])
    got = read_partition(t, 0, 5)
    ts = [m.timestamp() for m in got]
    check(all(kind == 1 for kind, _ in ts), f"timestamp types {ts} (1 = CreateTime)")
    check([v for _, v in ts] == [base + i * 1000 for i in range(5)], f"timestamps {ts}")


@scenario("offset-lookup")
def offset_lookup():
    t = create_topic(topic("offset-lookup"), partitions=1)
    base = now_ms() - 3_600_000
    produce_all(producer(), t, [(None, b"o%d" % i, 0, base + i * 1000, None) for i in range(10)])
    c = consumer()
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(t, 0), timeout=10)
        check((lo, hi) == (0, 10), f"watermarks {(lo, hi)}")
        found = c.offsets_for_times([TopicPartition(t, 0, base + 4500)], timeout=10)
        check(found[0].offset == 5, f"offset for time base+4.5s is {found[0].offset}, want 5")
        found = c.offsets_for_times([TopicPartition(t, 0, base + 99_000)], timeout=10)
        check(found[0].offset in (-1, 10), f"offset after the last timestamp is {found[0].offset}, want end")
    finally:
        c.close()


@scenario("consumer-group")
def consumer_group():
    t = create_topic(topic("group"), partitions=3)
    produce_all(producer(), t, [(b"k%d" % i, b"v%d" % i, i % 3, None, None) for i in range(30)])
    g = topic("group-g")
    c = consumer(group=g)
    try:
        c.subscribe([t])
        got = consume_n(c, 30, timeout=20)
        check(len(got) == 30, f"group member consumed {len(got)} of 30")
        check(sorted(tp.partition for tp in c.assignment()) == [0, 1, 2], f"assignment {c.assignment()}")
    finally:
        c.close()
    groups = admin().list_groups(timeout=10)
    check(any(gr.id == g for gr in groups), f"group {g} not listed")


@scenario("group-rebalance")
def group_rebalance():
    t = create_topic(topic("rebalance"), partitions=4)
    g = topic("rebalance-g")
    a = consumer(group=g)
    b = consumer(group=g)
    try:
        a.subscribe([t])
        eventually(lambda: (a.poll(0.2), len(a.assignment()) == 4)[1], "first member did not get all 4 partitions", timeout=15)
        b.subscribe([t])

        def split():
            a.poll(0.1)
            b.poll(0.1)
            pa = {tp.partition for tp in a.assignment()}
            pb = {tp.partition for tp in b.assignment()}
            return pa and pb and not (pa & pb) and (pa | pb) == {0, 1, 2, 3}
        eventually(split, "partitions were not split between two members", timeout=15, interval=0)
        b.close()
        eventually(lambda: (a.poll(0.2), len(a.assignment()) == 4)[1], "remaining member did not get all partitions back", timeout=15)
    finally:
        a.close()


@scenario("offset-commit-fetch")
def offset_commit_fetch():
    t = create_topic(topic("commit"), partitions=2)
    g = topic("commit-g")
    c = consumer(group=g)
    try:
        c.commit(offsets=[TopicPartition(t, 0, 7), TopicPartition(t, 1, 3)], asynchronous=False)
        got = c.committed([TopicPartition(t, 0), TopicPartition(t, 1)], timeout=10)
        check([(tp.partition, tp.offset) for tp in got] == [(0, 7), (1, 3)], f"committed {got}")
    finally:
        c.close()
    c2 = consumer(group=g)
    try:
        got = c2.committed([TopicPartition(t, 0), TopicPartition(t, 1)], timeout=10)
        check([tp.offset for tp in got] == [7, 3], f"a new member of the group sees {got}")
    finally:
        c2.close()


@scenario("admin-create-topic")
def admin_create_topic():
    t = create_topic(topic("create"), partitions=5, config={"retention.ms": "3600000"})
    md = admin().list_topics(topic=t, timeout=10).topics[t]
    check(len(md.partitions) == 5, f"{len(md.partitions)} partitions")
    a = admin()
    fs = a.create_topics([NewTopic(t, num_partitions=1, replication_factor=1)])
    try:
        fs[t].result(timeout=10)
        raise Fail("creating an existing topic succeeded")
    except KafkaException as e:
        check(e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, f"error {e.args[0].str()}")
    fs = a.create_topics([NewTopic(topic("bad-rf"), num_partitions=1, replication_factor=BROKERS + 1)])
    try:
        fs[topic("bad-rf")].result(timeout=10)
        raise Fail(f"replication factor {BROKERS + 1} on {BROKERS} broker(s) succeeded")
    except KafkaException as e:
        check(e.args[0].code() == KafkaError.INVALID_REPLICATION_FACTOR, f"error {e.args[0].str()}")


@scenario("admin-delete-topic")
def admin_delete_topic():
    t = create_topic(topic("delete"), partitions=1)
    a = admin()
    wait_futures(a.delete_topics([t], operation_timeout=10), "delete topic")
    eventually(lambda: t not in a.list_topics(timeout=5).topics, "deleted topic still listed", timeout=10)
    fs = a.delete_topics([topic("never-existed")], operation_timeout=10)
    try:
        fs[topic("never-existed")].result(timeout=10)
        raise Fail("deleting a missing topic succeeded")
    except KafkaException as e:
        check(e.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, f"error {e.args[0].str()}")


@scenario("admin-describe-cluster")
def admin_describe_cluster():
    md = admin().list_topics(timeout=10)
    check(len(md.brokers) == BROKERS, f"{len(md.brokers)} brokers in metadata, want {BROKERS}")
    check(md.controller_id in md.brokers, f"controller {md.controller_id} not among brokers {list(md.brokers)}")
    b = next(iter(md.brokers.values()))
    check(b.host and b.port > 0, f"broker {b}")


@scenario("admin-describe-configs")
def admin_describe_configs():
    t = create_topic(topic("describe-configs"), partitions=1, config={"cleanup.policy": "compact"})
    a = admin()  # keep the handle alive while its futures are pending
    fs = a.describe_configs([ConfigResource("topic", t)])
    cfg = list(fs.values())[0].result(timeout=10)
    check(cfg["cleanup.policy"].value == "compact", f"cleanup.policy {cfg['cleanup.policy'].value}")
    check("retention.ms" in cfg and cfg["retention.ms"].is_default, "retention.ms missing or not marked default")
    md = a.list_topics(timeout=10)
    fs = a.describe_configs([ConfigResource("broker", str(next(iter(md.brokers))))])
    bcfg = list(fs.values())[0].result(timeout=10)
    check("log.retention.hours" in bcfg or "log.retention.ms" in bcfg, "broker config lacks log retention keys")


@scenario("admin-alter-configs")
def admin_alter_configs():
    t = create_topic(topic("alter-configs"), partitions=1)
    a = admin()
    wait_futures(a.alter_configs([ConfigResource("topic", t, set_config={"retention.ms": "123456", "max.message.bytes": "200000"})]),
                 "alter configs")
    cfg = list(a.describe_configs([ConfigResource("topic", t)]).values())[0].result(timeout=10)
    check(cfg["retention.ms"].value == "123456" and not cfg["retention.ms"].is_default, f"retention.ms {cfg['retention.ms']}")
    check(cfg["max.message.bytes"].value == "200000", f"max.message.bytes {cfg['max.message.bytes']}")
    fs = a.alter_configs([ConfigResource("topic", t, set_config={"no.such.config": "1"})])
    try:
        list(fs.values())[0].result(timeout=10)
        raise Fail("altering an unknown config key succeeded")
    except KafkaException as e:
        check(e.args[0].code() == KafkaError.INVALID_CONFIG, f"error {e.args[0].str()}")


@scenario("admin-create-partitions")
def admin_create_partitions():
    t = create_topic(topic("add-partitions"), partitions=2)
    a = admin()
    grow = NewPartitions(t, 5, replica_assignment=[r for _, r in sorted(replica_assignment(5, first=2).items())]) if CLUSTER \
        else NewPartitions(t, 5)
    wait_futures(a.create_partitions([grow], operation_timeout=10), "create partitions")
    eventually(lambda: len(a.list_topics(topic=t, timeout=5).topics[t].partitions) == 5, "topic did not grow to 5 partitions")
    fs = a.create_partitions([NewPartitions(t, 3)])
    try:
        fs[t].result(timeout=10)
        raise Fail("shrinking the partition count succeeded")
    except KafkaException as e:
        check(e.args[0].code() == KafkaError.INVALID_PARTITIONS, f"error {e.args[0].str()}")
    produce_all(producer(), t, [(None, b"x", 4, None, None)])
    check(len(read_partition(t, 4, 1)) == 1, "new partition 4 does not serve records")


@scenario("idempotence")
def idempotence():
    t = create_topic(topic("idempotent"), partitions=1)
    p = producer(**{"enable.idempotence": True, "max.in.flight.requests.per.connection": 5, "batch.num.messages": 10})
    vals = [b"i%04d" % i for i in range(200)]
    reports = produce_all(p, t, [(None, v, 0, None, None) for v in vals])
    check(sorted(r[1] for r in reports) == list(range(200)), "offsets not 0..199")
    got = read_partition(t, 0, 200)
    check([m.value() for m in got] == vals, "idempotent records duplicated, lost or reordered")


def _txn(commit):
    def run():
        t = create_topic(topic(f"txn-{'commit' if commit else 'abort'}"), partitions=1)
        p = producer(**{"transactional.id": topic(f"txid-{commit}"), "transaction.timeout.ms": 10000})
        p.init_transactions(10)
        p.begin_transaction()
        produce_all(p, t, [(None, b"in-txn-%d" % i, 0, None, None) for i in range(5)])
        if commit:
            p.commit_transaction(10)
        else:
            p.abort_transaction(10)
        p.begin_transaction()
        produce_all(p, t, [(None, b"after", 0, None, None)])
        p.commit_transaction(10)
        committed = read_partition(t, 0, 6 if commit else 1, **{"isolation.level": "read_committed"})
        want = [b"in-txn-%d" % i for i in range(5)] + [b"after"] if commit else [b"after"]
        check([m.value() for m in committed] == want, f"read_committed saw {[m.value() for m in committed]}")
        raw = read_partition(t, 0, 6, **{"isolation.level": "read_uncommitted"})
        check(len(raw) == 6, f"read_uncommitted saw {len(raw)} records, want 6 (control records are not returned)")
    return run


scenario("transactions-commit")(_txn(True))
scenario("transactions-abort")(_txn(False))


@scenario("compaction")
def compaction():
    t = create_topic(topic("compacted"), partitions=1, config={"cleanup.policy": "compact"})
    produce_all(producer(), t, [(b"a", b"1", 0, None, None), (b"a", b"2", 0, None, None), (b"b", None, 0, None, None)])
    got = read_partition(t, 0, 3)
    check([(m.key(), m.value()) for m in got][:3] == [(b"a", b"1"), (b"a", b"2"), (b"b", None)], "keyed records and tombstone")
    # A compacted topic refuses records without a key (upstream: CORRUPT_MESSAGE / InvalidRecordException).
    errors = []
    p = producer(**{"message.send.max.retries": 0})
    p.produce(t, value=b"no key", partition=0, on_delivery=lambda err, msg: errors.append(err))
    p.flush(10)
    check(errors and errors[0] is not None, "a record without a key was accepted by a compacted topic")
    note("keyless record error", errors[0].name())


def _committed(g, t, partitions):
    c = consumer(group=g)
    try:
        got = c.committed([TopicPartition(t, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in got}
    finally:
        c.close()


@scenario("group-via-non-coordinator")
def group_via_non_coordinator():
    # On the cluster target the bootstrap broker is not the group's coordinator (the harness
    # checks it), so join, commit, describe and offset fetch all go through FindCoordinator.
    t = create_topic(topic("via-noncoord"), partitions=2)
    produce_all(producer(), t, [(None, b"v%d" % i, i % 2, None, None) for i in range(20)])
    g = topic("via-noncoord-g")
    c = consumer(group=g)
    try:
        c.subscribe([t])
        got = consume_n(c, 20, timeout=20)
        check(len(got) == 20, f"group member consumed {len(got)} of 20")
        c.commit(asynchronous=False)
        desc = admin().list_groups(group=g, timeout=10)
        check(len(desc) == 1 and desc[0].state == "Stable" and len(desc[0].members) == 1,
              f"describe: {[(d.state, len(d.members)) for d in desc]}")
    finally:
        c.close()
    offs = _committed(g, t, 2)
    check(offs == {0: 10, 1: 10}, f"committed offsets {offs}, want 10 and 10")
    if CLUSTER:
        check(coordinator_of(g) != BOOTSTRAP_ID, f"the bootstrap broker {BOOTSTRAP_ID} coordinates the group")


@scenario("admin-describe-groups")
def admin_describe_groups():
    # confluent-kafka-python 1.7's list_groups(group=...) is ListGroups + DescribeGroups.
    t = create_topic(topic("describe-groups"), partitions=2)
    g = topic("describe-groups-g")
    c = consumer(group=g, **{"client.id": "compat-describer"})
    try:
        c.subscribe([t])
        eventually(lambda: (c.poll(0.2), len(c.assignment()) == 2)[1], "the member did not get both partitions", timeout=15)
        desc = admin().list_groups(group=g, timeout=10)
        check(len(desc) == 1, f"{len(desc)} answers for one group")
        d = desc[0]
        note("describe", d.state, d.protocol_type, d.protocol, len(d.members))
        check((d.state, d.protocol_type, d.protocol) == ("Stable", "consumer", "range"),
              f"state {d.state}, protocol type {d.protocol_type}, protocol {d.protocol}")
        check(len(d.members) == 1 and d.members[0].client_id == "compat-describer", f"members {[m.client_id for m in d.members]}")
        check(len(d.members[0].assignment) > 0, "the member has an empty assignment")
        check(d.error is None, f"group error {d.error}")
    finally:
        c.close()


def _ctp_round(c, p, out_t, cgm_of, want):
    """Reads what is there, and for each batch: begin, produce upper-cased copies, send the
    consumer's positions as the group's offsets, commit."""
    done = 0
    deadline = time.monotonic() + 15
    while done < want and time.monotonic() < deadline:
        msgs = [m for m in c.consume(num_messages=10, timeout=0.5) if not m.error()]
        if not msgs:
            continue
        p.begin_transaction()
        for m in msgs:
            p.produce(out_t, key=m.key(), value=m.value().upper(), partition=m.partition())
        p.send_offsets_to_transaction(c.position(c.assignment()), cgm_of(c), 10)
        p.commit_transaction(10)
        done += len(msgs)
    return done


@scenario("consume-transform-produce")
def consume_transform_produce():
    in_t = create_topic(topic("ctp-in"), partitions=2)
    out_t = create_topic(topic("ctp-out"), partitions=2)
    values = [b"rec-%02d" % i for i in range(20)]
    produce_all(producer(), in_t, [(None, v, i % 2, None, None) for i, v in enumerate(values)])
    g = topic("ctp-g")
    c = consumer(group=g, **{"isolation.level": "read_committed"})
    p = producer(**{"transactional.id": topic("ctp-txid"), "transaction.timeout.ms": 10000})
    try:
        p.init_transactions(10)
        c.subscribe([in_t])
        done = _ctp_round(c, p, out_t, lambda cc: cc.consumer_group_metadata(), 20)
        check(done == 20, f"transformed {done} of 20 records")
    finally:
        c.close()
    out = []
    for part in range(2):
        out += [m.value() for m in read_partition(out_t, part, 10, **{"isolation.level": "read_committed"})]
    check(sorted(out) == sorted(v.upper() for v in values), f"read_committed output has {len(out)} records: {sorted(out)[:4]}...")
    offs = _committed(g, in_t, 2)
    check(offs == {0: 10, 1: 10}, f"the group's committed input offsets {offs}, want 10 and 10")


@scenario("coordinator-failover")
def coordinator_failover():
    if not CLUSTER:
        raise Skip("needs the cluster target (a coordinator to kill)")
    t = create_topic(topic("failover"), partitions=4)
    g = topic("failover-g")
    p = producer(**{"acks": "all", "message.send.max.retries": 100})
    first = [b"a%02d" % i for i in range(40)]
    produce_all(p, t, [(None, v, i % 4, None, None) for i, v in enumerate(first)])
    seen = set()
    errors = []
    members = [consumer(group=g, **{"heartbeat.interval.ms": 500, "enable.auto.commit": True, "auto.commit.interval.ms": 200})
               for _ in range(2)]
    killed = None

    def pump():
        for c in members:
            m = c.poll(0.05)
            if m is not None:
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        errors.append(m.error().str())
                else:
                    seen.add(m.value())

    def committed_now():
        try:
            got = members[0].committed([TopicPartition(t, x) for x in range(4)], timeout=2)
            return {tp.partition: tp.offset for tp in got}
        except KafkaException as e:
            errors.append(e.args[0].str())
            return {}
    try:
        for c in members:
            c.subscribe([t])
        eventually(lambda: (pump(), set(first) <= seen and committed_now() == {0: 10, 1: 10, 2: 10, 3: 10})[1],
                   "two members did not consume and commit the first 40 records", timeout=15, interval=0)
        before = committed_now()
        killed = coordinator_of(g)
        check(killed != BOOTSTRAP_ID, f"the bootstrap broker {BOOTSTRAP_ID} coordinates the group")
        cluster_ctl("kill", str(killed))
        killed_at = time.monotonic()
        second = [b"b%02d" % i for i in range(40)]
        for i, v in enumerate(second):
            p.produce(t, value=v, partition=i % 4)
        lowest = dict(before)

        def progressed():
            pump()
            p.poll(0)
            offs = committed_now()
            for part, off in offs.items():
                if off >= 0:
                    lowest[part] = min(lowest[part], off)
            return set(second) <= seen and offs == {0: 20, 1: 20, 2: 20, 3: 20}
        eventually(progressed, f"after killing coordinator {killed}, the group did not consume and commit the next 40 "
                               f"(consumed {len(seen)} distinct; last errors {errors[-2:]})", timeout=35, interval=0)
        # The failover figure: kill -9 of the coordinator to the group consuming and committing again.
        print(f"  failover: group consumed and committed the next 40 records {time.monotonic() - killed_at:.1f} s after the kill", flush=True)
        check(p.flush(10) == 0, "records produced during the failover were not delivered")
        check(all(lowest[x] >= before[x] for x in before), f"a committed offset went back: before {before}, lowest {lowest}")
    finally:
        for c in members:
            c.close()
        if killed is not None:
            cluster_ctl("start", str(killed))


# ---------------------------------------------------------------- security (compat/lib/security.py)
import security  # noqa: E402
from security import CA_FILE, OTHER_CA_FILE, SASL_SSL_ADDR, SSL_ADDR  # noqa: E402


def secured(addr, protocol, mechanism=None, user=None, password=None, ca=None, **extra):
    """librdkafka settings a user writes for a secured listener."""
    conf = {"bootstrap.servers": addr, "security.protocol": protocol, "ssl.ca.location": ca or CA_FILE,
            "socket.timeout.ms": 10000, "broker.address.family": "v4"}
    if mechanism:
        conf["sasl.mechanisms"] = mechanism
        if mechanism == "OAUTHBEARER":
            conf["enable.sasl.oauthbearer.unsecure.jwt"] = True
            conf["sasl.oauthbearer.config"] = f"principal={user}"
        else:
            conf["sasl.username"] = user
            conf["sasl.password"] = password
    conf.update(extra)
    return conf


def secured_round_trip(conf, name, n=20):
    """Produce n records through a secured connection and read them back through another."""
    t = create_topic(topic(name), partitions=1)
    p = Producer(dict(conf, **{"linger.ms": 5}))
    vals = [b"%s-%d" % (name.encode(), i) for i in range(n)]
    reports = produce_all(p, t, [(None, v, 0, None, None) for v in vals])
    check(len(reports) == n, f"{len(reports)} of {n} delivered")
    c = Consumer(dict(conf, **{"group.id": f"{t}-g", "auto.offset.reset": "earliest", "enable.auto.commit": False}))
    try:
        c.assign([TopicPartition(t, 0, 0)])
        got = consume_n(c, n)
    finally:
        c.close()
    check([m.value() for m in got] == vals, f"read back {len(got)} of {n} records, or in another order")
    return t


def auth_error(conf, what, timeout=8):
    """Connects with conf and returns the errors librdkafka reports; Fail if metadata succeeds.
    librdkafka connects to the bootstrap broker at once, and the cause (SSL handshake, SASL
    authentication) reaches error_cb, which poll() serves."""
    errors = []
    conf = dict(conf, **{"error_cb": errors.append})
    a = AdminClient(conf)

    def cause():
        return any(e.code() in (KafkaError._AUTHENTICATION, KafkaError._SSL) for e in errors)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not cause():
        a.poll(0.2)
    if not cause():
        try:
            a.list_topics(timeout=3)
        except KafkaException as e:
            errors.append(e.args[0])
        else:
            raise Fail(f"{what}: metadata succeeded, expected an error")
    return errors


@scenario("sec-tls-produce-consume")
def sec_tls_produce_consume():
    security.require(tls=True)
    secured_round_trip(secured(SSL_ADDR, "SSL"), "sec-tls")


@scenario("sec-tls-untrusted-ca")
def sec_tls_untrusted_ca():
    security.require(tls=True)
    errs = auth_error(secured(SSL_ADDR, "SSL", ca=OTHER_CA_FILE), "a CA that did not sign the broker certificate", timeout=8)
    text = " ".join(e.str() for e in errs)
    check("SSL" in text or "certificate" in text.lower(), f"expected an SSL handshake error, got {text[:200]}")
    note("untrusted CA refused")


def _sasl(mechanism):
    def run():
        security.require(sasl=True)
        # The super user, so the round trip needs no ACLs; sec-acl-topic covers an ordinary user.
        secured_round_trip(secured(SASL_SSL_ADDR, "SASL_SSL", mechanism, security.ADMIN_USER, security.ADMIN_PASSWORD),
                           f"sec-{mechanism.lower()}")
    return run


for _mech in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]:
    scenario(f"sec-sasl-{_mech.lower()}")(_sasl(_mech))


@scenario("sec-sasl-oauthbearer")
def sec_sasl_oauthbearer():
    security.require(sasl=True)
    # The unsecured JWT names the super user, which may write a topic of its own.
    secured_round_trip(secured(SASL_SSL_ADDR, "SASL_SSL", "OAUTHBEARER", security.ADMIN_USER), "sec-oauthbearer")


@scenario("sec-sasl-wrong-password")
def sec_sasl_wrong_password():
    security.require(sasl=True)
    for mech in ["PLAIN", "SCRAM-SHA-256"]:
        errs = auth_error(secured(SASL_SSL_ADDR, "SASL_SSL", mech, security.USER, "not-" + security.PASSWORD), mech)
        codes = {e.code() for e in errs}
        check(KafkaError._AUTHENTICATION in codes, f"{mech}: expected an authentication error, got {[e.str() for e in errs][:3]}")
        note(mech, "wrong password refused")


@scenario("sec-acl-topic")
def sec_acl_topic():
    security.require(sasl=True)
    t = create_topic(topic("sec-acl"), partitions=1)
    user_conf = secured(SASL_SSL_ADDR, "SASL_SSL", "SCRAM-SHA-256", security.USER, security.PASSWORD)
    try:
        # No ACL: the write is refused with TOPIC_AUTHORIZATION_FAILED.
        p = Producer(dict(user_conf, **{"message.timeout.ms": 8000}))
        errors = []
        p.produce(t, b"denied", on_delivery=lambda err, msg: errors.append(err))
        p.flush(12)
        check(errors and errors[0] is not None and errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED,
              f"write without an ACL: expected TOPIC_AUTHORIZATION_FAILED, got {errors[0].str() if errors and errors[0] else errors}")
        note("write without ACL:", errors[0].name())
        security.grant(security.USER, "TOPIC", t, ["WRITE"])

        def written():
            out = []
            q = Producer(dict(user_conf, **{"message.timeout.ms": 5000}))
            q.produce(t, b"allowed", on_delivery=lambda err, msg: out.append(err))
            q.flush(8)
            return out and out[0] is None
        eventually(written, "after granting WRITE the write is still refused", timeout=20, interval=0.5)
        # Reading needs READ on the topic and on the group.
        group = f"{t}-g"
        c = Consumer(dict(user_conf, **{"group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False}))
        try:
            c.subscribe([t])
            denied = None
            deadline = time.monotonic() + 12
            while denied is None and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is not None and m.error() and m.error().code() in (KafkaError.GROUP_AUTHORIZATION_FAILED,
                                                                        KafkaError.TOPIC_AUTHORIZATION_FAILED):
                    denied = m.error()
                elif m is not None and not m.error():
                    raise Fail("consumed without READ ACLs")
            check(denied is not None, "no authorization error for a consumer without READ ACLs")
            note("read without ACL:", "authorization failed")
        finally:
            c.close()
        security.grant(security.USER, "TOPIC", t, ["READ"])
        security.grant(security.USER, "GROUP", group, ["READ"])
        c = Consumer(dict(user_conf, **{"group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False}))
        try:
            c.subscribe([t])
            got = []
            deadline = time.monotonic() + 20
            while not got and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is not None and not m.error():
                    got.append(m.value())
            check(b"allowed" in got, f"after granting READ the record was not consumed (got {got})")
        finally:
            c.close()
    finally:
        security.revoke_all(security.USER, t)


if __name__ == "__main__":
    sys.exit(main())
