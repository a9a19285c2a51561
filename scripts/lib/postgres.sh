# PostgreSQL: one already listening, or a cluster of our own. Sourced by scripts/infra.

PG_HOST=127.0.0.1
PG_PORT=${PGPORT:-5432}
PG_LINK=$STATE_DIR/postgres          # our cluster (a folder, or a link to one; see pg_cluster_dir)
PG_EXTERNAL_MARK=$STATE_DIR/postgres.external
# The role and database the services use (DATABASE_URL's defaults).
PG_APP_USER=orders PG_APP_PASSWORD=orders PG_APP_DB=orders

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && echo "$dir"
}

# Runs a command as the cluster's owner: PostgreSQL refuses to run as root.
as_pg_owner() {
  # From /: the checkout itself may be out of its reach.
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# The cluster (data and log) lives in the state folder when the `postgres`
# user can reach it; a root-only checkout (say under a mode-700 temp folder)
# gets one under /var/tmp instead, linked from the state folder so down and
# reset find it. Prints the real path: the server cannot follow the link.
pg_cluster_dir() {
  if [ -L "$PG_LINK" ] || [ -d "$PG_LINK" ]; then readlink -f "$PG_LINK"; return; fi
  if [ "$(id -u)" -ne 0 ] || runuser -u postgres -- test -x "$STATE_DIR" 2>/dev/null; then
    mkdir -p "$PG_LINK"
  else
    local elsewhere
    elsewhere=/var/tmp/kafka-orders-pg-$(printf '%s' "$STATE_DIR" | md5sum | cut -c1-12)
    mkdir -p "$elsewhere"
    ln -s "$elsewhere" "$PG_LINK"
  fi
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$(readlink -f "$PG_LINK")"
  readlink -f "$PG_LINK"
}

pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 1 2>/dev/null; }

# Creates the app's role (allowed to create test databases) and database.
pg_ensure_app_db() {
  local admin=("$@")
  "${admin[@]}" -v ON_ERROR_STOP=1 -q <<SQL || die "could not create the '$PG_APP_USER' role and database"
SELECT 'CREATE ROLE $PG_APP_USER LOGIN CREATEDB PASSWORD ''$PG_APP_PASSWORD'''
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_APP_USER') \gexec
SELECT 'CREATE DATABASE $PG_APP_DB OWNER $PG_APP_USER'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_APP_DB') \gexec
SQL
}

# True when our cluster is the server on PG_PORT (its pid file names the port
# on its fourth line).
pg_ours_on_port() {
  local pidfile=$1/postmaster.pid
  [ -f "$pidfile" ] && [ "$(sed -n 4p "$pidfile")" = "$PG_PORT" ]
}

# A server we did not start: the services need DATABASE_URL to work there. The
# app's role and database are created when its superuser lets us in
# (a distribution's server, peer authentication as `postgres`); otherwise the
# user has to choose, and the message says how.
pg_use_external() {
  local error
  error=$(psql -w -qtA -c 'SELECT 1' -d "$DATABASE_URL" 2>&1 >/dev/null) && return 0
  as_pg_owner psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -w -qtAc 'SELECT 1' \
    >/dev/null 2>&1 || die "a PostgreSQL not started by these scripts listens on $PG_HOST:$PG_PORT, and it refuses DATABASE_URL=$(redact_url "$DATABASE_URL"): ${error:-no answer}
  Either create the role and database there:
    CREATE ROLE $PG_APP_USER LOGIN CREATEDB PASSWORD '$PG_APP_PASSWORD'; CREATE DATABASE $PG_APP_DB OWNER $PG_APP_USER;
  or point DATABASE_URL at a database of yours on it (the role needs CREATEDB for the tests),
  or let the scripts run their own PostgreSQL on another port: PGPORT=5433 scripts/demo"
  pg_ensure_app_db as_pg_owner psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -w
}

pg_up() {
  local bin; bin=$(pg_bin)
  local cluster; cluster=$(pg_cluster_dir)
  local data=$cluster/data PG_LOG=$cluster/postgres.log
  if pg_ready; then
    if pg_ours_on_port "$data"; then
      log "PostgreSQL (ours) already running on $PG_HOST:$PG_PORT"
    else
      log "using the PostgreSQL already listening on $PG_HOST:$PG_PORT"
      pg_use_external
      touch "$PG_EXTERNAL_MARK"
    fi
    return
  fi
  rm -f "$PG_EXTERNAL_MARK"

  if [ -z "$bin" ]; then apt_install postgresql; bin=$(pg_bin); fi
  [ -n "$bin" ] || die "no PostgreSQL server binaries under /usr/lib/postgresql"
  command -v psql >/dev/null || apt_install postgresql-client

  if [ ! -f "$data/PG_VERSION" ]; then
    log "initialising a PostgreSQL cluster in $data"
    as_pg_owner "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
      >"$PG_LOG" 2>&1 || { show_log_tail "$PG_LOG"; die "initdb failed"; }
  fi
  touch "$PG_LOG"; [ "$(id -u)" -eq 0 ] && chown postgres "$PG_LOG"
  log "starting PostgreSQL on $PG_HOST:$PG_PORT (log: $PG_LOG)"
  # The socket goes into the data folder: /var/run/postgresql may not exist.
  # The read model writes in large batches: a buffer cache that holds its
  # indexes, and checkpoints by time rather than every gigabyte of WAL (each
  # one makes the next writes log whole pages), made its catch-up 13 % faster.
  as_pg_owner "$bin/pg_ctl" start -D "$data" -l "$PG_LOG" -w -t 60 \
    -o "-c listen_addresses=$PG_HOST -p $PG_PORT -c unix_socket_directories=$data -c max_connections=200 -c shared_buffers=1GB -c max_wal_size=8GB -c checkpoint_timeout=30min" \
    >/dev/null || { show_log_tail "$PG_LOG"; die "PostgreSQL did not start"; }
  for _ in $(seq 100); do pg_ready && break; sleep 0.1; done
  pg_ready || { show_log_tail "$PG_LOG"; die "PostgreSQL does not answer on $PG_HOST:$PG_PORT"; }
  pg_ensure_app_db psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres
  log "PostgreSQL ready"
}

pg_down() {
  [ -f "$PG_EXTERNAL_MARK" ] && { log "PostgreSQL was not started by us; leaving it"; return; }
  [ -e "$PG_LINK" ] || return 0
  local data bin; data=$(readlink -f "$PG_LINK")/data; bin=$(pg_bin)
  [ -f "$data/postmaster.pid" ] || return 0
  log "stopping PostgreSQL (pid $(head -n 1 "$data/postmaster.pid"))"
  as_pg_owner "$bin/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null
}

pg_reset() {
  pg_down
  if [ -L "$PG_LINK" ]; then rm -rf "$(readlink -f "$PG_LINK")"; fi
  rm -rf "$PG_LINK" "$PG_EXTERNAL_MARK"
}
