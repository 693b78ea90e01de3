#!/usr/bin/env bash
# Side-by-side: Debian's Apache ZooKeeper 3.8 and the Keeper (`samsa keeper`), each started fresh
# on loopback with the same zoo.cfg settings (standalone, forceSync=yes, default snapCount), then
# driven by the same load: `samsa perf keeper` with SESSIONS sessions, VALUE-byte values,
# REQUESTS znodes per phase (create, getData, setData, delete), INFLIGHT requests pipelined per
# session. Measured per server: time to ready (process start -> first answered ConnectRequest),
# ops/s and p50/p99 latency per phase, and peak RSS (VmHWM of the server process after the load).
# Usage: tests/bench/keeper-vs-zookeeper.sh   (env: SESSIONS REQUESTS VALUE INFLIGHT ZK_HEAP_MB)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
SESSIONS=${SESSIONS:-32}
REQUESTS=${REQUESTS:-20000}
VALUE=${VALUE:-1024}
INFLIGHT=${INFLIGHT:-8}
ZK_HEAP_MB=${ZK_HEAP_MB:-1000}   # zkEnv.sh's default server heap (ZK_SERVER_HEAP)
ZK_JAR=/usr/share/java/zookeeper.jar

if [ ! -f "$ZK_JAR" ]; then
  apt-get install -y --no-install-recommends zookeeper >&2 || { apt-get update >&2 && apt-get install -y --no-install-recommends zookeeper >&2; }
fi
samsa="$root/src/Samsa.Host/bin/Release/net10.0/samsa"
if [ ! -x "$samsa" ] || [ -n "$(find "$root/src" "$root/protocol-specs" -newer "$samsa" \( -name '*.cs' -o -name '*.csproj' -o -name '*.jute' \) -print -quit 2>/dev/null)" ]; then
  dotnet build "$root/src/Samsa.Host/Samsa.Host.csproj" -c Release -nologo -v q >&2
fi

work="$(mktemp -d /tmp/keeper-vs-zk.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts the server command given after the port and log file, then sends ZooKeeper
# ConnectRequests every 5 ms until one is answered. Prints "<pid> <ms from spawn to answer>".
# The clock starts inside this launcher just before the spawn, so its own start-up is not counted.
cat > "$work/launch.py" <<'PY'
import os, socket, struct, subprocess, sys, time
port, log, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
req = struct.pack(">iqiqi", 0, 0, 30000, 0, 16) + b"\0" * 16
t0 = time.monotonic()
p = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
while time.monotonic() - t0 < 120:
    if p.poll() is not None:
        sys.exit("server exited with %d; see %s" % (p.returncode, log))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(struct.pack(">i", len(req)) + req)
            head = s.recv(4, socket.MSG_WAITALL)
            if len(head) == 4 and struct.unpack(">i", head)[0] >= 20:
                body = s.recv(struct.unpack(">i", head)[0], socket.MSG_WAITALL)
                if struct.unpack(">i", body[4:8])[0] > 0:   # negotiated session timeout
                    print(p.pid, round((time.monotonic() - t0) * 1000))
                    sys.exit(0)
    except OSError:
        pass
    time.sleep(0.005)
p.kill()
sys.exit("server not ready within 120 s; see " + log)
PY

declare -A R
run_one() { # name, then the server command
  local name=$1; shift
  local port=$1; shift
  local out pid ready
  out=$(python3 "$work/launch.py" "$port" "$work/$name.log" "$@")
  read -r pid ready <<<"$out"
  pids+=("$pid")
  R[$name.ready]=$ready
  "$samsa" perf keeper --target "127.0.0.1:$port" --sessions "$SESSIONS" --requests "$REQUESTS" \
    --size "$VALUE" --inflight "$INFLIGHT" > "$work/$name.perf" || { echo "load against $name reported errors:" >&2; cat "$work/$name.perf" >&2; }
  R[$name.rss]=$(awk '/^VmHWM:/ {printf "%.0f", $2/1024}' "/proc/$pid/status")
  while read -r op ops _ _ p50 _ _ p99 _ _ errs; do
    R[$name.$op.ops]=$ops; R[$name.$op.p50]=$p50; R[$name.$op.p99]=$p99; R[$name.$op.err]=$errs
  done < <(grep -E '^(create|getData|setData|delete) ' "$work/$name.perf")
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true
}

zkport=$(free_port)
mkdir -p "$work/zk-data" "$work/keeper-data"
cat > "$work/zk.cfg" <<CFG
tickTime=2000
dataDir=$work/zk-data
clientPort=$zkport
clientPortAddress=127.0.0.1
admin.enableServer=false
forceSync=yes
CFG
run_one zookeeper "$zkport" java -Xmx${ZK_HEAP_MB}m -cp "$ZK_JAR" org.apache.zookeeper.server.quorum.QuorumPeerMain "$work/zk.cfg"

kport=$(free_port)
sed -e "s#^dataDir=.*#dataDir=$work/keeper-data#" -e "s#^clientPort=.*#clientPort=$kport#" "$work/zk.cfg" > "$work/keeper.cfg"
run_one keeper "$kport" "$samsa" keeper --config "$work/keeper.cfg"

ratio() { awk -v k="$1" -v z="$2" 'BEGIN { if (z + 0 == 0) print "-"; else printf "%.2f", k / z }'; }
echo "loopback, $SESSIONS sessions, $VALUE-byte values, $REQUESTS znodes per phase, $INFLIGHT in flight per session, forceSync=yes; $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg)"
printf '%-22s %14s %14s %14s\n' metric "ZooKeeper 3.8" Keeper "Keeper/ZK"
row() { printf '%-22s %14s %14s %14s\n' "$1" "$2" "$3" "$(ratio "$3" "$2")"; }
row "ready (ms)" "${R[zookeeper.ready]}" "${R[keeper.ready]}"
for op in create setData getData delete; do
  row "$op ops/s" "${R[zookeeper.$op.ops]}" "${R[keeper.$op.ops]}"
  row "$op p50 (ms)" "${R[zookeeper.$op.p50]}" "${R[keeper.$op.p50]}"
  row "$op p99 (ms)" "${R[zookeeper.$op.p99]}" "${R[keeper.$op.p99]}"
done
row "peak RSS (MiB)" "${R[zookeeper.rss]}" "${R[keeper.rss]}"
errs="${R[zookeeper.create.err]}/${R[zookeeper.getData.err]}/${R[zookeeper.setData.err]}/${R[zookeeper.delete.err]} vs ${R[keeper.create.err]}/${R[keeper.getData.err]}/${R[keeper.setData.err]}/${R[keeper.delete.err]}"
echo "errors (create/getData/setData/delete): $errs"
echo "Keeper/ZK above 1 is better for ops/s, below 1 is better for ms and MiB"
