#!/usr/bin/env bash
# Local MariaDB servers for the rwsplit test suite: one primary and 1-2 GTID replicas on free
# loopback ports, each with its own data dir, socket, pid file and error log under
#   ${RWSPLIT_STATE_DIR:-<repo root>/.servers}/mariadb/{primary,replica1,replica2}/
#
# Usage:
#   scripts/mariadb.sh start [--replicas N]  start primary + N replicas (N = 1 or 2, default 2),
#                                            print the env file (export lines) on stdout
#   scripts/mariadb.sh stop                  stop every server started here, remove the state dir
#   scripts/mariadb.sh env                   print the env file again
#   scripts/mariadb.sh restart NAME          NAME = primary | replica1 | replica2: start that server
#                                            again (same data dir, port and options) after a test
#                                            killed it; no-op if it is running (SIGCONT if stopped)
#   scripts/mariadb.sh status                one line per server: name, port, pid, state, role
#                                            (writer / replica of NAME / down)
#
# Failover drills (server names and the env file's URLs never change; the current writer's name
# is recorded in the state dir, and `restart`, `stop` and replica waits follow it):
#   scripts/mariadb.sh writer                print the current writer's name (initially primary)
#   scripts/mariadb.sh switchover [NAME]     planned: old writer read_only=1, NAME applies its last
#                                            GTID (MASTER_GTID_WAIT), NAME promoted (replication
#                                            reset, read_only=0), every other running server
#                                            replicates from NAME (GTID slave_pos) read-only.
#                                            NAME defaults to the first running non-writer.
#   scripts/mariadb.sh failover [NAME]       unplanned: SIGKILL the writer (verified PID), promote
#                                            NAME (default: the running replica that applied the
#                                            most), repoint the other running replicas. The killed
#                                            server stays down until `rejoin` (or `restart`).
#   scripts/mariadb.sh promote NAME          only stop NAME's replication and set read_only=0; the
#                                            writer is left as it is (two writers = split brain)
#   scripts/mariadb.sh rejoin NAME           make NAME (down, or a promoted non-writer) a read-only
#                                            replica of the writer; if it has transactions the
#                                            writer lacks, say so and rebuild it from the writer
#   switchover and failover print the new writer's name on stdout, every phase's duration on
#   stderr (a line "timings: ..._ms=N ..."); exit status 0 on success, 1 on failure, 2 on usage.
#
#   eval "$(scripts/mariadb.sh start)"   # or: source .servers/mariadb/env
#
# Progress messages go to stderr; only the env file (and the writer's name) goes to stdout.
# Processes are only ever signalled by the PIDs recorded in this state dir's pid files, and only
# after checking that the PID still is a mariadbd serving the expected data dir.
#
# SQL shared with docker-compose.yml: scripts/sql/common/primary-init.sql,
# scripts/sql/mariadb/primary-init.sql, scripts/sql/mariadb/replica-init.sql.

set -euo pipefail

SCRIPT_PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
SCRIPT_DIR="$(dirname "$SCRIPT_PATH")"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
SQL_DIR="$SCRIPT_DIR/sql"

# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"

STATE_ROOT="${RWSPLIT_STATE_DIR:-$REPO_ROOT/.servers}"
case "$STATE_ROOT" in
  /*) ;;
  *) STATE_ROOT="$PWD/$STATE_ROOT" ;;
esac
STATE="$STATE_ROOT/mariadb"
ENV_FILE="$STATE/env"
LOCK_FILE="$STATE_ROOT/.mariadb-sh.lock"

START_TIMEOUT=60       # seconds for a server to accept connections
REPL_TIMEOUT=60        # seconds for replicas to run and catch up
STOP_TIMEOUT=20        # seconds between SIGTERM and SIGKILL
# seconds a switchover waits for the target to apply the old writer's last transaction, and a
# failover for replicas to apply what they received (override: RWSPLIT_SWITCHOVER_TIMEOUT)
SWITCH_TIMEOUT="${RWSPLIT_SWITCHOVER_TIMEOUT:-30}"

RUN_USER="$(id -un)"
# mariadb-install-db --auth-root-authentication-method=socket creates root@localhost (unix_socket,
# usable by OS user root) plus <--user>@localhost; either way "connect as yourself" works.
CLIENT_USER="$RUN_USER"

log() { printf '[mariadb.sh] %s\n' "$*" >&2; }
die() { printf '[mariadb.sh] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$SCRIPT_PATH" >&2
  exit "${1:-2}"
}

# ---------------------------------------------------------------------------------------------
# tools

find_tool() { # NAME -> absolute path (also looks in sbin dirs, which are not on a user's PATH)
  local d
  if command -v "$1" >/dev/null 2>&1; then command -v "$1"; return 0; fi
  for d in /usr/sbin /usr/local/sbin /sbin /usr/libexec; do
    if [[ -x "$d/$1" ]]; then echo "$d/$1"; return 0; fi
  done
  return 1
}

resolve_tools() {
  MARIADBD="$(find_tool mariadbd)" || return 1
  MARIADB_INSTALL_DB="$(find_tool mariadb-install-db)" || return 1
  MARIADB="$(find_tool mariadb)" || return 1
  MARIADB_ADMIN="$(find_tool mariadb-admin)" || return 1
}

ensure_tools() {
  if resolve_tools; then return 0; fi
  log "mariadbd / mariadb client not found; installing mariadb-server and mariadb-client with apt-get"
  local -a sudo=()
  if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install mariadb-server and mariadb-client first"
    sudo=(sudo -n)
  fi
  command -v apt-get >/dev/null 2>&1 || die "apt-get not available: install MariaDB server + client (mariadbd, mariadb-install-db, mariadb, mariadb-admin) first"
  "${sudo[@]}" apt-get update >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y mariadb-server mariadb-client >&2
  resolve_tools || die "MariaDB still not found after apt-get install"
}

# ---------------------------------------------------------------------------------------------
# state helpers

srv_dir() { echo "$STATE/$1"; }
pid_file() { echo "$STATE/$1/mariadbd.pid"; }
sock_file() { echo "$STATE/$1/mysqld.sock"; }
err_log() { echo "$STATE/$1/error.log"; }

valid_name() {
  case "$1" in primary | replica1 | replica2) return 0 ;; *) return 1 ;; esac
}

# Servers present in the state dir, primary first.
existing_servers() {
  local n
  for n in primary replica1 replica2; do
    if [[ -d "$STATE/$n" ]]; then echo "$n"; fi
  done
}

launched_pid_file() { echo "$STATE/$1/launched.pid"; }

# The current writer's name, recorded by start / switchover / failover (primary when absent).
WRITER_FILE="$STATE/writer"
current_writer() {
  local w=""
  if [[ -s "$WRITER_FILE" ]]; then w="$(head -n 1 "$WRITER_FILE")"; fi
  if valid_name "$w"; then echo "$w"; else echo primary; fi
}
set_writer() { echo "$1" >"$WRITER_FILE.tmp" && mv "$WRITER_FILE.tmp" "$WRITER_FILE"; }

# role file: "primary" (writable: starts without --read-only) or "replica" (starts read-only).
server_role() { cat "$STATE/$1/role" 2>/dev/null || echo replica; }
set_role() { echo "$2" >"$STATE/$1/role"; }

# A writer killed by `failover` is marked so that `restart` brings it back through `rejoin`
# (as a replica of the new writer) instead of as a second writer.
needs_rejoin_file() { echo "$STATE/$1/needs-rejoin"; }

# NAME -> the server's PID, or nothing. mariadbd rewrites its pid file at startup (truncate, then
# write), so the file can be empty for a moment; the PID this script launched it with (the same
# process: setsid execs, it does not fork) is kept in launched.pid and used then.
read_pid() { # NAME
  local p
  p="$(rw_read_pid "$(pid_file "$1")")"
  if [[ -z "$p" ]]; then p="$(rw_read_pid "$(launched_pid_file "$1")")"; fi
  if [[ -n "$p" ]]; then echo "$p"; fi
  return 0
}

# True if PID is a live (non-zombie) mariadbd serving NAME's data dir. Guards against PID reuse:
# a stale pid file must never make us signal an unrelated process.
pid_is_server() { # PID NAME
  rw_pid_is "$1" "--datadir=$STATE/$2/data"
}

proc_state() { rw_proc_state "$@"; }

server_pid() { # NAME -> pid if that server is alive, else nothing (exit status 1)
  local pid
  pid="$(read_pid "$1")"
  if [[ -n "$pid" ]] && pid_is_server "$pid" "$1"; then
    echo "$pid"
    return 0
  fi
  return 1
}

server_port() { cat "$STATE/$1/port" 2>/dev/null || true; }

print_log_tail() { # NAME [LINES]
  local f
  f="$(err_log "$1")"
  if [[ -f "$f" ]]; then
    printf -- '----- last %s lines of %s -----\n' "${2:-40}" "$f" >&2
    tail -n "${2:-40}" "$f" >&2 || true
    printf -- '-----\n' >&2
  else
    log "(no error log at $f)"
  fi
  f="$STATE/$1/mariadbd.out"
  if [[ -s "$f" ]]; then
    printf -- '----- %s -----\n' "$f" >&2
    tail -n 20 "$f" >&2 || true
    printf -- '-----\n' >&2
  fi
}

# Exclusive lock (fd 9) so concurrent start/stop/restart on the same state dir serialise.
take_lock() {
  mkdir -p "$STATE_ROOT"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCK_FILE"
    if ! flock -w 120 9; then die "could not lock $LOCK_FILE within 120s (another mariadb.sh running?)"; fi
  fi
}

# ---------------------------------------------------------------------------------------------
# SQL helpers

sql_root() { # NAME [mariadb args...]  -- as the admin OS-socket user, SQL on stdin or via -e
  local name="$1"
  shift
  "$MARIADB" --no-defaults --protocol=socket --socket="$(sock_file "$name")" -u"$CLIENT_USER" \
    --batch --skip-column-names --connect-timeout=5 "$@"
}

sql_tcp() { # USER PASSWORD PORT [mariadb args...]
  local user="$1" pw="$2" port="$3"
  shift 3
  MYSQL_PWD="$pw" "$MARIADB" --no-defaults --protocol=tcp -h127.0.0.1 -P"$port" -u"$user" \
    --batch --skip-column-names --connect-timeout=5 "$@"
}

slave_status_field() { # NAME FIELD
  sql_root "$1" --column-names -e 'SHOW SLAVE STATUS\G' 2>/dev/null |
    awk -v f="$2" '{ sub(/^[ \t]+/, "") } index($0, f ": ") == 1 { print substr($0, length(f) + 3); exit }'
}

# ---------------------------------------------------------------------------------------------
# ports

pick_ports() { rw_free_ports "$@"; } # COUNT -> COUNT distinct free loopback ports, one per line

# ---------------------------------------------------------------------------------------------
# server lifecycle

# Writes NAME's full mariadbd command line (one shell-quoted line) and port into its dir, so that
# `restart` reuses exactly the same options.
write_server_config() { # NAME SERVER_ID PORT ROLE
  local name="$1" sid="$2" port="$3" role="$4" dir
  dir="$(srv_dir "$name")"
  local -a argv=(
    "$MARIADBD" --no-defaults
    --datadir="$dir/data"
    --socket="$dir/mysqld.sock"
    --pid-file="$dir/mariadbd.pid"
    --log-error="$dir/error.log"
    --tmpdir="$dir/tmp"
    --port="$port"
    --bind-address=127.0.0.1
    --skip-name-resolve
    --server-id="$sid"
    --log-bin=mariadb-bin
    --binlog-format=ROW
    --log-slave-updates=ON
    --gtid-strict-mode=ON
    --relay-log=relay-bin
    --slave-net-timeout=10
    --character-set-server=utf8mb4
    --collation-server=utf8mb4_general_ci
    --max-connections=500
    --performance-schema=OFF
    --innodb-buffer-pool-size=64M
    --innodb-log-file-size=16M
    --innodb-flush-log-at-trx-commit=2
    --sync-binlog=0
  )
  if [[ "$(id -u)" -eq 0 ]]; then argv+=(--user="$RUN_USER"); fi
  # --read-only=ON is not saved here: launch_server adds it from the role file, which switchover
  # and failover change.
  mkdir -p "$dir/tmp"
  printf '%q ' "${argv[@]}" >"$dir/start-command"
  echo >>"$dir/start-command"
  echo "$port" >"$dir/port"
  echo "$role" >"$dir/role"
}

# Starts NAME in the background from its saved command, read-only unless its role is primary,
# plus any EXTRA options (e.g. --skip-slave-start); records the PID in its pid file
# (mariadbd rewrites the same PID there once it is up) and in launched.pid, and sets
# LAUNCHED_PID. The script has no job control, so the background child is no process group
# leader and setsid execs mariadbd in it: $! is mariadbd's own PID.
launch_server() { # NAME [EXTRA...]
  local name="$1" dir arg
  shift
  dir="$(srv_dir "$name")"
  [[ -s "$dir/start-command" ]] || die "$name: no saved start command in $dir (run 'start' first)"
  local -a saved argv=()
  eval "saved=( $(cat "$dir/start-command") )"
  for arg in "${saved[@]}"; do
    case "$arg" in --read-only | --read-only=*) ;; *) argv+=("$arg") ;; esac
  done
  if [[ "$(server_role "$name")" != primary ]]; then argv+=(--read-only=ON); fi
  argv+=("$@")
  # The previous instance is known to be dead here: remove its socket + socket lock so a reused
  # PID in mysqld.sock.lock cannot make the new instance refuse to start.
  rm -f "$dir/mysqld.sock" "$dir/mysqld.sock.lock"
  mkdir -p "$dir/tmp"
  # 9>&-: the server must not inherit (and hold forever) our flock on the lock file.
  if command -v setsid >/dev/null 2>&1; then
    setsid "${argv[@]}" </dev/null >>"$dir/mariadbd.out" 2>&1 9>&- &
  else
    nohup "${argv[@]}" </dev/null >>"$dir/mariadbd.out" 2>&1 9>&- &
  fi
  local pid=$!
  LAUNCHED_PID="$pid"
  echo "$pid" >"$dir/launched.pid"
  echo "$pid" >"$dir/mariadbd.pid"
  log "$name: launched mariadbd pid $pid on 127.0.0.1:$(server_port "$name")"
}

ping_ok() { # NAME
  "$MARIADB_ADMIN" --no-defaults --protocol=socket --socket="$(sock_file "$1")" \
    -u"$CLIENT_USER" --connect-timeout=2 ping >/dev/null 2>&1
}

# Waits until NAME accepts connections on its socket. PID is the process to watch: the one this
# script launched (never re-read from the pid file, which mariadbd truncates and rewrites while
# it starts). Returns 1 if that process exits first, dies after START_TIMEOUT.
wait_ready_or_gone() { # NAME PID
  local name="$1" pid="$2" deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    if ping_ok "$name"; then return 0; fi
    # The process may have become ready and then died, or died at once: ping once more after
    # seeing it gone, so a server that came up is never reported as exited.
    if ! pid_is_server "$pid" "$name"; then
      if ping_ok "$name"; then return 0; fi
      return 1
    fi
    if ((SECONDS >= deadline)); then
      print_log_tail "$name"
      die "$name: not accepting connections after ${START_TIMEOUT}s (pid $pid)"
    fi
    sleep 0.2
  done
}

wait_ready() { # NAME PID
  if ! wait_ready_or_gone "$1" "$2"; then
    print_log_tail "$1"
    die "$1: mariadbd (pid $2) exited during startup (see $(err_log "$1"))"
  fi
}

# SIGCONT (in case a test SIGSTOPped it), SIGTERM, wait, SIGKILL -- for each given server, in
# parallel. Only PIDs from our pid files that still are our mariadbd are signalled.
stop_servers() { # NAME...
  local name pid
  local -a names=() pids=()
  for name in "$@"; do
    pid="$(server_pid "$name")" || continue
    names+=("$name")
    pids+=("$pid")
    if [[ "$(proc_state "$pid" || true)" == T ]]; then
      log "$name: pid $pid is stopped (SIGSTOP); sending SIGCONT"
    fi
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    log "$name: sent SIGTERM to pid $pid"
  done
  ((${#pids[@]})) || return 0
  local deadline=$((SECONDS + STOP_TIMEOUT)) i remaining
  while :; do
    remaining=0
    for i in "${!pids[@]}"; do
      if pid_is_server "${pids[$i]}" "${names[$i]}"; then remaining=1; fi
    done
    ((remaining)) || break
    if ((SECONDS >= deadline)); then
      for i in "${!pids[@]}"; do
        if pid_is_server "${pids[$i]}" "${names[$i]}"; then
          log "${names[$i]}: pid ${pids[$i]} still alive after ${STOP_TIMEOUT}s; sending SIGKILL"
          kill -KILL "${pids[$i]}" 2>/dev/null || true
        fi
      done
      local kdeadline=$((SECONDS + 10))
      while ((SECONDS < kdeadline)); do
        remaining=0
        for i in "${!pids[@]}"; do
          if pid_is_server "${pids[$i]}" "${names[$i]}"; then remaining=1; fi
        done
        ((remaining)) || break
        sleep 0.1
      done
      break
    fi
    sleep 0.1
  done
  for i in "${!pids[@]}"; do
    if pid_is_server "${pids[$i]}" "${names[$i]}"; then
      die "${names[$i]}: pid ${pids[$i]} survived SIGKILL"
    fi
    log "${names[$i]}: pid ${pids[$i]} stopped"
  done
}

# Waits until NAME's replication threads run (IO thread may be "Connecting" if the writer is
# down) and, with CATCH_UP=1, until its @@gtid_slave_pos equals the writer's @@gtid_binlog_pos.
# The writer is the current one (see `writer`), initially the primary.
wait_replication() { # NAME CATCH_UP
  local name="$1" catch_up="$2" deadline=$((SECONDS + REPL_TIMEOUT))
  local io sqlr target pos primary_up ppid started=0 writer
  writer="$(current_writer)"
  while :; do
    io="$(slave_status_field "$name" Slave_IO_Running)"
    sqlr="$(slave_status_field "$name" Slave_SQL_Running)"
    # A dead or SIGSTOPped writer leaves the IO thread "Connecting"; accept that then.
    primary_up=0
    if ppid="$(server_pid "$writer")" && [[ "$(proc_state "$ppid" || true)" != T ]]; then primary_up=1; fi
    if [[ "$sqlr" == Yes && ("$io" == Yes || ("$primary_up" == 0 && "$io" == Connecting)) ]]; then
      if [[ "$catch_up" != 1 ]]; then return 0; fi
      target="$(sql_root "$writer" -e 'SELECT @@GLOBAL.gtid_binlog_pos' 2>/dev/null || true)"
      pos="$(sql_root "$name" -e 'SELECT @@GLOBAL.gtid_slave_pos' 2>/dev/null || true)"
      if [[ -n "$target" && "$pos" == "$target" ]]; then return 0; fi
    elif [[ "$sqlr" == No && "$io" == No && "$started" == 0 ]]; then
      # Replication configured but not running (e.g. a test ran STOP SLAVE before killing it).
      log "$name: replication threads not running; START SLAVE"
      sql_root "$name" -e 'START SLAVE' || true
      started=1
    fi
    if ((SECONDS >= deadline)); then
      log "$name: replication not ready after ${REPL_TIMEOUT}s: Slave_IO_Running=${io:-?} Slave_SQL_Running=${sqlr:-?} gtid_slave_pos=${pos:-?} writer ($writer) gtid_binlog_pos=${target:-?}"
      sql_root "$name" --column-names -e 'SHOW SLAVE STATUS\G' >&2 || true
      print_log_tail "$name"
      print_log_tail "$writer" 20
      die "$name: replication did not become ready"
    fi
    sleep 0.2
  done
}

# A fresh data dir in DIR (mariadb-install-db; its output goes to LOG).
install_datadir() { # DIR LOG
  local -a install_args=(
    --no-defaults
    --datadir="$1"
    --auth-root-authentication-method=socket
    --auth-root-socket-user="$RUN_USER"
    --skip-test-db
    --skip-name-resolve
    --innodb-log-file-size=16M
    --innodb-buffer-pool-size=64M
  )
  if [[ "$(id -u)" -eq 0 ]]; then install_args+=(--user="$RUN_USER"); fi
  log "initialising data directory $1 (mariadb-install-db)"
  if ! "$MARIADB_INSTALL_DB" "${install_args[@]}" >"$2" 2>&1; then
    tail -n 40 "$2" >&2
    die "mariadb-install-db failed (full log: $2)"
  fi
}

# scripts/sql/mariadb/replica-init.sql (CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos; START
# SLAVE) pointed at 127.0.0.1:PORT.
replica_init_sql() { # PORT
  local port="$1" sql
  sql="$(sed -e "s/MASTER_HOST='mariadb-primary'/MASTER_HOST='127.0.0.1'/" \
    -e "s/MASTER_PORT=3306/MASTER_PORT=$port/" "$SQL_DIR/mariadb/replica-init.sql")"
  [[ "$sql" == *"MASTER_HOST='127.0.0.1'"* && "$sql" == *"MASTER_PORT=$port"* ]] ||
    die "could not substitute MASTER_HOST/MASTER_PORT in $SQL_DIR/mariadb/replica-init.sql"
  echo "$sql"
}

# ---------------------------------------------------------------------------------------------
# failover drills: switchover, failover, promote, rejoin

# Alive servers (SIGSTOPped ones included), primary first.
running_servers() {
  local n
  for n in $(existing_servers); do
    if server_pid "$n" >/dev/null; then echo "$n"; fi
  done
  return 0
}

name_by_port() { # PORT -> the server on that port, or "port PORT"
  local n
  for n in $(existing_servers); do
    if [[ "$(server_port "$n")" == "$1" ]]; then echo "$n"; return 0; fi
  done
  echo "port $1"
}

slave_status() { sql_root "$1" --column-names -e 'SHOW SLAVE STATUS\G' 2>/dev/null || true; }
status_field() { # TEXT FIELD -- one field of a SHOW SLAVE STATUS\G output
  awk -v f="$2" '{ sub(/^[ \t]+/, "") } index($0, f ": ") == 1 { print substr($0, length(f) + 3); exit }' <<<"$1"
}

# The sum of a GTID list's sequence numbers: with one replication domain (as here) the position,
# so the larger sum has applied more.
gtid_score() { # GTID_LIST
  local g s=0
  local -a gs=()
  IFS=, read -ra gs <<<"$1"
  for g in "${gs[@]}"; do
    g="${g//[[:space:]]/}"
    if [[ "$g" =~ ^[0-9]+-[0-9]+-([0-9]+)$ ]]; then s=$((s + BASH_REMATCH[1])); fi
  done
  echo "$s"
}

# The GTIDs of NAME's binlog that WRITER's binlog lacks, comma-separated (nothing when none).
# Both sides' @@gtid_binlog_state hold the last GTID of each (domain, server_id); NAME's D-S-N is
# in WRITER's binlog when WRITER's state has D-S-M with M >= N (under gtid_strict_mode sequence
# numbers only grow within a domain). A switchover or a clean failover leaves none; a writer
# killed before its last transactions reached the new writer, or a promoted server that took
# writes (split brain), has some.
missing_gtids() { # NAME WRITER
  local mine theirs g key
  local -a gs=() out=()
  local -A have=()
  mine="$(sql_root "$1" -e 'SELECT @@GLOBAL.gtid_binlog_state')" || die "$1: cannot read @@gtid_binlog_state"
  theirs="$(sql_root "$2" -e 'SELECT @@GLOBAL.gtid_binlog_state')" || die "$2: cannot read @@gtid_binlog_state"
  IFS=, read -ra gs <<<"$theirs"
  for g in "${gs[@]}"; do
    g="${g//[[:space:]]/}"
    if [[ "$g" =~ ^([0-9]+-[0-9]+)-([0-9]+)$ ]]; then have[${BASH_REMATCH[1]}]="${BASH_REMATCH[2]}"; fi
  done
  IFS=, read -ra gs <<<"$mine"
  for g in "${gs[@]}"; do
    g="${g//[[:space:]]/}"
    [[ "$g" =~ ^([0-9]+-[0-9]+)-([0-9]+)$ ]] || continue
    key="${BASH_REMATCH[1]}"
    if [[ -z "${have[$key]:-}" ]] || ((have[$key] < BASH_REMATCH[2])); then out+=("$g"); fi
  done
  if ((${#out[@]})); then (IFS=,; echo "${out[*]}"); fi
  return 0
}

# Milliseconds from stamp A to stamp B, as "N".
ms() { echo $(($2 - $1)); }

# NAME becomes a writer: replication stopped and forgotten (so a restart does not resume it),
# then read_only off.
promote_server() { # NAME
  sql_root "$1" -e 'STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0' || die "$1: promotion failed"
  set_role "$1" primary
}

# Points NAME's replication at WRITER (read-only first). Replication resumes from NAME's own
# @@gtid_binlog_pos (with log_slave_updates it holds everything NAME applied and, as a former
# writer, wrote), copied into @@gtid_slave_pos for MASTER_USE_GTID=slave_pos: nothing is applied
# twice or skipped. A server holding a transaction the writer lacks is refused by the writer
# (error 1236), which wait_attached reports as divergence.
attach_server() { # NAME WRITER
  local sql
  sql="$(replica_init_sql "$(server_port "$2")")"
  sql_root "$1" <<SQL || die "$1: could not point its replication at $2"
SET GLOBAL read_only = 1;
STOP SLAVE;
SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos;
$sql
SQL
  set_role "$1" replica
}

# Waits until NAME replicates from WRITER and has applied WRITER's @@gtid_binlog_pos. Returns 0
# then; 2 when NAME's data differs from WRITER's: WRITER refused NAME's position (1236: NAME has
# transactions WRITER lacks) or applying WRITER's transactions failed (a missing table or row, a
# duplicate key); 1 when not caught up after SECONDS. ATTACH_ERROR says why.
wait_attached() { # NAME WRITER SECONDS
  local name="$1" writer="$2" deadline=$((SECONDS + $3)) st io sqlr ioerr sqlerr target r=""
  ATTACH_ERROR=""
  while :; do
    st="$(slave_status "$name")"
    io="$(status_field "$st" Slave_IO_Running)"
    sqlr="$(status_field "$st" Slave_SQL_Running)"
    ioerr="$(status_field "$st" Last_IO_Errno)"
    sqlerr="$(status_field "$st" Last_SQL_Errno)"
    if [[ "$ioerr" == 1236 ]]; then
      ATTACH_ERROR="$(status_field "$st" Last_IO_Error)"
      return 2
    fi
    if [[ -n "$sqlerr" && "$sqlerr" != 0 ]]; then
      ATTACH_ERROR="applying its transactions failed with error $sqlerr: $(status_field "$st" Last_SQL_Error)"
      return 2
    fi
    if [[ "$io" == Yes && "$sqlr" == Yes ]]; then
      if [[ "$r" == 0 ]]; then return 0; fi # caught up, and both threads still run after that
      # (MASTER_GTID_WAIT compares sequence numbers per domain only: missing_gtids is what
      # detects a diverged server)
      target="$(sql_root "$writer" -e 'SELECT @@GLOBAL.gtid_binlog_pos' 2>/dev/null || true)"
      r="$(sql_root "$name" -e "SELECT MASTER_GTID_WAIT('$target', 0.5)" 2>/dev/null || true)"
    else
      r=""
      sleep 0.1
    fi
    if ((SECONDS >= deadline)); then
      ATTACH_ERROR="not caught up with $writer after $3s (Slave_IO_Running=${io:-?} Slave_SQL_Running=${sqlr:-?} Last_IO_Errno=${ioerr:-?}: $(status_field "$st" Last_IO_Error))"
      return 1
    fi
  done
}

# Replaces NAME's data with a copy of WRITER's: a fresh data dir that replays WRITER's whole
# binlog from the start (as `start` builds replicas). NAME's own data (and whatever transactions
# only it had) is deleted. While it replays, it runs under a temporary server_id: a replica skips
# events carrying its own server_id (replicate_same_server_id=OFF), and WRITER's binlog holds the
# transactions NAME wrote when it was a writer.
rebuild_server() { # NAME WRITER
  local name="$1" writer="$2" dir rc sid
  dir="$(srv_dir "$name")"
  sid="$(grep -o -- '--server-id=[0-9]*' "$dir/start-command" | head -n 1 | cut -d= -f2)"
  [[ -n "$sid" ]] || die "$name: no --server-id in $dir/start-command"
  log "$name: rebuilding from $writer (fresh data dir + $writer's binlog from the start); $name's old data is deleted"
  stop_servers "$name"
  rm -rf "$dir/data" "$dir/tmp"
  install_datadir "$dir/data" "$dir/install-db.log"
  set_role "$name" replica
  launch_server "$name" --skip-slave-start --server-id=$((sid + 1000))
  wait_ready "$name" "$LAUNCHED_PID"
  sql_root "$name" <<SQL || die "$name: could not point the rebuilt server at $writer"
SET GLOBAL gtid_slave_pos = '';
$(replica_init_sql "$(server_port "$writer")")
SQL
  rc=0
  wait_attached "$name" "$writer" "$REPL_TIMEOUT" || rc=$?
  ((rc == 0)) || die "$name: rebuilt, but it does not replicate from $writer: $ATTACH_ERROR (has $writer purged binlogs?)"
  sql_root "$name" -e "STOP SLAVE; SET GLOBAL server_id = $sid; START SLAVE" ||
    die "$name: could not set server_id back to $sid"
  rc=0
  wait_attached "$name" "$writer" "$REPL_TIMEOUT" || rc=$?
  ((rc == 0)) || die "$name: rebuilt, but replication from $writer failed after server_id went back to $sid: $ATTACH_ERROR"
  log "$name: rebuilt; replicates from $writer and has all of its transactions"
}

# Waits for NAME (already pointed at WRITER by attach_server) to catch up; a diverged NAME is
# reported and rebuilt.
settle_server() { # NAME WRITER
  local name="$1" writer="$2" rc=0 mine theirs missing
  missing="$(missing_gtids "$name" "$writer")"
  if [[ -n "$missing" ]]; then
    ATTACH_ERROR="it has transactions that $writer lacks: $missing (the last one per server_id)"
    rc=2
  else
    wait_attached "$name" "$writer" "$REPL_TIMEOUT" || rc=$?
  fi
  case "$rc" in
    0) ;;
    2)
      mine="$(sql_root "$name" -e 'SELECT @@GLOBAL.gtid_binlog_pos' 2>/dev/null || echo '?')"
      theirs="$(sql_root "$writer" -e 'SELECT @@GLOBAL.gtid_binlog_pos' 2>/dev/null || echo '?')"
      log "$name: DIVERGED from the writer $writer: $ATTACH_ERROR (its binlog ends at ${mine:-nothing}, $writer's at ${theirs:-nothing})"
      rebuild_server "$name" "$writer"
      ;;
    *)
      sql_root "$name" --column-names -e 'SHOW SLAVE STATUS\G' >&2 || true
      die "$name: replication from $writer failed: $ATTACH_ERROR"
      ;;
  esac
}

join_writer() { # NAME WRITER
  attach_server "$1" "$2"
  settle_server "$1" "$2"
}

require_started() {
  [[ -d "$STATE" && -s "$STATE/primary/start-command" ]] ||
    die "no servers in $STATE (run 'scripts/mariadb.sh start' first)"
}

running_name() { # COMMAND NAME -- dies unless NAME is a server of this state dir that is running
  valid_name "$2" || die "$1: NAME must be primary, replica1 or replica2 (got '$2')"
  [[ -s "$STATE/$2/start-command" ]] || die "$1: there is no server $2 in $STATE"
  server_pid "$2" >/dev/null || die "$1: $2 is not running"
}

log_timings() { # WHAT KEY=MS...
  local what="$1"
  shift
  log "$what timings: $*"
}

cmd_writer() {
  require_started
  current_writer
}

cmd_switchover() {
  local target="${1:-}" old n st mport io sqlr pos r
  require_started
  resolve_tools || die "MariaDB tools not found"
  take_lock
  old="$(current_writer)"
  server_pid "$old" >/dev/null || die "switchover: the writer $old is not running (use failover, or restart it first)"
  if [[ -z "$target" ]]; then
    for n in $(running_servers); do
      if [[ "$n" != "$old" ]]; then target="$n"; break; fi
    done
    [[ -n "$target" ]] || die "switchover: no running server besides the writer $old"
  fi
  running_name switchover "$target"
  [[ "$target" != "$old" ]] || die "switchover: $target already is the writer"
  st="$(slave_status "$target")"
  mport="$(status_field "$st" Master_Port)"
  io="$(status_field "$st" Slave_IO_Running)"
  sqlr="$(status_field "$st" Slave_SQL_Running)"
  [[ "$mport" == "$(server_port "$old")" ]] ||
    die "switchover: $target does not replicate from the writer $old (Master_Port=${mport:-none}); run 'rejoin $target' first"
  [[ "$io" == Yes && "$sqlr" == Yes ]] ||
    die "switchover: $target's replication from $old is not running (Slave_IO_Running=${io:-?} Slave_SQL_Running=${sqlr:-?})"

  local -a others=("$old")
  for n in $(running_servers); do
    if [[ "$n" != "$old" && "$n" != "$target" ]]; then others+=("$n"); fi
  done
  log "switchover: $old -> $target; to replicate from $target afterwards: ${others[*]}"

  local t0 t1 t2 t3 t4 t5
  rw_stamp t0
  # read_only waits for running write statements (bounded here: lock_wait_timeout); from then on
  # commits by users without READ_ONLY ADMIN fail with 1290 (admin users can still write!).
  pos="$(sql_root "$old" -e "SET SESSION lock_wait_timeout = $SWITCH_TIMEOUT; SET GLOBAL read_only = 1; SELECT @@GLOBAL.gtid_binlog_pos")" ||
    die "switchover: SET GLOBAL read_only = 1 failed on $old; nothing changed"
  rw_stamp t1
  r="$(sql_root "$target" -e "SELECT MASTER_GTID_WAIT('$pos', $SWITCH_TIMEOUT)" 2>&1)" || true
  rw_stamp t2
  if [[ "$r" != 0 ]]; then
    sql_root "$old" -e 'SET GLOBAL read_only = 0' || log "could not set read_only = 0 on $old again"
    die "switchover aborted: $target did not apply $old's position $pos within ${SWITCH_TIMEOUT}s (MASTER_GTID_WAIT: $r); $old is writable again, nothing else changed"
  fi
  promote_server "$target"
  rw_stamp t3
  set_writer "$target"
  log "$old: read_only=1 at +0 ms (last transaction $pos); $target applied it at +$(ms "$t0" "$t2") ms, promoted (read_only=0) at +$(ms "$t0" "$t3") ms"
  for n in "${others[@]}"; do attach_server "$n" "$target"; done
  rw_stamp t4
  for n in "${others[@]}"; do settle_server "$n" "$target"; done
  rw_stamp t5
  for n in $(existing_servers); do
    if [[ "$n" != "$target" ]] && ! server_pid "$n" >/dev/null; then
      log "$n is down: 'restart $n' or 'rejoin $n' will point it at $target"
    fi
  done
  log "switchover done: $target is the writer; replicating from it, read-only, caught up: ${others[*]}"
  log_timings switchover "read_only_ms=$(ms "$t0" "$t1") catch_up_ms=$(ms "$t1" "$t2") promote_ms=$(ms "$t2" "$t3") repoint_ms=$(ms "$t3" "$t4") verify_ms=$(ms "$t4" "$t5") total_ms=$(ms "$t0" "$t5") write_unavailable_ms=$(ms "$t0" "$t3")"
  echo "$target"
}

cmd_failover() {
  local target="${1:-}" old opid n st iopos r best=-1 score
  require_started
  resolve_tools || die "MariaDB tools not found"
  take_lock
  old="$(current_writer)"
  if [[ -n "$target" ]]; then
    valid_name "$target" || die "failover: NAME must be primary, replica1 or replica2 (got '$target')"
    [[ "$target" != "$old" ]] || die "failover: $target is the writer that fails"
  fi

  local t0 t1 t2 t3 t4
  rw_stamp t0
  if opid="$(server_pid "$old")"; then
    kill -KILL "$opid" 2>/dev/null || true
    rw_wait_gone "$opid" 10 || die "failover: $old (pid $opid) survived SIGKILL"
    log "$old: SIGKILL pid $opid (it stays down: 'rejoin $old' brings it back as a replica)"
  else
    log "$old: already down"
  fi
  rw_stamp t1

  local -a cands=()
  mapfile -t cands < <(running_servers)
  ((${#cands[@]})) || die "failover: no running server to promote ($old stays down)"
  if [[ -n "$target" ]]; then running_name failover "$target"; fi
  # Each replica first applies what it had received from the dead writer.
  for n in "${cands[@]}"; do
    st="$(slave_status "$n")"
    iopos="$(status_field "$st" Gtid_IO_Pos)"
    if [[ -n "$iopos" && "$(status_field "$st" Slave_SQL_Running)" == Yes ]]; then
      r="$(sql_root "$n" -e "SELECT MASTER_GTID_WAIT('$iopos', $SWITCH_TIMEOUT)" 2>&1)" || true
      [[ "$r" == 0 ]] || log "$n: did not apply everything it received ($iopos) within ${SWITCH_TIMEOUT}s: $r"
    fi
  done
  rw_stamp t2
  if [[ -z "$target" ]]; then
    for n in "${cands[@]}"; do
      score="$(gtid_score "$(sql_root "$n" -e 'SELECT @@GLOBAL.gtid_slave_pos' 2>/dev/null || true)")"
      if ((score > best)); then best="$score"; target="$n"; fi
    done
  fi
  local -a others=()
  for n in "${cands[@]}"; do
    if [[ "$n" != "$target" ]]; then others+=("$n"); fi
  done
  log "failover: promoting $target (applied $(sql_root "$target" -e 'SELECT @@GLOBAL.gtid_slave_pos' 2>/dev/null || echo '?'))"
  promote_server "$target"
  rw_stamp t3
  set_writer "$target"
  for n in "${others[@]}"; do attach_server "$n" "$target"; done
  for n in "${others[@]}"; do settle_server "$n" "$target"; done
  rw_stamp t4
  log "failover done: $target is the writer; replicating from it: ${others[*]:-none}; $old is down"
  log_timings failover "kill_ms=$(ms "$t0" "$t1") drain_ms=$(ms "$t1" "$t2") promote_ms=$(ms "$t2" "$t3") repoint_ms=$(ms "$t3" "$t4") total_ms=$(ms "$t0" "$t4") write_unavailable_ms=$(ms "$t0" "$t3")"
  echo "$target"
}

cmd_promote() {
  local name="${1:-}" w
  require_started
  resolve_tools || die "MariaDB tools not found"
  take_lock
  running_name promote "$name"
  w="$(current_writer)"
  if [[ "$name" == "$w" ]]; then
    log "$name already is the writer"
    return 0
  fi
  promote_server "$name"
  if server_pid "$w" >/dev/null; then
    log "$name: promoted (replication reset, read_only=0). WARNING: $w is still the writer too: two writable servers (split brain). Undo with 'scripts/mariadb.sh rejoin $name' (rebuilds it if it took writes)"
  else
    set_writer "$name"
    log "$name: promoted (replication reset, read_only=0); the writer $w is down, so $name is now the recorded writer (other replicas still point at $w)"
  fi
}

# NAME (not the writer) becomes a read-only replica of the writer, rebuilt if it diverged.
# The caller holds the lock.
rejoin_server() { # NAME
  local name="$1" w pid
  w="$(current_writer)"
  [[ "$name" != "$w" ]] || die "rejoin: $name is the writer"
  server_pid "$w" >/dev/null || die "rejoin: the writer $w is not running (restart it, or fail over to a running server first)"
  if pid="$(server_pid "$name")"; then
    log "$name: running (pid $pid); making it a read-only replica of $w"
    sql_root "$name" -e 'SET GLOBAL read_only = 1' || die "$name: SET GLOBAL read_only = 1 failed"
  else
    log "$name: starting it read-only, replication not started, to point it at $w"
    set_role "$name" replica
    launch_server "$name" --skip-slave-start
    wait_ready "$name" "$LAUNCHED_PID"
  fi
  join_writer "$name" "$w"
  log "$name: replica of $w, read-only, caught up at $(sql_root "$name" -e 'SELECT @@GLOBAL.gtid_slave_pos')"
}

cmd_rejoin() {
  local name="${1:-}"
  require_started
  valid_name "$name" || die "rejoin: NAME must be primary, replica1 or replica2 (got '${name}')"
  [[ -s "$STATE/$name/start-command" ]] || die "rejoin: there is no server $name in $STATE"
  resolve_tools || die "MariaDB tools not found"
  take_lock
  rejoin_server "$name"
}

# One line describing NAME's live role.
role_of() { # NAME STATE
  local name="$1" state="$2" w st mport ro
  w="$(current_writer)"
  if [[ "$state" == dead ]]; then
    if [[ "$(server_role "$name")" == primary && "$name" != "$w" ]]; then
      echo "down (former writer: 'rejoin $name' or 'restart $name' brings it back as a replica of $w)"
    else
      echo down
    fi
    return 0
  fi
  if [[ "$state" != alive ]]; then echo "?"; return 0; fi
  st="$(slave_status "$name")"
  mport="$(status_field "$st" Master_Port)"
  ro="$(sql_root "$name" -e 'SELECT @@GLOBAL.read_only' 2>/dev/null || echo '?')"
  if [[ -n "$mport" ]]; then
    echo "replica of $(name_by_port "$mport") (io=$(status_field "$st" Slave_IO_Running) sql=$(status_field "$st" Slave_SQL_Running) read_only=$ro)"
  elif [[ "$ro" == 0 && "$name" == "$w" ]]; then
    echo writer
  elif [[ "$ro" == 0 ]]; then
    echo "writable, not replicating: SPLIT BRAIN with the writer $w ('rejoin $name' undoes it)"
  else
    echo "not replicating (read_only=$ro)"
  fi
}

# ---------------------------------------------------------------------------------------------
# commands

write_env_file() { # REPLICA_COUNT
  local n="$1" k port
  {
    printf 'export RWSPLIT_STATE_DIR=%q\n' "$STATE_ROOT"
    printf 'export RWSPLIT_MYSQL_SCRIPT=%q\n' "$SCRIPT_PATH"
    port="$(server_port primary)"
    printf 'export RWSPLIT_MYSQL_PRIMARY=%q\n' "mysql://rwsplit:rwsplit_pw@127.0.0.1:$port/rwsplit_test"
    for ((k = 1; k <= n; k++)); do
      port="$(server_port "replica$k")"
      printf 'export RWSPLIT_MYSQL_REPLICA_%d=%q\n' "$k" "mysql://rwsplit:rwsplit_pw@127.0.0.1:$port/rwsplit_test"
    done
    port="$(server_port primary)"
    printf 'export RWSPLIT_MYSQL_ADMIN_PRIMARY=%q\n' "mysql://rwsplit_admin:admin_pw@127.0.0.1:$port/rwsplit_test"
    for ((k = 1; k <= n; k++)); do
      port="$(server_port "replica$k")"
      printf 'export RWSPLIT_MYSQL_ADMIN_REPLICA_%d=%q\n' "$k" "mysql://rwsplit_admin:admin_pw@127.0.0.1:$port/rwsplit_test"
    done
    printf 'export RWSPLIT_MYSQL_PRIMARY_PIDFILE=%q\n' "$(pid_file primary)"
    for ((k = 1; k <= n; k++)); do
      printf 'export RWSPLIT_MYSQL_REPLICA_%d_PIDFILE=%q\n' "$k" "$(pid_file "replica$k")"
    done
  } >"$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

# Checks that the setup behaves as the tests expect; dies otherwise.
verify_setup() { # REPLICA_COUNT
  local n="$1" k name port out sid
  port="$(server_port primary)"
  sid="$(sql_tcp rwsplit rwsplit_pw "$port" rwsplit_test -e 'SELECT @@server_id')" ||
    die "primary: user rwsplit cannot connect over TCP 127.0.0.1:$port"
  [[ "$sid" == 1 ]] || die "primary: unexpected @@server_id '$sid'"
  sql_tcp rwsplit rwsplit_pw "$port" rwsplit_test -e 'SHOW BINLOG STATUS; SELECT @@gtid_binlog_pos' >/dev/null ||
    die "primary: rwsplit cannot run SHOW BINLOG STATUS / read @@gtid_binlog_pos"
  sql_tcp rwsplit_admin admin_pw "$port" rwsplit_test -e 'SELECT 1' >/dev/null ||
    die "primary: user rwsplit_admin cannot connect over TCP"
  for ((k = 1; k <= n; k++)); do
    name="replica$k"
    port="$(server_port "$name")"
    sid="$(sql_tcp rwsplit rwsplit_pw "$port" rwsplit_test -e 'SELECT @@server_id')" ||
      die "$name: user rwsplit cannot connect over TCP 127.0.0.1:$port"
    [[ "$sid" == $((1 + k)) ]] || die "$name: unexpected @@server_id '$sid'"
    sql_tcp rwsplit rwsplit_pw "$port" rwsplit_test \
      -e 'SHOW SLAVE STATUS; SELECT @@gtid_slave_pos, @@gtid_current_pos, @@read_only' >/dev/null ||
      die "$name: rwsplit cannot run SHOW SLAVE STATUS / read gtid variables"
    sql_tcp rwsplit_admin admin_pw "$port" rwsplit_test -e 'SELECT 1' >/dev/null ||
      die "$name: user rwsplit_admin cannot connect over TCP"
    # A misrouted write must fail loudly: ERROR 1290 (ER_OPTION_PREVENTS_STATEMENT, --read-only).
    if out="$(sql_tcp rwsplit rwsplit_pw "$port" rwsplit_test \
      -e 'CREATE TABLE rwsplit_test.rwsplit_read_only_probe (x INT)' 2>&1)"; then
      die "$name: CREATE TABLE as rwsplit SUCCEEDED on a read-only replica (rwsplit must not bypass read_only); replication of this replica is now suspect"
    fi
    [[ "$out" == *"ERROR 1290"* ]] || die "$name: write as rwsplit failed, but not with ERROR 1290: $out"
  done
  log "verified: rwsplit over TCP on all servers, server_ids 1..$((n + 1)), replica writes fail with ERROR 1290"
}

on_start_exit() {
  local rc=$?
  if ((rc != 0)); then
    log "start failed; stopping the servers it launched (logs kept in $STATE)"
    local -a started=()
    mapfile -t started < <(existing_servers)
    if ((${#started[@]})); then stop_servers "${started[@]}" || true; fi
  fi
}

cmd_start() {
  local replicas=2
  while (($#)); do
    case "$1" in
      --replicas) replicas="${2:-}"; shift 2 || usage ;;
      --replicas=*) replicas="${1#*=}"; shift ;;
      -h | --help) usage 0 ;;
      *) die "start: unknown argument '$1'" ;;
    esac
  done
  [[ "$replicas" == 1 || "$replicas" == 2 ]] || die "start: --replicas must be 1 or 2 (got '$replicas')"

  local sock_probe="$STATE/replica2/mysqld.sock.lock"
  ((${#sock_probe} < 104)) ||
    die "state dir path too long for unix sockets ($sock_probe); set RWSPLIT_STATE_DIR to a shorter path"

  local t0ns
  t0ns="$(date +%s%N)"
  ensure_tools
  for f in common/primary-init.sql mariadb/primary-init.sql mariadb/replica-init.sql; do
    [[ -f "$SQL_DIR/$f" ]] || die "missing $SQL_DIR/$f"
  done
  take_lock

  if [[ -d "$STATE" ]]; then
    log "previous state in $STATE: stopping its servers and wiping it"
    local -a old=()
    mapfile -t old < <(existing_servers)
    if ((${#old[@]})); then stop_servers "${old[@]}"; fi
    rm -rf "$STATE"
  fi
  mkdir -p "$STATE"
  set_writer primary

  local -a names=(primary)
  local k
  for ((k = 1; k <= replicas; k++)); do names+=("replica$k"); done

  # From here on, a failure stops whatever was started (logs are kept for inspection).
  trap on_start_exit EXIT

  # One mariadb-install-db run, copied to every server: faster than initialising each one.
  local template="$STATE/template"
  install_datadir "$template" "$STATE/install-db.log"

  local -a ports
  mapfile -t ports < <(pick_ports "${#names[@]}")
  ((${#ports[@]} == ${#names[@]})) || die "could not pick free ports"

  local i name
  for i in "${!names[@]}"; do
    name="${names[$i]}"
    mkdir -p "$STATE/$name"
    cp -a "$template" "$STATE/$name/data"
    if ((i == 0)); then
      write_server_config "$name" 1 "${ports[$i]}" primary
    else
      write_server_config "$name" $((1 + i)) "${ports[$i]}" replica
    fi
  done
  rm -rf "$template"

  local -A launched=()
  for name in "${names[@]}"; do
    launch_server "$name"
    launched[$name]="$LAUNCHED_PID"
  done
  for name in "${names[@]}"; do wait_ready "$name" "${launched[$name]}"; done
  log "all servers accept connections"

  log "primary: running common/primary-init.sql + mariadb/primary-init.sql"
  cat "$SQL_DIR/common/primary-init.sql" "$SQL_DIR/mariadb/primary-init.sql" | sql_root primary ||
    die "primary-init SQL failed"

  local primary_port sql
  primary_port="$(server_port primary)"
  for name in "${names[@]:1}"; do
    sql="$(replica_init_sql "$primary_port")"
    log "$name: CHANGE MASTER TO 127.0.0.1:$primary_port (GTID slave_pos); START SLAVE"
    sql_root "$name" <<<"$sql" || die "$name: replica-init SQL failed"
  done
  for name in "${names[@]:1}"; do
    wait_replication "$name" 1
    log "$name: replicating, caught up with primary at $(sql_root "$name" -e 'SELECT @@gtid_slave_pos')"
  done

  verify_setup "$replicas"
  write_env_file "$replicas"
  trap - EXIT

  local ms=$((($(date +%s%N) - t0ns) / 1000000))
  log "started primary + $replicas replica(s) in $((ms / 1000)).$(printf '%03d' $((ms % 1000)))s; env file: $ENV_FILE"
  cat "$ENV_FILE"
}

cmd_stop() {
  if [[ ! -d "$STATE" ]]; then
    log "nothing to stop ($STATE does not exist)"
    return 0
  fi
  resolve_tools || true
  take_lock
  local -a names=()
  mapfile -t names < <(existing_servers)
  if ((${#names[@]})); then stop_servers "${names[@]}"; fi
  rm -rf "$STATE"
  # (.mariadb.lock: lock file name used by an earlier version of this script)
  rm -f "$LOCK_FILE" "$STATE_ROOT/.mariadb.lock"
  rmdir "$STATE_ROOT" 2>/dev/null || true
  log "stopped; removed $STATE"
}

cmd_env() {
  [[ -f "$ENV_FILE" ]] || die "no env file at $ENV_FILE (run 'scripts/mariadb.sh start' first)"
  cat "$ENV_FILE"
}

cmd_restart() {
  local name="${1:-}"
  valid_name "$name" || die "restart: NAME must be primary, replica1 or replica2 (got '${name}')"
  [[ -s "$STATE/$name/start-command" ]] || die "restart: $name was not started by 'scripts/mariadb.sh start' in $STATE"
  resolve_tools || die "MariaDB tools not found"
  take_lock
  local pid
  if pid="$(server_pid "$name")"; then
    if [[ "$(proc_state "$pid" || true)" == T ]]; then
      log "$name: pid $pid is stopped (SIGSTOP); sending SIGCONT"
      kill -CONT "$pid"
    fi
    # Running, or still being torn down after a SIGKILL sent just before this call: whichever
    # comes first, it answers (nothing to do) or it is gone (start it again).
    if wait_ready_or_gone "$name" "$pid"; then
      log "$name: running (pid $pid); nothing to do"
      return 0
    fi
    log "$name: pid $pid exited; starting it again"
  fi
  local writer mport
  writer="$(current_writer)"
  if [[ "$name" != "$writer" && "$(server_role "$name")" == primary ]]; then
    # A writer that failover (or promote) left behind: never start it as a second writer.
    log "$name: former writer ($writer is the writer now): restarting it as a replica of $writer (rejoin)"
    rejoin_server "$name"
    return 0
  fi
  launch_server "$name"
  pid="$LAUNCHED_PID"
  wait_ready "$name" "$pid"
  if [[ "$(server_role "$name")" == replica ]]; then
    mport="$(status_field "$(slave_status "$name")" Master_Port)"
    if [[ "$name" != "$writer" && "$mport" != "$(server_port "$writer")" ]] && server_pid "$writer" >/dev/null; then
      # It was down during a switchover or failover: point it at the current writer.
      log "$name: replicates from $(name_by_port "${mport:-?}"), not from the writer $writer: repointing it"
      join_writer "$name" "$writer"
    else
      wait_replication "$name" 0
    fi
    log "$name: replication threads running"
  fi
  log "$name: up again on 127.0.0.1:$(server_port "$name") (pid $pid)"
}

cmd_status() {
  local -a names=()
  [[ -d "$STATE" ]] && mapfile -t names < <(existing_servers)
  if ((${#names[@]} == 0)); then
    echo "no servers (state dir $STATE)"
    return 0
  fi
  local name pid state role
  resolve_tools || true
  for name in "${names[@]}"; do
    pid="$(read_pid "$name")"
    if [[ -n "$pid" ]] && pid_is_server "$pid" "$name"; then
      if [[ "$(proc_state "$pid" || true)" == T ]]; then state="stopped(SIGSTOP)"; else state=alive; fi
    else
      state=dead
    fi
    if [[ -n "${MARIADB:-}" ]]; then role="$(role_of "$name" "$state")"; else role="?"; fi
    printf '%-9s port=%-6s pid=%-8s %s  role: %s\n' "$name" "$(server_port "$name")" "${pid:--}" "$state" "$role"
  done
}

main() {
  local cmd="${1:-}"
  (($#)) && shift
  case "$cmd" in
    start) cmd_start "$@" ;;
    stop) cmd_stop ;;
    env) cmd_env ;;
    restart) cmd_restart "$@" ;;
    status) cmd_status ;;
    writer) cmd_writer ;;
    switchover) cmd_switchover "$@" ;;
    failover) cmd_failover "$@" ;;
    promote) cmd_promote "$@" ;;
    rejoin) cmd_rejoin "$@" ;;
    -h | --help | help) usage 0 ;;
    *) usage 2 ;;
  esac
}

main "$@"
