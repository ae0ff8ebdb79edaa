#!/usr/bin/env bash
# Runs the whole test suite against real servers: starts a MariaDB primary with two GTID
# replicas and a PostgreSQL primary with two streaming standbys on free loopback ports
# (installing the Debian packages when they are missing), runs `cargo test --all-features`
# with their URLs in the environment, and stops exactly the servers it started.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh --test routing  # extra arguments go to cargo test
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

stop_all() {
  "$repo/scripts/mariadb.sh" stop >/dev/null 2>&1 || true
  if [ -x "$repo/scripts/postgres.sh" ]; then "$repo/scripts/postgres.sh" stop >/dev/null 2>&1 || true; fi
}
trap stop_all EXIT

"$repo/scripts/mariadb.sh" start --replicas 2 >/dev/null
# shellcheck disable=SC1090
source <("$repo/scripts/mariadb.sh" env)
if [ -x "$repo/scripts/postgres.sh" ]; then
  "$repo/scripts/postgres.sh" start --standbys 2 >/dev/null
  # shellcheck disable=SC1090
  source <("$repo/scripts/postgres.sh" env)
fi

cargo test --all-features "$@"
# Every example once, bounded, against the same servers (skipped when arguments narrow the run).
if [ $# -eq 0 ]; then
  "$repo/scripts/examples.sh"
fi
