#!/usr/bin/python3
"""Broker restart figures (issue 14): ready time (process start until `kafka listening`) and
memory (VmHWM / VmRSS from /proc) of a `samsa broker` restarted after a clean stop (SIGTERM)
and after kill -9, with N partitions of which every tenth holds data; and a kill -9 loop that
checks every acknowledged (acks=all) record survives. Driven by tests/bench/restart-recovery.sh.

Every broker listens on 127.0.0.1 port 0; nothing leaves the machine."""
import argparse, os, shutil, signal, subprocess, sys, tempfile, threading, time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

CHECKPOINT_MS = 2000


class Broker:
    def __init__(self, exe, work, extra=""):
        self.exe, self.work = exe, work
        self.props = os.path.join(work, "server.properties")
        with open(self.props, "w") as f:
            f.write(f"""broker.id=1
listeners=PLAINTEXT://127.0.0.1:0
log.dirs={work}/kafka
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
log.flush.offset.checkpoint.interval.ms={CHECKPOINT_MS}
{extra}
""")
        self.proc = None

    def start(self, timeout=900):
        log = open(os.path.join(self.work, "broker.log"), "a")
        t0 = time.monotonic()
        self.proc = subprocess.Popen([self.exe, "broker", "--config", self.props], stdout=subprocess.PIPE,
                                     stderr=log, text=True)
        self.addr = None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"broker exited (rc {self.proc.wait()}); see {self.work}/broker.log")
            if line.startswith("kafka listening on "):
                self.addr = line.strip()[len("kafka listening on "):]
                break
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("broker not ready in time")
        ready = time.monotonic() - t0
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        return ready

    def memory_mb(self):
        vals = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS"):
                    vals[k] = int(v.split()[0]) / 1024
        return vals["VmHWM"], vals["VmRSS"]

    def stop(self, kill=False):
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.proc.wait(timeout=600)


def create_topic(addr, name, partitions):
    a = AdminClient({"bootstrap.servers": addr})
    for _, fut in a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                                  operation_timeout=600, request_timeout=600).items():
        fut.result()


def produce(addr, topic, partitions, per_partition, size, tag=""):
    """acks=all; returns {(partition, value)} of acknowledged records."""
    acked, failed = set(), []
    p = Producer({"bootstrap.servers": addr, "acks": "all", "linger.ms": 5, "enable.idempotence": False})

    def cb(err, msg):
        if err is None:
            acked.add((msg.partition(), msg.value()))
        else:
            failed.append(err)
    pad = b"x" * max(0, size - 40)
    for i in range(per_partition):
        for part in partitions:
            p.produce(topic, value=f"{tag}-{part}-{i}-".encode() + pad, partition=part, on_delivery=cb)
        p.poll(0)
    p.flush(60)
    if failed:
        raise RuntimeError(f"{len(failed)} produce errors, first {failed[0]}")
    return acked


def consume_all(addr, topic, partitions):
    c = Consumer({"bootstrap.servers": addr, "group.id": "verify", "enable.auto.commit": False})
    ends = {}
    for part in partitions:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, part), timeout=30)
        if hi > lo:
            ends[part] = hi
    c.assign([TopicPartition(topic, p, 0) for p in ends])
    seen, deadline = set(), time.monotonic() + 120
    pos = {p: 0 for p in ends}
    while any(pos[p] < ends[p] for p in ends) and time.monotonic() < deadline:
        for m in c.consume(1000, timeout=1):
            if m.error() is None:
                seen.add((m.partition(), m.value()))
                pos[m.partition()] = m.offset() + 1
    c.close()
    return seen


def bench(exe, counts, runs, skip_kill_above):
    rows = []
    for n in counts:
        work = tempfile.mkdtemp(prefix=f"samsa-restart-{n}-")
        try:
            b = Broker(exe, work)
            b.start()
            create_topic(b.addr, "bench", n)
            data_parts = list(range(0, n, 10))
            acked = produce(b.addr, "bench", data_parts, 200, 1024)
            time.sleep(CHECKPOINT_MS / 1000 * 1.5)  # idle and checkpointed, as in the report
            for kind in ["clean"] * runs + (["kill -9"] * runs if n <= skip_kill_above else []):
                b.stop(kill=(kind == "kill -9"))
                ready = b.start()
                time.sleep(1.0)
                hwm, rss = b.memory_mb()
                lost = len(acked - consume_all(b.addr, "bench", data_parts))
                time.sleep(CHECKPOINT_MS / 1000 * 1.5)
                rows.append((n, kind, ready, hwm, rss, lost))
                print(f"  {n} partitions, after {kind}: ready {ready:.2f} s, VmHWM {hwm:.0f} MB, VmRSS {rss:.0f} MB, lost {lost}", flush=True)
            b.stop()
        finally:
            os.environ.get("KEEP") or shutil.rmtree(work, ignore_errors=True)
    print()
    print("| partitions | restart after | ready (s) | VmHWM (MB) | VmRSS (MB) | acked records lost |")
    print("|---:|---|---:|---:|---:|---:|")
    for n, kind, ready, hwm, rss, lost in rows:
        print(f"| {n} | {kind} | {ready:.2f} | {hwm:.0f} | {rss:.0f} | {lost} |")
    return 0 if all(r[5] == 0 for r in rows) else 1


def kill_loop(exe, cycles, partitions, per_cycle, max_ready):
    work = tempfile.mkdtemp(prefix="samsa-killloop-")
    try:
        b = Broker(exe, work)
        b.start()
        create_topic(b.addr, "loop", partitions)
        parts = list(range(partitions))
        acked, readies, failures = set(), [], []
        for cycle in range(cycles):
            acked |= produce(b.addr, "loop", parts, per_cycle, 200, tag=f"c{cycle}")
            b.stop(kill=True)  # right after the acknowledgements: nothing flushed or checkpointed on purpose
            ready = b.start()
            readies.append(ready)
            seen = consume_all(b.addr, "loop", parts)
            lost = len(acked - seen)
            print(f"  cycle {cycle + 1}: ready {ready:.2f} s, acknowledged {len(acked)}, lost {lost}", flush=True)
            if lost or ready > max_ready:
                failures.append(cycle + 1)
        b.stop()
        print(f"\nkill -9 loop: {cycles} cycles, {partitions} partitions, {len(acked)} acknowledged records; "
              f"ready max {max(readies):.2f} s, mean {sum(readies) / len(readies):.2f} s; failed cycles: {failures or 'none'}")
        print(f"{cycles - len(failures)} passed, {len(failures)} failed")
        return 1 if failures else 0
    finally:
        os.environ.get("KEEP") or shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    ap.add_argument("--mode", choices=["bench", "kill-loop"], default="bench")
    ap.add_argument("--partitions", default="40,1000")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--skip-kill-above", type=int, default=10**9, help="no kill -9 runs above this many partitions (the old code needed ~22 MB each)")
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--per-cycle", type=int, default=20)
    ap.add_argument("--max-ready", type=float, default=5.0)
    a = ap.parse_args()
    if a.mode == "bench":
        sys.exit(bench(a.exe, [int(x) for x in a.partitions.split(",")], a.runs, a.skip_kill_above))
    sys.exit(kill_loop(a.exe, a.cycles, int(a.partitions.split(",")[0]), a.per_cycle, a.max_ready))
