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
#   scripts/mariadb.sh status                one line per server: name, port, pid, state
#
#   eval "$(scripts/mariadb.sh start)"   # or: source .servers/mariadb/env
#
# Progress messages go to stderr; only the env file goes to stdout.
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
  local -a cmd=(
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
  if [[ "$(id -u)" -eq 0 ]]; then cmd+=(--user="$RUN_USER"); fi
  if [[ "$role" == replica ]]; then cmd+=(--read-only=ON); fi
  mkdir -p "$dir/tmp"
  printf '%q ' "${cmd[@]}" >"$dir/start-command"
  echo >>"$dir/start-command"
  echo "$port" >"$dir/port"
  echo "$role" >"$dir/role"
}

# Starts NAME in the background from its saved command; records the PID in its pid file
# (mariadbd rewrites the same PID there once it is up) and in launched.pid, and sets
# LAUNCHED_PID. The script has no job control, so the background child is no process group
# leader and setsid execs mariadbd in it: $! is mariadbd's own PID.
launch_server() { # NAME
  local name="$1" dir
  dir="$(srv_dir "$name")"
  [[ -s "$dir/start-command" ]] || die "$name: no saved start command in $dir (run 'start' first)"
  local -a cmd
  eval "cmd=( $(cat "$dir/start-command") )"
  # The previous instance is known to be dead here: remove its socket + socket lock so a reused
  # PID in mysqld.sock.lock cannot make the new instance refuse to start.
  rm -f "$dir/mysqld.sock" "$dir/mysqld.sock.lock"
  mkdir -p "$dir/tmp"
  # 9>&-: the server must not inherit (and hold forever) our flock on the lock file.
  if command -v setsid >/dev/null 2>&1; then
    setsid "${cmd[@]}" </dev/null >>"$dir/mariadbd.out" 2>&1 9>&- &
  else
    nohup "${cmd[@]}" </dev/null >>"$dir/mariadbd.out" 2>&1 9>&- &
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

# Waits until NAME's replication threads run (IO thread may be "Connecting" if the primary is
# down) and, with CATCH_UP=1, until its @@gtid_slave_pos equals the primary's @@gtid_binlog_pos.
wait_replication() { # NAME CATCH_UP
  local name="$1" catch_up="$2" deadline=$((SECONDS + REPL_TIMEOUT))
  local io sqlr target pos primary_up ppid started=0
  while :; do
    io="$(slave_status_field "$name" Slave_IO_Running)"
    sqlr="$(slave_status_field "$name" Slave_SQL_Running)"
    # A dead or SIGSTOPped primary leaves the IO thread "Connecting"; accept that then.
    primary_up=0
    if ppid="$(server_pid primary)" && [[ "$(proc_state "$ppid" || true)" != T ]]; then primary_up=1; fi
    if [[ "$sqlr" == Yes && ("$io" == Yes || ("$primary_up" == 0 && "$io" == Connecting)) ]]; then
      if [[ "$catch_up" != 1 ]]; then return 0; fi
      target="$(sql_root primary -e 'SELECT @@GLOBAL.gtid_binlog_pos' 2>/dev/null || true)"
      pos="$(sql_root "$name" -e 'SELECT @@GLOBAL.gtid_slave_pos' 2>/dev/null || true)"
      if [[ -n "$target" && "$pos" == "$target" ]]; then return 0; fi
    elif [[ "$sqlr" == No && "$io" == No && "$started" == 0 ]]; then
      # Replication configured but not running (e.g. a test ran STOP SLAVE before killing it).
      log "$name: replication threads not running; START SLAVE"
      sql_root "$name" -e 'START SLAVE' || true
      started=1
    fi
    if ((SECONDS >= deadline)); then
      log "$name: replication not ready after ${REPL_TIMEOUT}s: Slave_IO_Running=${io:-?} Slave_SQL_Running=${sqlr:-?} gtid_slave_pos=${pos:-?} primary gtid_binlog_pos=${target:-?}"
      sql_root "$name" --column-names -e 'SHOW SLAVE STATUS\G' >&2 || true
      print_log_tail "$name"
      print_log_tail primary 20
      die "$name: replication did not become ready"
    fi
    sleep 0.2
  done
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

  local -a names=(primary)
  local k
  for ((k = 1; k <= replicas; k++)); do names+=("replica$k"); done

  # From here on, a failure stops whatever was started (logs are kept for inspection).
  trap on_start_exit EXIT

  # One mariadb-install-db run, copied to every server: faster than initialising each one.
  local template="$STATE/template"
  local -a install_args=(
    --no-defaults
    --datadir="$template"
    --auth-root-authentication-method=socket
    --auth-root-socket-user="$RUN_USER"
    --skip-test-db
    --skip-name-resolve
    --innodb-log-file-size=16M
    --innodb-buffer-pool-size=64M
  )
  if [[ "$(id -u)" -eq 0 ]]; then install_args+=(--user="$RUN_USER"); fi
  log "initialising data directory (mariadb-install-db)"
  if ! "$MARIADB_INSTALL_DB" "${install_args[@]}" >"$STATE/install-db.log" 2>&1; then
    tail -n 40 "$STATE/install-db.log" >&2
    die "mariadb-install-db failed (full log: $STATE/install-db.log)"
  fi

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
    sql="$(sed -e "s/MASTER_HOST='mariadb-primary'/MASTER_HOST='127.0.0.1'/" \
      -e "s/MASTER_PORT=3306/MASTER_PORT=$primary_port/" "$SQL_DIR/mariadb/replica-init.sql")"
    [[ "$sql" == *"MASTER_HOST='127.0.0.1'"* && "$sql" == *"MASTER_PORT=$primary_port"* ]] ||
      die "could not substitute MASTER_HOST/MASTER_PORT in $SQL_DIR/mariadb/replica-init.sql"
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
  launch_server "$name"
  pid="$LAUNCHED_PID"
  wait_ready "$name" "$pid"
  if [[ "$(cat "$STATE/$name/role")" == replica ]]; then
    wait_replication "$name" 0
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
  local name pid state
  for name in "${names[@]}"; do
    pid="$(read_pid "$name")"
    if [[ -n "$pid" ]] && pid_is_server "$pid" "$name"; then
      if [[ "$(proc_state "$pid" || true)" == T ]]; then state="stopped(SIGSTOP)"; else state=alive; fi
    else
      state=dead
    fi
    printf '%-9s port=%-6s pid=%-8s %s\n' "$name" "$(server_port "$name")" "${pid:--}" "$state"
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
    -h | --help | help) usage 0 ;;
    *) usage 2 ;;
  esac
}

main "$@"
