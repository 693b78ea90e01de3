"""kafka-python 3.x (a checkout given by PYTHONPATH; not a Debian package) through a ZooKeeper-mode
cluster, bootstrapped at one broker that neither leads a partition of the topics nor coordinates the
groups or the transactional id:
  1. admin create_topics with explicit replica assignments: "created TOPIC";
  2. an idempotent producer writes COUNT records to IN (partition i % partitions): "produced P OFFSET";
  3. a group consumer (group GROUP) reads them all and commits: "consumed P OFFSET VALUE",
     "committed P OFFSET"; the admin client then describes the group while the member is in it and
     lists its offsets: "group STATE MEMBERS", "offset TOPIC P OFFSET";
  4. consume-transform-produce with transactions: a second group (GROUP-ctp) reads IN, a
     transactional producer (TXN) writes "out-VALUE" to OUT and sends the offsets to the
     transaction, one transaction per poll; a read_committed consumer then reads OUT:
     "txn-committed N", "output P VALUE", "ctp-offset TOPIC P OFFSET";
  5. the admin client describes the transactional id and lists transactions: "txn-state ID STATE
     PARTITIONS", "txn-listed-by BROKERS".
Every failure prints "error STEP: EXCEPTION" and the exit code is 1; later steps still run.
Usage: python3 kafka_python3_cluster.py BOOTSTRAP IN OUT GROUP TXN COUNT ASSIGNMENT
where ASSIGNMENT is "0=2,1;1=3,1" (partition=replica ids, leader first), used for IN and OUT."""
import logging
import os
import sys
import time
import traceback

import kafka
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata

bootstrap, in_topic, out_topic, group, txn_id, count, assignment = sys.argv[1:8]
count = int(count)
replicas = {int(p): [int(r) for r in rs.split(',')]
            for p, rs in (part.split('=') for part in assignment.split(';'))}
partitions = len(replicas)
failed = False
# The client's own log on stderr (WARNING unless KAFKA_PYTHON_LOG names another level): retries
# such as NOT_COORDINATOR show there even when a step ends well.
logging.basicConfig(stream=sys.stderr, level=os.environ.get('KAFKA_PYTHON_LOG', 'WARNING').upper(),
                    format='%(asctime)s %(name)s %(levelname)s %(message)s')


def step(name, fn):
    global failed
    try:
        fn()
    except Exception as e:  # report and go on: each step is a finding of its own
        failed = True
        print('error %s: %r' % (name, e))
        traceback.print_exc()
    sys.stdout.flush()


print('kafka-python %s' % kafka.__version__)
admin = KafkaAdminClient(bootstrap_servers=[bootstrap], request_timeout_ms=15000)


def create_topics():
    admin.create_topics([NewTopic(t, replica_assignments=replicas) for t in (in_topic, out_topic)])
    admin.wait_for_topics([in_topic, out_topic], timeout_ms=30000)
    for t in (in_topic, out_topic):
        print('created %s' % t)


def produce():
    producer = KafkaProducer(bootstrap_servers=[bootstrap], enable_idempotence=True, acks='all',
                             request_timeout_ms=15000)
    futures = [producer.send(in_topic, key=b'k%d' % i, value=b'v%d' % i, partition=i % partitions)
               for i in range(count)]
    producer.flush()
    for f in futures:
        md = f.get(timeout=30)
        print('produced %d %d' % (md.partition, md.offset))
    producer.close()


def consume_group():
    consumer = KafkaConsumer(in_topic, bootstrap_servers=[bootstrap], group_id=group,
                             enable_auto_commit=False, auto_offset_reset='earliest',
                             request_timeout_ms=15000, session_timeout_ms=10000,
                             heartbeat_interval_ms=1000)
    seen, positions = 0, {}
    deadline = time.time() + 60
    while seen < count and time.time() < deadline:
        for tp, batch in consumer.poll(timeout_ms=500).items():
            for r in batch:
                print('consumed %d %d %s' % (r.partition, r.offset, r.value.decode()))
                positions[r.partition] = r.offset + 1
                seen += 1
    if seen < count:
        raise RuntimeError('consumed %d of %d records in 60 s' % (seen, count))
    consumer.commit()
    for p in sorted(positions):
        print('committed %d %d' % (p, consumer.committed(TopicPartition(in_topic, p))))
    sys.stdout.flush()
    try:
        # The member is still in the group: describe it and list its offsets at the coordinator.
        for gid, d in admin.describe_groups([group]).items():
            print('group %s %d' % (d['group_state'], len(d['members'])))
            if d['error']:
                raise RuntimeError('describe_groups %s: %s' % (gid, d['error']))
        for gid, offsets in admin.list_group_offsets({group: None}).items():
            for tp, meta in sorted(offsets.items()):
                print('offset %s %d %d' % (tp.topic, tp.partition, meta.offset))
    finally:
        consumer.close()


def consume_transform_produce():
    consumer = KafkaConsumer(in_topic, bootstrap_servers=[bootstrap], group_id=group + '-ctp',
                             enable_auto_commit=False, auto_offset_reset='earliest',
                             isolation_level='read_committed', request_timeout_ms=15000,
                             session_timeout_ms=10000, heartbeat_interval_ms=1000)
    producer = KafkaProducer(bootstrap_servers=[bootstrap], transactional_id=txn_id,
                             request_timeout_ms=15000)
    producer.init_transactions()
    print('txn-initialized')
    seen, txns = 0, 0
    deadline = time.time() + 60
    while seen < count and time.time() < deadline:
        polled = consumer.poll(timeout_ms=500)
        if not polled:
            continue
        producer.begin_transaction()
        offsets = {}
        for tp, batch in polled.items():
            for r in batch:
                producer.send(out_topic, key=r.key, value=b'out-' + r.value, partition=r.partition)
                offsets[tp] = OffsetAndMetadata(r.offset + 1, '', -1)
                seen += 1
        producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
        producer.commit_transaction()
        txns += 1
    print('txn-committed %d' % txns)
    consumer.close()
    producer.close()
    if seen < count:
        raise RuntimeError('transformed %d of %d records in 60 s' % (seen, count))

    reader = KafkaConsumer(bootstrap_servers=[bootstrap], isolation_level='read_committed',
                           auto_offset_reset='earliest', enable_auto_commit=False,
                           request_timeout_ms=15000)
    tps = [TopicPartition(out_topic, p) for p in range(partitions)]
    reader.assign(tps)
    reader.seek_to_beginning()
    got = 0
    deadline = time.time() + 30
    while got < count and time.time() < deadline:
        for tp, batch in reader.poll(timeout_ms=500).items():
            for r in batch:
                print('output %d %s' % (r.partition, r.value.decode()))
                got += 1
    reader.close()
    for gid, offsets in admin.list_group_offsets({group + '-ctp': None}).items():
        for tp, meta in sorted(offsets.items()):
            print('ctp-offset %s %d %d' % (tp.topic, tp.partition, meta.offset))
    if got < count:
        raise RuntimeError('read %d of %d committed outputs in 30 s' % (got, count))


def describe_transactions():
    # DescribeTransactions goes to the transactional id's coordinator; ListTransactions to every
    # broker, each listing the transactional ids it coordinates (KIP-664).
    for tid, d in admin.describe_transactions([txn_id]).items():
        print('txn-state %s %s %d' % (tid, d.state.value, len(d.topic_partitions)))
    listed = [b for b, rows in admin.list_transactions().items() if any(r.transactional_id == txn_id for r in rows)]
    print('txn-listed-by %d' % len(listed))


step('create-topics', create_topics)
step('produce', produce)
step('group', consume_group)
step('transactions', consume_transform_produce)
step('transaction-admin', describe_transactions)
admin.close()
sys.exit(1 if failed else 0)
