#!/usr/bin/env bash
# Local PostgreSQL primary + hot-standby cluster for rwsplit's integration tests.
#
#   scripts/postgres.sh start [--standbys N]   N = 1 or 2 (default 2); prints the env
#   scripts/postgres.sh stop                   stops every server, removes the state dir
#   scripts/postgres.sh env                    prints the env file (export lines)
#   scripts/postgres.sh status                 per-server state, role (writer / standby of
#                                              NAME / down), replication on the writer
#   scripts/postgres.sh restart <primary|standby1|standby2>
#                                              (re)start one server, e.g. after a test
#                                              SIGKILLed it; waits until it accepts
#                                              connections and, for a standby, streams
#   scripts/postgres.sh wait-sync [SECONDS]    waits until every standby has replayed
#                                              the writer's current WAL position
#   scripts/postgres.sh load-schema [FILE]     runs FILE (default tests/corpus/postgres_schema.sql)
#                                              on the writer as rwsplit, then wait-sync
# Failover drills (names and env URLs never change; the writer's name is kept in the state dir):
#   scripts/postgres.sh writer                 prints the current writer (initially primary)
#   scripts/postgres.sh switchover [NAME]      planned: writer stopped (fast: its shutdown
#                                              checkpoint streams out), NAME replays it,
#                                              is promoted; the old writer restarts as a
#                                              standby of NAME, the others are repointed
#   scripts/postgres.sh failover [NAME]        unplanned: SIGKILL the writer's postmaster,
#                                              promote NAME (default: the standby that has
#                                              the most WAL), repoint the others; the killed
#                                              server stays down until rejoin (or restart)
#   scripts/postgres.sh promote NAME           only promote standby NAME (the writer is left
#                                              as it is: two writers = split brain)
#   scripts/postgres.sh rejoin NAME            NAME (down, or a promoted non-writer) becomes a
#                                              standby of the writer: pg_rewind, else a new
#                                              pg_basebackup; reports lost transactions
#   switchover/failover print the new writer's name on stdout and a "timings: ..._ms=N"
#   line on stderr; exit status 0 on success, 1 on failure, 2 on usage.
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
# seconds a switchover waits for the target to replay the old writer's shutdown checkpoint
SWITCH_TIMEOUT="${RWSPLIT_SWITCHOVER_TIMEOUT:-30}"
# switchover: how long after the fence the last "nothing is writing" check must be made.
FENCE_SETTLE_MS="${RWSPLIT_FENCE_SETTLE_MS:-250}"
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

# The current writer's name, recorded by start / switchover / failover (primary when absent).
current_writer() {
    local w=""
    if [[ -s "$PG_STATE/writer" ]]; then w="$(head -n 1 "$PG_STATE/writer")"; fi
    if [[ "$w" =~ ^(primary|standby1|standby2)$ ]]; then echo "$w"; else echo primary; fi
}
set_writer() { echo "$1" >"$PG_STATE/writer.tmp" && mv "$PG_STATE/writer.tmp" "$PG_STATE/writer"; }

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
    local n w
    local -a order=()
    w="$(current_writer)"
    # standbys first so they don't log reconnect noise while the writer goes away
    for n in standby2 standby1 primary; do
        if [[ "$n" != "$w" ]]; then order+=("$n"); fi
    done
    for n in "${order[@]}" "$w"; do
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

wait_streaming() { # node: a standby, streaming from the current writer
    local node="$1" deadline=$((SECONDS + WAIT_SECS)) st rec
    while :; do
        st="$(su_query "$(current_writer)" "SELECT state FROM pg_stat_replication WHERE application_name = '$node'" 2>/dev/null | head -n 1 || true)"
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
# failover drills: switchover, failover, promote, rejoin

node_running() { [[ -n "$(server_pid "$(node_data "$1")" || true)" ]]; }

# Running nodes, primary first.
running_nodes() {
    local n
    for n in $(known_nodes); do
        if node_running "$n"; then echo "$n"; fi
    done
    return 0
}

node_by_port() { # port -> node name, or "port N"
    local n
    for n in $(known_nodes); do
        if [[ "$(node_port "$n")" == "$1" ]]; then echo "$n"; return 0; fi
    done
    echo "port $1"
}

ms() { echo $(($2 - $1)); } # stamp A, stamp B -> milliseconds between them

conninfo() { # node writer -> primary_conninfo for node streaming from writer
    echo "host=127.0.0.1 port=$(node_port "$2") user=$REPL_USER password=$REPL_PW application_name=$1"
}

# The port in node's primary_conninfo (postgresql.auto.conf, where pg_basebackup -R and
# ALTER SYSTEM write it), or nothing.
upstream_port() {
    local line
    line="$(grep -E '^[[:space:]]*primary_conninfo[[:space:]]*=' "$(node_data "$1")/postgresql.auto.conf" 2>/dev/null | tail -n 1 || true)"
    if [[ "$line" =~ port=([0-9]+) ]]; then echo "${BASH_REMATCH[1]}"; fi
    return 0
}

# Offline: makes stopped node a standby of writer on its next start (standby.signal, and
# primary_conninfo in postgresql.auto.conf; rewritten in place, so the file keeps its owner).
write_standby_conf() { # node writer
    local data auto rest
    data="$(node_data "$1")"; auto="$data/postgresql.auto.conf"
    # Without the switchover's fence: a standby promoted later must accept writes.
    rest="$(grep -vE '^[[:space:]]*(primary_conninfo|default_transaction_read_only)[[:space:]]*=' "$auto" 2>/dev/null || true)"
    printf '%s\nprimary_conninfo = '"'"'%s'"'"'\n' "$rest" "$(conninfo "$1" "$2")" >"$auto"
    as_pg touch "$data/standby.signal"
}

# Removes the switchover's fence (default_transaction_read_only) from a stopped node's config.
drop_fence() { # node
    local auto
    auto="$(node_data "$1")/postgresql.auto.conf"
    as_pg sed -i '/^[[:space:]]*default_transaction_read_only[[:space:]]*=/d' "$auto" 2>/dev/null || true
}

# Online: points running standby node at writer (ALTER SYSTEM + reload: the WAL receiver
# restarts with the new primary_conninfo; a standby follows the new timeline by itself,
# recovery_target_timeline being 'latest').
repoint_standby() { # node writer
    su_psql "$1" -c "ALTER SYSTEM SET primary_conninfo = '$(conninfo "$1" "$2")'" -c "SELECT pg_reload_conf()" >/dev/null ||
        die "$1: could not point primary_conninfo at $2"
}

# The WAL position node has (received or replayed, whichever is further), as a number.
wal_have() {
    su_query "$1" "SELECT (greatest(coalesce(pg_last_wal_receive_lsn(), '0/0'), coalesce(pg_last_wal_replay_lsn(), '0/0')) - '0/0'::pg_lsn)::bigint"
}

lsn_num() { # 'X/Y' -> its byte position
    local hi="${1%/*}" lo="${1#*/}"
    echo $(((16#$hi << 32) + 16#$lo))
}

# Timeline of writer's current WAL: the first 8 hex digits of its current WAL file name.
writer_tli() {
    local f
    f="$(su_query "$1" "SELECT pg_walfile_name(pg_current_wal_lsn())")" || return 1
    echo $((16#${f:0:8}))
}

# From a timeline history file: the LSN where timeline TLI ended (the switch to its child).
history_switchpoint() { # history-file tli
    local parent lsn _rest
    [[ -r "$1" ]] || return 1
    while read -r parent lsn _rest; do
        [[ "$parent" =~ ^[0-9]+$ ]] || continue
        if ((parent == $2)); then echo "$lsn"; return 0; fi
    done <"$1"
    return 1
}

control_field() { # data dir, field label -> value (pg_controldata)
    as_pg env LC_ALL=C "$BIN/pg_controldata" -D "$1" 2>/dev/null | sed -n "s/^$2:[[:space:]]*//p" | head -n 1
}

promote_node() { # node: pg_ctl promote, waits until it accepts writes
    # -W and a poll of our own: pg_ctl -w checks only every 100 ms
    as_pg "$BIN/pg_ctl" promote -D "$(node_data "$1")" -W >/dev/null ||
        die "$1: pg_ctl promote failed"
    local deadline=$((SECONDS + WAIT_SECS))
    until [[ "$(su_query "$1" "SELECT pg_is_in_recovery()" 2>/dev/null || true)" == f ]]; do
        ((SECONDS < deadline)) || die "$1: still in recovery ${WAIT_SECS}s after pg_ctl promote"
        sleep 0.02
    done
}

require_started() {
    [[ -d "$PG_STATE" ]] || die "not started ($PG_STATE absent)"
    ensure_binaries
    load_data_root
}

check_node() { # command node: a node of this cluster
    [[ "$2" =~ ^(primary|standby1|standby2)$ ]] || die "$1: NAME must be primary, standby1 or standby2 (got '$2')"
    [[ -d "$(node_data "$2")" ]] || die "$1: $2 does not exist in this cluster"
}

cmd_writer() {
    [[ -d "$PG_STATE" ]] || die "not started ($PG_STATE absent)"
    current_writer
}

cmd_switchover() {
    local target="${1:-}" old n recv ckpt state
    require_started
    old="$(current_writer)"
    node_running "$old" || die "switchover: the writer $old is not running (use failover, or restart it first)"
    if [[ -z "$target" ]]; then
        for n in $(running_nodes); do
            if [[ "$n" != "$old" ]]; then target="$n"; break; fi
        done
        [[ -n "$target" ]] || die "switchover: no running server besides the writer $old"
    fi
    check_node switchover "$target"
    [[ "$target" != "$old" ]] || die "switchover: $target already is the writer"
    node_running "$target" || die "switchover: $target is not running"
    recv="$(su_query "$target" "SELECT status || ' ' || sender_port FROM pg_stat_wal_receiver" 2>/dev/null || true)"
    [[ "$recv" == "streaming $(node_port "$old")" ]] ||
        die "switchover: $target is not streaming from the writer $old (WAL receiver: '${recv:-none}'); run 'rejoin $target' first"
    local -a others=()
    for n in $(running_nodes); do
        if [[ "$n" != "$old" && "$n" != "$target" ]]; then others+=("$n"); fi
    done
    log "switchover: $old -> $target; to stream from $target afterwards: $old${others[*]:+ ${others[*]}}"

    local t0 t1 t2 t3 t4 t5 t6
    rw_stamp t0
    resume_tree "$(server_pid "$(node_data "$old")")"
    # Fence first, as read_only does on MariaDB: from the reload on, a new transaction on the old
    # writer is read-only (a write gets 25006, which rwsplit answers by waiting for the new
    # writer); statements still running and transactions that already wrote may finish
    # (bounded by RWSPLIT_SWITCHOVER_TIMEOUT), so the fast shutdown below cuts none of them
    # unless they outlast it.
    su_psql "$old" -c "ALTER SYSTEM SET default_transaction_read_only = on" \
        -c "SELECT pg_reload_conf()" >/dev/null ||
        die "switchover: could not fence $old (default_transaction_read_only); nothing changed"
    # A backend that read a statement just before the reload runs it with the old setting, and
    # shows as active only once it reports it: on a loaded machine that can be a while. So the
    # count must be zero at a check made FENCE_SETTLE_MS after the reload or later (a backend is
    # not stalled that long between reading a statement and reporting it).
    local fence_deadline=$((SECONDS + SWITCH_TIMEOUT)) writing fenced now
    rw_stamp fenced
    while :; do
        writing="$(su_query "$old" "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND (state = 'active' OR backend_xid IS NOT NULL) AND pid <> pg_backend_pid()" 2>/dev/null || echo 0)"
        rw_stamp now
        [[ "$writing" == 0 ]] && (($(ms "$fenced" "$now") >= FENCE_SETTLE_MS)) && break
        if ((SECONDS >= fence_deadline)); then
            log "switchover: $writing statement(s) or writing transaction(s) still on $old after ${SWITCH_TIMEOUT}s; the shutdown ends them"
            break
        fi
        sleep 0.01
    done
    as_pg "$BIN/pg_ctl" stop -D "$(node_data "$old")" -m fast -w -t "$WAIT_SECS" >/dev/null || {
        drop_fence "$old"
        die "switchover: pg_ctl stop of $old failed (is it still running? 'status' tells)"
    }
    rw_stamp t1
    local control
    control="$(as_pg env LC_ALL=C "$BIN/pg_controldata" -D "$(node_data "$old")" 2>/dev/null || true)"
    state="$(sed -n 's/^Database cluster state:[[:space:]]*//p' <<<"$control")"
    ckpt="$(sed -n 's/^Latest checkpoint location:[[:space:]]*//p' <<<"$control")"
    [[ "$state" == "shut down" && -n "$ckpt" ]] || {
        drop_fence "$old"
        pg_ctl_start "$old"
        die "switchover aborted: $old's control file says '$state' after pg_ctl stop; $old started again as the writer"
    }
    # The shutdown checkpoint is the old writer's last WAL record: replayed past its start = has it all.
    local deadline=$((SECONDS + SWITCH_TIMEOUT)) ok=""
    while :; do
        ok="$(su_query "$target" "SELECT pg_last_wal_replay_lsn() > '$ckpt'::pg_lsn" 2>/dev/null || true)"
        [[ "$ok" == t ]] && break
        if ((SECONDS >= deadline)); then
            drop_fence "$old"
            pg_ctl_start "$old"
            die "switchover aborted: $target did not replay $old's shutdown checkpoint ($ckpt) within ${SWITCH_TIMEOUT}s; $old started again as the writer, nothing else changed"
        fi
        sleep 0.01
    done
    rw_stamp t2
    promote_node "$target"
    rw_stamp t3
    set_writer "$target"
    log "$old: stopped at +0 ms (shutdown checkpoint $ckpt); $target replayed it at +$(ms "$t0" "$t2") ms, promoted (accepts writes) at +$(ms "$t0" "$t3") ms"
    write_standby_conf "$old" "$target"
    pg_ctl_start "$old"
    rw_stamp t4
    for n in "${others[@]}"; do repoint_standby "$n" "$target"; done
    rw_stamp t5
    for n in "$old" "${others[@]}"; do wait_streaming "$n"; done
    rw_stamp t6
    for n in $(known_nodes); do
        if [[ "$n" != "$target" ]] && ! node_running "$n"; then
            log "$n is down: 'restart $n' or 'rejoin $n' will point it at $target"
        fi
    done
    log "switchover done: $target is the writer; streaming from it: $old${others[*]:+ ${others[*]}}"
    log "switchover timings: stop_ms=$(ms "$t0" "$t1") catch_up_ms=$(ms "$t1" "$t2") promote_ms=$(ms "$t2" "$t3") restart_old_ms=$(ms "$t3" "$t4") repoint_ms=$(ms "$t4" "$t5") verify_ms=$(ms "$t5" "$t6") total_ms=$(ms "$t0" "$t6") write_unavailable_ms=$(ms "$t0" "$t3")"
    echo "$target"
}

cmd_failover() {
    local target="${1:-}" old pid n have best=-1 fork tli hist
    require_started
    old="$(current_writer)"
    if [[ -n "$target" ]]; then
        check_node failover "$target"
        [[ "$target" != "$old" ]] || die "failover: $target is the writer that fails"
    fi
    local t0 t1 t2 t3 t4
    rw_stamp t0
    pid="$(server_pid "$(node_data "$old")" || true)"
    if [[ -n "$pid" ]]; then
        # The postmaster and the backends it forked (by parent PID, never by name), as a crash
        # of the machine would: a backend left alive keeps serving its open connection until it
        # notices the postmaster is gone, and a write it commits then is on no other server.
        local -a kids=()
        read -r -a kids <"/proc/$pid/task/$pid/children" 2>/dev/null || true
        kill -KILL "$pid" "${kids[@]}" 2>/dev/null || true
        wait_gone "$pid" 10 || die "failover: $old's postmaster (pid $pid) survived SIGKILL"
        for n in "${kids[@]}"; do wait_gone "$n" 10 || true; done
        log "$old: SIGKILL postmaster pid $pid and its ${#kids[@]} backend(s) (it stays down: 'rejoin $old' brings it back as a standby)"
    else
        log "$old: already down"
    fi
    rw_stamp t1
    local -a cands=() others=()
    for n in $(running_nodes); do
        [[ "$n" != "$old" ]] && cands+=("$n")
    done
    ((${#cands[@]})) || die "failover: no running standby to promote ($old stays down)"
    if [[ -n "$target" ]]; then
        node_running "$target" || die "failover: $target is not running"
    else
        for n in "${cands[@]}"; do
            have="$(wal_have "$n" 2>/dev/null || echo -1)"
            if ((have > best)); then best="$have"; target="$n"; fi
        done
    fi
    for n in "${cands[@]}"; do [[ "$n" != "$target" ]] && others+=("$n"); done
    rw_stamp t2
    log "failover: promoting $target (has WAL up to $(su_query "$target" "SELECT greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())" 2>/dev/null || echo '?'))"
    promote_node "$target"
    rw_stamp t3
    set_writer "$target"
    # A standby that has WAL past the point where the new timeline forked is ahead of the new
    # writer (possible only when NAME was chosen by hand): it cannot follow and is rejoined
    # (pg_rewind); the others are repointed online.
    tli="$(writer_tli "$target")"
    hist="$(node_data "$target")/pg_wal/$(printf '%08X' "$tli").history"
    fork="$(as_pg cat "$hist" 2>/dev/null | tail -n 1 | awk '{ print $2 }')"
    for n in "${others[@]}"; do
        have="$(wal_have "$n" 2>/dev/null || echo 0)"
        if [[ -n "$fork" ]] && ((have > $(lsn_num "$fork"))); then
            log "$n: has WAL past $target's fork point $fork: ahead of the new writer; rejoining it"
            stop_node "$n"
            rejoin_node "$n"
        else
            repoint_standby "$n" "$target"
        fi
    done
    for n in "${others[@]}"; do wait_streaming "$n"; done
    rw_stamp t4
    log "failover done: $target is the writer (timeline $tli, forked at ${fork:-?}); streaming from it: ${others[*]:-none}; $old is down"
    log "failover timings: kill_ms=$(ms "$t0" "$t1") choose_ms=$(ms "$t1" "$t2") promote_ms=$(ms "$t2" "$t3") repoint_ms=$(ms "$t3" "$t4") total_ms=$(ms "$t0" "$t4") write_unavailable_ms=$(ms "$t0" "$t3")"
    echo "$target"
}

cmd_promote() {
    local node="${1:-}" w
    require_started
    check_node promote "$node"
    node_running "$node" || die "promote: $node is not running"
    w="$(current_writer)"
    if [[ "$node" == "$w" ]]; then log "$node already is the writer"; return 0; fi
    [[ "$(su_query "$node" "SELECT pg_is_in_recovery()")" == t ]] || die "promote: $node is not a standby (already writable)"
    promote_node "$node"
    if node_running "$w"; then
        log "$node: promoted (timeline $(writer_tli "$node")). WARNING: $w is still the writer too: two writable servers (split brain). Undo with 'scripts/postgres.sh rejoin $node' (pg_rewind)"
    else
        set_writer "$node"
        log "$node: promoted; the writer $w is down, so $node is now the recorded writer (other standbys still point at $w)"
    fi
}

# Commits in node's WAL after the point where its timeline left the writer's history: the
# transactions the writer lacks (lost when node is rewound). Node is down. Prints
# "N FORK" or nothing when unknown.
lost_commits() { # node writer
    local data wdata ntli wtli fork
    data="$(node_data "$1")"; wdata="$(node_data "$2")"
    ntli="$(control_field "$data" "Latest checkpoint's TimeLineID")"
    wtli="$(writer_tli "$2")" || return 0
    [[ -n "$ntli" && -n "$wtli" ]] || return 0
    if ((ntli == wtli)); then return 0; fi
    # node's timeline ended in the writer's history (a former writer), or the writer's
    # timeline ended in node's history (node was promoted from it: split brain)
    fork="$(as_pg cat "$wdata/pg_wal/$(printf '%08X' "$wtli").history" 2>/dev/null | history_switchpoint /dev/stdin "$ntli" || true)"
    if [[ -z "$fork" ]]; then
        fork="$(as_pg cat "$data/pg_wal/$(printf '%08X' "$ntli").history" 2>/dev/null | history_switchpoint /dev/stdin "$wtli" || true)"
    fi
    [[ -n "$fork" ]] || return 0
    echo "$(as_pg "$BIN/pg_waldump" -p "$data/pg_wal" -t "$ntli" -s "$fork" 2>/dev/null | grep -c 'desc: COMMIT' || true) $fork"
}

# Makes node (not the writer) a streaming standby of the writer. Running standby: repointed.
# Otherwise (down, or writable after promote) it is stopped, rewound with pg_rewind against the
# writer (rebuilt with pg_basebackup if that fails), and started as a standby.
rejoin_node() { # node
    local node="$1" w data ndir lost rc out
    w="$(current_writer)"
    [[ "$node" != "$w" ]] || die "rejoin: $node is the writer"
    node_running "$w" || die "rejoin: the writer $w is not running (restart it, or fail over to a running standby first)"
    data="$(node_data "$node")"; ndir="$(node_dir "$node")"
    if node_running "$node"; then
        if [[ "$(su_query "$node" "SELECT pg_is_in_recovery()" 2>/dev/null || true)" == t ]]; then
            log "$node: running standby: pointing it at $w"
            repoint_standby "$node" "$w"
            wait_streaming "$node"
            log "$node: streams from $w"
            return 0
        fi
        log "$node: running and writable (promoted): stopping it to rewind it"
        stop_node "$node"
    fi
    lost="$(lost_commits "$node" "$w")"
    if [[ -n "$lost" && "${lost%% *}" != 0 ]]; then
        log "$node: DIVERGED: ${lost%% *} transaction(s) committed on $node after its timeline forked from $w's at ${lost#* }; $w lacks them and they are discarded now"
    elif [[ -n "$lost" ]]; then
        log "$node: no transaction committed after the fork at ${lost#* } (nothing lost)"
    fi
    # pg_rewind copies the writer's configuration files: keep node's own
    cp -p "$data/postgresql.conf" "$ndir/postgresql.conf.keep"
    cp -p "$data/postgresql.auto.conf" "$ndir/postgresql.auto.conf.keep"
    rc=0
    out="$(as_pg "$BIN/pg_rewind" -D "$data" \
        --source-server="host=$(node_sockdir "$w") port=$(node_port "$w") user=$PG_OS_USER dbname=postgres" 2>&1)" || rc=$?
    printf '%s\n' "$out" >"$ndir/pg_rewind.log"
    if ((rc == 0)); then
        log "$node: pg_rewind: $(grep -E 'diverged|rewinding|no rewind required|Done' <<<"$out" | sed 's/^pg_rewind: //' | paste -sd ';' -)"
    else
        log "$node: pg_rewind failed (rc $rc): $(tail -n 1 <<<"$out"); rebuilding it with pg_basebackup from $w"
        rm -rf "$data.old"
        mv "$data" "$data.old"
        as_pg env PGPASSWORD="$REPL_PW" "$BIN/pg_basebackup" -X stream --checkpoint=fast --no-sync \
            -d "host=127.0.0.1 port=$(node_port "$w") user=$REPL_USER application_name=$node" \
            -D "$data" >/dev/null || { mv "$data.old" "$data"; die "$node: pg_basebackup from $w failed"; }
        rm -rf "$data.old"
    fi
    cat "$ndir/postgresql.conf.keep" >"$data/postgresql.conf"
    cat "$ndir/postgresql.auto.conf.keep" >"$data/postgresql.auto.conf"
    rm -f "$ndir/postgresql.conf.keep" "$ndir/postgresql.auto.conf.keep"
    write_standby_conf "$node" "$w"
    pg_ctl_start "$node"
    wait_ready "$node"
    wait_streaming "$node"
    log "$node: standby of $w, streaming"
}

cmd_rejoin() {
    local node="${1:-}"
    require_started
    check_node rejoin "$node"
    rejoin_node "$node"
}

# node's live role, one line.
node_role() { # node (running)
    local node="$1" w rec recv
    w="$(current_writer)"
    rec="$(su_query "$node" "SELECT pg_is_in_recovery()" 2>/dev/null || echo '?')"
    case "$rec" in
        f)
            if [[ "$node" == "$w" ]]; then echo writer
            else echo "writable, not the recorded writer $w: SPLIT BRAIN ('rejoin $node' undoes it)"; fi
            ;;
        t)
            recv="$(su_query "$node" "SELECT status || ' ' || sender_port FROM pg_stat_wal_receiver" 2>/dev/null || true)"
            if [[ "$recv" =~ ^([a-z]+)\ ([0-9]+)$ ]]; then
                echo "standby of $(node_by_port "${BASH_REMATCH[2]}") (${BASH_REMATCH[1]})"
            else
                echo "standby, not streaming (primary_conninfo: $(node_by_port "$(upstream_port "$node")"))"
            fi
            ;;
        *) echo "?" ;;
    esac
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
    set_writer primary
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
# lets pg_rewind turn a former writer into a standby of the new one (initdb ran without
# data checksums)
wal_log_hints = on
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
            if [[ "$n" != "$(current_writer)" && ! -f "$(node_data "$n")/standby.signal" ]]; then
                echo "$n: DOWN (port $(node_port "$n")) former writer: 'rejoin $n' or 'restart $n' brings it back as a standby of $(current_writer)"
            else
                echo "$n: DOWN (port $(node_port "$n"))"
            fi
            rc=1; continue
        fi
        if [[ "$(rw_proc_state "$pid" || true)" == T ]]; then
            echo "$n: STOPPED (SIGSTOP) pid $pid port $(node_port "$n")"; rc=1; continue
        fi
        echo "$n: up pid $pid port $(node_port "$n") role $(node_role "$n")"
    done
    local w
    w="$(current_writer)"
    if [[ -n "$(server_pid "$(node_data "$w")" || true)" ]]; then
        echo "replication (on the writer, $w):"
        su_psql "$w" -c "SELECT application_name, state, sent_lsn, replay_lsn, replay_lag FROM pg_stat_replication ORDER BY application_name" || rc=1
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
    local pid t0=$SECONDS n w
    w="$(current_writer)"
    pid="$(server_pid "$(node_data "$node")" || true)"
    if [[ -n "$pid" ]]; then
        log "$node is running (pid $pid): fast restart"
        resume_tree "$pid"
        stop_node "$node"
    fi
    if [[ "$node" != "$w" && ! -f "$(node_data "$node")/standby.signal" ]]; then
        # a writer that failover (or promote) left behind: never start it as a second writer
        log "$node: former writer ($w is the writer now): bringing it back as a standby of $w (rejoin)"
        rejoin_node "$node"
        log "$node: up (pid $(server_pid "$(node_data "$node")" || echo '?')) in $((SECONDS - t0))s"
        return 0
    fi
    if [[ "$node" != "$w" && "$(upstream_port "$node")" != "$(node_port "$w")" ]]; then
        # it was down during a switchover or failover
        log "$node: its primary_conninfo points at port $(upstream_port "$node"), not at the writer $w: repointing it"
        write_standby_conf "$node" "$w"
    fi
    pg_ctl_start "$node"
    wait_ready "$node"
    if [[ "$node" == "$w" ]]; then
        # standbys reconnect on their own (wal_retrieve_retry_interval = 1s)
        local spid
        for n in $(known_nodes | grep -vx "$w" || true); do
            spid="$(server_pid "$(node_data "$n")" || true)"
            [[ -n "$spid" ]] || continue
            if [[ "$(rw_proc_state "$spid" || true)" == T ]]; then
                log "$n is SIGSTOPped: not waiting for it to stream"; continue
            fi
            wait_streaming "$n"
        done
    else
        if [[ -n "$(server_pid "$(node_data "$w")" || true)" ]]; then
            wait_streaming "$node"
        else
            log "the writer $w is down: $node is up but cannot stream"
        fi
    fi
    log "$node: up (pid $(server_pid "$(node_data "$node")" || echo '?')) in $((SECONDS - t0))s"
}

cmd_wait_sync() {
    local secs="${1:-$WAIT_SECS}"
    [[ -d "$PG_STATE" ]] || die "not started"
    ensure_binaries
    load_data_root
    local lsn n ok w deadline=$((SECONDS + secs))
    w="$(current_writer)"
    lsn="$(su_query "$w" "SELECT pg_current_wal_lsn()")"
    for n in $(known_nodes | grep -vx "$w" || true); do
        if [[ ! -f "$(node_data "$n")/standby.signal" && -z "$(server_pid "$(node_data "$n")" || true)" ]]; then
            log "$n: down former writer (not a standby until rejoin): not waited for"
            continue
        fi
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
        "$PSQL" -X -q -v ON_ERROR_STOP=1 "$(url "$APP_USER" "$APP_PW" "$(node_port "$(current_writer)")")" -f "$file" >/dev/null
    cmd_wait_sync
    log "loaded $file on the writer ($(current_writer)); standbys caught up"
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
        writer) cmd_writer ;;
        switchover) cmd_switchover "$@" ;;
        failover) cmd_failover "$@" ;;
        promote) cmd_promote "$@" ;;
        rejoin) cmd_rejoin "$@" ;;
        *) sed -n '2p;4,/^#$/p' "$SCRIPT_PATH" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
}

main "$@"
