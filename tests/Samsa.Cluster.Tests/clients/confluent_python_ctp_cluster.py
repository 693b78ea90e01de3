"""confluent-kafka-python (Debian python3-confluent-kafka, librdkafka 2.0.2): consume-transform-produce
through a ZooKeeper-mode cluster. A group consumer reads COUNT records from INPUT; a transactional
producer writes one record per input record to OUTPUT and sends the consumer's offsets to the
transaction, committing every 10 records. Then a read_committed consumer reads OUTPUT and the group's
committed offsets are read back. Prints "committed-offset P OFFSET" and "output P VALUE".
Usage: /usr/bin/python3 confluent_python_ctp_cluster.py BOOTSTRAP INPUT OUTPUT GROUP TXN_ID COUNT"""
import sys
import time
from confluent_kafka import Consumer, Producer, TopicPartition, KafkaException

bootstrap, src, dst, group, txn_id, count = sys.argv[1:6] + [int(sys.argv[6])]

consumer = Consumer({'bootstrap.servers': bootstrap, 'group.id': group, 'enable.auto.commit': False,
                     'auto.offset.reset': 'earliest', 'isolation.level': 'read_committed'})
consumer.subscribe([src])
producer = Producer({'bootstrap.servers': bootstrap, 'transactional.id': txn_id})
producer.init_transactions(30)
producer.begin_transaction()
done = 0
in_txn = 0
deadline = time.time() + 60
while done < count and time.time() < deadline:
    msg = consumer.poll(0.5)
    if msg is None:
        continue
    if msg.error():
        raise KafkaException(msg.error())
    producer.produce(dst, key=msg.key(), value=b'out-' + msg.value(), partition=msg.partition())
    done += 1
    in_txn += 1
    if in_txn == 10 or done == count:
        producer.send_offsets_to_transaction(consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        in_txn = 0
        if done < count:
            producer.begin_transaction()
for tp in consumer.committed(consumer.assignment(), timeout=15):
    print('committed-offset %d %d' % (tp.partition, tp.offset))
consumer.close()

reader = Consumer({'bootstrap.servers': bootstrap, 'group.id': group + '-reader', 'auto.offset.reset': 'earliest',
                   'isolation.level': 'read_committed', 'enable.auto.commit': False})
reader.subscribe([dst])
seen = 0
deadline = time.time() + 30
while seen < count and time.time() < deadline:
    msg = reader.poll(0.5)
    if msg is None or msg.error():
        continue
    print('output %d %s' % (msg.partition(), msg.value().decode()))
    seen += 1
reader.close()
sys.stdout.flush()
