#!/usr/bin/env bash
# Side-by-side (issue #19, Keeper half): Debian's Apache ZooKeeper 3.8 and the Keeper (`samsa
# keeper`), each started fresh on loopback with the same zoo.cfg settings (standalone,
# forceSync=yes, default snapCount), both kept running for the whole run and driven by the same
# load, cell by cell, the servers taking turns (the first to go alternates per cell), so that the
# noise of a shared machine falls on both alike. The load is `samsa perf keeper`: phases create,
# exists with watches (fired by the setData phase), getData, setData, multi (check + setData),
# delete over REQUESTS znodes; cells: every VALUE size x SESSIONS count x INFLIGHT depth (1 = one
# request at a time per session, more = pipelined). Measured per server: time to ready (process
# start -> first answered ConnectRequest), ops/s and p50/p99 per phase and cell, the server's CPU
# time per request per cell (from /proc/PID/stat: the figure that the machine's other load
# disturbs least), RSS after the run and peak RSS (VmHWM). The load average is printed per cell.
#
# KEEPER=/path/to/samsa runs that binary as the Keeper (e.g. the NativeAOT one that ships, from
# `dotnet publish src/Samsa.Host -c Release -r linux-x64`); the load generator stays the build's.
# KEEPER_BEFORE=/path/to/another/samsa adds a third server, that build's Keeper, to every cell:
# the before/after figures of a change in one run.
#
# Usage: tests/bench/keeper-vs-zookeeper.sh
#   env: SIZES="100 1024" SESSIONS="1 32" INFLIGHT="1 16" REQUESTS=5000 SERIAL_REQUESTS=1000
#        (SERIAL_REQUESTS for the 1-session, 1-in-flight cells) WARMUP=3000 (znodes of an
#        unreported first run against each server) ZK_HEAP_MB=1000 KEEPER_BEFORE=
#        OUT=file (the markdown table is also written there)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
SIZES=${SIZES:-"100 1024"}
SESSIONS=${SESSIONS:-"1 32"}
INFLIGHT=${INFLIGHT:-"1 16"}
REQUESTS=${REQUESTS:-5000}
SERIAL_REQUESTS=${SERIAL_REQUESTS:-1000}
WARMUP=${WARMUP:-3000}
ZK_HEAP_MB=${ZK_HEAP_MB:-1000}   # zkEnv.sh's default server heap (ZK_SERVER_HEAP)
KEEPER_BEFORE=${KEEPER_BEFORE:-}
OUT=${OUT:-}
ZK_JAR=/usr/share/java/zookeeper.jar
OPS="create exists getData setData multi delete"

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
# ConnectRequests every 5 ms until one is answered. Prints "<pid> <ms from spawn to answer>" and
# leaves the server running (its own session: the launcher exits).
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

declare -A R PORT PID
# utime + stime of a process, in clock ticks (/proc/PID/stat fields 14 and 15)
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
servers=(zookeeper keeper)
[ -n "$KEEPER_BEFORE" ] && servers=(zookeeper keeper-before keeper)

start_server() { # name, port, command...
  local name=$1 port=$2; shift 2
  local out pid ready
  out=$(python3 "$work/launch.py" "$port" "$work/$name.log" "$@")
  read -r pid ready <<<"$out"
  pids+=("$pid"); PID[$name]=$pid; PORT[$name]=$port; R[$name.ready]=$ready
}

base_cfg() { # dataDir, port
  printf 'tickTime=2000\ndataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\nforceSync=yes\n' "$1" "$2"
}
for s in "${servers[@]}"; do
  port=$(free_port); mkdir -p "$work/$s-data"; base_cfg "$work/$s-data" "$port" > "$work/$s.cfg"
  case $s in
    zookeeper) start_server "$s" "$port" java -Xmx${ZK_HEAP_MB}m -cp "$ZK_JAR" org.apache.zookeeper.server.quorum.QuorumPeerMain "$work/$s.cfg" ;;
    keeper) start_server "$s" "$port" "${KEEPER:-$samsa}" keeper --config "$work/$s.cfg" ;;
    keeper-before) start_server "$s" "$port" "$KEEPER_BEFORE" keeper --config "$work/$s.cfg" ;;
  esac
done

# warm-up, not reported: ZooKeeper's JIT and the Keeper's tiered JIT see the same load first
for s in "${servers[@]}"; do
  "$samsa" perf keeper --target "127.0.0.1:${PORT[$s]}" --sessions 8 --requests "$WARMUP" --size 100 --inflight 16 > /dev/null 2>&1 || true
done

cells=()
for size in $SIZES; do for sess in $SESSIONS; do for infl in $INFLIGHT; do cells+=("$size/$sess/$infl"); done; done; done
n=0
for cell in "${cells[@]}"; do
  IFS=/ read -r size sess infl <<<"$cell"
  reqs=$REQUESTS
  [ "$sess" = 1 ] && [ "$infl" = 1 ] && reqs=$SERIAL_REQUESTS
  R[$cell.load]=$(cut -d' ' -f1 /proc/loadavg)
  # the first server alternates cell by cell
  order=("${servers[@]}")
  if [ $((n % 2)) = 1 ]; then order=(); for ((i=${#servers[@]}-1; i>=0; i--)); do order+=("${servers[$i]}"); done; fi
  n=$((n + 1))
  for s in "${order[@]}"; do
    c0=$(cpu_ticks "${PID[$s]}")
    "$samsa" perf keeper --target "127.0.0.1:${PORT[$s]}" --sessions "$sess" --requests "$reqs" --size "$size" \
      --inflight "$infl" > "$work/$s.perf" 2>&1 || { echo "load against $s ($cell) reported errors:" >&2; cat "$work/$s.perf" >&2; }
    while read -r op ops _ _ p50 _ _ p99 _ _ errs; do
      R[$s.$cell.$op.ops]=$ops; R[$s.$cell.$op.p50]=$p50; R[$s.$cell.$op.p99]=$p99; R[$s.$cell.$op.err]=$errs
    done < <(grep -E '^(create|exists|getData|setData|multi|delete) ' "$work/$s.perf")
    # the server's CPU time over the cell's requests (every phase, reqs each): robust where
    # wall-clock ops/s is not on a shared machine
    R[$s.$cell.cpu]=$(awk -v a="$c0" -v b="$(cpu_ticks "${PID[$s]}")" -v n="$((reqs * 6))" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { printf "%.0f", (b - a) / hz * 1e6 / n }')
    echo "cell ${size} B, ${sess} sessions, ${infl} in flight, ${reqs} znodes: $s done (load ${R[$cell.load]})" >&2
  done
done
for s in "${servers[@]}"; do
  R[$s.hwm]=$(awk '/^VmHWM:/ {printf "%.0f", $2/1024}' "/proc/${PID[$s]}/status")
  R[$s.rss]=$(awk '/^VmRSS:/ {printf "%.0f", $2/1024}' "/proc/${PID[$s]}/status")
done

ratio() { awk -v k="$1" -v z="$2" 'BEGIN { if (z + 0 == 0 || k == "") print "-"; else printf "%.2f", k / z }'; }
{
  echo "loopback, forceSync=yes, ZooKeeper -Xmx${ZK_HEAP_MB}m; $(nproc) cores shared with other builds (load average per cell below; figures are noisy); $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  if [ -n "$KEEPER_BEFORE" ]; then
    echo "| value B / sessions / in flight | op | ZK ops/s | Keeper before | Keeper | Keeper/ZK | ZK p50 / p99 ms | before p50 / p99 | Keeper p50 / p99 | load |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
  else
    echo "| value B / sessions / in flight | op | ZK ops/s | Keeper ops/s | Keeper/ZK | ZK p50 / p99 ms | Keeper p50 / p99 ms | load |"
    echo "|---|---|---|---|---|---|---|---|"
  fi
  for cell in "${cells[@]}"; do
    if [ -n "$KEEPER_BEFORE" ]; then
      echo "| $cell | server CPU µs/request | ${R[zookeeper.$cell.cpu]:-} | ${R[keeper-before.$cell.cpu]:-} | ${R[keeper.$cell.cpu]:-} | $(ratio "${R[keeper.$cell.cpu]:-}" "${R[zookeeper.$cell.cpu]:-}") | | | | ${R[$cell.load]} |"
    else
      echo "| $cell | server CPU µs/request | ${R[zookeeper.$cell.cpu]:-} | ${R[keeper.$cell.cpu]:-} | $(ratio "${R[keeper.$cell.cpu]:-}" "${R[zookeeper.$cell.cpu]:-}") | | | ${R[$cell.load]} |"
    fi
    for op in $OPS; do
      z=zookeeper k=keeper
      zo=${R[$z.$cell.$op.ops]:-} ko=${R[$k.$cell.$op.ops]:-}
      if [ -n "$KEEPER_BEFORE" ]; then
        b=keeper-before
        echo "| $cell | $op | $zo | ${R[$b.$cell.$op.ops]:-} | $ko | $(ratio "$ko" "$zo") | ${R[$z.$cell.$op.p50]:-} / ${R[$z.$cell.$op.p99]:-} | ${R[$b.$cell.$op.p50]:-} / ${R[$b.$cell.$op.p99]:-} | ${R[$k.$cell.$op.p50]:-} / ${R[$k.$cell.$op.p99]:-} | ${R[$cell.load]} |"
      else
        echo "| $cell | $op | $zo | $ko | $(ratio "$ko" "$zo") | ${R[$z.$cell.$op.p50]:-} / ${R[$z.$cell.$op.p99]:-} | ${R[$k.$cell.$op.p50]:-} / ${R[$k.$cell.$op.p99]:-} | ${R[$cell.load]} |"
      fi
    done
  done
  echo
  for s in "${servers[@]}"; do
    echo "- $s: ready ${R[$s.ready]} ms; RSS after the run ${R[$s.rss]} MiB, peak ${R[$s.hwm]} MiB"
  done
  echo "- Keeper/ZK peak RSS $(ratio "${R[keeper.hwm]}" "${R[zookeeper.hwm]}")"
  errs=0
  for s in "${servers[@]}"; do for cell in "${cells[@]}"; do for op in $OPS; do
    e=${R[$s.$cell.$op.err]:-0}; errs=$((errs + e))
  done; done; done
  echo "- request errors in all cells: $errs"
  # geometric means of the Keeper/ZK ratios: writes (create, setData, multi, delete), reads
  # (exists, getData)
  for kind in "create setData multi delete" "exists getData"; do
    prod=1 cnt=0 worst=""
    for cell in "${cells[@]}"; do for op in $kind; do
      r=$(ratio "${R[keeper.$cell.$op.ops]:-}" "${R[zookeeper.$cell.$op.ops]:-}")
      [ "$r" = - ] && continue
      prod=$(awk -v a="$prod" -v b="$r" 'BEGIN { print a * b }'); cnt=$((cnt + 1))
      worst=$(awk -v w="$worst" -v r="$r" -v c="$cell $op" 'BEGIN { if (w == "" || r + 0 < substr(w, 1, index(w, " ") - 1) + 0) print r " (" c ")"; else print w }')
    done; done
    [ "$cnt" = 0 ] && continue
    echo "- Keeper/ZK ops/s over $kind: geometric mean $(awk -v p="$prod" -v n="$cnt" 'BEGIN { printf "%.2f", p ^ (1 / n) }') over $cnt cells, lowest $worst"
  done
} | tee "$work/table.md"
[ -n "$OUT" ] && cp "$work/table.md" "$OUT"
exit 0
