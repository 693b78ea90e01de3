#!/usr/bin/env bash
# Long fuzz run with AFL++ (Debian's afl++ package) through SharpFuzz: builds this project, copies
# the output to a work directory, instruments the Samsa assemblies there (the checked-in build is
# left alone) and runs afl-fuzz on each target given (default: all) for SECONDS each, in parallel.
# Usage: tests/Samsa.Fuzz.Tests/afl.sh [-s SECONDS] [-o WORKDIR] [TARGET...]
# Findings: WORKDIR/out-TARGET/default/{crashes,queue,fuzzer_stats}; reproduce a crash with
#   dotnet tests/Samsa.Fuzz.Tests/bin/Release/net10.0/Samsa.Fuzz.Tests.dll run TARGET FILE
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
seconds=1200
work=${TMPDIR:-/tmp}/samsa-afl
while getopts "s:o:" opt; do
  case $opt in s) seconds=$OPTARG ;; o) work=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(kafka-request kafka-handler produce-validator decompress jute-request keeper-server segment-recovery txnlog-recovery)

command -v afl-fuzz > /dev/null || { echo "afl-fuzz missing: apt-get install afl++" >&2; exit 1; }
tools="$work/tools"
[ -x "$tools/sharpfuzz" ] || dotnet tool install --tool-path "$tools" SharpFuzz.CommandLine --version 2.3.0
dotnet build "$here/Samsa.Fuzz.Tests.csproj" -c Release -nologo -v q
rm -rf "$work/bin" && mkdir -p "$work" && cp -r "$here/bin/Release/net10.0" "$work/bin"
for asm in Samsa.Kafka.Protocol Samsa.Kafka.Storage Samsa.Kafka.Broker Samsa.Keeper.Protocol Samsa.Keeper.Server Samsa.Net; do
  "$tools/sharpfuzz" "$work/bin/$asm.dll"
done

# dotnet is not an AFL-instrumented binary (SharpFuzz reports coverage from inside the runtime),
# and a shared machine has no CPU to pin or core pattern to change.
export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_FORKSRV_INIT_TMOUT=30000
for t in "${targets[@]}"; do
  afl-fuzz -i "$here/corpus/$t" -o "$work/out-$t" -t 10000 -m none -V "$seconds" \
    -- dotnet "$work/bin/Samsa.Fuzz.Tests.dll" afl "$t" > "$work/log-$t.txt" 2>&1 &
done
wait
for t in "${targets[@]}"; do
  s="$work/out-$t/default/fuzzer_stats"
  [ -f "$s" ] || { echo "$t: no stats (see $work/log-$t.txt)"; continue; }
  awk -v t="$t" -F' *: ' '/^(execs_done|execs_per_sec|corpus_count|bitmap_cvg|saved_crashes|saved_hangs|stability)/ {v[$1]=$2}
    END {printf "%s: %s execs (%s/s), %s paths, coverage %s, stability %s, crashes %s, hangs %s\n", t, v["execs_done"], v["execs_per_sec"], v["corpus_count"], v["bitmap_cvg"], v["stability"], v["saved_crashes"], v["saved_hangs"]}' "$s"
done
