"""kafka-python 2.0.2 (Debian python3-kafka) through a ZooKeeper-mode cluster, bootstrapped at one
broker: produce COUNT keyed records spread over every partition of TOPIC (acks=all), then read them
all back with a consumer that assigns every partition. Prints "produced P OFFSET" per record and
"consumed P KEY VALUE" per record read; exits 1 on any client error.
Usage: /usr/bin/python3 kafka_python_cluster.py BOOTSTRAP TOPIC PARTITIONS COUNT"""
import sys
import time
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

bootstrap, topic, partitions, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

producer = KafkaProducer(bootstrap_servers=[bootstrap], acks='all', linger_ms=5, retries=3,
                         request_timeout_ms=15000)
futures = [(producer.send(topic, key=b'k%d' % i, value=b'v%d' % i, partition=i % partitions)) for i in range(count)]
producer.flush(30)
for f in futures:
    md = f.get(timeout=30)
    print('produced %d %d' % (md.partition, md.offset))
producer.close()

consumer = KafkaConsumer(bootstrap_servers=[bootstrap], enable_auto_commit=False, group_id=None,
                         consumer_timeout_ms=1000, request_timeout_ms=15000)
tps = [TopicPartition(topic, p) for p in range(partitions)]
consumer.assign(tps)
consumer.seek_to_beginning(*tps)
seen = 0
deadline = time.time() + 30
while seen < count and time.time() < deadline:
    for batch in consumer.poll(timeout_ms=500).values():
        for r in batch:
            print('consumed %d %s %s' % (r.partition, r.key.decode(), r.value.decode()))
            seen += 1
consumer.close()
sys.stdout.flush()
