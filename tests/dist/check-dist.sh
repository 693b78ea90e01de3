#!/usr/bin/env bash
# Distribution check (issue #18): packs the samsa .NET tool and the library packages into a local
# feed, installs the tool from that feed with `dotnet tool install --tool-path`, starts `samsa dev`
# from it and serves kcat (metadata, produce, consume) and kazoo (the Keeper); then the same with
# the shipped linux-x64 file, the NativeAOT build of `dotnet publish -r linux-x64` (published with
# its trim/AOT warnings as errors), which also runs tests/dist/runtime-check.py (TLS, SASL SCRAM,
# ACLs, quotas, the four codecs, transactions, the Keeper's 4lw and AdminServer, the standalone
# JSON files, a 3-broker cluster); then the ReadyToRun single-file fallback. Prints one PASS/FAIL
# line per check, and the start-up of each artefact (tests/dist/dev-startup.py: median time to
# `kafka listening` and RSS over STARTUP_RUNS starts, default 5); exits non-zero when one fails.
#   tests/dist/check-dist.sh [--keep]      (--keep leaves the work directory for inspection)
#   tests/dist/check-dist.sh --binary PATH (only the samsa dev + kcat + kazoo check, of a samsa already built)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
KEEP=${1:-}
BINARY=
if [ "$KEEP" = "--binary" ]; then BINARY=$2; KEEP=; fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/samsa-dist.XXXXXX")
VERSION=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$ROOT/Directory.Build.props" | head -1)
FEED=$WORK/feed
FAILED=0
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
  [ "$KEEP" = "--keep" ] && echo "work directory: $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

# check NAME EXECUTABLE: samsa version, samsa dev, kcat -L / -P / -C and kazoo against it, SIGTERM.
check() {
  local name=$1 exe=$2 data=$WORK/data-$1 out=$WORK/$1.out err=$WORK/$1.err
  local version
  version=$("$exe" version) || { echo "FAIL $name: samsa version exited $?"; FAILED=1; return; }
  echo "$name: $version"
  case "$version" in "samsa $VERSION "*) ;; *) echo "FAIL $name: version is not $VERSION"; FAILED=1; return;; esac
  local t0 t1 pid addr="" zkport
  zkport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  t0=$(date +%s%N)
  # created here: the loop below reads $out before the background child may have opened it
  : >"$out"; : >"$err"
  "$exe" dev --data "$data" --kafka-port 0 --zk-port "$zkport" >"$out" 2>"$err" &
  pid=$!; PIDS+=("$pid")
  for _ in $(seq 1 600); do
    addr=$(sed -n 's/^kafka listening on //p' "$out" | head -1)
    [ -n "$addr" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
  done
  t1=$(date +%s%N)
  if [ -z "$addr" ]; then echo "FAIL $name: samsa dev did not print 'kafka listening on'"; cat "$err"; FAILED=1; return; fi
  local rss
  rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
  local topic=dist-$name
  if ! kcat -b "$addr" -L -J >"$WORK/$name.meta" 2>"$WORK/$name.kcat"; then echo "FAIL $name: kcat -L"; FAILED=1; fi
  seq 1 100 | sed 's/^/record-/' | kcat -b "$addr" -P -t "$topic" -z lz4 2>>"$WORK/$name.kcat" || { echo "FAIL $name: kcat -P"; FAILED=1; }
  local got
  got=$(timeout 60 kcat -b "$addr" -C -t "$topic" -o beginning -e -q 2>>"$WORK/$name.kcat" | wc -l)
  # The Keeper beside the broker, as a ZooKeeper client sees it (kazoo): the broker's registration
  # and a znode written and read back.
  local zk
  zk=$(timeout 60 /usr/bin/python3 -c '
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1]); zk.start(timeout=15)
zk.create("/dist-check", b"hello")
print(zk.get("/dist-check")[0].decode(), ",".join(sorted(zk.get_children("/brokers/ids"))))
zk.stop()' "127.0.0.1:$zkport" 2>>"$WORK/$name.kcat") || true
  kill -TERM "$pid"; wait "$pid" || true
  if [ "$zk" != "hello 1" ]; then echo "FAIL $name: kazoo against the Keeper got '$zk'"; tail -5 "$WORK/$name.kcat"; FAILED=1; return; fi
  if [ "$got" != 100 ]; then echo "FAIL $name: consumed $got of 100 records"; cat "$WORK/$name.kcat"; FAILED=1; return; fi
  grep -q '"brokers":\[{"id":1' "$WORK/$name.meta" || { echo "FAIL $name: kcat -L shows no broker 1"; FAILED=1; return; }
  echo "PASS $name: ready in $(( (t1 - t0) / 1000000 )) ms (polled every 10 ms), RSS at ready $(( rss / 1024 )) MB, kcat -L/-P/-C (100 lz4 records) and kazoo served"
}

command -v kcat >/dev/null || { echo "kcat is needed (apt-get install kcat)"; exit 2; }
cd "$ROOT"
if [ -n "$BINARY" ]; then
  BINARY=$(cd "$(dirname "$BINARY")" && pwd)/$(basename "$BINARY")
  check binary "$BINARY"
  exit $FAILED
fi
echo "== packing $VERSION into $FEED"
dotnet pack src/Samsa.Host/Samsa.Host.csproj -c Release -nologo -v q -o "$FEED" >"$WORK/pack.log" 2>&1 || { cat "$WORK/pack.log"; exit 1; }
for p in Samsa.Net Samsa.Kafka.Protocol Samsa.Kafka.Storage Samsa.Kafka.Broker Samsa.Keeper.Protocol Samsa.Keeper.Client Samsa.Keeper.Server Samsa.Testing; do
  dotnet pack "src/$p/$p.csproj" -c Release -nologo -v q -o "$FEED" >>"$WORK/pack.log" 2>&1 || { tail -20 "$WORK/pack.log"; exit 1; }
done
ls "$FEED"

echo "== dotnet tool install from the local feed"
# A packages folder of its own: the same version number must never come from an older pack in
# the user-wide NuGet cache.
NUGET_PACKAGES="$WORK/nuget" dotnet tool install --tool-path "$WORK/tool" --add-source "$FEED" Samsa.Tool --version "$VERSION" >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; exit 1; }
check tool "$WORK/tool/samsa"

echo "== NativeAOT single file linux-x64 (shipped): dotnet publish -r linux-x64"
# NativeAOT needs clang and zlib's headers (Debian: clang, zlib1g-dev) beside the SDK.
command -v clang >/dev/null || { echo "FAIL aot: clang is needed for the NativeAOT build (apt-get install clang zlib1g-dev)"; exit 1; }
dotnet publish src/Samsa.Host/Samsa.Host.csproj -c Release -r linux-x64 -nologo -v q \
  -o "$WORK/aot" >"$WORK/publish-aot.log" 2>&1 || { echo "FAIL aot: publish (trim/AOT warnings are errors)"; grep -E 'warning|error' "$WORK/publish-aot.log" | sort -u | head -40; exit 1; }
echo "aot: $(du -m "$WORK/aot/samsa" | cut -f1) MB; other files: $(ls "$WORK/aot" | grep -v '^samsa$' | grep -v '\.dbg$' | grep -v '\.pdb$' | grep -v '\.xml$' | tr '\n' ' ')"
file "$WORK/aot/samsa" | grep -q ELF || { echo "FAIL aot: not a native executable"; FAILED=1; }
check aot "$WORK/aot/samsa"
/usr/bin/python3 tests/dist/runtime-check.py --exe "$WORK/aot/samsa" 2>"$WORK/runtime-check.err" | sed 's/^\(PASS\|FAIL\) /\1 aot runtime: /' | tee "$WORK/runtime-check.out"
grep -q '^runtime-check: [0-9]* passed, 0 failed' "$WORK/runtime-check.out" || FAILED=1

echo "== ReadyToRun single file linux-x64 (fallback): dotnet publish -r linux-x64 -p:PublishSingleFile=true"
dotnet publish src/Samsa.Host/Samsa.Host.csproj -c Release -r linux-x64 -p:PublishSingleFile=true -nologo -v q \
  -o "$WORK/single" >"$WORK/publish.log" 2>&1 || { tail -30 "$WORK/publish.log"; exit 1; }
echo "single-file: $(ls -la "$WORK/single" | grep -c samsa) file(s) named samsa, $(du -m "$WORK/single/samsa" | cut -f1) MB; other files: $(ls "$WORK/single" | grep -v '^samsa$' | grep -v '\.pdb$' | tr '\n' ' ')"
check single-file "$WORK/single/samsa"

echo "== samsa dev start-up (one broker + Keeper), median of ${STARTUP_RUNS:-5}; load average now $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine's load moves the wall-clock figures, the CPU figures much less)"
for kind in tool:"$WORK/tool/samsa" aot:"$WORK/aot/samsa" single-file:"$WORK/single/samsa"; do
  printf '%-12s ' "${kind%%:*}"
  /usr/bin/python3 tests/dist/dev-startup.py --runs "${STARTUP_RUNS:-5}" --exe "${kind#*:}" | tail -1
done

exit $FAILED
