#!/usr/bin/env bash
# Client-independent produce/consume figures: librdkafka's own rdkafka_performance (the example
# program Debian ships in librdkafka-dev, built here against the system librdkafka 2.0.2) driving a
# `samsa broker` child. The broker's CPU seconds and peak RSS come from /proc/<pid>/stat and
# /proc/<pid>/status, as in `samsa perf`.
#
# usage: tests/bench/rdkafka-perf.sh [--size 1024] [--count 500000] [--acks 1|-1] [--codec none|lz4]
#        extra librdkafka producer settings: RDKAFKA_X="linger.ms=5 batch.size=65536"
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
size=1024 count=500000 acks=1 codec=none
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size="$2"; shift 2 ;;
    --count) count="$2"; shift 2 ;;
    --acks) acks="$2"; shift 2 ;;
    --codec) codec="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

src=/usr/share/doc/librdkafka-dev/examples/rdkafka_performance.c
if [ ! -f "$src" ]; then
  apt-get install -y --no-install-recommends librdkafka-dev >/dev/null
fi
work="$(mktemp -d /tmp/samsa-rdperf.XXXXXX)"
broker_pid=""
cleanup() { [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# The example includes librdkafka-internal headers (rd.h, rdtime.h) that the -dev package does
# not ship; tests/bench/rdkafka-shim provides the few helpers it uses (rd_clock, rd_ts_t, ...).
mkdir -p "$work/examples"
cp "$src" "$work/examples/"
cp "$root"/tests/bench/rdkafka-shim/*.h "$work/examples/"
mkdir -p "$work/src" && cp "$root/tests/bench/rdkafka-shim/rd.h" "$work/src/"
cc -O2 -I"$work/examples" -I/usr/include/librdkafka -o "$work/rdkafka_performance" "$work/examples/rdkafka_performance.c" -lrdkafka -lm

samsa="$root/samsa"
"$samsa" help >/dev/null 2>&1 || true   # builds the Release binary once
cat > "$work/server.properties" <<PROPS
broker.id=1
listeners=PLAINTEXT://127.0.0.1:0
log.dirs=$work/kafka
offsets.topic.replication.factor=1
num.partitions=1
PROPS
mkfifo "$work/out"
"$root/src/Samsa.Host/bin/Release/net10.0/samsa" broker --config "$work/server.properties" >"$work/out" 2>"$work/broker.log" &
broker_pid=$!
exec 3<"$work/out"
addr=""
while read -r line <&3; do
  case "$line" in "kafka listening on "*) addr="${line#kafka listening on }"; break ;; esac
done
[ -n "$addr" ] || { echo "broker did not start" >&2; cat "$work/broker.log" >&2; exit 1; }
cat <&3 >/dev/null &

cpu() { awk '{ s = $0; sub(/.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' "/proc/$broker_pid/stat"; }
hz=$(getconf CLK_TCK)
topic="rdperf-$$"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores; broker $addr (pid $broker_pid)"
x=()
for kv in ${RDKAFKA_X:-}; do x+=(-X "$kv"); done

c0=$(cpu)
"$work/rdkafka_performance" -P -t "$topic" -p 0 -b "$addr" -s "$size" -c "$count" -a "$acks" -z "$codec" -u -q "${x[@]}" 2>&1 | tail -4
c1=$(cpu)
"$work/rdkafka_performance" -C -t "$topic" -p 0 -b "$addr" -c "$count" -o beginning -u -q 2>&1 | tail -4
c2=$(cpu)
gb=$(awk -v n="$count" -v s="$size" 'BEGIN { print n * s / 1e9 }')
awk -v a="$c0" -v b="$c1" -v c="$c2" -v hz="$hz" -v gb="$gb" 'BEGIN {
  printf "broker CPU: produce %.2f s (%.2f s/GB), consume %.2f s (%.2f s/GB)\n", (b-a)/hz, (b-a)/hz/gb, (c-b)/hz, (c-b)/hz/gb }'
echo "broker peak RSS: $(awk '/VmHWM/ { printf "%.0f MiB", $2/1024 }' "/proc/$broker_pid/status")"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
