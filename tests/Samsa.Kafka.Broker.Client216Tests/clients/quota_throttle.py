#!/usr/bin/python3
"""Produces or consumes as fast as a client can for a while and prints what a user measures:
bytes moved per second and the broker throttle time the client saw.

usage: quota_throttle.py confluent|kafka-python produce|consume BOOTSTRAP TOPIC CLIENT_ID SECONDS
Runs SECONDS from the first byte moved (30 s at most waiting for it); prints one JSON line:
{"events": [[ms since the first byte, bytes], ...] (100 ms buckets), "throttle_max_ms": T}.
confluent = python3-confluent-kafka over Debian's librdkafka 2.0.2 (throttle from statistics);
kafka-python = python3-kafka 2.0.2 (throttle from its produce/fetch throttle-time metrics)."""
import json
import sys
import time

lib, mode, bootstrap, topic, client_id, seconds = sys.argv[1:7]
seconds = float(seconds)
VALUE = b"x" * 1024
throttle = [0.0]
first = [None]
buckets = {}
begin = time.monotonic()


def add(n):
    now = time.monotonic()
    if first[0] is None:
        first[0] = now
    ms = (now - first[0]) * 1000
    key = int(ms // 100) * 100
    buckets[key] = buckets.get(key, 0) + n


def running():
    now = time.monotonic()
    return now - begin < 30 if first[0] is None else now - first[0] < seconds


def confluent():
    import confluent_kafka

    def stats(js):
        for b in json.loads(js).get("brokers", {}).values():
            throttle[0] = max(throttle[0], b.get("throttle", {}).get("max", 0))

    common = {"bootstrap.servers": bootstrap, "client.id": client_id, "statistics.interval.ms": 500, "stats_cb": stats}
    if mode == "produce":
        p = confluent_kafka.Producer(dict(common, **{"linger.ms": 5, "batch.num.messages": 16, "queue.buffering.max.kbytes": 512}))
        def delivered(err, msg):
            if err is None:
                add(len(msg.value()))

        while running():
            try:
                p.produce(topic, VALUE, on_delivery=delivered)
            except BufferError:
                p.poll(0.005)
            p.poll(0)
        p.flush(30)
        return
    c = confluent_kafka.Consumer(dict(common, **{"group.id": client_id, "enable.auto.commit": False,
                                                  "fetch.max.bytes": 65536, "max.partition.fetch.bytes": 65536,
                                                  "message.max.bytes": 65536}))
    c.assign([confluent_kafka.TopicPartition(topic, 0, confluent_kafka.OFFSET_BEGINNING)])
    while running():
        m = c.poll(0.1)
        if m is not None and m.error() is None:
            add(len(m.value()))
    end = time.monotonic()
    while time.monotonic() - end < 1:   # one more statistics interval
        c.poll(0.1)
    c.close()


def kafka_python():
    import kafka
    if mode == "produce":
        p = kafka.KafkaProducer(bootstrap_servers=bootstrap, client_id=client_id, linger_ms=5, batch_size=16384,
                                buffer_memory=512 * 1024, max_block_ms=60000)
        while running():
            p.send(topic, VALUE).add_callback(lambda md: add(len(VALUE)))
        p.flush(30)
        for name, metrics in p.metrics().items():
            for k, v in metrics.items():
                if k == "produce-throttle-time-max" and v is not None:
                    throttle[0] = max(throttle[0], v)
        p.close()
        return
    c = kafka.KafkaConsumer(bootstrap_servers=bootstrap, client_id=client_id, enable_auto_commit=False,
                            fetch_max_bytes=65536, max_partition_fetch_bytes=65536)
    tp = kafka.TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    while running():
        for records in c.poll(timeout_ms=100).values():
            for r in records:
                add(len(r.value))
    for name, metrics in c.metrics().items():
        for k, v in metrics.items():
            if k == "fetch-throttle-time-max" and v is not None:
                throttle[0] = max(throttle[0], v)
    c.close()


(confluent if lib == "confluent" else kafka_python)()
print(json.dumps({"events": sorted([k, v] for k, v in buckets.items()), "throttle_max_ms": throttle[0]}))
