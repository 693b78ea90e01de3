#!/usr/bin/python3
"""Regenerates the golden files in this folder from kafka-python's own codecs and record builders.

Run with Debian's interpreter after
  apt-get install -y --no-install-recommends python3-kafka python3-snappy python3-lz4 python3-zstandard
  /usr/bin/python3 make_golden.py
Everything is deterministic, so re-running gives the same bytes except gzip's header mtime
(which the tests do not care about).
"""
import json
import os

import lz4.frame
import zstandard
from kafka import codec
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.legacy_records import LegacyRecordBatchBuilder

HERE = os.path.dirname(os.path.abspath(__file__))


def payload():
    # JSON-like lines: compressible but not trivially so; > 64 KiB so lz4 and xerial snappy use several blocks.
    lines = []
    for i in range(1200):
        lines.append('{"id":%d,"user":"user-%d","event":"%s","amount":%d.%02d,"tags":["t%d","t%d"]}\n'
                     % (i, (i * 7919) % 1000, ["click", "view", "buy", "share"][i % 4], i * 31 % 997, i % 100, i % 13, i % 29))
    return ''.join(lines).encode()


def write(name, data):
    with open(os.path.join(HERE, name), 'wb') as f:
        f.write(data)


def codec_files():
    data = payload()
    write('payload.txt', data)
    write('payload.gzip', codec.gzip_encode(data))
    write('payload.snappy-xerial', codec.snappy_encode(data, xerial_compatible=True))
    write('payload.snappy-raw', codec.snappy_encode(data, xerial_compatible=False))
    write('payload.lz4', codec.lz4_encode(data))
    write('payload-checksums.lz4', lz4.frame.compress(
        data, block_linked=False, block_size=lz4.frame.BLOCKSIZE_MAX64KB,
        block_checksum=True, content_checksum=True, store_size=False))
    write('payload-old-kafka.lz4', codec.lz4_encode_old_kafka(data))
    write('payload.zstd', codec.zstd_encode(data))
    # Streaming compression: frames without a content size; two frames back to back.
    half = len(data) // 2
    parts = []
    for piece in (data[:half], data[half:]):
        c = zstandard.ZstdCompressor(level=3, write_content_size=False).compressobj()
        parts.append(c.compress(piece) + c.flush())
    write('payload-multiframe.zstd', b''.join(parts))
    # A frame whose header asks for a 128 MiB window although it holds 1 KiB: decoders must refuse to
    # allocate that when the caller's output limit is small.
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=27, write_content_size=False)
    c = zstandard.ZstdCompressor(compression_params=params).compressobj()
    write('bigwindow.zstd', c.compress(data[:1024]) + c.flush())


def records(n, with_headers):
    out = []
    for i in range(n):
        key = None if i % 7 == 3 else ('key-%d' % i)
        value = None if i % 11 == 5 else ('{"n":%d,"text":"%s"}' % (i, 'x' * (i % 17)))
        headers = [('h1', 'v%d' % i), ('empty', ''), ('nullv', None)] if with_headers and i % 2 == 0 else []
        out.append({'offsetDelta': i, 'timestamp': 1700000000000 + i * 13, 'key': key, 'value': value, 'headers': headers})
    return out


def enc(s):
    return None if s is None else s.encode()


def batch_files(manifest):
    codecs = {'none': 0, 'gzip': 1, 'snappy': 2, 'lz4': 3, 'zstd': 4}
    recs = records(40, True)
    for name, cid in codecs.items():
        b = DefaultRecordBatchBuilder(magic=2, compression_type=cid, is_transactional=False,
                                      producer_id=4242, producer_epoch=3, base_sequence=17, batch_size=1 << 20)
        for r in recs:
            b.append(r['offsetDelta'], timestamp=r['timestamp'], key=enc(r['key']), value=enc(r['value']),
                     headers=[(h, enc(v)) for h, v in r['headers']])
        fname = 'batch-v2-%s.bin' % name
        write(fname, bytes(b.build()))
        manifest[fname] = {'magic': 2, 'codec': cid, 'producerId': 4242, 'producerEpoch': 3, 'baseSequence': 17, 'records': recs}

    legacy = records(25, False)
    for magic in (0, 1):
        for name, cid in codecs.items():
            if cid == 4:
                continue  # zstd exists only in v2
            b = LegacyRecordBatchBuilder(magic=magic, compression_type=cid, batch_size=1 << 20)
            for r in legacy:
                b.append(r['offsetDelta'], timestamp=r['timestamp'], key=enc(r['key']), value=enc(r['value']))
            fname = 'messageset-v%d-%s.bin' % (magic, name)
            write(fname, bytes(b.build()))
            expect = [dict(r, timestamp=(r['timestamp'] if magic == 1 else -1)) for r in legacy]
            manifest[fname] = {'magic': magic, 'codec': cid, 'records': expect}


def main():
    codec_files()
    manifest = {}
    batch_files(manifest)
    with open(os.path.join(HERE, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, sort_keys=True, separators=(',', ':'))


if __name__ == '__main__':
    main()
