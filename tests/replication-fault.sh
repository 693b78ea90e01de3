#!/usr/bin/env bash
# Issue 9 fault run: three `samsa broker` processes on an in-process Keeper (loopback only), each
# behind TCP proxies (its listener and its ZooKeeper link); RF=3, acks=all, min.insync.replicas=2.
# While a numbered sequence is produced, the partition leader is in turn killed with SIGKILL and
# restarted, paused with SIGSTOP past its session and replica.lag.time.max.ms then resumed, and
# cut off the network (ZooKeeper, replication, clients) then reconnected. Prints records
# acknowledged, lost (must be 0), duplicated, out of order, failover and election times per fault
# kind, what the old leader answered an acks=all probe, and RF=3 vs RF=1 throughput.
# The CI runs the same test for 30 s (one fault of each kind).
#   tests/replication-fault.sh [fault-seconds]   (default 120)
#   SAMSA_FAULT_BROKER_LOG=file keeps the brokers' output.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-120}"
report="$(mktemp)"
dotnet build "$root/src/Samsa.Host/Samsa.Host.csproj" -c Release -nologo -v q >&2
dotnet build "$root/tests/Samsa.Cluster.Tests/Samsa.Cluster.Tests.csproj" -nologo -v q >&2
SAMSA_FAULT_SECONDS="$seconds" SAMSA_FAULT_REPORT="$report" \
  dotnet test "$root/tests/Samsa.Cluster.Tests/Samsa.Cluster.Tests.csproj" --no-build \
  --filter "FullyQualifiedName~ReplicationFaultTests" --logger "console;verbosity=detailed" >&2 || status=$?
cat "$report"
rm -f "$report"
exit "${status:-0}"
