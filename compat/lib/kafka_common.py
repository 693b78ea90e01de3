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
