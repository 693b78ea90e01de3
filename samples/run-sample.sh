#!/usr/bin/env bash
# Packs Samsa.Testing and the Samsa libraries it depends on into a local NuGet feed, restores the
# out-of-solution sample (samples/SamsaTestingSample: xunit v2 + Confluent.Kafka 2.16) from it and
# runs its tests: a producer/consumer on a three-broker cluster whose leader is killed mid-stream.
# Prints the test's own figures (cluster start, whole test) and the wall time of each step.
#   samples/run-sample.sh [FEED_DIR]      (default /tmp/samsa-feed)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
feed="${1:-/tmp/samsa-feed}"
mkdir -p "$feed"; feed="$(cd "$feed" && pwd)"
# A version of its own per run, so the restore never takes a stale package from the NuGet cache.
version="0.1.0-local.$(date +%Y%m%d%H%M%S)"
packages="$(mktemp -d /tmp/samsa-sample-packages.XXXXXX)"
timing="$(mktemp /tmp/samsa-sample-timing.XXXXXX)"
trap 'rm -rf "$packages" "$timing"' EXIT
mkdir -p "$feed"

t0=$(date +%s.%N)
# Samsa.Testing's dependencies, each its own package (ProjectReference becomes a package dependency).
# One (incremental) build of the dependency tree, then each project packed from it; the run's
# version goes only into the packages and their dependency ranges, so the repository's build
# outputs stay as they are.
dotnet build "$repo/src/Samsa.Testing/Samsa.Testing.csproj" -c Release -nologo -v q 2>&1 | grep -E " error |rror\(s\)" || true
for p in Samsa.Net Samsa.Kafka.Protocol Samsa.Kafka.Storage Samsa.Keeper.Protocol Samsa.Keeper.Client Samsa.Keeper.Server Samsa.Kafka.Broker Samsa.Testing; do
  dotnet pack "$repo/src/$p/$p.csproj" -c Release -nologo -v q --no-build -o "$feed" -p:Version="$version" > "$packages/pack.log" 2>&1 || { tail -20 "$packages/pack.log"; exit 1; }
done
t1=$(date +%s.%N)
echo "packed Samsa.Testing $version and its dependencies into $feed in $(echo "$t1 - $t0" | bc) s"

cd "$here/SamsaTestingSample"
# The sample's own packages folder: what it uses comes from the feed and the gallery, not from the
# repository's build.
# nuget.config names the default feed; a feed given as argument replaces it in a copy.
config="$packages/nuget.config"
sed "s#value=\"/tmp/samsa-feed\"#value=\"$feed\"#" nuget.config > "$config"
NUGET_PACKAGES="$packages" dotnet restore -nologo -v q -p:SamsaTestingVersion="$version" --configfile "$config"
t2=$(date +%s.%N)
NUGET_PACKAGES="$packages" dotnet build -nologo -v q -c Release --no-restore -p:SamsaTestingVersion="$version" 2>&1 | grep -E "error|Warn|Elapsed" || true
t3=$(date +%s.%N)
echo "restored and built the sample in $(echo "$t3 - $t1" | bc) s"
# SAMSA_SAMPLE_TRX_DIR (tests/run-all.sh sets it): also write a trx there, so CI counts the sample's tests.
trx=()
if [ -n "${SAMSA_SAMPLE_TRX_DIR:-}" ]; then trx=(--logger "trx;LogFileName=SamsaTestingSample.trx" --results-directory "$SAMSA_SAMPLE_TRX_DIR"); fi
SAMSA_SAMPLE_TIMING="$timing" NUGET_PACKAGES="$packages" dotnet test -nologo -c Release --no-build -p:SamsaTestingVersion="$version" "${trx[@]}" 2>&1 | grep -E "Passed!|Failed|error|Total" || true
t4=$(date +%s.%N)
echo "dotnet test (runner start included) took $(echo "$t4 - $t3" | bc) s"
if [ -s "$timing" ]; then
  echo "leader-kill test: $(cat "$timing")"
else
  echo "leader-kill test did not pass (no figures written)"; exit 1
fi
