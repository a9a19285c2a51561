# Shared by the scripts: where things live and small helpers. Sourced, not run.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Everything the scripts create (data, logs, pid files, caches) lives here.
STATE_DIR=${KAFKA_ORDERS_STATE_DIR:-$REPO_ROOT/.local}
LOG_DIR=$STATE_DIR/logs
# Downloads (Kafka's jars) and compiled helpers, reusable across state folders.
CACHE_DIR=${KAFKA_ORDERS_CACHE_DIR:-$STATE_DIR/cache}

KAFKA_BOOTSTRAP=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}
# PGPORT moves the scripts' PostgreSQL (see scripts/lib/postgres.sh) and this default with it.
DATABASE_URL=${DATABASE_URL:-postgres://orders:orders@127.0.0.1:${PGPORT:-5432}/orders}
export KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP DATABASE_URL

mkdir -p "$STATE_DIR" "$LOG_DIR"

log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Prints the last lines of a log file, framed, for failures.
show_log_tail() {
  local file=$1 lines=${2:-60}
  [ -f "$file" ] || return 0
  printf -- '----- last %s lines of %s -----\n' "$lines" "$file" >&2
  tail -n "$lines" "$file" >&2
  printf -- '-----\n' >&2
}

# A connection URL with its password masked, for messages.
redact_url() { sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#' <<<"$1"; }

# True when the process in the pid file is alive.
pid_alive() {
  local pidfile=$1 pid stat
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null || return 1
  # Exited but not reaped yet is not alive. (A JVM whose main thread ended
  # shows its leader as a zombie while its other threads run: `l`.)
  stat=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
  [[ $stat != Z* || $stat == *l* ]]
}

# Stops the process in a pid file: SIGTERM, then SIGKILL after a bound.
stop_pid() {
  local pidfile=$1 name=$2 bound=${3:-30}
  if ! pid_alive "$pidfile"; then rm -f "$pidfile"; return 0; fi
  local pid; pid=$(cat "$pidfile")
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq $((bound * 10))); do
    pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
    sleep 0.1
  done
  log "$name did not stop within ${bound}s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

# Installs Debian packages that are missing (apt-get update once per run).
APT_UPDATED=
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get to install them"
  local sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  local apt_log=$LOG_DIR/apt.log
  log "installing ${missing[*]} with apt-get (log: $apt_log)"
  if [ -z "$APT_UPDATED" ]; then
    $sudo apt-get update -qq >>"$apt_log" 2>&1 \
      || { show_log_tail "$apt_log" 20; die "apt-get update failed"; }
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >>"$apt_log" 2>&1 \
    || { show_log_tail "$apt_log" 20; die "apt-get could not install ${missing[*]}"; }
}

# Dies, naming who holds it, when something already listens on HOST:PORT; a
# service of ours would only fail to bind it later.
require_free_port() {
  local addr=$1 who=$2 setting=$3
  local host=${addr%:*} port=${addr##*:}
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null || return 0
  local holder
  holder=$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -n 1 \
    | sed -E 's/users:\(\("([^"]*)",pid=([0-9]*)/\1 (pid \2)/')
  die "port $port is already in use${holder:+ by $holder}: $who needs $addr. Stop whatever listens there (a demo still running in another terminal? Ctrl-C it), or give $who another address with $setting=127.0.0.1:<port>."
}
