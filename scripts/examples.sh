#!/usr/bin/env bash
# Runs every example once, each bounded in time, against the servers whose URLs are in the
# environment (scripts/test.sh exports them). Fails on the first example that fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Examples of both workspace packages: the library's (examples/) and the tools' (tools/examples/).
# No `-p`: the workspace's default members are selected, as by `cargo test --all-features`, so
# the features unify the same way and the binaries that cargo test built are reused (selecting
# one package changes the unified features and rebuilds much of the graph).
run() {
  local name=$1 rc=0; shift
  # The arguments as they are, but for the password of a URL (`scheme://user:***@host`).
  echo "-- example: $name $(printf '%s ' "$@" | sed -E 's#(://[^:/@ ]*:)[^@ ]*@#\1***@#g')"
  timeout 300 cargo run -q --all-features --example "$name" -- "$@" || rc=$?
  if ((rc != 0)); then
    echo "-- example $name failed (exit $rc$( ((rc == 124)) && echo ': timed out'))" >&2
    return "$rc"
  fi
}
tool() { run "$@"; }

run quickstart | tail -n 4
out=$(printf 'SELECT 1\n\nSELECT * FROM t FOR UPDATE\nSELECT nextval($$s$$)\n' \
  | timeout 300 cargo run -q --all-features --example classify -- --dialect postgres)
echo "$out"
[ "$(printf '%s\n' "$out" | wc -l)" -eq 3 ] || { echo "classify printed the wrong number of lines"; exit 1; }
printf '%s\n' "$out" | head -n 1 | grep -q "^replica	pure read$"
tool axum_session --self-test
tool metrics_server --listen 127.0.0.1:0 --duration 3 --statements 50 2>&1 | tail -n 2
RWSPLIT_OTLP_PROTOCOL=grpc tool otel --endpoint http://127.0.0.1:9 | tail -n 2
run mysql_replicas
tool axum_session --self-test --mysql
run drift_check --primary "$RWSPLIT_MYSQL_PRIMARY" --replica "$RWSPLIT_MYSQL_REPLICA_1" --table users --key id
tool loadgen --mode routed --backend mysql --primary "$RWSPLIT_MYSQL_PRIMARY" --replica "$RWSPLIT_MYSQL_REPLICA_1" --concurrency 4 --duration 2 --rows 1000
tool loadgen --mode routed --backend postgres --primary "$RWSPLIT_PG_PRIMARY" --replica "$RWSPLIT_PG_STANDBY_1" --concurrency 4 --duration 2 --rows 1000
tool loadgen --mode memory --statements 20000 | tail -n 1
run causal_latency --backend mysql --cycles 100
run causal_latency --backend postgres --cycles 100
echo "-- all examples ran"
