#!/usr/bin/env bash
# Local PostgreSQL primary + hot-standby cluster for rwsplit's integration tests.
#
#   scripts/postgres.sh start [--standbys N]   N = 1 or 2 (default 2); prints the env
#   scripts/postgres.sh stop                   stops every server, removes the state dir
#   scripts/postgres.sh env                    prints the env file (export lines)
#   scripts/postgres.sh status                 per-server state, recovery flag, replication
#   scripts/postgres.sh restart <primary|standby1|standby2>
#                                              (re)start one server, e.g. after a test
#                                              SIGKILLed it; waits until it accepts
#                                              connections and, for a standby, streams
#   scripts/postgres.sh wait-sync [SECONDS]    waits until every standby has replayed
#                                              the primary's current WAL position
#   scripts/postgres.sh load-schema [FILE]     runs FILE (default tests/corpus/postgres_schema.sql)
#                                              on the primary as rwsplit, then wait-sync
#
# State lives in ${RWSPLIT_STATE_DIR:-<repo>/.servers}/postgres/. Servers only listen on
# 127.0.0.1 and on a unix socket in their own directory, on free ports picked at start.
# PostgreSQL refuses to run as root: when run as root, every server command runs as the
# unprivileged "postgres" system user (created if missing) through runuser.
# Processes are only ever stopped through pg_ctl on their data dir, or by the PID in that
# data dir's postmaster.pid after checking the PID really is that server.
set -euo pipefail

SCRIPT_PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
REPO_ROOT="$(cd "$(dirname "$SCRIPT_PATH")/.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$REPO_ROOT/scripts/lib.sh"
STATE_ROOT="${RWSPLIT_STATE_DIR:-$REPO_ROOT/.servers}"
PG_STATE="$STATE_ROOT/postgres"
ENV_FILE="$PG_STATE/env"
INIT_SQL="$REPO_ROOT/scripts/sql/postgres/primary-init.sql"
DEFAULT_SCHEMA="$REPO_ROOT/tests/corpus/postgres_schema.sql"
PG_OS_USER="${RWSPLIT_PG_OS_USER:-postgres}"
WAIT_SECS="${RWSPLIT_PG_WAIT_SECS:-60}"
STOPPED_PIDS=()

DB=rwsplit_test
APP_USER=rwsplit APP_PW=rwsplit_pw
ADMIN_USER=rwsplit_admin ADMIN_PW=admin_pw
REPL_USER=repl REPL_PW=repl_pw

log() { printf '[postgres.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------------------
# binaries and OS user

find_bindir() {
    local d
    if command -v pg_config >/dev/null 2>&1; then
        d="$(pg_config --bindir 2>/dev/null || true)"
        if [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]]; then
            echo "$d"; return 0
        fi
    fi
    # Debian: pg_config may come from libpq-dev and say /usr/bin; servers live here.
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | while read -r x; do
            [[ -x "$x/initdb" && -x "$x/pg_ctl" && -x "$x/postgres" ]] && echo "$x"; done | tail -n 1)"
    if [[ -n "$d" ]]; then echo "$d"; return 0; fi
    for d in /usr/pgsql-*/bin /usr/local/pgsql/bin; do
        [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] && { echo "$d"; return 0; }
    done
    return 1
}

ensure_binaries() {
    if ! BIN="$(find_bindir)"; then
        [[ $EUID -eq 0 ]] || die "PostgreSQL server binaries not found and not root: install postgresql"
        log "PostgreSQL server binaries not found: installing postgresql via apt-get"
        apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql postgresql-contrib >&2
        BIN="$(find_bindir)" || die "still no initdb/pg_ctl/postgres after installing postgresql"
    fi
    local t
    for t in initdb pg_ctl postgres pg_basebackup psql pg_isready; do
        [[ -x "$BIN/$t" ]] || die "$BIN/$t missing"
    done
    PSQL="$BIN/psql"
}

ensure_os_user() {
    [[ $EUID -eq 0 ]] || return 0
    if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
        log "creating system user $PG_OS_USER"
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$PG_OS_USER"
    fi
}

# Run a server-side command as the unprivileged user (directly when not root).
as_pg() {
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u "$PG_OS_USER" -- "$@" 9>&-)
    else
        "$@" 9>&-
    fi
}

# True when the OS user that runs the servers may create entries in directory $1.
pg_can_write() {
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u "$PG_OS_USER" -- test -w "$1" -a -x "$1") 2>/dev/null
    else
        test -w "$1" -a -x "$1"
    fi
}

chown_pg() { if [[ $EUID -eq 0 ]]; then chown "$PG_OS_USER:" "$@"; fi; }

# ---------------------------------------------------------------------------------------
# helpers

free_ports() { # $1 = how many distinct free loopback TCP ports, on one line
    local -a ports
    mapfile -t ports < <(rw_free_ports "$1")
    ((${#ports[@]} == $1)) || die "could not pick $1 free ports"
    echo "${ports[*]}"
}

# psql over the unix socket as the bootstrap superuser (trust auth). $1 = node.
su_psql() {
    local node="$1"; shift
    local sock port
    sock="$(node_sockdir "$node")"; port="$(node_port "$node")"
    PGCONNECT_TIMEOUT=5 "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U "$PG_OS_USER" -d postgres "$@"
}
su_query() { local node="$1"; shift; su_psql "$node" -At -c "$*"; }

node_dir()     { echo "$DATA_ROOT/$1"; }
node_data()    { echo "$DATA_ROOT/$1/data"; }
node_log()     { echo "$DATA_ROOT/$1/postgres.log"; }
node_port()    { cat "$DATA_ROOT/$1/port"; }
node_sockdir() { cat "$DATA_ROOT/$1/sockdir"; }

# Where data dirs live: normally $PG_STATE, or a directory the postgres user can reach
# (recorded in $PG_STATE/dataroot) when $PG_STATE's parents are not traversable by it.
load_data_root() {
    if [[ -f "$PG_STATE/dataroot" ]]; then DATA_ROOT="$(cat "$PG_STATE/dataroot")"; else DATA_ROOT="$PG_STATE"; fi
}

known_nodes() {
    local n
    for n in primary standby1 standby2; do
        [[ -d "$DATA_ROOT/$n/data" ]] && echo "$n"
    done
    return 0
}

# PID in the data dir's postmaster.pid when that PID is alive and really is a postgres
# server for that data dir (so a recycled PID is never signalled).
server_pid() {
    local data="$1" pid
    pid="$(rw_read_pid "$data/postmaster.pid")"
    [[ -n "$pid" ]] || return 1
    rw_pid_cmdline_has "$pid" postgres || return 1
    rw_pid_cmdline_has "$pid" "-D $data" || return 1
    echo "$pid"
}

wait_gone() { rw_wait_gone "$@"; } # pid, seconds (a zombie counts as gone)

# Resumes a server that a test stopped (SIGSTOP): the postmaster and the backends it forked
# (found by parent PID, never by name). A backend left stopped cannot act on the postmaster's
# shutdown signal, so the postmaster waits for it, is killed, and the backend outlives it as a
# stopped orphan holding the cluster's shared memory.
resume_tree() {
    local pid="$1" child
    kill -CONT "$pid" 2>/dev/null || true
    for child in $(cat "/proc/$pid/task/$pid/children" 2>/dev/null); do
        kill -CONT "$child" 2>/dev/null || true
    done
}

stop_node() {
    local node="$1" data pid
    data="$(node_data "$node")"
    [[ -d "$data" ]] || return 0
    pid="$(server_pid "$data" || true)"
    if [[ -z "$pid" ]]; then
        log "$node: not running"
        return 0
    fi
    resume_tree "$pid" # in case a test SIGSTOPped it
    if as_pg "$BIN/pg_ctl" stop -D "$data" -m fast -w -t 20 >/dev/null 2>&1; then
        log "$node: stopped (pid $pid)"
    else
        log "$node: pg_ctl stop failed or timed out; SIGTERM/SIGKILL pid $pid"
        resume_tree "$pid"
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_gone "$pid" 5; then
            kill -KILL "$pid" 2>/dev/null || true
            wait_gone "$pid" 10 || log "$node: pid $pid still alive after SIGKILL"
        fi
    fi
    wait_gone "$pid" 10 || true
    STOPPED_PIDS+=("$pid")
}

# An exited postmaster is re-parented to init and stays a zombie until init reaps it
# (here that takes a second or two): wait for that, so callers checking kill(pid, 0)
# right after `stop` see the servers gone.
wait_reaped() {
    local until_t=$((SECONDS + 10)) p busy
    while ((SECONDS < until_t)); do
        busy=0
        for p in "${STOPPED_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && busy=1; done
        ((busy)) || return 0
        sleep 0.05
    done
}

stop_all() {
    load_data_root
    local n
    # standbys first so they don't log reconnect noise while the primary goes away
    for n in standby2 standby1 primary; do
        stop_node "$n"
        if [[ -f "$DATA_ROOT/$n/own_sockdir" ]]; then rm -rf "$(cat "$DATA_ROOT/$n/own_sockdir")"; fi
    done
    wait_reaped
    if [[ "$DATA_ROOT" != "$PG_STATE" && -d "$DATA_ROOT" ]]; then rm -rf "$DATA_ROOT"; fi
    rm -rf "$PG_STATE"
}

# PIDs of leftover child processes of node $1 (process title "postgres: rwsplit-<node>-<port>: ...").
# Only looked at, never signalled: after a postmaster is SIGKILLed its children exit on
# their own within a moment, but until they do they keep the old shared memory attached.
orphan_pids() {
    local title f pid cmd
    title="postgres: rwsplit-$1-$(node_port "$1"):"
    for f in /proc/[0-9]*/cmdline; do
        pid="${f#/proc/}"; pid="${pid%/cmdline}"
        cmd="$(tr '\0' ' ' 2>/dev/null <"$f" || true)"
        [[ "$cmd" == "$title"* ]] && echo "$pid"
    done
    return 0
}

pg_ctl_start() { # node
    local node="$1" data logf deadline out
    data="$(node_data "$node")"; logf="$(node_log "$node")"
    deadline=$((SECONDS + WAIT_SECS))
    if [[ -z "$(server_pid "$data" || true)" && -f "$data/postmaster.pid" ]]; then
        local old
        old="$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)"
        if [[ "$old" =~ ^[0-9]+$ ]] && kill -0 "$old" 2>/dev/null; then
            if [[ -z "$(tr -d '\0' 2>/dev/null <"/proc/$old/cmdline" || true)" ]]; then
                # a killed postmaster still being torn down, or a zombie not yet reaped by
                # init: PostgreSQL refuses to start while kill(pid, 0) still succeeds
                local until_t=$((SECONDS + 15))
                while kill -0 "$old" 2>/dev/null && ((SECONDS < until_t)); do sleep 0.1; done
            elif [[ "$(tr '\0' ' ' 2>/dev/null <"/proc/$old/cmdline" || true)" != *postgres* ]]; then
                # the PID was recycled by an unrelated process: the lock file is stale
                log "$node: stale postmaster.pid (pid $old is not this server); removing it"
                rm -f "$data/postmaster.pid"
            fi
        fi
        while [[ -n "$(orphan_pids "$node")" ]] && ((SECONDS < deadline)); do sleep 0.1; done
    fi
    until out="$(as_pg "$BIN/pg_ctl" start -D "$data" -l "$logf" -w -t "$WAIT_SECS" 2>&1)"; do
        # pg_ctl gives up after its own wait (a loaded machine) or refuses because an attempt
        # before this one did start the server: a server that runs on this data dir and
        # answers is up, whatever pg_ctl said.
        if [[ -n "$(server_pid "$data" || true)" ]] && pg_answers "$node"; then
            log "$node: pg_ctl said '$(tail -n 1 <<<"$out")', but the server is up"
            return 0
        fi
        if ((SECONDS >= deadline)); then
            echo "$out" >&2
            tail -n 30 "$logf" >&2 || true
            die "$node: failed to start (log: $logf)"
        fi
        log "$node: start failed, retrying"
        sleep 0.5
    done
}

pg_answers() { # node
    "$BIN/pg_isready" -q -h "$(node_sockdir "$1")" -p "$(node_port "$1")" -d postgres -U "$PG_OS_USER"
}

wait_ready() {
    local node="$1" deadline=$((SECONDS + WAIT_SECS))
    until pg_answers "$node"; do
        ((SECONDS < deadline)) || die "$node: not accepting connections after ${WAIT_SECS}s (log: $(node_log "$node"))"
        sleep 0.1
    done
}

wait_streaming() { # standbyK
    local node="$1" deadline=$((SECONDS + WAIT_SECS)) st rec
    while :; do
        st="$(su_query primary "SELECT state FROM pg_stat_replication WHERE application_name = '$node'" 2>/dev/null | head -n 1 || true)"
        rec="$(su_query "$node" "SELECT pg_is_in_recovery()" 2>/dev/null || true)"
        [[ "$st" == streaming && "$rec" == t ]] && return 0
        ((SECONDS < deadline)) || die "$node: not streaming after ${WAIT_SECS}s (state='$st', in_recovery='$rec'; log: $(node_log "$node"))"
        sleep 0.1
    done
}

url() { echo "postgres://$1:$2@127.0.0.1:$3/$DB"; }

write_env() {
    local n k tmp
    tmp="$ENV_FILE.tmp"
    {
        echo "export RWSPLIT_PG_PRIMARY=$(url "$APP_USER" "$APP_PW" "$(node_port primary)")"
        for k in 1 2; do
            n="standby$k"; [[ -d "$DATA_ROOT/$n/data" ]] || continue
            echo "export RWSPLIT_PG_STANDBY_$k=$(url "$APP_USER" "$APP_PW" "$(node_port "$n")")"
        done
        echo "export RWSPLIT_PG_ADMIN_PRIMARY=$(url "$ADMIN_USER" "$ADMIN_PW" "$(node_port primary)")"
        for k in 1 2; do
            n="standby$k"; [[ -d "$DATA_ROOT/$n/data" ]] || continue
            echo "export RWSPLIT_PG_ADMIN_STANDBY_$k=$(url "$ADMIN_USER" "$ADMIN_PW" "$(node_port "$n")")"
        done
        echo "export RWSPLIT_PG_PRIMARY_PIDFILE=$(node_data primary)/postmaster.pid"
        for k in 1 2; do
            n="standby$k"; [[ -d "$DATA_ROOT/$n/data" ]] || continue
            echo "export RWSPLIT_PG_STANDBY_${k}_PIDFILE=$(node_data "$n")/postmaster.pid"
        done
        echo "export RWSPLIT_PG_STANDBY_COUNT=$(known_nodes | grep -c standby || true)"
        echo "export RWSPLIT_PG_SCRIPT=$SCRIPT_PATH"
    } >"$tmp"
    mv "$tmp" "$ENV_FILE"
    chmod 644 "$ENV_FILE"
}

configure_node() { # node port sockdir
    local node="$1" port="$2" sock="$3" data
    data="$(node_data "$node")"
    cat >>"$data/postgresql.conf" <<EOF

# ---- rwsplit test cluster: $node (later lines override earlier ones) ----
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
cluster_name = 'rwsplit-$node-$port'
EOF
    echo "$port" >"$(node_dir "$node")/port"
    echo "$sock" >"$(node_dir "$node")/sockdir"
}

make_node_dir() { # node -> creates $DATA_ROOT/node owned by the server user; picks sockdir
    local node="$1" d sock
    d="$(node_dir "$node")"
    mkdir -p "$d"
    chown_pg "$d"
    chmod 755 "$d"
    sock="$d"
    # unix socket paths are limited to ~107 bytes
    if ((${#sock} > 80)); then
        sock="$(mktemp -d /tmp/rwsplit-pg-sock.XXXXXX)"
        chown_pg "$sock"; chmod 755 "$sock"
        echo "$sock" >"$d/own_sockdir"
    fi
    echo "$sock"
}

# ---------------------------------------------------------------------------------------
# commands

cmd_start() {
    local nstandby=2
    while (($#)); do
        case "$1" in
            --standbys) nstandby="${2:-}"; shift 2 ;;
            --standbys=*) nstandby="${1#*=}"; shift ;;
            *) die "unknown option to start: $1" ;;
        esac
    done
    [[ "$nstandby" == 1 || "$nstandby" == 2 ]] || die "--standbys must be 1 or 2"
    local t0=$SECONDS
    ensure_binaries
    ensure_os_user
    [[ -r "$INIT_SQL" ]] || die "missing $INIT_SQL"

    if [[ -d "$PG_STATE" ]]; then
        log "stopping servers from a previous run in $PG_STATE"
        stop_all
    fi
    mkdir -p "$PG_STATE"
    chmod 755 "$STATE_ROOT" "$PG_STATE" 2>/dev/null || true
    DATA_ROOT="$PG_STATE"
    if ! pg_can_write "$PG_STATE" && [[ $EUID -eq 0 ]]; then
        chown_pg "$PG_STATE"
    fi
    if ! pg_can_write "$PG_STATE"; then
        DATA_ROOT="$(mktemp -d /tmp/rwsplit-pg.XXXXXX)"
        chown_pg "$DATA_ROOT"; chmod 755 "$DATA_ROOT"
        echo "$DATA_ROOT" >"$PG_STATE/dataroot"
        log "user $PG_OS_USER cannot reach $PG_STATE (a parent dir is not traversable); data dirs go to $DATA_ROOT"
    fi

    local ports pp k sock data
    read -r -a ports <<<"$(free_ports $((nstandby + 1)))"
    pp="${ports[0]}"

    # ---- primary
    sock="$(make_node_dir primary)"
    data="$(node_data primary)"
    log "initdb primary ($BIN, $DATA_ROOT)"
    as_pg "$BIN/initdb" -D "$data" -U "$PG_OS_USER" -E UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync >/dev/null
    cat >"$data/pg_hba.conf" <<EOF
# rwsplit test cluster
# TYPE  DATABASE     USER  ADDRESS       METHOD
local   all          all                 trust
local   replication  all                 trust
host    replication  $REPL_USER  127.0.0.1/32  scram-sha-256
host    all          all   127.0.0.1/32  scram-sha-256
EOF
    cat >>"$data/postgresql.conf" <<EOF

# ---- rwsplit test cluster: common settings (copied to standbys by pg_basebackup) ----
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 256MB
hot_standby = on
hot_standby_feedback = on
wal_retrieve_retry_interval = 1s
shared_buffers = 32MB
max_connections = 100
fsync = off
# on, as in production: a commit record is flushed (to the OS, fsync is off) and streamed
# at commit, so standbys see it at once; off would delay it up to wal_writer_delay.
synchronous_commit = on
password_encryption = 'scram-sha-256'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
EOF
    chown_pg "$data/pg_hba.conf"
    configure_node primary "$pp" "$sock"
    pg_ctl_start primary
    wait_ready primary
    su_psql primary -f "$INIT_SQL" >/dev/null

    # ---- standbys: base backups run in parallel
    local -a socks=() bb_pids=()
    for ((k = 1; k <= nstandby; k++)); do
        socks[k]="$(make_node_dir "standby$k")"
        log "pg_basebackup standby$k"
        as_pg env PGPASSWORD="$REPL_PW" "$BIN/pg_basebackup" -R -X stream --checkpoint=fast --no-sync \
            -d "host=127.0.0.1 port=$pp user=$REPL_USER application_name=standby$k" \
            -D "$(node_data "standby$k")" >/dev/null &
        bb_pids[k]=$!
    done
    for ((k = 1; k <= nstandby; k++)); do
        wait "${bb_pids[k]}" || die "pg_basebackup for standby$k failed"
    done
    for ((k = 1; k <= nstandby; k++)); do
        local n="standby$k"
        data="$(node_data "$n")"
        # make sure primary_conninfo carries application_name=standbyK (pg_basebackup -R
        # copies it from -d, but don't depend on that)
        if ! grep -q "application_name=$n" "$data/postgresql.auto.conf"; then
            echo "primary_conninfo = 'host=127.0.0.1 port=$pp user=$REPL_USER password=$REPL_PW application_name=$n'" >>"$data/postgresql.auto.conf"
        fi
        [[ -f "$data/standby.signal" ]] || die "$n: pg_basebackup -R did not write standby.signal"
        configure_node "$n" "${ports[$k]}" "${socks[k]}"
        pg_ctl_start "$n"
    done
    for ((k = 1; k <= nstandby; k++)); do
        wait_ready "standby$k"
        wait_streaming "standby$k"
    done

    # ---- sanity: standbys are read-only for the app user over TCP
    for ((k = 1; k <= nstandby; k++)); do
        local out
        out="$(PGCONNECT_TIMEOUT=5 "$PSQL" -X -q -v VERBOSITY=verbose \
            "$(url "$APP_USER" "$APP_PW" "${ports[$k]}")" \
            -c "CREATE TABLE rwsplit_probe_readonly (x int)" 2>&1 || true)"
        if [[ "$out" != *25006*"cannot execute CREATE TABLE in a read-only transaction"* ]]; then
            die "standby$k: expected SQLSTATE 25006 read-only error for CREATE TABLE, got: $out"
        fi
    done
    out="$(PGCONNECT_TIMEOUT=5 "$PSQL" -X -At "$(url "$APP_USER" "$APP_PW" "$pp")" -c "SELECT NOT pg_is_in_recovery()")"
    [[ "$out" == t ]] || die "primary: app user cannot connect or primary is in recovery"

    write_env
    log "cluster up: primary + $nstandby standby(s) in $((SECONDS - t0))s (state: $PG_STATE)"
    cat "$ENV_FILE"
}

cmd_stop() {
    if [[ ! -d "$PG_STATE" ]]; then log "nothing to stop ($PG_STATE absent)"; return 0; fi
    BIN="$(find_bindir)" || die "PostgreSQL binaries not found"
    stop_all
    log "stopped; removed $PG_STATE"
}

cmd_env() {
    [[ -f "$ENV_FILE" ]] || die "no env file: run '$SCRIPT_PATH start' first"
    cat "$ENV_FILE"
}

cmd_status() {
    [[ -d "$PG_STATE" ]] || { echo "postgres: not started ($PG_STATE absent)"; return 3; }
    ensure_binaries
    load_data_root
    local n pid rc=0 rec
    for n in $(known_nodes); do
        pid="$(server_pid "$(node_data "$n")" || true)"
        if [[ -z "$pid" ]]; then
            echo "$n: DOWN (port $(node_port "$n"))"; rc=1; continue
        fi
        if [[ "$(rw_proc_state "$pid" || true)" == T ]]; then
            echo "$n: STOPPED (SIGSTOP) pid $pid port $(node_port "$n")"; rc=1; continue
        fi
        rec="$(su_query "$n" "SELECT CASE WHEN pg_is_in_recovery() THEN 'standby' ELSE 'primary' END" 2>/dev/null || echo '?')"
        echo "$n: up pid $pid port $(node_port "$n") role $rec"
    done
    if [[ -n "$(server_pid "$(node_data primary)" || true)" ]]; then
        echo "replication (on primary):"
        su_psql primary -c "SELECT application_name, state, sent_lsn, replay_lsn, replay_lag FROM pg_stat_replication ORDER BY application_name" || rc=1
    fi
    return $rc
}

cmd_restart() {
    local node="${1:-}"
    [[ "$node" =~ ^(primary|standby1|standby2)$ ]] || die "usage: restart <primary|standby1|standby2>"
    [[ -d "$PG_STATE" ]] || die "not started ($PG_STATE absent)"
    ensure_binaries
    load_data_root
    [[ -d "$(node_data "$node")" ]] || die "$node does not exist in this cluster"
    local pid t0=$SECONDS n
    pid="$(server_pid "$(node_data "$node")" || true)"
    if [[ -n "$pid" ]]; then
        log "$node is running (pid $pid): fast restart"
        resume_tree "$pid"
        stop_node "$node"
    fi
    pg_ctl_start "$node"
    wait_ready "$node"
    if [[ "$node" == primary ]]; then
        # standbys reconnect on their own (wal_retrieve_retry_interval = 1s)
        local spid
        for n in $(known_nodes | grep standby || true); do
            spid="$(server_pid "$(node_data "$n")" || true)"
            [[ -n "$spid" ]] || continue
            if [[ "$(rw_proc_state "$spid" || true)" == T ]]; then
                log "$n is SIGSTOPped: not waiting for it to stream"; continue
            fi
            wait_streaming "$n"
        done
    else
        if [[ -n "$(server_pid "$(node_data primary)" || true)" ]]; then
            wait_streaming "$node"
        else
            log "primary is down: $node is up but cannot stream"
        fi
    fi
    log "$node: up (pid $(server_pid "$(node_data "$node")" || echo '?')) in $((SECONDS - t0))s"
}

cmd_wait_sync() {
    local secs="${1:-$WAIT_SECS}"
    [[ -d "$PG_STATE" ]] || die "not started"
    ensure_binaries
    load_data_root
    local lsn n ok deadline=$((SECONDS + secs))
    lsn="$(su_query primary "SELECT pg_current_wal_lsn()")"
    for n in $(known_nodes | grep standby || true); do
        while :; do
            ok="$(su_query "$n" "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn" 2>/dev/null || true)"
            [[ "$ok" == t ]] && break
            ((SECONDS < deadline)) || die "$n: has not replayed $lsn after ${secs}s"
            sleep 0.05
        done
    done
}

cmd_load_schema() {
    local file="${1:-$DEFAULT_SCHEMA}"
    [[ -r "$file" ]] || die "cannot read $file"
    [[ -d "$PG_STATE" ]] || die "not started"
    ensure_binaries
    load_data_root
    PGOPTIONS="-c client_min_messages=warning" PGCONNECT_TIMEOUT=5 \
        "$PSQL" -X -q -v ON_ERROR_STOP=1 "$(url "$APP_USER" "$APP_PW" "$(node_port primary)")" -f "$file" >/dev/null
    cmd_wait_sync
    log "loaded $file on primary; standbys caught up"
}

main() {
    local cmd="${1:-}"
    [[ $# -gt 0 ]] && shift
    mkdir -p "$STATE_ROOT"
    # serialise concurrent invocations on the same state dir (fd 9 is closed for every
    # server command, so daemonised postmasters never inherit the lock)
    exec 9>"$STATE_ROOT/.postgres.lock"
    if command -v flock >/dev/null 2>&1; then
        flock -w 300 9 || die "another scripts/postgres.sh holds $STATE_ROOT/.postgres.lock"
    fi
    case "$cmd" in
        start) cmd_start "$@" ;;
        stop) cmd_stop ;;
        env) cmd_env ;;
        status) cmd_status ;;
        restart) cmd_restart "$@" ;;
        wait-sync) cmd_wait_sync "$@" ;;
        load-schema) cmd_load_schema "$@" ;;
        *) sed -n '2,16p' "$SCRIPT_PATH" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
}

main "$@"
