#!/usr/bin/env bash
# Share coordinator reload (KIP-932, __share_group_state): N WriteShareGroupState updates, stop,
# restart, replay time per state partition and a read-back check; prints the figures.
# usage: tests/bench/share-state-reload.sh [--updates 10000] [--partitions 10]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
"$root/samsa" help >/dev/null 2>&1 || true   # builds the Release binary when sources changed
exec /usr/bin/python3 "$root/tests/bench/share_state_reload.py" --exe "$root/src/Samsa.Host/bin/Release/net10.0/samsa" "$@"
