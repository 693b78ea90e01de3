#!/usr/bin/env bash
# Issue 9 fault run: three `samsa broker` processes on an in-process Keeper (loopback only),
# RF=3, acks=all, min.insync.replicas=2; the partition leader is killed with SIGKILL and
# restarted in turn while a numbered sequence is produced. Prints records acknowledged, lost
# (must be 0), duplicated, failover times and RF=3 vs RF=1 throughput.
#   tests/replication-fault.sh [fault-seconds]   (default 60)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-60}"
report="$(mktemp)"
dotnet build "$root/src/Samsa.Host/Samsa.Host.csproj" -c Release -nologo -v q >&2
dotnet build "$root/tests/Samsa.Cluster.Tests/Samsa.Cluster.Tests.csproj" -nologo -v q >&2
SAMSA_FAULT_SECONDS="$seconds" SAMSA_FAULT_REPORT="$report" \
  dotnet test "$root/tests/Samsa.Cluster.Tests/Samsa.Cluster.Tests.csproj" --no-build \
  --filter "FullyQualifiedName~ReplicationFaultTests" --logger "console;verbosity=detailed" >&2 || status=$?
cat "$report"
rm -f "$report"
exit "${status:-0}"
