"""kafka-python 2.0.2 (Debian python3-kafka) group consumer and admin client through a
ZooKeeper-mode cluster, bootstrapped at a broker that is neither the group's coordinator nor a
leader of TOPIC: consume COUNT records in group GROUP, commit, then describe the group and list its
committed offsets with the admin client (both routed by the client to the coordinator).
Prints "consumed P OFFSET", "committed P OFFSET", "group STATE MEMBERS", "offset P OFFSET".
Usage: /usr/bin/python3 kafka_python_group_cluster.py BOOTSTRAP TOPIC GROUP COUNT"""
import sys
import time
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

bootstrap, topic, group, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

consumer = KafkaConsumer(topic, bootstrap_servers=[bootstrap], group_id=group, enable_auto_commit=False,
                         auto_offset_reset='earliest', request_timeout_ms=15000, session_timeout_ms=10000,
                         heartbeat_interval_ms=1000)
seen = 0
positions = {}
deadline = time.time() + 60
while seen < count and time.time() < deadline:
    for tp, batch in consumer.poll(timeout_ms=500).items():
        for r in batch:
            print('consumed %d %d' % (r.partition, r.offset))
            positions[r.partition] = r.offset + 1
            seen += 1
consumer.commit()
for p, o in sorted(positions.items()):
    print('committed %d %d' % (p, consumer.committed(TopicPartition(topic, p))))
sys.stdout.flush()

admin = KafkaAdminClient(bootstrap_servers=[bootstrap], request_timeout_ms=15000)
for d in admin.describe_consumer_groups([group]):
    print('group %s %d' % (d.state, len(d.members)))
for tp, meta in sorted(admin.list_consumer_group_offsets(group).items()):
    print('offset %d %d' % (tp.partition, meta.offset))
admin.close()
consumer.close()
sys.stdout.flush()
