#!/usr/bin/env bash
# Runs every test of the project: the .NET test projects (unit, state-machine, end-to-end with
# real clients) and then the compatibility suite. Installs what the tests need when missing
# (Debian packages, npm packages). Ends with one line: "N passed, N failed[, N skipped]".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

need_pkgs=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# Go, Debian's sarama sources and gcc (sarama's zstd binding is cgo) for SaramaClusterTests;
# python3-pure-sasl for kazoo's SASL tests; openssl for the secured compat cluster's
# certificates (compat/lib/secure_setup.py); clang and zlib1g-dev for the NativeAOT samsa that
# tests/dist/check-dist.sh publishes.
for p in zookeeper zookeeper-bin kcat librdkafka-dev python3-kafka python3-confluent-kafka python3-kazoo python3-pure-sasl \
         golang-go golang-github-shopify-sarama-dev gcc libc6-dev openssl clang zlib1g-dev chromium; do
  have_pkg "$p" || need_pkgs+=("$p")
done
# Java for Apache ZooKeeper, node/npm for kafkajs (NodeSource's nodejs bundles npm: check commands).
command -v java > /dev/null 2>&1 || need_pkgs+=(default-jre-headless)
command -v node > /dev/null 2>&1 || need_pkgs+=(nodejs)
command -v npm > /dev/null 2>&1 || need_pkgs+=(npm)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "== installing: ${need_pkgs[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null 2>&1 \
    || echo "warning: apt-get install failed for some of: ${need_pkgs[*]}"
fi

# kafkajs for the cluster tests (tests/Samsa.Cluster.Tests/clients) and the compat suite, from
# the committed lockfile.
if [ ! -d compat/kafkajs/node_modules/kafkajs ] && command -v npm > /dev/null 2>&1; then
  echo "== npm ci in compat/kafkajs"
  (cd compat/kafkajs && npm ci --no-audit --no-fund > /dev/null 2>&1) || echo "warning: npm ci failed in compat/kafkajs"
fi

# playwright-core for the web console's browser test (tests/console), from the committed lockfile.
if [ ! -d tests/console/node_modules/playwright-core ] && command -v npm > /dev/null 2>&1; then
  echo "== npm ci in tests/console"
  (cd tests/console && npm ci --no-audit --no-fund > /dev/null 2>&1) || echo "warning: npm ci failed in tests/console"
fi

results="$root/tests/.results"
rm -rf "$results"; mkdir -p "$results"

echo "== build"
if ! dotnet build Compat.sln -c Release -nologo -v q > "$results/build.log" 2>&1; then
  grep -E "error|Error" "$results/build.log" | head -40
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

echo "== dotnet test"
for proj in tests/*/*Tests.csproj; do
  name=$(basename "$proj" .csproj)
  echo "-- $name"
  timeout 1800 dotnet test "$proj" -c Release --no-build -nologo \
    --logger "trx;LogFileName=$name.trx" --results-directory "$results" 2>&1 | tail -15
done

# The Samsa.Testing packages as a user gets them: packed into a local feed and used by a test
# project outside the solution (samples/SamsaTestingSample; its trx joins the counts below).
extra_failed=0
if [ "${SKIP_SAMPLE:-}" != 1 ]; then
  echo "== samples/run-sample.sh"
  if ! SAMSA_SAMPLE_TRX_DIR="$results" timeout 900 samples/run-sample.sh "$results/samsa-feed" 2>&1 | tail -8; then
    [ -f "$results/SamsaTestingSample.trx" ] || { echo "sample failed before its tests ran"; extra_failed=1; }
  fi
fi

# The distribution as a user installs it (tests/dist/check-dist.sh): the samsa tool from a local
# feed and the self-contained single file, each running `samsa dev` for kcat. One PASS/FAIL line
# per artefact, counted below.
extra_passed=0
if [ "${SKIP_DIST:-}" != 1 ]; then
  echo "== tests/dist/check-dist.sh"
  timeout 2400 tests/dist/check-dist.sh > "$results/check-dist.log" 2>&1
  dist_rc=$?
  tail -6 "$results/check-dist.log"
  p=$(grep -c '^PASS ' "$results/check-dist.log"); f=$(grep -c '^FAIL ' "$results/check-dist.log")
  extra_passed=$((extra_passed + p)); extra_failed=$((extra_failed + f))
  if [ "$dist_rc" != 0 ] && [ "$f" = 0 ]; then echo "check-dist.sh failed (exit $dist_rc) before its checks"; extra_failed=$((extra_failed + 1)); fi
fi

# Keeper ensembles (tests/ensemble): the compat ZooKeeper scenarios through every member of mixed
# Keeper/Apache ensembles with observers (kazoo; the full matrix is `--target ensemble` of
# run-compat.sh), the fault test with its linearizability checker (leader killed and cut off, 3
# Keepers and 1 Keeper + 2 Apache), a rolling migration from Apache to Keepers and Samsa brokers
# on a Keeper ensemble losing one Keeper at a time. One PASS/FAIL line per script; all are counted.
if [ "${SKIP_ENSEMBLE:-}" != 1 ]; then
  echo "== tests/ensemble"
  samsa_bin="$root/src/Samsa.Host/bin/Release/net10.0/samsa"
  # counted=no: printed like the others but not in the final counts (a known open failure,
  # recorded in compat/FINDINGS.md, until it is fixed).
  run_ensemble() {
    local name=$1 counted=$2; shift 2
    local start=$SECONDS
    if timeout 900 /usr/bin/python3 "$@" > "$results/ensemble-$name.log" 2>&1; then
      echo "PASS ensemble $name ($((SECONDS - start)) s)"
      [ "$counted" = yes ] && extra_passed=$((extra_passed + 1))
    else
      tail -20 "$results/ensemble-$name.log"
      if [ "$counted" = yes ]; then
        echo "FAIL ensemble $name ($((SECONDS - start)) s; tests/.results/ensemble-$name.log)"; extra_failed=$((extra_failed + 1))
      else
        echo "REPORT-ONLY FAIL ensemble $name ($((SECONDS - start)) s; tests/.results/ensemble-$name.log; see compat/FINDINGS.md)"
      fi
    fi
  }
  run_ensemble matrix yes tests/ensemble/matrix.py --samsa "$samsa_bin" --slice ci --clients kazoo
  run_ensemble rolling yes tests/ensemble/rolling_migration.py --samsa "$samsa_bin" --mode datadir
  # Dynamic reconfiguration (add/remove members, /zookeeper/config, errors) on Keeper-only and mixed ensembles.
  run_ensemble reconfig yes tests/ensemble/reconfig.py --samsa "$samsa_bin"
  # Local sessions (upgrade on first ephemeral, EPHEMERALONLOCALSESSION) and read-only mode (quorum lost).
  run_ensemble sessions yes tests/ensemble/sessions_readonly.py --samsa "$samsa_bin" --ensembles keepers,1k2a,2a1k,keepers-noupgrade
  # Counted again since session 9 fixed the follower/leader race behind the proxies (compat/FINDINGS.md).
  run_ensemble faults yes tests/ensemble/fault_test.py --samsa "$samsa_bin" --ensembles keepers,1k2a --faults kill,cut --load-seconds 3
  # Pipelined load (50 creates in flight per client): a Keeper restarted under it must sync and serve
  # again, and a paused Keeper follower must keep every write it acknowledged (session 13's fixes).
  run_ensemble faults-burst yes tests/ensemble/fault_test.py --samsa "$samsa_bin" --ensembles keepers,1k2a-apache --faults kill,pause-follower --burst 50 --load-seconds 3
  # Samsa's brokers on a 3-Keeper ensemble: each Keeper killed in turn (leader first) under an
  # acks=all producer; no controller lost, every acknowledged record consumed.
  run_ensemble kafka yes tests/ensemble/kafka_on_ensemble.py --samsa "$samsa_bin"
fi

# The web console (issue #20) in headless Chromium against `samsa dev --brokers 3`: one PASS/FAIL
# line per check, "console: N passed, M failed" at the end; screenshots in tests/.results/console.
if [ "${SKIP_CONSOLE:-}" != 1 ]; then
  echo "== tests/console"
  timeout 600 node tests/console/console-test.mjs --samsa "$root/src/Samsa.Host/bin/Release/net10.0/samsa" > "$results/console.log" 2>&1
  console_rc=$?
  grep -E '^(FAIL|console:)' "$results/console.log" | tail -20
  p=$(grep -c '^PASS ' "$results/console.log"); f=$(grep -c '^FAIL ' "$results/console.log")
  extra_passed=$((extra_passed + p)); extra_failed=$((extra_failed + f))
  if [ "$console_rc" != 0 ] && [ "$f" = 0 ]; then echo "console test failed (exit $console_rc) before its checks"; extra_failed=$((extra_failed + 1)); fi
fi

compat_summary=""
if [ -x ./run-compat.sh ] && [ "${SKIP_COMPAT:-}" != 1 ]; then
  echo "== compat suite"
  timeout 2700 ./run-compat.sh --target both --report-only --lane-budget 900 2>&1 | tail -40
  [ -f compat/results/matrix.md ] && compat_summary="see compat/results/matrix.md"
fi

python3 - "$results" "$extra_failed" "$extra_passed" <<'PY'
import sys, glob, xml.etree.ElementTree as ET
passed = failed = skipped = 0
failed += int(sys.argv[2])
passed += int(sys.argv[3])
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
files = glob.glob(sys.argv[1] + "/**/*.trx", recursive=True)
for f in files:
    c = ET.parse(f).getroot().find("t:ResultSummary/t:Counters", ns)
    if c is None:
        failed += 1; continue
    passed += int(c.get("passed", 0))
    failed += int(c.get("failed", 0)) + int(c.get("error", 0)) + int(c.get("timeout", 0)) + int(c.get("aborted", 0))
    skipped += int(c.get("notExecuted", 0))
line = f"{passed} passed, {failed} failed"
if skipped: line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed or passed == 0 else 0)
PY
