# Kafka: a single-node KRaft broker from the release jars. Sourced by scripts/infra.

KAFKA_DIR=$STATE_DIR/kafka
KAFKA_PID=$KAFKA_DIR/kafka.pid
KAFKA_LOG=$LOG_DIR/kafka.log
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
KAFKA_FILES=$REPO_ROOT/scripts/kafka

# Prints the broker's classpath: KAFKA_HOME's jars when set, else jars fetched
# with Maven into the cache (fast when ~/.m2 has them already).
kafka_classpath() {
  if [ -n "${KAFKA_HOME:-}" ]; then
    [ -d "$KAFKA_HOME/libs" ] || die "KAFKA_HOME=$KAFKA_HOME has no libs/ folder"
    echo "$KAFKA_HOME/libs/*"
    return
  fi
  local version libs
  version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_FILES/pom.xml")
  libs=$STATE_DIR/cache/kafka-$version/libs
  if [ ! -f "$libs/.complete" ]; then
    command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka's jars; or set KAFKA_HOME"
    log "fetching Kafka $version jars with Maven"
    rm -rf "$libs"
    mvn -q -B -f "$KAFKA_FILES/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$libs" >"$LOG_DIR/kafka-fetch.log" 2>&1 \
      || { show_log_tail "$LOG_DIR/kafka-fetch.log"; die "could not fetch Kafka's jars"; }
    touch "$libs/.complete"
  fi
  echo "$libs/*"
}

# Compiled once: javac costs seconds, and `up` is meant to be fast when already up.
kafka_wait_ready() {
  local classes=$STATE_DIR/cache/probe
  if [ ! -f "$classes/WaitForBroker.class" ] || [ "$KAFKA_FILES/WaitForBroker.java" -nt "$classes/WaitForBroker.class" ]; then
    mkdir -p "$classes"
    javac -d "$classes" -cp "$1" "$KAFKA_FILES/WaitForBroker.java" >>"$LOG_DIR/kafka-probe.log" 2>&1 \
      || { show_log_tail "$LOG_DIR/kafka-probe.log"; die "could not compile the broker probe"; }
  fi
  java -cp "$classes:$1" -Dlog4j2.level=OFF WaitForBroker "$KAFKA_BOOTSTRAP" "$2" \
    >>"$LOG_DIR/kafka-probe.log" 2>&1
}

kafka_up() {
  command -v java >/dev/null || die "Java 17+ is needed to run the Kafka broker"
  local cp; cp=$(kafka_classpath)
  if pid_alive "$KAFKA_PID"; then
    kafka_wait_ready "$cp" "$KAFKA_START_TIMEOUT" && { log "Kafka already running on $KAFKA_BOOTSTRAP"; return; }
    show_log_tail "$KAFKA_LOG"; die "Kafka (pid $(cat "$KAFKA_PID")) runs but does not answer on $KAFKA_BOOTSTRAP"
  fi
  if kafka_wait_ready "$cp" 3; then
    log "using the Kafka broker already answering on $KAFKA_BOOTSTRAP"
    return
  fi

  local host=${KAFKA_BOOTSTRAP%:*} port=${KAFKA_BOOTSTRAP##*:}
  # Something else on the broker's ports would only show as a broker that
  # never answers.
  require_free_port "$KAFKA_BOOTSTRAP" "the Kafka broker" KAFKA_BOOTSTRAP_SERVERS
  require_free_port "$host:$((port + 1))" "the Kafka controller (the broker's port + 1)" KAFKA_BOOTSTRAP_SERVERS
  mkdir -p "$KAFKA_DIR"
  sed -e "s:@STATE@:$KAFKA_DIR:g" -e "s:@HOST@:$host:g" -e "s:@PORT@:$port:g" \
      -e "s:@CONTROLLER_PORT@:$((port + 1)):g" \
      "$KAFKA_FILES/server.properties.in" >"$KAFKA_DIR/server.properties"

  # Storage is formatted once; a reset removes it.
  if [ ! -f "$KAFKA_DIR/data/meta.properties" ]; then
    local cluster_id
    cluster_id=$(java -cp "$cp" -Dlog4j2.level=OFF kafka.tools.StorageTool random-uuid 2>>"$KAFKA_LOG") \
      || { show_log_tail "$KAFKA_LOG"; die "kafka StorageTool random-uuid failed"; }
    java -cp "$cp" -Dlog4j2.level=OFF kafka.tools.StorageTool format --standalone \
      -t "$cluster_id" -c "$KAFKA_DIR/server.properties" >>"$KAFKA_LOG" 2>&1 \
      || { show_log_tail "$KAFKA_LOG"; die "formatting Kafka's storage failed"; }
  fi

  log "starting Kafka on $KAFKA_BOOTSTRAP (log: $KAFKA_LOG)"
  local started=$SECONDS
  # setsid: the broker outlives this script and ignores the terminal's Ctrl-C.
  setsid java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_FILES/log4j2.properties" \
    -cp "$cp" kafka.Kafka "$KAFKA_DIR/server.properties" \
    >>"$KAFKA_LOG" 2>&1 </dev/null &
  echo $! >"$KAFKA_PID"

  if ! kafka_wait_ready "$cp" "$KAFKA_START_TIMEOUT"; then
    show_log_tail "$KAFKA_LOG" 80
    stop_pid "$KAFKA_PID" kafka 10
    die "Kafka did not answer metadata requests on $KAFKA_BOOTSTRAP within ${KAFKA_START_TIMEOUT}s; its log ($KAFKA_LOG, last lines above) says why. A busy or slow machine may need KAFKA_START_TIMEOUT=300; scripts/infra reset wipes storage left broken (by a full disk, say), topics included"
  fi
  log "Kafka ready in $((SECONDS - started))s"
}

kafka_down() { stop_pid "$KAFKA_PID" kafka 60; }

kafka_reset() { kafka_down; rm -rf "$KAFKA_DIR"; }
