"""Kafka scenarios through kcat 1.7.1 (Debian kcat, librdkafka 2.0.2), the command-line
producer/consumer. kcat cannot create topics or set record timestamps, so its topics come
from the broker's auto-creation (upstream default auto.create.topics.enable=true,
num.partitions=1) and there is no keyed-partitioning, compaction or admin-write scenario.
On the cluster target a topic is created first by compat/lib/cluster.py (setup, not kcat), with
the assignment that keeps its leader off the bootstrap broker; auto-creation would place it
anywhere.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from scenario import ADDR, Fail, check, main, scenario  # noqa: E402
from kafka_common import BOOTSTRAP_ID, BROKERS, CLUSTER, CODECS, cluster_ctl, coordinator_of, topic  # noqa: E402

KCAT = os.environ.get("KCAT", "kcat")


def kcat(*args, stdin=None, timeout=15):
    cmd = [KCAT, "-b", ADDR, "-m", "10", "-X", "broker.address.family=v4", *args]
    print("  $ " + " ".join(cmd))
    r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)
    out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    if err.strip():
        print("  stderr: " + err.strip()[:2000])
    return r.returncode, out, err


_created = set()


def produce(t, lines, *extra, key_delim=True):
    if CLUSTER and t not in _created:
        cluster_ctl("create-topic", t, "1")
        _created.add(t)
    args = ["-P", "-t", t, "-p", "0", *extra]
    if key_delim:
        args += ["-K", ":"]
    rc, out, err = kcat(*args, stdin=("\n".join(lines) + "\n").encode())
    check(rc == 0 and "ERROR" not in err, f"kcat -P failed ({rc}): {err.strip()[-300:]}")


def consume(t, fmt, *extra, count=None, partition="0"):
    args = ["-C", "-t", t, "-o", "beginning", "-e", "-f", fmt, *extra]
    if partition is not None:
        args += ["-p", partition]
    if count is not None:
        args += ["-c", str(count)]
    rc, out, err = kcat(*args)
    check(rc == 0, f"kcat -C failed ({rc}): {err.strip()[-300:]}")
    return out


def wait_topic(t):
    """Auto-created topics may need a moment before their leader is known."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rc, out, _ = kcat("-L", "-J", "-t", t)
        if rc == 0:
            try:
                md = json.loads(out)
                parts = md["topics"][0]["partitions"]
                if parts and all(p["leader"] >= 0 for p in parts):
                    return md
            except (ValueError, KeyError, IndexError):
                pass
        time.sleep(0.3)
    raise Fail(f"topic {t} has no leader after auto-creation")


def produce_consume(codec):
    def run():
        t = topic(f"codec-{codec}")
        values = [f"{codec}-{i}-" + ("x" * 20000 if i == 25 else "abc" * (i % 7)) for i in range(50)]
        produce(t, [f"k{i}:{v}" for i, v in enumerate(values)], "-z", codec)
        out = consume(t, "%k:%s:%o\n", count=50)
        got = out.splitlines()
        check(len(got) == 50, f"consumed {len(got)} of 50")
        check(got == [f"k{i}:{v}:{i}" for i, v in enumerate(values)], "keys, values or offsets differ")
    return run


for _codec in CODECS:
    scenario(f"produce-consume-{_codec}")(produce_consume(_codec))


@scenario("partition-ordering")
def partition_ordering():
    t = topic("ordering")
    values = [f"{i:05d}" for i in range(300)]
    produce(t, values, "-X", "batch.num.messages=7", key_delim=False)
    got = consume(t, "%o %s\n", count=300).splitlines()
    check(got == [f"{i} {v}" for i, v in enumerate(values)], "records came back out of order or with gaps")


@scenario("record-headers")
def record_headers():
    t = topic("headers")
    produce(t, ["k:v"], "-H", "a=1", "-H", "b=", "-H", "a=2")
    got = consume(t, "%h|%k|%s\n", count=1).strip()
    check(got == "a=1,b=,a=2|k|v", f"headers came back as {got!r}")


@scenario("timestamps")
def timestamps():
    t = topic("timestamps")
    before = int(time.time() * 1000)
    produce(t, [f"t{i}" for i in range(5)], key_delim=False)
    after = int(time.time() * 1000)
    ts = [int(x) for x in consume(t, "%T\n", count=5).split()]
    check(len(ts) == 5, f"{len(ts)} timestamps")
    check(all(before - 1000 <= x <= after + 1000 for x in ts), f"timestamps {ts} outside [{before}, {after}]")
    check(ts == sorted(ts), f"timestamps go backwards: {ts}")


@scenario("offset-lookup")
def offset_lookup():
    t = topic("offset-lookup")
    produce(t, ["a0", "a1", "a2"], key_delim=False)
    time.sleep(0.05)
    produce(t, ["b0", "b1"], key_delim=False)
    lines = consume(t, "%o %T %s\n", count=5).splitlines()
    check(len(lines) == 5, f"consumed {len(lines)}")
    ts_b0 = int(lines[3].split()[1])
    rc, out, err = kcat("-Q", "-t", f"{t}:0:{ts_b0}")
    check(rc == 0, f"kcat -Q failed: {err.strip()[-200:]}")
    check(f"[0] offset 3" in out, f"offset for the first b record's timestamp: {out.strip()!r}")
    rc, out, err = kcat("-Q", "-t", f"{t}:0:0")
    check("[0] offset 0" in out, f"offset for timestamp 0: {out.strip()!r}")


@scenario("consumer-group")
def consumer_group():
    t = topic("group")
    produce(t, [f"v{i}" for i in range(30)], key_delim=False)
    wait_topic(t)
    rc, out, err = kcat("-G", topic("group-g"), "-o", "beginning", "-e", "-f", "%p %o %s\n",
                        "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=1000", t, timeout=20)
    got = out.splitlines()
    check(len(got) == 30, f"group member consumed {len(got)} of 30 (rc {rc})")
    check(got == [f"0 {i} v{i}" for i in range(30)], "records differ")


@scenario("offset-commit-fetch")
def offset_commit_fetch():
    t = topic("commit")
    g = topic("commit-g")
    produce(t, [f"first-{i}" for i in range(10)], key_delim=False)
    wait_topic(t)
    # auto.offset.reset rather than -o: an explicit start offset would override the commit.
    group_args = ["-G", g, "-X", "auto.offset.reset=earliest", "-e", "-f", "%o %s\n", "-X", "session.timeout.ms=6000",
                  "-X", "heartbeat.interval.ms=1000", "-X", "enable.auto.commit=true", t]
    rc, out, err = kcat(*group_args, timeout=20)
    check(len(out.splitlines()) == 10, f"first group read got {len(out.splitlines())} of 10")
    produce(t, [f"second-{i}" for i in range(5)], key_delim=False)
    rc, out, err = kcat(*group_args, timeout=20)
    got = out.splitlines()
    check(got == [f"{10 + i} second-{i}" for i in range(5)], f"after rejoining, the group read {got[:12]} (committed offsets not honoured)")


@scenario("group-via-non-coordinator")
def group_via_non_coordinator():
    # On the cluster target the bootstrap broker is not the group's coordinator (the harness
    # checks it): a group member reads, commits, leaves; a second run resumes after the commit.
    t = topic("via-noncoord")
    g = topic("via-noncoord-g")
    produce(t, [f"v{i}" for i in range(20)], key_delim=False)
    wait_topic(t)
    group_args = ["-G", g, "-X", "auto.offset.reset=earliest", "-e", "-f", "%o %s\n", "-X", "session.timeout.ms=6000",
                  "-X", "heartbeat.interval.ms=1000", "-X", "enable.auto.commit=true", t]
    rc, out, err = kcat(*group_args, timeout=20)
    check(len(out.splitlines()) == 20, f"the group read {len(out.splitlines())} of 20 (rc {rc})")
    produce(t, ["w0", "w1"], key_delim=False)
    rc, out, err = kcat(*group_args, timeout=20)
    check(out.splitlines() == ["20 w0", "21 w1"], f"after rejoining, the group read {out.splitlines()[:5]}")
    if CLUSTER:
        check(coordinator_of(g) != BOOTSTRAP_ID, f"the bootstrap broker {BOOTSTRAP_ID} coordinates the group")


@scenario("admin-describe-cluster")
def admin_describe_cluster():
    t = topic("metadata")
    produce(t, ["x"], key_delim=False)
    md = wait_topic(t)
    check(len(md["brokers"]) == BROKERS and all(b["name"] for b in md["brokers"]), f"brokers {md.get('brokers')}, want {BROKERS}")
    tp = md["topics"][0]
    check(tp["topic"] == t and len(tp["partitions"]) >= 1, f"topic {tp}")
    p0 = tp["partitions"][0]
    check(p0["replicas"] and p0["isrs"], f"partition 0 replicas {p0.get('replicas')} isrs {p0.get('isrs')}")


@scenario("idempotence")
def idempotence():
    t = topic("idempotent")
    values = [f"i{i:04d}" for i in range(200)]
    produce(t, values, "-X", "enable.idempotence=true", "-X", "batch.num.messages=10", key_delim=False)
    got = consume(t, "%s\n", count=200).splitlines()
    check(got == values, f"idempotent records duplicated, lost or reordered ({len(got)} read)")


@scenario("transactions-commit")
def transactions_commit():
    t = topic("txn-commit")
    produce(t, [f"in-txn-{i}" for i in range(5)], "-X", f"transactional.id={topic('kcat-txid')}", key_delim=False)
    got = consume(t, "%s\n", "-X", "isolation.level=read_committed", count=5).splitlines()
    check(got == [f"in-txn-{i}" for i in range(5)], f"read_committed saw {got}")


# ---------------------------------------------------------------- security (compat/lib/security.py)
import security  # noqa: E402
from security import CA_FILE, OTHER_CA_FILE, SASL_SSL_ADDR, SSL_ADDR  # noqa: E402


def kcat_secured(addr, protocol, *args, mechanism=None, user=None, password=None, ca=None, stdin=None, timeout=20):
    """kcat with the -X settings a user writes for a secured listener."""
    x = ["-X", f"security.protocol={protocol}", "-X", f"ssl.ca.location={ca or CA_FILE}"]
    if mechanism:
        x += ["-X", f"sasl.mechanisms={mechanism}", "-X", f"sasl.username={user}", "-X", f"sasl.password={password}"]
    cmd = [KCAT, "-b", addr, "-m", "10", "-X", "broker.address.family=v4", *x, *args]
    print("  $ " + " ".join(c if "password=" not in c else c.split("=")[0] + "=***" for c in cmd))
    r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)
    out, err = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
    if err.strip():
        print("  stderr: " + err.strip()[:2000])
    return r.returncode, out, err


def _secured_topic(name):
    """A topic made on the PLAINTEXT listener (User:ANONYMOUS is a super user there)."""
    t = topic(name) + "-" + os.urandom(3).hex()
    produce(t, ["seed:0"])
    wait_topic(t)
    return t


def _secured_round_trip(addr, protocol, name, **kw):
    t = _secured_topic(name)
    lines = [f"k{i}:{name}-{i}" for i in range(20)]
    rc, _, err = kcat_secured(addr, protocol, "-P", "-t", t, "-p", "0", "-K", ":", stdin=("\n".join(lines) + "\n").encode(), **kw)
    check(rc == 0 and "ERROR" not in err, f"secured kcat -P failed ({rc}): {err.strip()[-300:]}")
    rc, out, err = kcat_secured(addr, protocol, "-C", "-t", t, "-p", "0", "-o", "beginning", "-e", "-f", "%k:%s\\n", **kw)
    check(rc == 0, f"secured kcat -C failed ({rc}): {err.strip()[-300:]}")
    got = out.splitlines()
    check(got == ["seed:0"] + lines, f"read back {len(got)} lines; expected the seed and {len(lines)} records in order")


@scenario("sec-tls-produce-consume")
def sec_tls_produce_consume():
    security.require(tls=True)
    _secured_round_trip(SSL_ADDR, "SSL", "sec-tls")


@scenario("sec-tls-untrusted-ca")
def sec_tls_untrusted_ca():
    security.require(tls=True)
    rc, out, err = kcat_secured(SSL_ADDR, "SSL", "-L", ca=OTHER_CA_FILE, timeout=20)
    check(rc != 0, "kcat -L succeeded against a broker whose CA it does not trust")
    check("SSL" in err or "certificate" in err, f"expected an SSL handshake error, got: {err.strip()[-200:]}")


@scenario("sec-sasl-scram-sha-512")
def sec_sasl_scram_sha_512():
    security.require(sasl=True)
    _secured_round_trip(SASL_SSL_ADDR, "SASL_SSL", "sec-scram", mechanism="SCRAM-SHA-512",
                        user=security.ADMIN_USER, password=security.ADMIN_PASSWORD)


@scenario("sec-sasl-plain")
def sec_sasl_plain():
    security.require(sasl=True)
    _secured_round_trip(SASL_SSL_ADDR, "SASL_SSL", "sec-plain", mechanism="PLAIN",
                        user=security.ADMIN_USER, password=security.ADMIN_PASSWORD)


@scenario("sec-sasl-wrong-password")
def sec_sasl_wrong_password():
    security.require(sasl=True)
    rc, out, err = kcat_secured(SASL_SSL_ADDR, "SASL_SSL", "-L", mechanism="SCRAM-SHA-256", user=security.USER,
                                password="not-" + security.PASSWORD, timeout=20)
    check(rc != 0, "kcat -L succeeded with a wrong password")
    check("uthentication" in err, f"expected an authentication error, got: {err.strip()[-200:]}")


@scenario("sec-acl-topic")
def sec_acl_topic():
    security.require(sasl=True)
    t = _secured_topic("sec-acl")
    kw = dict(mechanism="SCRAM-SHA-256", user=security.USER, password=security.PASSWORD)
    try:
        rc, _, err = kcat_secured(SASL_SSL_ADDR, "SASL_SSL", "-P", "-t", t, "-p", "0", "-X", "message.timeout.ms=6000",
                                  stdin=b"denied\n", **kw)
        check("authoriz" in err.lower(), f"write without an ACL: expected an authorization error, got rc={rc}: {err.strip()[-200:]}")
        security.grant(security.USER, "TOPIC", t, ["WRITE", "READ"])
        deadline = time.monotonic() + 20
        while True:
            rc, _, err = kcat_secured(SASL_SSL_ADDR, "SASL_SSL", "-P", "-t", t, "-p", "0", "-X", "message.timeout.ms=6000",
                                      stdin=b"allowed\n", **kw)
            if rc == 0 and "ERROR" not in err:
                break
            check(time.monotonic() < deadline, f"after granting WRITE the write is still refused: {err.strip()[-200:]}")
            time.sleep(0.5)
        rc, out, err = kcat_secured(SASL_SSL_ADDR, "SASL_SSL", "-C", "-t", t, "-p", "0", "-o", "beginning", "-e", **kw)
        check(rc == 0 and "allowed" in out.splitlines(), f"reading with READ granted failed ({rc}): {err.strip()[-200:]}")
    finally:
        security.revoke_all(security.USER, t)


if __name__ == "__main__":
    sys.exit(main())
