#!/usr/bin/env bash
# Distribution check (issue #18): packs the samsa .NET tool and the library packages into a local
# feed, installs the tool from that feed with `dotnet tool install --tool-path`, starts `samsa dev`
# from it and serves kcat (metadata, produce, consume); then the same with the self-contained
# single-file linux-x64 binary from `dotnet publish`. Prints one PASS/FAIL line per artefact, the
# time to `kafka listening` and the RSS of each, and exits non-zero when one fails.
#   tests/dist/check-dist.sh [--keep]      (--keep leaves the work directory for inspection)
#   tests/dist/check-dist.sh --binary PATH (only the samsa dev + kcat check, of a samsa already built)
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

# check NAME EXECUTABLE: samsa version, samsa dev, kcat -L / -P / -C against it, SIGTERM.
check() {
  local name=$1 exe=$2 data=$WORK/data-$1 out=$WORK/$1.out err=$WORK/$1.err
  local version
  version=$("$exe" version) || { echo "FAIL $name: samsa version exited $?"; FAILED=1; return; }
  echo "$name: $version"
  case "$version" in "samsa $VERSION "*) ;; *) echo "FAIL $name: version is not $VERSION"; FAILED=1; return;; esac
  local t0 t1 pid addr=""
  t0=$(date +%s%N)
  "$exe" dev --data "$data" --kafka-port 0 --zk-port 0 >"$out" 2>"$err" &
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
  kill -TERM "$pid"; wait "$pid" || true
  if [ "$got" != 100 ]; then echo "FAIL $name: consumed $got of 100 records"; cat "$WORK/$name.kcat"; FAILED=1; return; fi
  grep -q '"brokers":\[{"id":1' "$WORK/$name.meta" || { echo "FAIL $name: kcat -L shows no broker 1"; FAILED=1; return; }
  echo "PASS $name: ready in $(( (t1 - t0) / 1000000 )) ms (polled every 10 ms), RSS at ready $(( rss / 1024 )) MB, kcat -L/-P/-C (100 lz4 records) served"
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

echo "== self-contained single-file linux-x64"
dotnet publish src/Samsa.Host/Samsa.Host.csproj -c Release -r linux-x64 --self-contained -p:PublishSingleFile=true -nologo -v q \
  -o "$WORK/single" >"$WORK/publish.log" 2>&1 || { tail -30 "$WORK/publish.log"; exit 1; }
echo "single-file: $(ls -la "$WORK/single" | grep -c samsa) file(s) named samsa, $(du -m "$WORK/single/samsa" | cut -f1) MB; other files: $(ls "$WORK/single" | grep -v '^samsa$' | grep -v '\.pdb$' | tr '\n' ' ')"
check single-file "$WORK/single/samsa"

exit $FAILED
