#!/usr/bin/env python3
"""Share coordinator reload time (KIP-932, __share_group_state): writes N WriteShareGroupState
updates for S share-partitions to a `samsa dev` broker, kills it with SIGKILL, starts it again on
the same data directory and reports how long the broker took to replay the state partitions (the
"loaded R records of __share_group_state-P in X ms" lines of the coordinator runtime) and that
a ReadShareGroupState after the restart returns the last written state.

usage: tests/bench/share-state-reload.sh [--updates 10000] [--partitions 10] [--per-snapshot 500]
"""
import argparse
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid


def uvarint(n):
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def cstr(s):
    b = s.encode()
    return uvarint(len(b) + 1) + b


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.corr = 0

    def call(self, key, version, body):
        self.corr += 1
        head = struct.pack(">hhi", key, version, self.corr) + struct.pack(">h", 5) + b"bench" + b"\x00"
        msg = head + body
        self.sock.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", self._recv(4))[0]
        data = self._recv(size)
        return data[5:]  # correlation id + empty header tags

    def _recv(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return out


def write_state(c, group, topic_id, partition, start, batches):
    """WriteShareGroupState v0 for one share-partition; returns its error code."""
    body = cstr(group) + uvarint(2) + topic_id + uvarint(2)
    body += struct.pack(">iiiq", partition, 0, 0, start)
    body += uvarint(len(batches) + 1)
    for first, last, state, count in batches:
        body += struct.pack(">qqbh", first, last, state, count) + b"\x00"
    body += b"\x00" + b"\x00" + b"\x00"  # partition, topic, request tags
    r = c.call(85, 0, body)
    # results: [topic_id, partitions: [partition int32, error int16, ...]]
    return struct.unpack(">h", r[1 + 16 + 1 + 4:1 + 16 + 1 + 4 + 2])[0]


def find_share_coordinator(c, key):
    """FindCoordinator v6 key type 2 (creates __share_group_state); the error code."""
    body = struct.pack(">b", 2) + uvarint(2) + cstr(key) + b"\x00"
    r = c.call(10, 6, body)
    p = 4 + 1                       # throttle, coordinators array
    n = r[p] - 1                    # key (compact string, short here)
    p += 1 + n + 4                  # key, node id
    n = r[p] - 1
    p += 1 + n + 4                  # host, port
    return struct.unpack(">h", r[p:p + 2])[0]


def read_start(c, group, topic_id, partition):
    body = cstr(group) + uvarint(2) + topic_id + uvarint(2) + struct.pack(">ii", partition, 0) + b"\x00\x00\x00"
    r = c.call(84, 0, body)
    p = 1 + 16 + 1
    err = struct.unpack(">h", r[p + 4:p + 6])[0]
    p += 6
    n = r[p] - 1
    p += 1 + max(n, 0)
    epoch, start = struct.unpack(">iq", r[p:p + 12])
    return err, start


def start(exe, data, port, zk, log):
    out = open(log, "a")
    open(log, "a").close()
    proc = subprocess.Popen([exe, "dev", "--host", "127.0.0.1", "--kafka-port", str(port), "--zk-port", str(zk), "--data", data],
                            stdout=out, stderr=subprocess.STDOUT)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120:
        if "kafka listening on" in open(log).read():
            return proc, time.monotonic() - t0
        time.sleep(0.05)
    raise SystemExit("samsa dev did not start")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    ap.add_argument("--updates", type=int, default=10000)
    ap.add_argument("--partitions", type=int, default=10, help="share-partitions written to")
    ap.add_argument("--per-snapshot", type=int, default=500)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="share-state-reload-")
    log = os.path.join(d, "samsa.log")
    port, zk = free_port(), free_port()
    proc = None
    try:
        proc, _ = start(a.exe, os.path.join(d, "data"), port, zk, log)
        c = Conn(port)
        topic = uuid.uuid4().bytes
        import base64
        tid = base64.urlsafe_b64encode(topic).decode().rstrip("=")
        for p in range(a.partitions):
            for _ in range(300):
                if find_share_coordinator(c, f"bench-group:{tid}:{p}") == 0:
                    break
                time.sleep(0.1)
        # Each write is answered NOT_COORDINATOR/LOAD_IN_PROGRESS until the state partition is served.
        for p in range(a.partitions):
            for _ in range(300):
                if write_state(c, "bench-group", topic, p, 0, []) == 0:
                    break
                time.sleep(0.1)
        t0 = time.monotonic()
        for i in range(a.updates):
            p = i % a.partitions
            off = 10 * (i // a.partitions)
            err = write_state(c, "bench-group", topic, p, off, [(off, off + 4, 0, 1), (off + 5, off + 9, 2, 1)])
            if err:
                raise SystemExit(f"write {i}: error {err}")
        took = time.monotonic() - t0
        print(f"wrote {a.updates} WriteShareGroupState updates to {a.partitions} share-partitions in {took:.2f} s ({a.updates / took:.0f}/s)")
        last = {p: 10 * ((a.updates - 1 - ((a.updates - 1 - p) % a.partitions)) // a.partitions) for p in range(a.partitions)}
        # A clean stop: `samsa dev` killed with SIGKILL waits for its old Keeper session before it
        # registers again; either way the state is replayed from the log at start.
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(os.path.join(d, "data")) for f in fs
                   if "__share_group_state" in r and f.endswith(".log"))
        print(f"__share_group_state log bytes: {size}")
        log = os.path.join(d, "samsa-2.log")
        mark = 0
        proc, ready = start(a.exe, os.path.join(d, "data"), port, zk, log)
        c = Conn(port)
        t1 = time.monotonic()
        for p in range(a.partitions):
            while True:
                err, so = read_start(c, "bench-group", topic, p)
                if err == 14:  # COORDINATOR_LOAD_IN_PROGRESS
                    time.sleep(0.01)
                    continue
                if err or so != last[p]:
                    raise SystemExit(f"share-partition {p} after restart: error {err} start {so}, expected {last[p]}")
                break
        served = time.monotonic() - t1
        loads = re.findall(r"loaded (\d+) records of __share_group_state-(\d+) in (\d+) ms", open(log).read()[mark:])
        total = sum(int(n) for n, _, _ in loads)
        slowest = max((int(ms) for _, _, ms in loads), default=0)
        print(f"restart: listening after {ready:.2f} s; replayed {total} records in {len(loads)} state partitions, "
              f"slowest partition {slowest} ms; every share-partition read back correct {served * 1000:.0f} ms after listening")
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
