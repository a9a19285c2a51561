# Shared by the benchmark scripts: CPU accounting and service start-up.
# Sourced after common.sh, not run.

# utime + stime of a process, in clock ticks.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# utime + stime of every process of that name (say, PostgreSQL's server and
# backends, all named `postgres`), in clock ticks.
ticks_of() {
  local pid total=0
  for pid in $(pgrep -x "$1"); do total=$((total + $(ticks "$pid"))); done
  echo "$total"
}
# Busy ticks of the whole machine.
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

wait_http() { # URL NAME LOGS
  for _ in $(seq 600); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  die "$2 did not become ready at $1 (logs: $3)"
}

# The services a benchmark started, stopped with SIGTERM at the end.
pids=()
stop_services() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}

# Creates each SKU's stock with UNITS units (a restock brings 10,000 at most).
stock() { # API UNITS SKU...
  local api=$1 units=$2 sku left
  shift 2
  for sku in "$@"; do
    curl -sf -o /dev/null -X PUT -H 'content-type: application/json' -d '{}' \
      "http://$api/inventory/$sku" || die "creating the stock of $sku"
    for ((left = units; left > 0; left -= 10000)); do
      curl -sf -o /dev/null -X POST -H 'content-type: application/json' \
        -d "{\"units\": $((left < 10000 ? left : 10000))}" \
        "http://$api/inventory/$sku/restock" || die "restocking $sku"
    done
  done
}
