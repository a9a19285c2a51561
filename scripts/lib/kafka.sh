# Kafka: KRaft nodes in combined mode (broker and controller) from the release
# jars; one by default, three with `--brokers 3`. Sourced by scripts/infra.
#
# Node n (1, 2, 3) listens on the base port + 100 * (n - 1): PLAINTEXT there,
# its controller on the next port, SASL_SSL on the one after, then SSL with
# client certificates (mutual TLS). With the default base 9092:
# 9092-9095, 9192-9195, 9292-9295.

KAFKA_DIR=$STATE_DIR/kafka
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
KAFKA_FILES=$REPO_ROOT/scripts/kafka
# The first address of KAFKA_BOOTSTRAP_SERVERS places node 1.
KAFKA_HOST=${KAFKA_BOOTSTRAP%%,*}
KAFKA_BASE_PORT=${KAFKA_HOST##*:}
KAFKA_HOST=${KAFKA_HOST%:*}
# The local listener's credentials and CA: for development and tests only.
KAFKA_SASL_USER=orders
KAFKA_SASL_SECRET=orders-secret
KAFKA_TLS_DIR=$KAFKA_DIR/tls

kafka_node_dir() { echo "$KAFKA_DIR/node-$1"; }
kafka_node_pid() { echo "$KAFKA_DIR/node-$1/kafka.pid"; }
kafka_node_log() { echo "$LOG_DIR/kafka-$1.log"; }
kafka_port() { echo $((KAFKA_BASE_PORT + 100 * ($1 - 1) + ${2:-0})); }

# How many nodes the storage was formatted for (0: none yet).
kafka_formatted_nodes() { cat "$KAFKA_DIR/nodes" 2>/dev/null || echo 0; }

# The PLAINTEXT (offset 0), SASL_SSL (2) or SSL (3) addresses of `nodes` nodes.
kafka_addresses() {
  local nodes=$1 offset=$2 n list=
  for n in $(seq "$nodes"); do list+="${list:+,}$KAFKA_HOST:$(kafka_port "$n" "$offset")"; done
  echo "$list"
}

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
  libs=$CACHE_DIR/kafka-$version/libs
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

# Waits until `nodes` brokers answer at `bootstrap`. Compiled once: javac
# costs seconds, and `up` is meant to be fast when already up.
kafka_wait_ready() {
  local cp=$1 seconds=$2 nodes=${3:-1} bootstrap=${4:-$KAFKA_BOOTSTRAP}
  local classes=$CACHE_DIR/probe
  if [ ! -f "$classes/WaitForBroker.class" ] || [ "$KAFKA_FILES/WaitForBroker.java" -nt "$classes/WaitForBroker.class" ]; then
    mkdir -p "$classes"
    javac -d "$classes" -cp "$cp" "$KAFKA_FILES/WaitForBroker.java" >>"$LOG_DIR/kafka-probe.log" 2>&1 \
      || { show_log_tail "$LOG_DIR/kafka-probe.log"; die "could not compile the broker probe"; }
  fi
  java -cp "$classes:$cp" -Dlog4j2.level=OFF WaitForBroker "$bootstrap" "$seconds" "$nodes" \
    >>"$LOG_DIR/kafka-probe.log" 2>&1
}

# A CA, a certificate for the brokers' TLS listeners and one for clients
# (mutual TLS), made once.
kafka_tls_material() {
  [ -f "$KAFKA_TLS_DIR/broker.pem" ] && [ -f "$KAFKA_TLS_DIR/client.pem" ] && return 0
  command -v openssl >/dev/null || die "openssl is needed to make the local brokers' TLS certificate"
  local dir=$KAFKA_TLS_DIR.tmp san
  rm -rf "$dir" && mkdir -p "$dir"
  # Clients check the broker's name against the certificate.
  if [[ $KAFKA_HOST =~ ^[0-9.]+$ ]]; then san="IP:$KAFKA_HOST,DNS:localhost"; else san="DNS:$KAFKA_HOST,DNS:localhost"; fi
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=kafka-orders local CA" \
      -keyout "$dir/ca.key" -out "$dir/ca.pem" &&
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$KAFKA_HOST" \
      -keyout "$dir/broker.key" -out "$dir/broker.csr" &&
    openssl x509 -req -days 3650 -in "$dir/broker.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
      -CAcreateserial -out "$dir/broker.crt" -extfile <(printf 'subjectAltName=%s\n' "$san") &&
    # Kafka's PEM key store: the private key in PKCS#8, then the chain.
    openssl pkcs8 -topk8 -nocrypt -in "$dir/broker.key" -out "$dir/broker.pem" &&
    cat "$dir/broker.crt" "$dir/ca.pem" >>"$dir/broker.pem" &&
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$KAFKA_SASL_USER" \
      -keyout "$dir/client.key" -out "$dir/client.csr" &&
    openssl x509 -req -days 3650 -in "$dir/client.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
      -CAcreateserial -out "$dir/client.pem"
  } >>"$LOG_DIR/kafka-tls.log" 2>&1 || { show_log_tail "$LOG_DIR/kafka-tls.log"; die "making the TLS certificate failed"; }
  rm -f "$dir/broker.csr" "$dir/client.csr" "$dir/ca.srl"
  rm -rf "$KAFKA_TLS_DIR"
  mv "$dir" "$KAFKA_TLS_DIR"
}

# Writes node n's config and formats its storage, once.
kafka_prepare_node() {
  local n=$1 nodes=$2 cp=$3 dir voters= i rf
  dir=$(kafka_node_dir "$n")
  for i in $(seq "$nodes"); do voters+="${voters:+,}$i@$KAFKA_HOST:$(kafka_port "$i" 1)"; done
  rf=$((nodes < 3 ? nodes : 3))
  mkdir -p "$dir"
  sed -e "s|@STATE@|$dir|g" -e "s|@TLS@|$KAFKA_TLS_DIR|g" -e "s|@HOST@|$KAFKA_HOST|g" \
      -e "s|@NODE@|$n|g" -e "s|@VOTERS@|$voters|g" \
      -e "s|@PORT@|$(kafka_port "$n")|g" -e "s|@CONTROLLER_PORT@|$(kafka_port "$n" 1)|g" \
      -e "s|@SASL_PORT@|$(kafka_port "$n" 2)|g" -e "s|@SSL_PORT@|$(kafka_port "$n" 3)|g" \
      -e "s|@SASL_USER@|$KAFKA_SASL_USER|g" -e "s|@SASL_PASSWORD@|$KAFKA_SASL_SECRET|g" \
      -e "s|@RF@|$rf|g" -e "s|@MIN_ISR@|$((rf > 1 ? rf - 1 : 1))|g" \
      "$KAFKA_FILES/server.properties.in" >"$dir/server.properties"
  [ -f "$dir/data/meta.properties" ] && return 0
  local log; log=$(kafka_node_log "$n")
  java -cp "$cp" -Dlog4j2.level=OFF kafka.tools.StorageTool format -t "$(cat "$KAFKA_DIR/cluster-id")" \
    -c "$dir/server.properties" \
    --add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_USER,password=$KAFKA_SASL_SECRET]" >>"$log" 2>&1 \
    || { show_log_tail "$log"; die "formatting node $n's storage failed"; }
}

kafka_start_node() {
  local n=$1 cp=$2 heap=$3 dir log
  dir=$(kafka_node_dir "$n"); log=$(kafka_node_log "$n")
  require_free_port "$KAFKA_HOST:$(kafka_port "$n")" "Kafka node $n" KAFKA_BOOTSTRAP_SERVERS
  require_free_port "$KAFKA_HOST:$(kafka_port "$n" 1)" "Kafka node $n's controller (its port + 1)" KAFKA_BOOTSTRAP_SERVERS
  require_free_port "$KAFKA_HOST:$(kafka_port "$n" 2)" "Kafka node $n's SASL_SSL listener (its port + 2)" KAFKA_BOOTSTRAP_SERVERS
  require_free_port "$KAFKA_HOST:$(kafka_port "$n" 3)" "Kafka node $n's SSL listener (its port + 3)" KAFKA_BOOTSTRAP_SERVERS
  log "starting Kafka node $n on $KAFKA_HOST:$(kafka_port "$n") (log: $log)"
  # setsid: the broker outlives this script and ignores the terminal's Ctrl-C.
  setsid java "-Xms$heap" "-Xmx$heap" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_FILES/log4j2.properties" \
    -cp "$cp" kafka.Kafka "$dir/server.properties" \
    >>"$log" 2>&1 </dev/null &
  echo $! >"$(kafka_node_pid "$n")"
}

# Starts the nodes that are not running; `nodes` defaults to what the
# storage was formatted for, else 1.
kafka_up() {
  local nodes=${1:-}
  command -v java >/dev/null || die "Java 17+ is needed to run the Kafka broker"
  local formatted; formatted=$(kafka_formatted_nodes)
  if [ -z "$nodes" ]; then nodes=$((formatted > 0 ? formatted : 1)); fi
  [ "$formatted" -eq 0 ] || [ "$formatted" -eq "$nodes" ] \
    || die "the local Kafka has $formatted node(s); scripts/infra reset first to run $nodes (it wipes the topics)"
  local cp; cp=$(kafka_classpath)
  local bootstrap; bootstrap=$(kafka_addresses "$nodes" 0)
  local n running=0
  for n in $(seq "$nodes"); do pid_alive "$(kafka_node_pid "$n")" && running=$((running + 1)); done
  if [ "$running" -eq "$nodes" ]; then
    kafka_wait_ready "$cp" "$KAFKA_START_TIMEOUT" "$nodes" "$bootstrap" \
      && { log "Kafka already running on $bootstrap"; return; }
    for n in $(seq "$nodes"); do show_log_tail "$(kafka_node_log "$n")" 20; done
    die "Kafka runs but does not answer on $bootstrap"
  fi
  if [ "$running" -eq 0 ] && kafka_wait_ready "$cp" 3 1 "$KAFKA_BOOTSTRAP"; then
    log "using the Kafka broker already answering on $KAFKA_BOOTSTRAP"
    return
  fi

  kafka_tls_material
  if [ "$formatted" -eq 0 ]; then
    java -cp "$cp" -Dlog4j2.level=OFF kafka.tools.StorageTool random-uuid >"$KAFKA_DIR/cluster-id" 2>>"$LOG_DIR/kafka-format.log" \
      || { show_log_tail "$LOG_DIR/kafka-format.log"; die "kafka StorageTool random-uuid failed"; }
  fi
  # One node gets a gigabyte; three share the machine at half that each.
  local heap=1g; [ "$nodes" -gt 1 ] && heap=512m
  local started=$SECONDS
  for n in $(seq "$nodes"); do
    pid_alive "$(kafka_node_pid "$n")" && continue
    kafka_prepare_node "$n" "$nodes" "$cp"
    kafka_start_node "$n" "$cp" "$heap"
  done
  echo "$nodes" >"$KAFKA_DIR/nodes"

  if ! kafka_wait_ready "$cp" "$KAFKA_START_TIMEOUT" "$nodes" "$bootstrap"; then
    for n in $(seq "$nodes"); do show_log_tail "$(kafka_node_log "$n")" 40; done
    kafka_down
    die "Kafka did not answer metadata requests on $bootstrap within ${KAFKA_START_TIMEOUT}s; its log (last lines above) says why. A busy or slow machine may need KAFKA_START_TIMEOUT=300; scripts/infra reset wipes storage left broken (by a full disk, say), topics included"
  fi
  log "Kafka ready in $((SECONDS - started))s: $bootstrap (SASL_SSL: $(kafka_addresses "$nodes" 2), mutual TLS: $(kafka_addresses "$nodes" 3))"
}

kafka_down() {
  local n
  for n in $(seq "$(kafka_formatted_nodes)"); do stop_pid "$(kafka_node_pid "$n")" "kafka node $n" 60; done
}

kafka_reset() { kafka_down; rm -rf "$KAFKA_DIR"; }

kafka_status() {
  local nodes n; nodes=$(kafka_formatted_nodes)
  [ "$nodes" -gt 0 ] || { echo "kafka: not set up"; return; }
  for n in $(seq "$nodes"); do
    if pid_alive "$(kafka_node_pid "$n")"; then
      echo "kafka node $n: running (pid $(cat "$(kafka_node_pid "$n")")) on $KAFKA_HOST:$(kafka_port "$n")"
    else
      echo "kafka node $n: stopped"
    fi
  done
  echo "kafka SASL_SSL: $(kafka_addresses "$nodes" 2), user $KAFKA_SASL_USER, password $KAFKA_SASL_SECRET (PLAIN or SCRAM-SHA-512), CA $KAFKA_TLS_DIR/ca.pem"
  echo "kafka SSL (mutual TLS): $(kafka_addresses "$nodes" 3), client certificate $KAFKA_TLS_DIR/client.pem, key $KAFKA_TLS_DIR/client.key, CA $KAFKA_TLS_DIR/ca.pem"
}
