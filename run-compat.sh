#!/usr/bin/env bash
# Samsa compatibility suite: real, independent Kafka and ZooKeeper clients run the same
# scenarios against Samsa and against upstream servers; a matrix says who passes what.
#
#   ./run-compat.sh [--target all|samsa,cluster,upstream|ensemble] [--kafka HOST:PORT] [--zookeeper HOST:PORT]
#                   [--only CLIENT,...] [--report-only] [--timeout SECONDS] [--no-install]
#                   [--samsa-bin PATH]
#
#   --target T             which servers: a comma list of samsa (one `samsa dev` broker), cluster
#                          (a Samsa Keeper and 3 brokers, RF=3, min.insync.replicas=2, clients
#                          bootstrapped at a broker that leads and coordinates nothing they use;
#                          Kafka clients only) and upstream; `all` or `both` (default): all three.
#   --target ensemble      on its own, not part of `all`: mixed Keeper / Apache ZooKeeper 3.8
#                          ensembles (tests/ensemble/matrix.py), the ZooKeeper clients' scenarios
#                          through every member; COMPAT_ENSEMBLE_SLICE=ci (default, ~8 min) or full;
#                          the table goes to results/ensemble-matrix.txt; always report-only.
#   --kafka HOST:PORT      an upstream Apache Kafka to compare with; without it, one is started in
#                          Docker through Testcontainers.Kafka (compat/upstream-kafka) where a
#                          Docker engine answers, else the upstream Kafka column says why not
#                          ("no Docker engine").
#   --zookeeper HOST:PORT  an upstream ZooKeeper to use instead of starting Debian's.
#   --only a,b             run only these clients (names as in compat/, e.g. kazoo,zkcli).
#   --report-only          always exit 0 once results are written (CI before the broker exists).
#   --timeout S            per-scenario timeout (default 25 s).
#   --lane-budget S        wall-time budget of each lane (target x Kafka/ZooKeeper, default 360 s;
#                          the cluster lane gets three times as much);
#                          scenarios left when it is spent fail as "not run".
#   --samsa-bin PATH       run this samsa executable instead of building src/Samsa.Host.
#   --no-secure            start the Samsa targets without security (no sec-* scenarios). By
#                          default `samsa dev --secure` and the cluster target add SSL and SASL_SSL
#                          listeners, SCRAM users and the ACL authorizer (compat/lib/security.py);
#                          the cluster's brokers replicate over a SASL_SSL listener.
#
# Output: compat/results/{matrix.md,matrix.html,junit.xml,results.tsv,logs/}.
# Exit status: 1 when Samsa fails a scenario that upstream passes or that has no upstream
# to compare with; 0 otherwise (and always 0 with --report-only).
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COMPAT="$ROOT/compat"
RESULTS="$COMPAT/results"
WORK="$COMPAT/.work"

TARGET=all
UP_KAFKA=""
UP_ZK=""
ONLY=""
REPORT_ONLY=0
SCEN_TIMEOUT=25
LANE_BUDGET=360
INSTALL=1
SAMSA_BIN=""
SECURE=1

KAFKA_CLIENTS="kcat kafka-python confluent-kafka-python kafkajs confluent-kafka-dotnet confluent-kafka-dotnet-216 platformatic-kafka kafkats"
ZK_CLIENTS="zkcli cli_mt kazoo node-zookeeper-client samsa-keeper-client"

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --target) TARGET="$2"; shift 2 ;;
    --kafka) UP_KAFKA="$2"; shift 2 ;;
    --zookeeper) UP_ZK="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    --report-only) REPORT_ONLY=1; shift ;;
    --timeout) SCEN_TIMEOUT="$2"; shift 2 ;;
    --lane-budget) LANE_BUDGET="$2"; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --samsa-bin) SAMSA_BIN="$2"; shift 2 ;;
    --no-secure) SECURE=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run-compat: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$TARGET" in all|both) TARGETS="samsa cluster upstream" ;; *) TARGETS="${TARGET//,/ }" ;; esac
for t in $TARGETS; do
  case "$t" in samsa|cluster|upstream) ;;
    ensemble) [ "$TARGETS" = ensemble ] || { echo "run-compat: --target ensemble runs on its own" >&2; exit 2; } ;;
    *) echo "run-compat: --target takes all, both, ensemble or a comma list of samsa, cluster, upstream" >&2; exit 2 ;; esac
done
has_target() { case " $TARGETS " in *" $1 "*) return 0 ;; esac; return 1; }

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

selected() { # is client $1 selected by --only?
  [ -z "$ONLY" ] && return 0
  case ",$ONLY," in *",$1,"*) return 0 ;; esac
  return 1
}

CLIENTS=""
for c in $KAFKA_CLIENTS $ZK_CLIENTS; do selected "$c" && CLIENTS="$CLIENTS $c"; done
[ -n "$CLIENTS" ] || { echo "run-compat: --only selects no known client ($KAFKA_CLIENTS $ZK_CLIENTS)" >&2; exit 2; }
kind_of() { case " $KAFKA_CLIENTS " in *" $1 "*) echo kafka ;; *) echo zk ;; esac; }

START_TS=$(date +%s)
rm -rf "$RESULTS" "$WORK"
mkdir -p "$RESULTS/logs" "$WORK"
RUN_ID="r$(date +%s)"
TSV="$RESULTS/results.tsv"
: > "$TSV"

if [ "$TARGETS" = ensemble ]; then
  # Mixed Keeper / Apache ZooKeeper ensembles (issue #17): report-only, its own table.
  if [ -z "$SAMSA_BIN" ]; then
    log "building src/Samsa.Host"
    dotnet build "$ROOT/src/Samsa.Host/Samsa.Host.csproj" -c Release -v q -nologo > "$RESULTS/logs/build-samsa.log" 2>&1 \
      || { log "samsa did not build (results/logs/build-samsa.log)"; exit 0; }
    SAMSA_BIN="$ROOT/src/Samsa.Host/bin/Release/net10.0/samsa"
  fi
  ens_clients=""
  for c in kazoo zkcli cli_mt node-zookeeper-client; do [ -n "$ONLY" ] && ! selected "$c" && continue; ens_clients="$ens_clients,$c"; done
  ens_args=(--samsa "$SAMSA_BIN" --slice "${COMPAT_ENSEMBLE_SLICE:-ci}" --tsv "$RESULTS/ensemble-matrix.tsv")
  [ -n "$ONLY" ] && ens_args+=(--clients "${ens_clients#,}")
  log "mixed ensembles: tests/ensemble/matrix.py ${ens_args[*]}"
  /usr/bin/python3 "$ROOT/tests/ensemble/matrix.py" "${ens_args[@]}" > "$RESULTS/ensemble-matrix.txt" 2> "$RESULTS/logs/ensemble-matrix.log"
  log "ensemble matrix exit $? in $(( $(date +%s) - START_TS ))s; table in compat/results/ensemble-matrix.txt"
  cat "$RESULTS/ensemble-matrix.txt"
  exit 0
fi

PIDS_TO_STOP=()
CLUSTER_DIR="$WORK/cluster"
cleanup() {
  # The cluster target's processes (pid files in $CLUSTER_DIR, brokers restarted by scenarios too).
  [ -d "$CLUSTER_DIR" ] && /usr/bin/python3 "$COMPAT/lib/cluster.py" --dir "$CLUSTER_DIR" down 2>/dev/null
  for p in "${PIDS_TO_STOP[@]}"; do
    kill "$p" 2>/dev/null
  done
  for p in "${PIDS_TO_STOP[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.3; done
    kill -9 "$p" 2>/dev/null
  done
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- installing the clients
need_apt=()
need_pkg() { # need_pkg PACKAGE: queue a Debian package that is not installed yet
  case " ${need_apt[*]-} " in *" $1 "*) return ;; esac
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' || need_apt+=("$1")
}
need_cmd() { # need_cmd COMMAND PACKAGE: a tool that may come from elsewhere (NodeSource's nodejs bundles npm)
  command -v "$1" > /dev/null 2>&1 || need_pkg "$2"
}
if [ "$INSTALL" = 1 ]; then
  need_pkg zookeeper   # the upstream ZooKeeper server and zkCli.sh
  need_cmd openssl openssl       # the secured cluster target's certificates (compat/lib/secure_setup.py)
  need_pkg python3-kazoo         # ... and its SCRAM users, written into ZooKeeper
  need_pkg python3-kafka         # ... and the ACLs the sec-* scenarios grant (compat/lib/security.py)
  need_cmd java default-jre-headless
  for c in $CLIENTS; do
    case "$c" in
      kcat) need_pkg kcat ;;
      kafka-python) need_pkg python3-kafka; need_pkg python3-snappy; need_pkg python3-lz4; need_pkg python3-zstandard ;;
      confluent-kafka-python) need_pkg python3-confluent-kafka ;;
      confluent-kafka-dotnet) need_pkg librdkafka-dev ;;
      kafkajs|platformatic-kafka|kafkats|node-zookeeper-client) need_cmd node nodejs; need_cmd npm npm ;;
      zkcli) need_pkg zookeeper ;;
      cli_mt) need_pkg zookeeper-bin ;;
      kazoo) need_pkg python3-kazoo ;;
    esac
  done
  if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -q && apt-get install -y --no-install-recommends "${need_apt[@]}"; } \
      > "$RESULTS/logs/apt-get.log" 2>&1 || log "apt-get failed (see results/logs/apt-get.log); continuing with what is there"
  fi
  for c in kafkajs platformatic-kafka kafkats node-zookeeper-client; do
    if selected "$c" && [ ! -d "$COMPAT/$c/node_modules" ]; then
      log "npm ci in compat/$c"
      (cd "$COMPAT/$c" && npm ci --no-audit --no-fund) > "$RESULTS/logs/npm-$c.log" 2>&1 \
        || log "npm ci failed in compat/$c (see results/logs/npm-$c.log)"
    fi
  done
fi
if selected confluent-kafka-dotnet; then
  log "building compat/confluent-kafka-dotnet"
  dotnet build "$COMPAT/confluent-kafka-dotnet/ConfluentKafkaCompat.csproj" -c Release -v q -nologo \
    > "$RESULTS/logs/build-confluent-kafka-dotnet.log" 2>&1 || log "confluent-kafka-dotnet build failed (see results/logs)"
fi
if selected confluent-kafka-dotnet-216; then
  # Confluent.Kafka 2.16 with its own librdkafka 2.16 (NuGet librdkafka.redist): nothing from apt.
  log "building compat/confluent-kafka-dotnet-216"
  dotnet build "$COMPAT/confluent-kafka-dotnet-216/ConfluentKafka216Compat.csproj" -c Release -v q -nologo \
    > "$RESULTS/logs/build-confluent-kafka-dotnet-216.log" 2>&1 || log "confluent-kafka-dotnet-216 build failed (see results/logs)"
fi

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_open() { # port_open HOST:PORT — does something accept TCP connections there?
  timeout 2 bash -c "exec 3<>/dev/tcp/${1%:*}/${1##*:}" 2>/dev/null
}

need_kafka=0; need_zk=0
for c in $CLIENTS; do [ "$(kind_of "$c")" = kafka ] && need_kafka=1 || need_zk=1; done

# ---------------------------------------------------------------- upstream servers
UPSTREAM_ZK_ADDR=""; UPSTREAM_ZK_WHY=""
UPSTREAM_KAFKA_ADDR=""; UPSTREAM_KAFKA_WHY=""
if has_target upstream; then
  if [ "$need_zk" = 1 ]; then
    if [ -n "$UP_ZK" ]; then
      if port_open "$UP_ZK"; then UPSTREAM_ZK_ADDR="$UP_ZK"; else UPSTREAM_ZK_WHY="no upstream ZooKeeper answers at $UP_ZK"; fi
    elif [ -f /usr/share/java/zookeeper.jar ]; then
      ZKP=$(free_port); ZKDIR="$WORK/upstream-zk"; mkdir -p "$ZKDIR/data"
      cat > "$ZKDIR/zoo.cfg" <<EOF
tickTime=2000
dataDir=$ZKDIR/data
clientPort=$ZKP
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=*
EOF
      # extendedTypesEnabled: TTL nodes are refused without it (ZOOKEEPER-2608); the
      # create-ttl scenarios need it.
      java -Xmx256m -Dzookeeper.extendedTypesEnabled=true \
        -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar \
        -Dlog4j.configuration=file:/etc/zookeeper/conf_example/log4j.properties -Dzookeeper.root.logger=INFO,CONSOLE \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$ZKDIR/zoo.cfg" > "$RESULTS/logs/upstream-zookeeper.log" 2>&1 &
      PIDS_TO_STOP+=($!)
      for _ in $(seq 1 60); do
        if [ "$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$ZKP; printf ruok >&3; cat <&3" 2>/dev/null)" = imok ]; then
          UPSTREAM_ZK_ADDR="127.0.0.1:$ZKP"; break
        fi
        sleep 0.5
      done
      [ -n "$UPSTREAM_ZK_ADDR" ] && log "upstream ZooKeeper 3.8 (Debian) on $UPSTREAM_ZK_ADDR" \
        || UPSTREAM_ZK_WHY="Debian's ZooKeeper did not answer ruok within 30 s (results/logs/upstream-zookeeper.log)"
    else
      UPSTREAM_ZK_WHY="no upstream ZooKeeper: /usr/share/java/zookeeper.jar missing and no --zookeeper given"
    fi
  fi
  if [ "$need_kafka" = 1 ]; then
    if [ -z "$UP_KAFKA" ]; then
      # No --kafka: an upstream broker in Docker through Testcontainers.Kafka 4.17
      # (compat/upstream-kafka), where a Docker engine answers.
      docker_sock="/var/run/docker.sock"; docker_local=1
      case "${DOCKER_HOST:-}" in unix://*) docker_sock="${DOCKER_HOST#unix://}" ;; "") ;; *) docker_local=0 ;; esac
      if [ "$docker_local" = 1 ] && [ ! -S "$docker_sock" ]; then
        UPSTREAM_KAFKA_WHY="no upstream Kafka: no Docker engine ($docker_sock does not exist) and no --kafka given"
      elif ! dotnet build "$COMPAT/upstream-kafka" -c Release -v q -nologo > "$RESULTS/logs/build-upstream-kafka.log" 2>&1; then
        UPSTREAM_KAFKA_WHY="no upstream Kafka: compat/upstream-kafka did not build (logs/build-upstream-kafka.log)"
      else
        log "starting upstream Kafka in Docker (Testcontainers.Kafka)"
        "$COMPAT/upstream-kafka/bin/Release/net10.0/upstream-kafka" < <(sleep infinity) \
          > "$WORK/upstream-kafka.out" 2> "$RESULTS/logs/upstream-kafka.log" &
        PIDS_TO_STOP+=($!); up_pid=$!
        for _ in $(seq 1 360); do
          UPSTREAM_KAFKA_ADDR=$(sed -n 's/^bootstrap //p' "$WORK/upstream-kafka.out" | head -1)
          [ -n "$UPSTREAM_KAFKA_ADDR" ] && break
          kill -0 "$up_pid" 2>/dev/null || break
          sleep 0.5
        done
        if [ -n "$UPSTREAM_KAFKA_ADDR" ]; then log "upstream Kafka (Docker) on $UPSTREAM_KAFKA_ADDR"
        else UPSTREAM_KAFKA_WHY="no upstream Kafka: $(tail -1 "$RESULTS/logs/upstream-kafka.log" 2>/dev/null || echo 'the container did not start within 180 s')"; fi
      fi
    elif port_open "$UP_KAFKA"; then UPSTREAM_KAFKA_ADDR="$UP_KAFKA"
    else UPSTREAM_KAFKA_WHY="no upstream (nothing answers at $UP_KAFKA)"; fi
  fi
fi

# ---------------------------------------------------------------- Samsa
SAMSA_KAFKA_ADDR=""; SAMSA_KAFKA_WHY=""
SAMSA_ZK_ADDR=""; SAMSA_ZK_WHY=""
CLUSTER_KAFKA_ADDR=""; CLUSTER_KAFKA_WHY=""; CLUSTER_PID=""; CLUSTER_BOOTSTRAP_ID=""; CLUSTER_LEADERS=""
if has_target samsa || { has_target cluster && [ "$need_kafka" = 1 ]; }; then
  SAMSA_LOG="$RESULTS/logs/samsa.log"
  if [ -z "$SAMSA_BIN" ]; then
    log "building src/Samsa.Host"
    if dotnet build "$ROOT/src/Samsa.Host/Samsa.Host.csproj" -c Release -v q -nologo > "$RESULTS/logs/build-samsa.log" 2>&1; then
      SAMSA_BIN="$ROOT/src/Samsa.Host/bin/Release/net10.0/samsa"
    else
      SAMSA_KAFKA_WHY="samsa did not build (logs/build-samsa.log)"; SAMSA_ZK_WHY="$SAMSA_KAFKA_WHY"
    fi
  fi
  if [ -n "$SAMSA_BIN" ] && [ ! -x "$SAMSA_BIN" ]; then
    SAMSA_KAFKA_WHY="samsa executable not found at $SAMSA_BIN"; SAMSA_ZK_WHY="$SAMSA_KAFKA_WHY"
  fi
  CLUSTER_KAFKA_WHY="$SAMSA_KAFKA_WHY"
  if [ -n "$SAMSA_BIN" ] && [ -x "$SAMSA_BIN" ] && has_target cluster && [ "$need_kafka" = 1 ]; then
    # Starts in the background (a few seconds) while `samsa dev` starts.
    log "starting the cluster target: a Samsa Keeper and 3 brokers (compat/lib/cluster.py)"
    secure_flag=""; [ "$SECURE" = 1 ] && secure_flag="--secure"
    /usr/bin/python3 "$COMPAT/lib/cluster.py" --dir "$CLUSTER_DIR" up --samsa "$SAMSA_BIN" --brokers 3 --logs "$RESULTS/logs" $secure_flag \
      > "$WORK/cluster-up.out" 2> "$RESULTS/logs/cluster-up.log" &
    CLUSTER_PID=$!
  fi
  if [ -n "$SAMSA_BIN" ] && [ -x "$SAMSA_BIN" ] && has_target samsa; then
    KP=$(free_port); QP=$(free_port)
    mkdir -p "$WORK/samsa-data"
    secure_flag=""; [ "$SECURE" = 1 ] && secure_flag="--secure"
    log "starting samsa dev --kafka-port $KP --zk-port $QP $secure_flag"
    "$SAMSA_BIN" dev --host 127.0.0.1 --kafka-port "$KP" --zk-port "$QP" --data "$WORK/samsa-data" $secure_flag > "$SAMSA_LOG" 2>&1 &
    SAMSA_PID=$!
    PIDS_TO_STOP+=("$SAMSA_PID")
    # Wait for both "... listening on HOST:PORT" lines (the CLI contract), at most 60 s.
    for _ in $(seq 1 120); do
      [ -z "$SAMSA_KAFKA_ADDR" ] && SAMSA_KAFKA_ADDR=$(sed -n 's/.*kafka listening on \([0-9.]*:[0-9]*\).*/\1/p' "$SAMSA_LOG" | head -1)
      [ -z "$SAMSA_ZK_ADDR" ] && SAMSA_ZK_ADDR=$(sed -n 's/.*keeper listening on \([0-9.]*:[0-9]*\).*/\1/p' "$SAMSA_LOG" | head -1)
      [ -n "$SAMSA_KAFKA_ADDR" ] && [ -n "$SAMSA_ZK_ADDR" ] && break
      kill -0 "$SAMSA_PID" 2>/dev/null || break
      sleep 0.5
    done
    if ! kill -0 "$SAMSA_PID" 2>/dev/null; then
      wait "$SAMSA_PID"; rc=$?
      why="samsa dev exited (status $rc) before listening: $(grep -v '^\s*$' "$SAMSA_LOG" | tail -1 | cut -c1-160)"
      [ -z "$SAMSA_KAFKA_ADDR" ] && SAMSA_KAFKA_WHY="$why"
      [ -z "$SAMSA_ZK_ADDR" ] && SAMSA_ZK_WHY="$why"
    fi
    [ -z "$SAMSA_KAFKA_ADDR" ] && [ -z "$SAMSA_KAFKA_WHY" ] && SAMSA_KAFKA_WHY="samsa printed no 'kafka listening on' line within 60 s"
    [ -z "$SAMSA_ZK_ADDR" ] && [ -z "$SAMSA_ZK_WHY" ] && SAMSA_ZK_WHY="samsa printed no 'keeper listening on' line within 60 s"
    log "samsa: kafka=${SAMSA_KAFKA_ADDR:-($SAMSA_KAFKA_WHY)} keeper=${SAMSA_ZK_ADDR:-($SAMSA_ZK_WHY)}"
    if [ "$SECURE" = 1 ] && [ -n "$SAMSA_KAFKA_ADDR" ]; then
      # `samsa dev --secure` prints its SSL and SASL_SSL listeners; the dev users and CA are
      # documented in src/Samsa.Host/DevSecure.cs (compat/lib/security.py says what scenarios do).
      for _ in $(seq 1 20); do grep -q 'kafka SASL_SSL listening on' "$SAMSA_LOG" && break; sleep 0.5; done
      ssl_addr=$(sed -n 's/.*kafka SSL listening on \([0-9.]*:[0-9]*\).*/\1/p' "$SAMSA_LOG" | head -1)
      sasl_addr=$(sed -n 's/.*kafka SASL_SSL listening on \([0-9.]*:[0-9]*\).*/\1/p' "$SAMSA_LOG" | head -1)
      if [ -n "$ssl_addr" ] && [ -n "$sasl_addr" ]; then
        printf '%s\n' "COMPAT_SSL_ADDR=$ssl_addr" "COMPAT_SASL_SSL_ADDR=$sasl_addr" "COMPAT_CA_FILE=$WORK/samsa-data/tls/ca.pem" \
          COMPAT_ADMIN_USER=admin COMPAT_ADMIN_PASSWORD=admin-secret COMPAT_USER=alice COMPAT_PASSWORD=alice-secret > "$WORK/secure-env-samsa"
        log "samsa: SSL=$ssl_addr SASL_SSL=$sasl_addr"
      else
        log "samsa: no SSL/SASL_SSL listening lines; sec-* scenarios will be skipped"
      fi
    fi
  fi
  if [ -n "$CLUSTER_PID" ]; then
    if wait "$CLUSTER_PID"; then
      CLUSTER_KAFKA_ADDR=$(tail -1 "$WORK/cluster-up.out")
      CLUSTER_BOOTSTRAP_ID=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bootstrap"])' "$CLUSTER_DIR/cluster.json")
      CLUSTER_LEADERS=$(/usr/bin/python3 -c 'import json,sys; i=json.load(open(sys.argv[1])); print(",".join(b for b in sorted(i["brokers"]) if int(b) != i["bootstrap"]))' "$CLUSTER_DIR/cluster.json")
      log "cluster: bootstrap broker $CLUSTER_BOOTSTRAP_ID at $CLUSTER_KAFKA_ADDR; partitions and coordinators on brokers $CLUSTER_LEADERS"
      # The secured listeners of the bootstrap broker, for the sec-* scenarios (KEY=VALUE lines).
      /usr/bin/python3 -c 'import json,sys; e=json.load(open(sys.argv[1])).get("secure_env",{}); print("\n".join(f"{k}={v}" for k,v in e.items()))' \
        "$CLUSTER_DIR/cluster.json" > "$WORK/secure-env-cluster"
    else
      CLUSTER_KAFKA_WHY="the cluster did not start: $(tail -1 "$RESULTS/logs/cluster-up.log" | cut -c1-200)"
      log "cluster: $CLUSTER_KAFKA_WHY"
    fi
  fi
fi

# ---------------------------------------------------------------- running scenarios
runner_of() { echo "$COMPAT/$1/run"; }

record() { # record TARGET CLIENT KIND SCENARIO STATUS SECONDS LOG TRANSCRIPT REASON
  local reason="${9//$'\t'/ }"; reason="${reason//$'\n'/ }"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$reason" >> "$TSV"
}

# A hanging server must not eat the time budget: after BREAKER scenarios in a row time out
# in one lane (target x Kafka/ZooKeeper), the rest of that lane is marked failed, not run.
BREAKER=4
consecutive=0
lane_started=0
run_client() { # run_client TARGET CLIENT ADDR WHY
  local target=$1 client=$2 addr=$3 why=$4 kind runner scenarios s logrel logf tr t0 rc line status reason
  kind=$(kind_of "$client"); runner=$(runner_of "$client")
  if [ ! -x "$runner" ]; then
    # samsa-keeper-client's runner arrives with Samsa.Keeper.Client's own branch.
    record "$target" "$client" "$kind" "*" SKIP 0 "" "" "no runner at compat/$client/run yet"; return
  fi
  consecutive=0  # the time-out breaker counts per client: one client's hangs say little about the next
  if ! scenarios=$(COMPAT_TARGET="$target" "$runner" --list 2> "$RESULTS/logs/$target-$client.list.err"); then
    record "$target" "$client" "$kind" "*" FAIL 0 "logs/$target-$client.list.err" "" "runner --list failed"; return
  fi
  [ -n "$scenarios" ] || { record "$target" "$client" "$kind" "*" SKIP 0 "" "" "$(head -c 200 "$RESULTS/logs/$target-$client.list.err")"; return; }
  mkdir -p "$RESULTS/logs/$target/$client"
  for s in $scenarios; do
    logrel="logs/$target/$client/$s.log"; logf="$RESULTS/$logrel"
    tr="$RESULTS/logs/$target/$client/$s.transcript"
    if [ -z "$addr" ]; then
      if [ "$target" = upstream ] && [ "${why#no upstream}" != "$why" ]; then
        record "$target" "$client" "$kind" "$s" NOUP 0 "" "" "$why"
      else
        record "$target" "$client" "$kind" "$s" FAIL 0 "" "" "$why"
      fi
      continue
    fi
    # The cluster lane runs every Kafka scenario against three broker processes, with a harness
    # check and topic clean-up after each: it gets three times the budget.
    budget=$LANE_BUDGET; [ "$target" = cluster ] && budget=$(( LANE_BUDGET * 3 ))
    if [ $(( $(date +%s) - lane_started )) -ge "$budget" ]; then
      record "$target" "$client" "$kind" "$s" FAIL 0 "" "" "not run: this lane's ${budget}s budget was spent"; continue
    fi
    if [ "$consecutive" -ge "$BREAKER" ]; then
      record "$target" "$client" "$kind" "$s" FAIL 0 "" "" "not run: $BREAKER scenarios in a row timed out against this server"; continue
    fi
    if ! port_open "$addr"; then
      record "$target" "$client" "$kind" "$s" FAIL 0 "" "" "server at $addr no longer accepts connections"; continue
    fi
    # coordinator-failover waits for a ZooKeeper session to expire and a broker to restart; a
    # KIP-848 group moves partitions only at heartbeats (group.consumer.heartbeat.interval.ms,
    # 5 s by default), a few of them per kip848-* scenario.
    local limit=$SCEN_TIMEOUT
    # share-state-restart restarts a broker (cluster) or its own `samsa dev` twice over.
    case "$s" in coordinator-failover|kip848-*|share-state-restart) limit=$((SCEN_TIMEOUT * 2)) ;; esac
    t0=$(date +%s.%N)
    local secenv=()
    [ -s "$WORK/secure-env-$target" ] && mapfile -t secenv < "$WORK/secure-env-$target"
    env ${secenv[@]+"${secenv[@]}"} COMPAT_TARGET="$target" COMPAT_ADDR="$addr" COMPAT_PREFIX="compat-$client-$RUN_ID" COMPAT_RUN_ID="$RUN_ID" \
      COMPAT_TRANSCRIPT="$tr" COMPAT_TIMEOUT="$limit" \
      COMPAT_CLUSTER_DIR="$CLUSTER_DIR" COMPAT_BOOTSTRAP_ID="$CLUSTER_BOOTSTRAP_ID" COMPAT_LEADERS="$CLUSTER_LEADERS" \
      COMPAT_SAMSA_BIN="$SAMSA_BIN" \
      timeout -k 3 "$limit" "$runner" "$s" > "$logf" 2>&1 < /dev/null
    rc=$?
    local dt; dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
    line=$(grep -E "^(PASS|FAIL|SKIP) $s(:|\$)" "$logf" | tail -1)
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
      status=FAIL; reason="timed out after ${limit}s"; consecutive=$((consecutive + 1))
    elif [ -n "$line" ]; then
      consecutive=0
      status=${line%% *}; reason=${line#* }; reason=${reason#"$s"}; reason=${reason#: }
      [ "$status" = PASS ] && [ "$rc" != 0 ] && { status=FAIL; reason="reported PASS but exited with status $rc"; }
    else
      consecutive=0; status=FAIL; reason="runner exited with status $rc and no result line: $(grep -v '^\s*$' "$logf" | tail -1 | cut -c1-200)"
    fi
    if [ "$target" = cluster ]; then
      # The cluster target's claim, checked from the brokers after every scenario: the bootstrap
      # broker led none of its partitions and coordinated none of its groups or transactions.
      # A broker a scenario killed (and did not restart, e.g. on a time-out) is started first.
      local verdict
      verdict=$(/usr/bin/python3 "$COMPAT/lib/cluster.py" --dir "$CLUSTER_DIR" ensure-up 2>&1 &&
                /usr/bin/python3 "$COMPAT/lib/cluster.py" --dir "$CLUSTER_DIR" check --delete --prefix "compat-$client-$RUN_ID" 2>&1)
      local vrc=$?
      printf '\n[harness] %s\n' "$verdict" >> "$logf"
      if [ "$vrc" != 0 ]; then
        reason="$(echo "$verdict" | tail -1 | cut -c1-400) [scenario: $status${reason:+ $reason}]"
        status=HARNESS
      fi
    fi
    [ -s "$tr" ] || tr=""
    record "$target" "$client" "$kind" "$s" "$status" "$dt" "$logrel" "${tr:+${tr#"$RESULTS/"}}" "$reason"
    printf '  %-8s %-22s %-9s %-34s %s\n' "$status" "$client" "$target" "$s" "${reason:0:100}" >&2
  done
}

run_lane() { # run_lane TARGET KIND — every selected client of that kind, one after the other
  local target=$1 lane=$2 c addr why
  lane_started=$(date +%s)
  for c in $CLIENTS; do
    [ "$(kind_of "$c")" = "$lane" ] || continue
    if [ "$lane" = kafka ]; then
      case "$target" in
        samsa) addr=$SAMSA_KAFKA_ADDR; why=$SAMSA_KAFKA_WHY ;;
        cluster) addr=$CLUSTER_KAFKA_ADDR; why=$CLUSTER_KAFKA_WHY ;;
        *) addr=$UPSTREAM_KAFKA_ADDR; why=$UPSTREAM_KAFKA_WHY ;;
      esac
    else
      if [ "$target" = samsa ]; then addr=$SAMSA_ZK_ADDR; why=$SAMSA_ZK_WHY; else addr=$UPSTREAM_ZK_ADDR; why=$UPSTREAM_ZK_WHY; fi
    fi
    run_client "$target" "$c" "$addr" "$why"
  done
}

# Five independent lanes (Samsa/upstream x Kafka/ZooKeeper, and the Samsa cluster for Kafka)
# run side by side; within a lane, clients and scenarios run one at a time so they do not
# disturb each other.
jobs_pids=()
for t in samsa cluster upstream; do
  has_target "$t" || continue
  for k in kafka zk; do
    [ "$t" = cluster ] && [ "$k" = zk ] && continue  # the cluster target is for Kafka clients
    log "running $k scenarios against $t"
    run_lane "$t" "$k" & jobs_pids+=($!)
  done
done
for p in "${jobs_pids[@]}"; do wait "$p"; done

ELAPSED=$(( $(date +%s) - START_TS ))
CLUSTER_DESC="$CLUSTER_KAFKA_WHY"
[ -n "$CLUSTER_KAFKA_ADDR" ] && CLUSTER_DESC="$CLUSTER_KAFKA_ADDR (bootstrap broker $CLUSTER_BOOTSTRAP_ID of 3)"
/usr/bin/python3 "$COMPAT/lib/report.py" --results "$RESULTS" --target "${TARGETS// /,}" --elapsed "$ELAPSED" \
  --samsa-kafka "${SAMSA_KAFKA_ADDR:-$SAMSA_KAFKA_WHY}" --samsa-zk "${SAMSA_ZK_ADDR:-$SAMSA_ZK_WHY}" \
  --cluster-kafka "$CLUSTER_DESC" \
  --upstream-kafka "${UPSTREAM_KAFKA_ADDR:-$UPSTREAM_KAFKA_WHY}" --upstream-zk "${UPSTREAM_ZK_ADDR:-$UPSTREAM_ZK_WHY}" \
  --clients "$CLIENTS"
rc=$?
log "results in compat/results/ (matrix.md, matrix.html, junit.xml); ${ELAPSED}s"
if [ "$REPORT_ONLY" = 1 ]; then exit 0; fi
exit $rc
