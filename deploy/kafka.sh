#!/usr/bin/env bash
# A single-node Apache Kafka broker in KRaft mode for WIMS, from the official release jars
# on Maven Central (org.apache.kafka:kafka_2.13), fetched once with Maven and cached.
#   deploy/kafka.sh fetch|start|stop|status
# Honours WIMS_KAFKA_VERSION (4.1.1), WIMS_KAFKA_PORT (9092; the controller listens on the
# next port), WIMS_RUN_DIR (./.run), WIMS_CACHE_DIR (~/.cache/wims), WIMS_KAFKA_HEAP (512m).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${WIMS_KAFKA_VERSION:-4.1.1}"
PORT="${WIMS_KAFKA_PORT:-9092}"
CONTROLLER_PORT="$((PORT + 1))"
RUN_DIR="${WIMS_RUN_DIR:-$ROOT/.run}"
CACHE="${WIMS_CACHE_DIR:-$HOME/.cache/wims}/kafka-$VERSION"
LIBS="$CACHE/libs"
DATA="$RUN_DIR/kafka-data"
CONF="$RUN_DIR/kafka.properties"
PIDFILE="$RUN_DIR/pids/kafka.pid"
LOG="$RUN_DIR/logs/kafka.log"

fetch() {
  if [[ -f "$LIBS/.complete" ]]; then return; fi
  command -v mvn >/dev/null || { echo "kafka: Maven (mvn) is required to fetch the broker jars" >&2; exit 1; }
  command -v java >/dev/null || { echo "kafka: Java 17 is required" >&2; exit 1; }
  echo "kafka: fetching Apache Kafka $VERSION jars from Maven Central (first time only)..."
  local pom_dir
  pom_dir="$(mktemp -d)"
  cat > "$pom_dir/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
  <groupId>wims</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>$VERSION</version></dependency>
    <!-- the broker logs through slf4j 1.7: bind it to the log4j2 that Kafka ships -->
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>2.24.3</version></dependency>
  </dependencies>
</project>
POM
  rm -rf "$LIBS.tmp"
  # Maven's transfer log is the progress display: one line per jar as it arrives.
  mvn -B -f "$pom_dir/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$LIBS.tmp" -DincludeScope=runtime \
    -Dorg.slf4j.simpleLogger.log.org.apache.maven.cli.transfer.Slf4jMavenTransferListener=info \
    | grep -E "Downloaded from|BUILD|ERROR" || true
  if [[ ! -f "$LIBS.tmp/kafka_2.13-$VERSION.jar" ]]; then
    echo "kafka: fetching the jars failed (see the Maven output above)" >&2; exit 1
  fi
  rm -rf "$LIBS"; mv "$LIBS.tmp" "$LIBS"; touch "$LIBS/.complete"; rm -rf "$pom_dir"
  echo "kafka: $(ls "$LIBS" | wc -l) jars cached in $LIBS"
}

pid_alive() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

java_cmd() {
  java -Dlog4j2.configurationFile="$ROOT/deploy/kafka-log4j2.properties" -Xms256m -Xmx"${WIMS_KAFKA_HEAP:-512m}" -XX:+UseG1GC -XX:TieredStopAtLevel=1 \
    -Djava.awt.headless=true -cp "$LIBS/*" "$@"
}

start() {
  fetch
  mkdir -p "$RUN_DIR/pids" "$RUN_DIR/logs" "$DATA"
  if pid_alive; then echo "kafka: already running on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"; return; fi
  if port_open; then echo "kafka: port $PORT is taken by another process" >&2; exit 1; fi
  cat > "$CONF" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA
num.partitions=6
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=168
log.segment.bytes=134217728
PROPS
  if [[ ! -f "$DATA/meta.properties" ]]; then
    local cluster_id
    # A KRaft cluster id is a random UUID in unpadded URL-safe base64; made here rather
    # than by a second JVM start (StorageTool random-uuid), which costs seconds per stack.
    # (Kafka's own generator never starts one with "-": it would read as an option.)
    cluster_id="-"
    while [[ "$cluster_id" == -* ]]; do
      cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    java_cmd kafka.tools.StorageTool format -t "$cluster_id" -c "$CONF" >/dev/null
    echo "kafka: formatted KRaft storage in $DATA"
  fi
  nohup java -Xms256m -Xmx"${WIMS_KAFKA_HEAP:-512m}" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/deploy/kafka-log4j2.properties" \
    -cp "$LIBS/*" kafka.Kafka "$CONF" >>"$LOG" 2>&1 &
  echo $! > "$PIDFILE"
  local i
  for i in $(seq 1 120); do
    if port_open; then echo "kafka: started on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"), log $LOG)"; return; fi
    if ! pid_alive; then echo "kafka: the broker exited; last lines of $LOG:" >&2; tail -n 30 "$LOG" >&2; exit 1; fi
    sleep 0.5
  done
  echo "kafka: did not open port $PORT within 60 s; see $LOG" >&2; exit 1
}

stop() {
  if ! pid_alive; then echo "kafka: not running"; rm -f "$PIDFILE"; return; fi
  local pid; pid="$(cat "$PIDFILE")"
  kill -TERM "$pid"
  local i
  for i in $(seq 1 60); do
    if ! kill -0 "$pid" 2>/dev/null; then rm -f "$PIDFILE"; echo "kafka: stopped"; return; fi
    sleep 0.5
  done
  echo "kafka: still running after 30 s, killing pid $pid" >&2
  kill -KILL "$pid" 2>/dev/null || true; rm -f "$PIDFILE"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) if pid_alive; then echo "kafka: running on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"; else echo "kafka: stopped"; exit 3; fi ;;
  *) echo "usage: $0 fetch|start|stop|status" >&2; exit 2 ;;
esac
