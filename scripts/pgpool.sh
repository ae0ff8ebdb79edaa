#!/usr/bin/env bash
# pgpool-II in front of the local PostgreSQL primary + standby of scripts/postgres.sh, as the
# proxy baseline of rwsplit's benchmarks (scripts/bench.sh, BENCHMARKS.md).
#
#   scripts/pgpool.sh start    configure and start pgpool-II on a free loopback port; prints
#                              export RWSPLIT_PGPOOL_URL=postgres://rwsplit:rwsplit_pw@127.0.0.1:PORT/rwsplit_test
#   scripts/pgpool.sh stop     stop that pgpool (only the PID in its own pid file) and remove its state
#   scripts/pgpool.sh env      print the env file (export lines) again
#   scripts/pgpool.sh status   running or not, and pgpool's view of the nodes (SHOW POOL_NODES)
#
# Needs scripts/postgres.sh to have started the cluster first (same RWSPLIT_STATE_DIR).
# Mode: streaming replication, load_balance_mode = on, statement-level load balancing, equal
# backend weights (reads spread over primary and standby), no health checks, no failover,
# no replication-delay checks (sr_check only finds the primary at start-up).
# Auth: pgpool's own pool_hba (scram-sha-256 from 127.0.0.1) with the app user's password in
# pool_passwd (TEXT format), so pgpool can do SCRAM with the client and with both backends.
#
# State lives in ${RWSPLIT_STATE_DIR:-<repo>/.servers}/pgpool/. pgpool-II is installed with
# apt-get (Debian package pgpool2) if missing; the package's own service is never started
# here (and if the install started one anyway, exactly that PID is stopped).
set -euo pipefail

SCRIPT_PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
REPO_ROOT="$(cd "$(dirname "$SCRIPT_PATH")/.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$REPO_ROOT/scripts/lib.sh"
STATE_ROOT="${RWSPLIT_STATE_DIR:-$REPO_ROOT/.servers}"
case "$STATE_ROOT" in /*) ;; *) STATE_ROOT="$PWD/$STATE_ROOT" ;; esac
STATE="$STATE_ROOT/pgpool"
ENV_FILE="$STATE/env"
PID_FILE="$STATE/pgpool.pid"
CONF="$STATE/pgpool.conf"
LOG="$STATE/pgpool.log"
PG_SCRIPT="$REPO_ROOT/scripts/postgres.sh"
# pgpool forks one child per client connection it can serve at once: at least the benchmark's
# concurrency (32) plus a few for setup connections.
CHILDREN="${RWSPLIT_PGPOOL_CHILDREN:-40}"
WAIT_SECS="${RWSPLIT_PGPOOL_WAIT_SECS:-30}"

APP_USER=rwsplit APP_PW=rwsplit_pw DB=rwsplit_test

log() { printf '[pgpool.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

free_ports() { # $1 = how many distinct free loopback TCP ports, on one line
    local -a ports
    mapfile -t ports < <(rw_free_ports "$1")
    ((${#ports[@]} == $1)) || die "could not pick $1 free ports"
    echo "${ports[*]}"
}

# The PID in our pid file, only if it is alive and really is a pgpool using our config.
our_pid() {
    local pid
    pid="$(rw_read_pid "$PID_FILE")"
    [[ -n "$pid" ]] || return 1
    rw_pid_cmdline_has "$pid" pgpool || return 1
    rw_pid_cmdline_has "$pid" "$CONF" || return 1
    echo "$pid"
}

ensure_pgpool() {
    if command -v pgpool >/dev/null 2>&1 || [[ -x /usr/sbin/pgpool ]]; then
        PGPOOL="$(command -v pgpool || echo /usr/sbin/pgpool)"
        return 0
    fi
    [[ $EUID -eq 0 ]] || die "pgpool not found and not root: install the Debian package pgpool2"
    log "pgpool not found: installing the Debian package pgpool2"
    # Remember pgpool processes that exist before the install, so only one the package
    # itself starts is stopped afterwards.
    local before after p
    before=" $(pgrep -x pgpool | tr '\n' ' ' || true) "
    apt-get update >&2
    # policy-rc.d (Docker images ship one that exits 101) keeps the package's service from
    # starting; when there is none, the check below stops what the package started.
    DEBIAN_FRONTEND=noninteractive apt-get install -y pgpool2 >&2
    after="$(pgrep -x pgpool || true)"
    for p in $after; do
        if [[ "$before" != *" $p "* ]] && [[ "$(ps -o ppid= -p "$p" | tr -d ' ')" == 1 ]]; then
            log "the pgpool2 package started a system pgpool (pid $p): stopping that PID"
            kill -INT "$p" 2>/dev/null || true
        fi
    done
    PGPOOL=/usr/sbin/pgpool
    [[ -x "$PGPOOL" ]] || die "pgpool still missing after installing pgpool2"
}

pg_env() {
    [[ -x "$PG_SCRIPT" ]] || die "missing $PG_SCRIPT"
    local env
    env="$(RWSPLIT_STATE_DIR="$STATE_ROOT" "$PG_SCRIPT" env 2>/dev/null)" \
        || die "PostgreSQL is not running in $STATE_ROOT: run scripts/postgres.sh start --standbys 1 first"
    eval "$env"
    [[ -n "${RWSPLIT_PG_PRIMARY:-}" && -n "${RWSPLIT_PG_STANDBY_1:-}" ]] \
        || die "scripts/postgres.sh env gave no RWSPLIT_PG_PRIMARY / RWSPLIT_PG_STANDBY_1"
    PRIMARY_PORT="$(sed -E 's#.*@127\.0\.0\.1:([0-9]+)/.*#\1#' <<<"$RWSPLIT_PG_PRIMARY")"
    STANDBY_PORTS=()
    local k v
    for k in 1 2; do
        v="RWSPLIT_PG_STANDBY_$k"
        [[ -n "${!v:-}" ]] || continue
        STANDBY_PORTS+=("$(sed -E 's#.*@127\.0\.0\.1:([0-9]+)/.*#\1#' <<<"${!v}")")
    done
}

write_env() {
    local tmp="$ENV_FILE.tmp"
    {
        echo "export RWSPLIT_PGPOOL_URL=postgres://$APP_USER:$APP_PW@127.0.0.1:$PORT/$DB"
        echo "export RWSPLIT_PGPOOL_PIDFILE=$PID_FILE"
    } >"$tmp"
    mv "$tmp" "$ENV_FILE"
}

stop_ours() {
    local pid
    pid="$(our_pid || true)"
    if [[ -z "$pid" ]]; then
        log "pgpool: not running"
        return 0
    fi
    # SIGINT = fast shutdown: pgpool closes client connections and exits with its children.
    kill -INT "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while rw_pid_alive "$pid"; do
        if ((SECONDS >= deadline)); then
            log "pgpool pid $pid ignored SIGINT for 20 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    log "pgpool: stopped (pid $pid)"
}

cmd_start() {
    ensure_pgpool
    pg_env
    if [[ -d "$STATE" ]]; then
        log "stopping a pgpool from a previous run in $STATE"
        stop_ours
        rm -rf "$STATE"
    fi
    mkdir -p "$STATE"
    local sock="$STATE"
    if ((${#sock} > 80)); then
        sock="$(mktemp -d /tmp/rwsplit-pgpool-sock.XXXXXX)"
        echo "$sock" >"$STATE/own_sockdir"
    fi
    local ports
    read -r -a ports <<<"$(free_ports 2)"
    PORT="${ports[0]}"

    {
        cat <<EOF
# rwsplit benchmark pgpool-II (written by scripts/pgpool.sh)
backend_clustering_mode = 'streaming_replication'
listen_addresses = '127.0.0.1'
port = $PORT
socket_dir = '$sock'
pcp_listen_addresses = ''
pcp_port = ${ports[1]}
pcp_socket_dir = '$sock'
pid_file_name = '$STATE/pgpool-own.pid'
logdir = '$STATE'
log_destination = 'stderr'
logging_collector = off
log_min_messages = warning
log_connections = off
log_statement = off

# connection pooling: one child per concurrent client, one cached backend pair per child
num_init_children = $CHILDREN
max_pool = 1
reserved_connections = 0
child_life_time = 0
child_max_connections = 0
connection_life_time = 0
client_idle_limit = 0
connection_cache = on

# authentication: pgpool's own hba + clear-text password in pool_passwd
enable_pool_hba = on
pool_passwd = 'pool_passwd'
allow_clear_text_frontend_auth = off
ssl = off

# load balancing: every read statement separately, equal weights
load_balance_mode = on
statement_level_load_balance = on
disable_load_balance_on_write = 'transaction'
ignore_leading_white_space = on

# streaming replication: find the primary at start-up; no periodic checks, no delay bound
sr_check_period = 0
sr_check_user = '$APP_USER'
sr_check_password = '$APP_PW'
sr_check_database = '$DB'
delay_threshold = 0

# no health checks, no failover: the benchmark measures routing, not HA
health_check_period = 0
failover_command = ''
failback_command = ''
follow_primary_command = ''
failover_on_backend_error = off
failover_on_backend_shutdown = off
auto_failback = off
use_watchdog = off
memory_cache_enabled = off

backend_hostname0 = '127.0.0.1'
backend_port0 = $PRIMARY_PORT
backend_weight0 = 1
backend_flag0 = 'DISALLOW_TO_FAILOVER'
backend_application_name0 = 'primary'
EOF
        local i=1 p
        for p in "${STANDBY_PORTS[@]}"; do
            cat <<EOF
backend_hostname$i = '127.0.0.1'
backend_port$i = $p
backend_weight$i = 1
backend_flag$i = 'DISALLOW_TO_FAILOVER'
backend_application_name$i = 'standby$i'
EOF
            i=$((i + 1))
        done
    } >"$CONF"
    cat >"$STATE/pool_hba.conf" <<EOF
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 scram-sha-256
host    all       all   127.0.0.1/32  scram-sha-256
EOF
    echo "$APP_USER:TEXT$APP_PW" >"$STATE/pool_passwd"
    chmod 600 "$STATE/pool_passwd"
    : >"$STATE/pcp.conf"

    # -n: no daemon (we record its PID), -D: discard any old node status file.
    setsid "$PGPOOL" -n -D -f "$CONF" -a "$STATE/pool_hba.conf" -F "$STATE/pcp.conf" \
        </dev/null >>"$LOG" 2>&1 9>&- &
    # setsid execs pgpool in place (a background job is no group leader): $! is pgpool's PID.
    # pgpool writes its own pid file (pgpool-own.pid); ours is written by us, so a pgpool
    # that dies early never leaves us a PID we did not start.
    local pid=$!
    echo "$pid" >"$PID_FILE"
    local deadline=$((SECONDS + WAIT_SECS)) out=""
    until out="$(PGCONNECT_TIMEOUT=3 psql -X -At \
        "postgres://$APP_USER:$APP_PW@127.0.0.1:$PORT/$DB" \
        -c "SELECT CASE WHEN pg_is_in_recovery() THEN 'standby' ELSE 'primary' END" 2>&1)"; do
        # (our own child: once it exits it stays a zombie until we exit, so kill -0 would
        # still succeed; rw_pid_alive counts a zombie as gone)
        if ! rw_pid_alive "$pid"; then
            tail -n 30 "$LOG" >&2 || true
            die "pgpool exited during start-up (log: $LOG)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "$LOG" >&2 || true
            die "pgpool does not accept connections after ${WAIT_SECS}s: $out (log: $LOG)"
        fi
        sleep 0.2
    done
    local nodes
    nodes="$(PGCONNECT_TIMEOUT=3 psql -X -At "postgres://$APP_USER:$APP_PW@127.0.0.1:$PORT/$DB" \
        -c "SHOW POOL_NODES" 2>&1 || true)"
    log "pgpool up (pid $pid, port $PORT); nodes:"
    printf '%s\n' "$nodes" | sed 's/^/[pgpool.sh]   /' >&2
    [[ "$nodes" == *"|primary|"* && "$nodes" == *"|standby|"* ]] \
        || log "WARNING: pgpool does not report one primary and one standby up"
    write_env
    cat "$ENV_FILE"
}

cmd_stop() {
    if [[ ! -d "$STATE" ]]; then log "nothing to stop ($STATE absent)"; return 0; fi
    stop_ours
    if [[ -f "$STATE/own_sockdir" ]]; then rm -rf "$(cat "$STATE/own_sockdir")"; fi
    rm -rf "$STATE"
    log "stopped; removed $STATE"
}

cmd_env() {
    [[ -f "$ENV_FILE" ]] || die "no env file: run '$SCRIPT_PATH start' first"
    cat "$ENV_FILE"
}

cmd_status() {
    local pid
    pid="$(our_pid || true)"
    if [[ -z "$pid" ]]; then echo "pgpool: not running"; return 3; fi
    # shellcheck disable=SC1090
    source "$ENV_FILE"
    echo "pgpool: up pid $pid ($RWSPLIT_PGPOOL_URL)"
    PGCONNECT_TIMEOUT=3 psql -X "$RWSPLIT_PGPOOL_URL" -c "SHOW POOL_NODES"
}

main() {
    local cmd="${1:-}"
    [[ $# -gt 0 ]] && shift
    mkdir -p "$STATE_ROOT"
    exec 9>"$STATE_ROOT/.pgpool.lock"
    if command -v flock >/dev/null 2>&1; then
        flock -w 120 9 || die "another scripts/pgpool.sh holds $STATE_ROOT/.pgpool.lock"
    fi
    case "$cmd" in
        start) cmd_start "$@" ;;
        stop) cmd_stop ;;
        env) cmd_env ;;
        status) cmd_status ;;
        *) sed -n '2,18p' "$SCRIPT_PATH" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
}

main "$@"
