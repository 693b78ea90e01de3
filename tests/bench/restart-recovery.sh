#!/usr/bin/env bash
# Broker restart after a clean stop and after kill -9 (issue 14): ready time until `kafka
# listening` and VmHWM / VmRSS, with 40 and 1,000 partitions (every tenth holding 200 records of
# 1 KiB, idle and checkpointed before the stop); prints a table. Uses the built `samsa broker`
# and python3-confluent-kafka (acks=all).
#
# usage: tests/bench/restart-recovery.sh [--partitions 40,1000] [--runs 1]
#        tests/bench/restart-recovery.sh --mode kill-loop [--partitions 50] [--cycles 20] [--max-ready 5]
#          (kill -9 right after acks=all produce, restart, every acknowledged record must be there;
#           closes with "N passed, M failed" over the cycles)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
"$root/samsa" help >/dev/null 2>&1 || true   # builds the Release binary when sources changed
exec /usr/bin/python3 "$root/tests/bench/restart_recovery.py" --exe "$root/src/Samsa.Host/bin/Release/net10.0/samsa" "$@"
