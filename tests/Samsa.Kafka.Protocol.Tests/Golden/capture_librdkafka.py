#!/usr/bin/python3
"""Captures real produce payloads from librdkafka (through kcat) for the golden tests.

A minimal fake broker on 127.0.0.1 (ephemeral port) answers ApiVersions, Metadata and Produce just
well enough for kcat to send one batch, and saves the Produce request's records bytes. Run:

  apt-get install -y --no-install-recommends kcat
  /usr/bin/python3 capture_librdkafka.py

Writes librdkafka-magic2-<codec>.bin (RecordBatch v2 via Produce v7), librdkafka-magic1-<codec>.bin
and librdkafka-magic0-<codec>.bin (legacy message sets via Produce v2 / v1, obtained by advertising
only those Produce and Fetch versions in the ApiVersions answer), plus
librdkafka-input.txt, the lines kcat produced (key and value split at ':').
"""
import os
import socket
import struct
import subprocess
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
TOPIC = b'golden'
PROFILE = {'produce': 7, 'fetch': 11}
LINES = [('k%d' % i, 'value-%d-%s' % (i, 'abcdefgh' * (3 + i % 5))) for i in range(30)]


def s16(v): return struct.pack('>h', v)
def s32(v): return struct.pack('>i', v)
def s64(v): return struct.pack('>q', v)
def string(b): return s16(len(b)) + b


def uvarint(v):
    out = b''
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])


class Reader:
    def __init__(self, data): self.d, self.p = data, 0
    def take(self, n):
        b = self.d[self.p:self.p + n]; self.p += n; return b
    def i16(self): return struct.unpack('>h', self.take(2))[0]
    def i32(self): return struct.unpack('>i', self.take(4))[0]
    def string(self):
        n = self.i16(); return None if n < 0 else self.take(n)


def api_versions_v3(corr, port):
    # Response header v0; body flexible: error, compact array of (key, min, max, tags), throttle, tags.
    # librdkafka derives its features from these ranges: the message format from the Produce *and*
    # Fetch versions (magic 2 needs Produce 3+ and Fetch 4+, magic 1 Produce 2 and Fetch 2), LZ4 from
    # FindCoordinator. Fetch and FindCoordinator are advertised though this broker never answers them.
    produce_max, fetch_max = PROFILE['produce'], PROFILE['fetch']
    apis = [(0, 0, produce_max), (1, 0, fetch_max), (3, 0, 4), (10, 0, 1), (18, 0, 3)]
    body = s16(0) + uvarint(len(apis) + 1)
    for key, lo, hi in apis:
        body += s16(key) + s16(lo) + s16(hi) + b'\x00'
    body += s32(0) + b'\x00'
    return s32(corr) + body


def metadata(corr, version, port):
    body = b''
    if version >= 3:
        body += s32(0)  # throttle
    body += s32(1) + s32(0) + string(b'127.0.0.1') + s32(port)
    if version >= 1:
        body += s16(-1)  # rack null
    if version >= 2:
        body += s16(-1)  # cluster id null
    if version >= 1:
        body += s32(0)  # controller
    body += s32(1) + s16(0) + string(TOPIC)
    if version >= 1:
        body += b'\x00'  # is_internal
    body += s32(1) + s16(0) + s32(0) + s32(0) + s32(1) + s32(0) + s32(1) + s32(0)
    if version >= 5:
        body += s32(0)
    return s32(corr) + body


def produce_response(corr, version):
    body = s32(1) + string(TOPIC) + s32(1) + s32(0) + s16(0) + s64(0)
    if version >= 2:
        body += s64(-1)
    if version >= 5:
        body += s64(0)
    if version >= 1:
        body += s32(0)
    return s32(corr) + body


def serve(listener, captured):
    port = listener.getsockname()[1]
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(conn, port, captured), daemon=True).start()


def recv_exact(conn, n):
    buf = b''
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def handle(conn, port, captured):
    try:
        while True:
            size = struct.unpack('>i', recv_exact(conn, 4))[0]
            r = Reader(recv_exact(conn, size))
            key, version, corr = r.i16(), r.i16(), r.i32()
            r.string()  # client id
            if key == 18:
                reply = api_versions_v3(corr, port)
            elif key == 3:
                reply = metadata(corr, version, port)
            elif key == 0:
                if version >= 3:
                    r.string()  # transactional id
                r.i16(); r.i32()  # acks, timeout
                for _ in range(r.i32()):
                    r.string()
                    for _ in range(r.i32()):
                        r.i32()
                        n = r.i32()
                        captured.append((version, r.take(n)))
                reply = produce_response(corr, version)
            else:
                return
            conn.sendall(s32(len(reply)) + reply)
    except (EOFError, ConnectionError):
        pass
    finally:
        conn.close()


def main():
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    captured = []
    threading.Thread(target=serve, args=(listener, captured), daemon=True).start()
    data = ''.join('%s:%s\n' % kv for kv in LINES).encode()
    with open(os.path.join(HERE, 'librdkafka-input.txt'), 'wb') as f:
        f.write(data)
    profiles = [  # (Produce max, Fetch max, codecs librdkafka will use with that message format)
        (7, 11, ('none', 'gzip', 'snappy', 'lz4', 'zstd')),
        (2, 3, ('none', 'gzip', 'snappy', 'lz4')),
        (1, 1, ('none', 'gzip', 'snappy')),
    ]
    for produce_max, fetch_max, codecs in profiles:
        PROFILE.update(produce=produce_max, fetch=fetch_max)
        for codec in codecs:
            captured.clear()
            cmd = ['kcat', '-P', '-b', '127.0.0.1:%d' % port, '-t', TOPIC.decode(), '-K', ':', '-z', codec,
                   '-X', 'linger.ms=100', '-X', 'batch.num.messages=1000']
            subprocess.run(cmd, input=data, check=True, timeout=60)
            assert len(captured) == 1, (codec, produce_max, len(captured))
            version, records = captured[0]
            name = 'librdkafka-magic%d-%s.bin' % (records[16], codec)
            with open(os.path.join(HERE, name), 'wb') as f:
                f.write(records)
            print(name, 'produce v%d' % version, len(records), 'bytes, magic', records[16])


if __name__ == '__main__':
    main()
